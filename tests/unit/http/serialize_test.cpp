#include <catch2/catch.hpp>

#include <string>

#include "drive.h"
#include "http/headers.h"
#include "http/parser.h"
#include "http/serialize.h"

using namespace veil::http;
using namespace veil::http::test;

TEST_CASE("A parsed request head serializes back to the same bytes")
{
    const std::string bytes = "POST /v1/messages?beta=true HTTP/1.1\r\n"
                              "Host: api.anthropic.com\r\n"
                              "x-api-key: k\r\n"
                              "Content-Type: application/json\r\n"
                              "Content-Length: 2\r\n"
                              "\r\n";
    RequestParser p;
    REQUIRE(p.parse(bytes).event == ParseEvent::Head);
    std::string out;
    appendRequestHead(out, p.head());
    CHECK(out == bytes);

    RequestParser again;
    REQUIRE(again.parse(out).event == ParseEvent::Head);
    CHECK(fieldsOf(again.head().headers) == fieldsOf(p.head().headers));
    CHECK(again.head().method == p.head().method);
    CHECK(again.head().target == p.head().target);
}

TEST_CASE("A parsed response head serializes back, with a standard reason when none was given")
{
    const std::string bytes = "HTTP/1.1 404 Nope\r\ncontent-type: application/json\r\nContent-Length: 0\r\n\r\n";
    ResponseParser p;
    REQUIRE(p.parse(bytes).event == ParseEvent::Head);
    std::string out;
    appendResponseHead(out, p.head());
    CHECK(out == bytes);

    ResponseHead h;
    h.status = 502;
    h.version = 10;
    h.headers.add("Content-Length", "0");
    out.clear();
    appendResponseHead(out, h);
    CHECK(out == "HTTP/1.0 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
}

TEST_CASE("An edited head re-framed from chunked to Content-Length parses as the new framing")
{
    RequestParser p;
    std::string bytes = "POST / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\n"
                        "Keep-Alive: timeout=5\r\nTransfer-Encoding: chunked\r\nAccept-Encoding: zstd, gzip;q=0.5, br\r\n"
                        "TE: trailers\r\nUpgrade: h2c\r\nX-Keep: yes\r\n\r\n";
    REQUIRE(p.parse(bytes).event == ParseEvent::Head);
    RequestHead& h = p.head();
    removeHopByHop(h.headers);
    narrowAcceptEncoding(h.headers);
    setContentLength(h.headers, 5);
    std::string out;
    appendRequestHead(out, h);
    CHECK(out == "POST / HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip;q=0.5, br\r\nX-Keep: yes\r\n"
                 "Content-Length: 5\r\n\r\n");
    Outcome o = request(out + "hello");
    REQUIRE_FALSE(o.error);
    CHECK(o.messages[0].body == "hello");

    setChunked(h.headers);
    CHECK_FALSE(h.headers.contains("content-length"));
    CHECK(h.headers.find("transfer-encoding") == std::optional<std::string_view>("chunked"));
}

TEST_CASE("The chunked encoder writes what the parser reads back")
{
    std::string body;
    appendChunk(body, "hello");
    appendChunk(body, "");
    appendChunk(body, std::string(300, 'x'));
    CHECK(body.substr(0, 10) == "5\r\nhello\r\n");
    CHECK(body.substr(10, 5) == "12c\r\n");
    HeaderList trailers;
    trailers.add("X-Sum", "1");
    appendLastChunk(body, trailers);
    CHECK(body.substr(body.size() - 15) == "0\r\nX-Sum: 1\r\n\r\n");

    Outcome o = request("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + body);
    REQUIRE_FALSE(o.error);
    CHECK(o.messages[0].body == "hello" + std::string(300, 'x'));
    CHECK(o.messages[0].trailers == Fields{{"X-Sum", "1"}});

    CHECK(chunkPrefix(0).view() == "0\r\n");
    CHECK(chunkPrefix(0xabcdef).view() == "abcdef\r\n");
    CHECK(chunkPrefix(UINT64_MAX).view() == "ffffffffffffffff\r\n");
    std::string last;
    appendLastChunk(last);
    CHECK(last == kLastChunk);
}

TEST_CASE("Header helpers find, set and remove fields case-insensitively")
{
    HeaderList h;
    CHECK(h.add("Content-Type", "a"));
    CHECK(h.add("X-Dup", "1"));
    CHECK(h.add("x-dup", "2"));
    CHECK(h.add("Accept", "*/*"));
    CHECK(h.find("CONTENT-TYPE") == std::optional<std::string_view>("a"));
    CHECK(h.count("X-DUP") == 2);
    CHECK_FALSE(h.find("missing"));

    CHECK(h.set("X-DUP", "3"));
    CHECK(fieldsOf(h) == Fields{{"Content-Type", "a"}, {"X-DUP", "3"}, {"Accept", "*/*"}});
    CHECK(h.set("New", "n"));
    CHECK(h.size() == 4);
    CHECK(h.remove("accept") == 1);
    CHECK(h.remove("accept") == 0);
    CHECK(fieldsOf(h) == Fields{{"Content-Type", "a"}, {"X-DUP", "3"}, {"New", "n"}});

    h.clear();
    CHECK(h.empty());
}

TEST_CASE("Header helpers refuse names and values that would inject lines")
{
    HeaderList h;
    CHECK_FALSE(h.add("X-A", "a\r\nX-Injected: 1"));
    CHECK_FALSE(h.add("X A", "a"));
    CHECK_FALSE(h.add("", "a"));
    CHECK_FALSE(h.set("X-A", std::string("a\0b", 3)));
    CHECK_FALSE(h.add("X-A:", "a"));
    CHECK(h.empty());
    CHECK(h.add("X-A", "tab\tand obs-text \xc3\xa9"));
}

TEST_CASE("List tokens are matched as whole elements, ignoring quoted commas")
{
    HeaderList h;
    h.add("Connection", "keep-alive, Upgrade");
    h.add("Connection", "X-\"a,close\"");
    CHECK(h.hasToken("connection", "upgrade"));
    CHECK(h.hasToken("connection", "KEEP-ALIVE"));
    CHECK_FALSE(h.hasToken("connection", "close"));
    CHECK_FALSE(h.hasToken("connection", "keep"));

    std::vector<std::string> seen;
    forEachListElement(" a , ,b;q=\"x,y\",, c ", [&](std::string_view e) {
        seen.emplace_back(e);
        return true;
    });
    CHECK(seen == std::vector<std::string>{"a", "b;q=\"x,y\"", "c"});
}

TEST_CASE("Accept-Encoding is narrowed to codings veil can decode")
{
    auto narrowed = [](std::optional<std::string> value) {
        HeaderList h;
        if (value)
            h.add("Accept-Encoding", *value);
        narrowAcceptEncoding(h);
        return std::string(*h.find("accept-encoding"));
    };
    CHECK(narrowed("gzip, deflate, br, zstd") == "gzip, deflate, br");
    CHECK(narrowed("zstd;q=1.0, BR;q=0.9") == "BR;q=0.9");
    CHECK(narrowed("zstd") == "identity");
    CHECK(narrowed("*") == "identity");
    CHECK(narrowed(std::nullopt) == "identity");
}

TEST_CASE("Hop-by-hop removal also drops the fields Connection names")
{
    HeaderList h;
    h.add("Connection", "close, X-Secret-Hop");
    h.add("Proxy-Connection", "keep-alive");
    h.add("X-Secret-Hop", "1");
    h.add("Trailer", "X-Sum");
    h.add("Host", "a");
    removeHopByHop(h);
    CHECK(fieldsOf(h) == Fields{{"Host", "a"}});
}
