#pragma once

// Errors of the HTTP layer, and veil's JSON error response.
//
// Every error carries the status veil answers with, a kind (the JSON
// "veil_<kind>" type), a short message and the side that caused it. Messages
// name the rule that was broken and numbers (limits, sizes); they never
// contain request or response body content.

#include <string>
#include <string_view>

namespace veil::http {

// Who caused the error (Pingora-style): the client, the origin, or veil.
enum class Side : unsigned char {
    Downstream,
    Upstream,
    Internal,
};

std::string_view sideName(Side side); // "downstream" | "upstream" | "internal"

struct HttpError {
    int status = 400;
    // Static storage: a literal such as "bad_request". Rendered as veil_<kind>.
    std::string_view kind = "bad_request";
    std::string message;
    Side side = Side::Downstream;
};

// The kind veil uses for a status it emits: 400 bad_request, 413
// body_too_large, 414 uri_too_long, 415 unsupported_encoding, 417
// expectation_failed, 431 headers_too_large, 501 not_implemented, 502
// bad_gateway, 503 overloaded, 504 gateway_timeout, 505 version_not_supported,
// anything else "error".
std::string_view kindForStatus(int status);

// Standard reason phrase ("Bad Request"); "Unknown" for unlisted codes.
std::string_view reasonPhrase(int status);

// {"type":"error","error":{"type":"veil_<kind>","message":"…","side":"…"}}
std::string errorBody(const HttpError& error);

// A complete HTTP/1.1 response carrying errorBody(): status line,
// Content-Type: application/json, Content-Length, and Connection: close when
// closeConnection (the default: every parse error ends the connection).
std::string renderErrorResponse(const HttpError& error, bool closeConnection = true);

} // namespace veil::http
