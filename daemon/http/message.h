#pragma once

// Request and response heads as the parser produces them and the serializer
// writes them. The header list is the truth on the wire; the derived fields
// (framing, keepAlive, …) describe what the parser saw and are not read by
// the serializer — re-frame with setContentLength()/setChunked() instead.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "http/headers.h"

namespace veil::http {

// How a message body is delimited (RFC 9112 §6.3).
enum class Framing : unsigned char {
    None,          // no body (no CL/TE request; HEAD/1xx/204/304 response; CL: 0)
    ContentLength, // exactly contentLength bytes
    Chunked,       // Transfer-Encoding: chunked (body events are de-chunked)
    UntilClose,    // response without length: the body ends when upstream closes
};

std::string_view framingName(Framing framing);

struct RequestHead {
    std::string method;  // token, case preserved (methods are case-sensitive)
    std::string target;  // request-target as received (origin/absolute/authority/asterisk form)
    int version = 11;    // 10 or 11
    HeaderList headers;  // in order, original case

    Framing framing = Framing::None;
    std::uint64_t contentLength = 0; // when framing == ContentLength
    bool keepAlive = true;           // HTTP/1.1 unless "close"; HTTP/1.0 only with "keep-alive"
    bool expectContinue = false;     // HTTP/1.1 with Expect: 100-continue
    bool upgrade = false;            // Upgrade field with Connection: upgrade

    // Host field value ("" if absent); an HTTP/1.1 request always has exactly one.
    std::string_view host() const;
    // The path of an origin-form or absolute-form target, without query
    // ("/v1/messages"); "" for authority and asterisk forms. Not normalized:
    // route matching must not assume dot-segments or %-escapes were resolved.
    std::string_view path() const;
    bool isMethod(std::string_view m) const { return method == m; }
    void clear();
};

struct ResponseHead {
    int status = 200;
    std::string reason;
    int version = 11;
    HeaderList headers;

    Framing framing = Framing::None;
    // The declared Content-Length, also when it does not frame the body
    // (responses to HEAD, 304): the session forwards it unchanged then.
    std::optional<std::uint64_t> contentLength;
    bool keepAlive = true;

    bool interim() const { return status >= 100 && status < 200; }
    bool chunked() const { return framing == Framing::Chunked; }
    // Field values ("" if absent): the media type decides JSON vs SSE
    // unmasking, the coding decides whether the body must be decoded first.
    std::string_view contentType() const;
    std::string_view contentEncoding() const;
    void clear();
};

} // namespace veil::http
