#pragma once

// The HTTP fuzz targets' property: a parser's outcome does not depend on how
// the bytes were cut. The same input fed whole and fed in pieces must yield
// the same messages (heads, de-chunked bodies, trailers) and the same error.

#include <string>
#include <string_view>
#include <vector>

#include "fuzz.h"
#include "http/parser.h"

namespace veil::fuzz {

// `onHead(parser)` describes the head (and may set a body limit).
template <typename Parser, typename OnHead>
std::string transcript(std::string_view input, const std::vector<std::size_t>& cuts, OnHead onHead)
{
    http::Limits limits;
    limits.maxHeaderBytes = 4096; // small limits reach the limit paths
    limits.maxHeaderCount = 20;
    limits.maxStartLine = 1024;
    Parser parser(limits);
    std::string t, buf, body;
    std::size_t fed = 0;
    auto drain = [&]() -> bool { // false once the parser is dead
        for (;;) {
            http::ParseResult r = parser.parse(buf);
            VEIL_FUZZ_CHECK(r.consumed <= buf.size());
            switch (r.event) {
            case http::ParseEvent::NeedMore:
                buf.erase(0, r.consumed);
                return true;
            case http::ParseEvent::Head:
                t += "H " + onHead(parser) + "\n";
                break;
            case http::ParseEvent::Body:
                VEIL_FUZZ_CHECK(!r.body.empty());
                body.append(r.body);
                break;
            case http::ParseEvent::End:
                t += "B " + std::to_string(body.size()) + " " + body + "\nE " +
                     std::to_string(parser.trailers().size()) + "\n";
                body.clear();
                break;
            case http::ParseEvent::Closed:
                t += "C\n";
                return false;
            case http::ParseEvent::Error:
                VEIL_FUZZ_CHECK(r.consumed == 0);
                t += "X " + std::to_string(parser.error().status) + " " + std::string(parser.error().kind) + "\n";
                return false;
            }
            buf.erase(0, r.consumed);
        }
    };
    bool alive = true;
    for (std::size_t cut : cuts) {
        buf.append(input.substr(fed, cut - fed));
        fed = cut;
        if (!(alive = drain()))
            break;
    }
    if (alive) {
        http::ParseResult r = parser.finish();
        VEIL_FUZZ_CHECK(r.event == http::ParseEvent::End || r.event == http::ParseEvent::Closed ||
                        r.event == http::ParseEvent::Error);
        t += "F " + std::string(http::parseEventName(r.event)) + " " + std::to_string(body.size()) + " " + body;
        if (r.event == http::ParseEvent::Error)
            t += " " + std::to_string(parser.error().status);
    }
    return t;
}

} // namespace veil::fuzz
