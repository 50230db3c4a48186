#pragma once

// Incremental HTTP/1.1 parsers, built on Boost.Beast's basic_parser with
// strict checks on top (see parser.cpp for what Beast accepts and veil does
// not). No I/O: bytes in, events out.
//
// Calling contract (HAProxy style), for RequestParser::parse and
// ResponseParser::parse alike:
//
//   ParseResult r = parser.parse(data);   // data = unconsumed bytes + new bytes
//
//   event     consumed  meaning / what the caller does next
//   --------  --------  -------------------------------------------------------
//   NeedMore  0..n      nothing more to report from `data`. Drop `consumed`
//                       bytes, keep the rest, read more, call again with the
//                       rest followed by the new bytes.
//   Head      > 0       head() is complete. Requests: call setBodyLimit() now
//                       if this route has one, answer 100-continue if wanted.
//   Body      > 0       r.body holds de-chunked payload bytes. It is a view into
//                       `data`: use it before dropping or overwriting them.
//   End       >= 0      the message is complete. The next call parses the next
//                       (pipelined) message; the caller may wait before making
//                       it. head() stays valid until that call begins one.
//   Error     0         error() says why (status, kind, message, side). The
//                       parser is dead: answer the error and close.
//
// The same bytes must be presented again after NeedMore (the parser may have
// looked at them but consumed none). Every event is reported once: a call
// that completes a body piece and the message returns Body, and the next call
// returns End with consumed 0.
//
// finish() tells the parser the peer closed its sending side. It returns End
// (a response read until close is complete), Closed (no message was in
// progress), or Error (the message was truncated).
//
// Framing accepted: CRLF line endings only (bare LF and bare CR are errors
// everywhere: start line, fields, chunk lines, trailers). Requests may be
// preceded by empty lines (CRLF), which are skipped (RFC 9112 §2.2).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include "http/error.h"
#include "http/message.h"

namespace veil::http {

struct Limits {
    // Request/status line without its CRLF. Requests over it: 414.
    std::size_t maxStartLine = 8 * 1024;
    // Field section (every field line with its CRLF, plus the final CRLF).
    // Requests over it: 431. Trailer sections have the same limit.
    std::size_t maxHeaderBytes = 64 * 1024;
    // Field lines in the head (and, separately, in the trailers): 431.
    std::size_t maxHeaderCount = 100;
    // One chunk-size line with its extensions, without CRLF: 400.
    std::size_t maxChunkLine = 4 * 1024;
    // Chunk extensions summed over one message (extension abuse costs CPU
    // and buffer space without moving payload): 400.
    std::size_t maxChunkExtensionBytes = 64 * 1024;
    // Body limit applied when the caller sets none for a message (requests:
    // 413). Unset: bodies stream without limit.
    std::optional<std::uint64_t> maxBody;
    // Empty lines (CRLF) skipped before a request line.
    std::size_t maxLeadingEmptyLines = 8;
};

enum class ParseEvent : unsigned char {
    NeedMore,
    Head,
    Body,
    End,
    Closed,
    Error,
};

std::string_view parseEventName(ParseEvent event);

struct ParseResult {
    ParseEvent event = ParseEvent::NeedMore;
    std::size_t consumed = 0;
    std::string_view body; // Body only
};

namespace detail {
template <bool isRequest>
class Codec;
}

// Downstream side: parses the client's requests. Errors are downstream-side
// with status 400, 413, 414, 417, 431, 501 or 505.
class RequestParser {
public:
    explicit RequestParser(Limits limits = {});
    ~RequestParser();
    RequestParser(RequestParser&&) noexcept;
    RequestParser& operator=(RequestParser&&) noexcept;

    ParseResult parse(std::string_view data);
    ParseResult finish();

    // Valid from the Head event until the next message begins. Mutable so the
    // session can edit it in place before serializing it upstream.
    const RequestHead& head() const;
    RequestHead& head();
    // Trailer fields of a chunked request, valid after End.
    const HeaderList& trailers() const;
    // Valid after an Error event (and after setBodyLimit returned false).
    const HttpError& error() const;

    // Body limit for the current message; call between Head and the first
    // Body. Returns false if the declared Content-Length already exceeds it:
    // the parser is then dead and error() is the 413 (no body byte was read,
    // so the session can answer before the client sends one — useful with
    // Expect: 100-continue). A chunked body over the limit fails with 413
    // before any byte beyond the limit is delivered.
    bool setBodyLimit(std::optional<std::uint64_t> limit);

    // True between messages: no byte of the next message has been seen.
    bool idle() const;
    // Payload bytes delivered for the current message so far.
    std::uint64_t bodyBytes() const;

private:
    std::unique_ptr<detail::Codec<true>> codec_;
};

// Upstream side: parses the origin's responses. Errors are upstream-side with
// status 502 (the session answers 502 and does not reuse the connection).
class ResponseParser {
public:
    explicit ResponseParser(Limits limits = {});
    ~ResponseParser();
    ResponseParser(ResponseParser&&) noexcept;
    ResponseParser& operator=(ResponseParser&&) noexcept;

    // The request this response answers was HEAD: the response has no body
    // whatever its fields say. Set before the response's first byte; it holds
    // across interim (1xx) responses and is cleared when a final response ends.
    void setHeadRequest(bool headRequest);

    ParseResult parse(std::string_view data);
    ParseResult finish();

    const ResponseHead& head() const;
    ResponseHead& head();
    const HeaderList& trailers() const;
    const HttpError& error() const;
    // Optional limit for a response body the session buffers (502 when over).
    bool setBodyLimit(std::optional<std::uint64_t> limit);
    bool idle() const;
    std::uint64_t bodyBytes() const;

private:
    std::unique_ptr<detail::Codec<false>> codec_;
};

} // namespace veil::http
