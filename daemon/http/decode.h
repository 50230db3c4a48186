#pragma once

// Content-Encoding decoding (gzip, deflate, br) for bodies veil must read:
// masked request bodies, and responses it unmasks. Streaming, bounded:
// output is capped and a compression-ratio guard stops decompression bombs
// early, with memory bounded by the cap plus one 16 KiB block per stage.
// Unknown codings are an error, so the session fails closed. No encoder: the
// session forwards a decoded body without Content-Encoding.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/result.h"
#include "http/error.h"

namespace veil::http {

enum class DecodeFailure : unsigned char {
    Unsupported,   // a coding veil does not decode (or too many codings)
    TooLarge,      // decoded size over DecodeLimits::maxOutput
    RatioExceeded, // decoded/encoded over DecodeLimits::maxRatio (a bomb)
    Corrupt,       // invalid compressed data, or bytes after the end of the stream
    Truncated,     // the body ended inside the compressed stream
};

std::string_view decodeFailureName(DecodeFailure failure);

struct DecodeError {
    DecodeFailure failure;
    std::string message; // names the coding and the limit, never body content
};

struct DecodeLimits {
    std::size_t maxOutput = 32 * 1024 * 1024;
    // Decoded bytes per encoded byte; 0 disables the guard. JSON compresses
    // 5-20x; 200x is a bomb.
    unsigned maxRatio = 200;
    // The ratio guard applies once this much has been decoded: tiny bodies
    // compress absurdly well without being bombs.
    std::size_t ratioFloor = 1024 * 1024;
};

// The HTTP error for a failed decode. Downstream (a request body): 415 for
// Unsupported, 413 for TooLarge / RatioExceeded, 400 for Corrupt / Truncated.
// Upstream (a response body): 502.
HttpError toHttpError(const DecodeError& error, Side side);

// True if every coding in the Content-Encoding value is one veil decodes.
bool isSupportedContentEncoding(std::string_view contentEncoding);

class ContentDecoder {
public:
    // contentEncoding is the field value: codings in the order they were
    // applied ("gzip", "deflate, br"); "" and "identity" pass bytes through.
    // Accepted: gzip, x-gzip, deflate (zlib-wrapped, or raw as some servers
    // send it), br, identity; at most 3 non-identity codings.
    static Result<ContentDecoder, DecodeError> create(std::string_view contentEncoding,
                                                      DecodeLimits limits = {});

    ContentDecoder(ContentDecoder&&) noexcept;
    ContentDecoder& operator=(ContentDecoder&&) noexcept;
    ~ContentDecoder();

    // Decodes the next piece of the body, appending to `decoded`. After an
    // error the decoder is unusable.
    Result<void, DecodeError> feed(std::string_view encoded, std::string& decoded);
    // The body ended: fails if a compressed stream is incomplete. An empty
    // body decodes to nothing under any coding.
    Result<void, DecodeError> finish(std::string& decoded);

    bool identity() const;
    std::uint64_t encodedBytes() const;
    std::uint64_t decodedBytes() const;

private:
    struct Impl;
    explicit ContentDecoder(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// One-shot: decodes a whole body.
Result<std::string, DecodeError> decodeBody(std::string_view contentEncoding, std::string_view body,
                                            DecodeLimits limits = {});

} // namespace veil::http
