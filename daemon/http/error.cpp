#include "http/error.h"

namespace veil::http {

namespace {

void appendJsonString(std::string& out, std::string_view s)
{
    static constexpr char kHex[] = "0123456789abcdef";
    out += '"';
    for (char c : s) {
        auto u = static_cast<unsigned char>(c);
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
            if (u < 0x20 || u == 0x7f) {
                out += "\\u00";
                out += kHex[u >> 4];
                out += kHex[u & 0xf];
            } else if (u >= 0x80) {
                // Messages are ASCII by construction; anything else is
                // replaced so the body is always valid UTF-8 JSON.
                out += '?';
            } else {
                out += c;
            }
        }
    }
    out += '"';
}

} // namespace

std::string_view sideName(Side side)
{
    switch (side) {
    case Side::Downstream: return "downstream";
    case Side::Upstream: return "upstream";
    case Side::Internal: return "internal";
    }
    return "internal";
}

std::string_view kindForStatus(int status)
{
    switch (status) {
    case 400: return "bad_request";
    case 413: return "body_too_large";
    case 414: return "uri_too_long";
    case 415: return "unsupported_encoding";
    case 417: return "expectation_failed";
    case 431: return "headers_too_large";
    case 501: return "not_implemented";
    case 502: return "bad_gateway";
    case 503: return "overloaded";
    case 504: return "gateway_timeout";
    case 505: return "version_not_supported";
    default: return "error";
    }
}

std::string_view reasonPhrase(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 529: return "Site Overloaded";
    default: return "Unknown";
    }
}

std::string errorBody(const HttpError& error)
{
    std::string body;
    body.reserve(96 + error.message.size());
    body += R"({"type":"error","error":{"type":)";
    std::string type = "veil_";
    type += error.kind;
    appendJsonString(body, type);
    body += R"(,"message":)";
    appendJsonString(body, error.message);
    body += R"(,"side":)";
    appendJsonString(body, sideName(error.side));
    body += "}}";
    return body;
}

std::string renderErrorResponse(const HttpError& error, bool closeConnection)
{
    std::string body = errorBody(error);
    int status = (error.status >= 100 && error.status <= 999) ? error.status : 500;
    std::string out;
    out.reserve(160 + body.size());
    out += "HTTP/1.1 ";
    out += std::to_string(status);
    out += ' ';
    out += reasonPhrase(status);
    out += "\r\nContent-Type: application/json\r\nContent-Length: ";
    out += std::to_string(body.size());
    out += "\r\n";
    if (closeConnection)
        out += "Connection: close\r\n";
    out += "\r\n";
    out += body;
    return out;
}

} // namespace veil::http
