#include <catch2/catch.hpp>

#include <string>

#include "drive.h"
#include "http/error.h"
#include "http/parser.h"

using namespace veil::http;
using namespace veil::http::test;
using namespace std::string_literals;

namespace {

const std::string kPost = "POST /v1/messages HTTP/1.1\r\n"
                          "Host: api.anthropic.com\r\n"
                          "Content-Type: application/json\r\n"
                          "Content-Length: 13\r\n"
                          "\r\n"
                          "{\"a\":\"hello\"}";

const std::string kChunked = "POST /v1/messages?beta=true HTTP/1.1\r\n"
                             "Host: api.anthropic.com\r\n"
                             "Transfer-Encoding: chunked\r\n"
                             "\r\n"
                             "5;name=value;q=\"quoted; \\\"ext\"\r\n"
                             "hello\r\n"
                             "7\r\n"
                             ", world\r\n"
                             "0;last\r\n"
                             "X-Checksum: abc\r\n"
                             "X-Other: 1\r\n"
                             "\r\n";

// Asserts the request was refused with `status` before any head was emitted.
void requireRefused(std::string_view bytes, int status, std::string_view messagePart)
{
    INFO("input: " << std::string(bytes));
    Outcome o = request(bytes);
    REQUIRE(o.error.has_value());
    CHECK(o.status() == status);
    CHECK_THAT(o.message(), Catch::Contains(std::string(messagePart)));
    CHECK(o.messages.empty());
    CHECK(o.error->side == Side::Downstream);
}

std::string head(std::string_view fields)
{
    return "POST / HTTP/1.1\r\nHost: a\r\n" + std::string(fields) + "\r\n";
}

} // namespace

TEST_CASE("A GET request yields method, target, version and fields in order with their original case")
{
    Outcome o = request("GET /v1/models?limit=5 HTTP/1.1\r\n"
                        "Host: api.anthropic.com\r\n"
                        "X-Api-Key: k\r\n"
                        "accept: */*\r\n"
                        "X-Dup: 1\r\n"
                        "x-dup: 2\r\n"
                        "\r\n");
    REQUIRE_FALSE(o.error);
    REQUIRE(o.messages.size() == 1);
    const Message& m = o.messages[0];
    CHECK(m.method == "GET");
    CHECK(m.target == "/v1/models?limit=5");
    CHECK(m.version == 11);
    CHECK(m.headers == Fields{{"Host", "api.anthropic.com"},
                              {"X-Api-Key", "k"},
                              {"accept", "*/*"},
                              {"X-Dup", "1"},
                              {"x-dup", "2"}});
    CHECK(m.framing == Framing::None);
    CHECK(m.keepAlive);
    CHECK_FALSE(m.expectContinue);
    CHECK(m.ended);
    CHECK(m.body.empty());
    CHECK(o.closed);
}

TEST_CASE("Field values are trimmed of surrounding whitespace but keep inner whitespace")
{
    Outcome o = request("GET / HTTP/1.1\r\nHost:  a.example \t\r\nX-A:\tone  two\t\r\nX-Empty:\r\n\r\n");
    REQUIRE_FALSE(o.error);
    CHECK(o.messages[0].headers == Fields{{"Host", "a.example"}, {"X-A", "one  two"}, {"X-Empty", ""}});
}

TEST_CASE("The head exposes Host and the path of origin-form and absolute-form targets")
{
    RequestParser p;
    std::string bytes = "POST https://api.anthropic.com/v1/messages?x=1 HTTP/1.1\r\nHost: api.anthropic.com\r\n\r\n";
    ParseResult r = p.parse(bytes);
    REQUIRE(r.event == ParseEvent::Head);
    CHECK(p.head().host() == "api.anthropic.com");
    CHECK(p.head().path() == "/v1/messages");
    p.head().target = "/v1/messages?beta=true";
    CHECK(p.head().path() == "/v1/messages");
    p.head().target = "http://h";
    CHECK(p.head().path() == "/");
    p.head().target = "*";
    CHECK(p.head().path().empty());
}

TEST_CASE("A Content-Length body is delivered and the message ends")
{
    Outcome o = request(kPost);
    REQUIRE_FALSE(o.error);
    REQUIRE(o.messages.size() == 1);
    CHECK(o.messages[0].framing == Framing::ContentLength);
    CHECK(o.messages[0].contentLength == 13);
    CHECK(o.messages[0].body == "{\"a\":\"hello\"}");
    CHECK(o.messages[0].ended);
}

TEST_CASE("Content-Length: 0 is a message without body that ends right after the head")
{
    Outcome o = request("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
    REQUIRE_FALSE(o.error);
    CHECK(o.messages[0].framing == Framing::ContentLength);
    CHECK(o.messages[0].body.empty());
    CHECK(o.messages[0].ended);
}

TEST_CASE("A chunked body is delivered de-chunked, extensions skipped and trailers kept apart")
{
    Outcome o = request(kChunked);
    REQUIRE_FALSE(o.error);
    REQUIRE(o.messages.size() == 1);
    const Message& m = o.messages[0];
    CHECK(m.framing == Framing::Chunked);
    CHECK(m.body == "hello, world");
    CHECK(m.trailers == Fields{{"X-Checksum", "abc"}, {"X-Other", "1"}});
    CHECK(m.headers == Fields{{"Host", "api.anthropic.com"}, {"Transfer-Encoding", "chunked"}});
    CHECK(m.ended);
}

TEST_CASE("Transfer-Encoding chunked is recognised case-insensitively and with surrounding whitespace")
{
    Outcome o = request("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:  ChUnKeD \r\n\r\n3\r\nabc\r\n0\r\n\r\n");
    REQUIRE_FALSE(o.error);
    CHECK(o.messages[0].body == "abc");
}

TEST_CASE("Body events are views of the caller's buffer, one per available piece")
{
    RequestParser p;
    std::string buf = kPost.substr(0, kPost.size() - 5);
    ParseResult r = p.parse(buf);
    REQUIRE(r.event == ParseEvent::Head);
    buf.erase(0, r.consumed);
    r = p.parse(buf);
    REQUIRE(r.event == ParseEvent::Body);
    CHECK(r.body == "{\"a\":\"he");
    CHECK(r.body.data() == buf.data());
    buf.erase(0, r.consumed);
    r = p.parse(buf);
    CHECK(r.event == ParseEvent::NeedMore);
    CHECK(r.consumed == 0);
    buf += "llo\"}";
    r = p.parse(buf);
    REQUIRE(r.event == ParseEvent::Body);
    CHECK(r.body == "llo\"}");
    CHECK(p.bodyBytes() == 13);
    buf.erase(0, r.consumed);
    r = p.parse(buf);
    CHECK(r.event == ParseEvent::End);
    CHECK(r.consumed == 0);
    CHECK(p.idle());
}

TEST_CASE("Valid requests split at every byte offset produce identical heads and bodies")
{
    const std::vector<std::string> inputs = {
        "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        kPost,
        kChunked,
        "\r\nPOST /x HTTP/1.0\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nabc",
        kPost + kChunked + "GET /last HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    };
    for (const std::string& input : inputs) {
        INFO("input: " << input);
        Outcome whole = request(input);
        REQUIRE_FALSE(whole.error);
        REQUIRE_FALSE(whole.messages.empty());
        for (const Outcome& split : splitOutcomes<RequestParser>(input))
            REQUIRE(split == whole);
    }
}

TEST_CASE("Invalid requests fail the same way however they are split")
{
    const std::vector<std::string> inputs = {
        head("Content-Length: 3\r\nTransfer-Encoding: chunked\r\n"),
        head("X: a\r\n b\r\n"),
        "GET / HTTP/1.1\nHost: a\r\n\r\n",
        head("Transfer-Encoding: chunked\r\n") + "5\r\nhelloX0\r\n\r\n",
        head("Transfer-Encoding: chunked\r\n") + "0\r\nX: a\r\n b\r\n\r\n",
        "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    };
    for (const std::string& input : inputs) {
        INFO("input: " << input);
        Outcome whole = request(input);
        REQUIRE(whole.error);
        for (const Outcome& split : splitOutcomes<RequestParser>(input))
            REQUIRE(split == whole);
    }
}

TEST_CASE("Pipelined requests in one buffer are parsed one after another")
{
    std::string bytes = kPost + kChunked + "GET /third HTTP/1.1\r\nHost: c\r\n\r\n";
    Outcome o = request(bytes);
    REQUIRE_FALSE(o.error);
    REQUIRE(o.messages.size() == 3);
    CHECK(o.messages[0].body == "{\"a\":\"hello\"}");
    CHECK(o.messages[1].body == "hello, world");
    CHECK(o.messages[2].target == "/third");
    for (const Message& m : o.messages)
        CHECK(m.ended);
}

TEST_CASE("The parser stops at the end of each pipelined request so the session can pause")
{
    RequestParser p;
    std::string bytes = kPost + "GET /next HTTP/1.1\r\nHost: c\r\n\r\n";
    std::string_view rest = bytes;
    ParseResult r = p.parse(rest);
    REQUIRE(r.event == ParseEvent::Head);
    rest.remove_prefix(r.consumed);
    r = p.parse(rest);
    REQUIRE(r.event == ParseEvent::Body);
    rest.remove_prefix(r.consumed);
    r = p.parse(rest);
    REQUIRE(r.event == ParseEvent::End);
    // Nothing of the next request was touched, and the head is still there.
    CHECK(rest.substr(0, 9) == "GET /next");
    CHECK(p.idle());
    CHECK(p.head().target == "/v1/messages");
    r = p.parse(rest);
    REQUIRE(r.event == ParseEvent::Head);
    CHECK(p.head().target == "/next");
}

TEST_CASE("Empty lines before a request line are skipped, up to a bound")
{
    Outcome o = request("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
    REQUIRE_FALSE(o.error);
    CHECK(o.messages.size() == 1);

    std::string many;
    for (int i = 0; i < 9; ++i)
        many += "\r\n";
    requireRefused(many + "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "empty lines");
}

TEST_CASE("Expect: 100-continue is reported on HTTP/1.1 and ignored on HTTP/1.0")
{
    RequestParser p;
    std::string bytes = head("Expect: 100-Continue\r\nContent-Length: 5\r\n");
    ParseResult r = p.parse(bytes);
    REQUIRE(r.event == ParseEvent::Head);
    CHECK(p.head().expectContinue);
    // The client waits for 100 Continue: there is nothing more to parse yet.
    std::string_view rest = std::string_view(bytes).substr(r.consumed);
    r = p.parse(rest);
    CHECK(r.event == ParseEvent::NeedMore);

    Outcome old = request("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n");
    REQUIRE_FALSE(old.error);
    CHECK_FALSE(old.messages[0].expectContinue);
}

TEST_CASE("A body limit set after the head refuses an oversized Content-Length before the body is read")
{
    RequestParser p;
    std::string bytes = head("Expect: 100-continue\r\nContent-Length: 1000\r\n");
    ParseResult r = p.parse(bytes);
    REQUIRE(r.event == ParseEvent::Head);
    CHECK_FALSE(p.setBodyLimit(999));
    CHECK(p.error().status == 413);
    CHECK(p.error().kind == "body_too_large");
    CHECK(p.parse("x").event == ParseEvent::Error);

    RequestParser ok;
    r = ok.parse(bytes);
    REQUIRE(r.event == ParseEvent::Head);
    CHECK(ok.setBodyLimit(1000));
}

TEST_CASE("A chunked body over the body limit fails with 413 before bytes beyond the limit are delivered")
{
    DriveOptions opt;
    opt.bodyLimit = 8;
    Outcome o = request(head("Transfer-Encoding: chunked\r\n") + "5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n", opt);
    REQUIRE(o.error);
    CHECK(o.status() == 413);
    REQUIRE(o.messages.size() == 1);
    CHECK(o.messages[0].body == "hello");
    CHECK_FALSE(o.messages[0].ended);
}

TEST_CASE("The default body limit from Limits refuses an oversized Content-Length with 413 and no head")
{
    DriveOptions opt;
    opt.limits.maxBody = 10;
    Outcome o = request(head("Content-Length: 11\r\n") + "01234567890", opt);
    CHECK(o.status() == 413);
    CHECK(o.messages.empty());
    CHECK_FALSE(request(head("Content-Length: 10\r\n") + "0123456789", opt).error);
}

TEST_CASE("Keep-alive follows HTTP/1.0 and HTTP/1.1 rules and the Connection field")
{
    auto keepAlive = [](std::string_view bytes) {
        Outcome o = request(bytes);
        REQUIRE_FALSE(o.error);
        return o.messages.at(0).keepAlive;
    };
    CHECK(keepAlive("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
    CHECK_FALSE(keepAlive("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"));
    CHECK_FALSE(keepAlive("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Close\r\n\r\n"));
    CHECK_FALSE(keepAlive("GET / HTTP/1.0\r\n\r\n"));
    CHECK(keepAlive("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
    CHECK_FALSE(keepAlive("GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n"));
}

TEST_CASE("HTTP/1.1 requires exactly one valid Host; HTTP/1.0 may omit it")
{
    requireRefused("GET / HTTP/1.1\r\n\r\n", 400, "without Host");
    requireRefused("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400, "duplicate Host");
    requireRefused("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, "invalid Host");
    requireRefused("GET / HTTP/1.1\r\nHost: user@a\r\n\r\n", 400, "invalid Host");
    requireRefused("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400, "invalid Host");
    CHECK_FALSE(request("GET / HTTP/1.0\r\n\r\n").error);
    CHECK_FALSE(request("GET / HTTP/1.1\r\nHost: [fd00::1]:8443\r\n\r\n").error);
}

TEST_CASE("An unknown expectation is refused with 417")
{
    requireRefused(head("Expect: 100-continue, fancy\r\n"), 417, "expectation");
}

TEST_CASE("Content-Length together with Transfer-Encoding is refused with 400 in every order")
{
    requireRefused(head("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n") + "0\r\n\r\n", 400,
                   "Content-Length and Transfer-Encoding");
    requireRefused(head("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n") + "0\r\n\r\n", 400,
                   "Content-Length and Transfer-Encoding");
    requireRefused(head("Transfer-Encoding: gzip\r\nContent-Length: 5\r\n") + "hello", 400,
                   "Content-Length and Transfer-Encoding");
    requireRefused(head("Content-Length: 5\r\nTransfer-Encoding: gzip\r\n") + "hello", 400,
                   "Content-Length and Transfer-Encoding");
    requireRefused(head("Content-Length: 5\r\nTransfer-Encoding: xchunked\r\n") + "hello", 400,
                   "Content-Length and Transfer-Encoding");
}

TEST_CASE("Duplicate Content-Length is refused even with equal values; differing values too")
{
    requireRefused(head("Content-Length: 5\r\nContent-Length: 5\r\n") + "hello", 400, "duplicate Content-Length");
    requireRefused(head("Content-Length: 5\r\nContent-Length: 6\r\n") + "hello!", 400, "Content-Length");
    requireRefused(head("Content-Length: 5, 5\r\n") + "hello", 400, "invalid Content-Length");
    requireRefused(head("Content-Length: 5,6\r\n") + "hello", 400, "Content-Length");
}

TEST_CASE("Invalid Content-Length values are refused with 400")
{
    for (std::string v : {"+5", "-1", "0x10", "5 5", "", "abc", "1.0", "99999999999999999999999"}) {
        INFO("Content-Length: " << v);
        requireRefused(head("Content-Length: " + v + "\r\n"), 400, "Content-Length");
    }
}

TEST_CASE("Transfer-Encoding other than exactly chunked as the final coding is refused")
{
    requireRefused(head("Transfer-Encoding: xchunked\r\n") + "0\r\n\r\n", 400, "final coding");
    requireRefused(head("Transfer-Encoding: chunkedx\r\n") + "0\r\n\r\n", 400, "final coding");
    requireRefused(head("Transfer-Encoding: chunked, chunked\r\n") + "0\r\n\r\n", 400, "more than once");
    requireRefused(head("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n") + "0\r\n\r\n", 400,
                   "more than once");
    requireRefused(head("Transfer-Encoding: gzip\r\n") + "0\r\n\r\n", 400, "final coding");
    requireRefused(head("Transfer-Encoding: identity\r\n"), 400, "final coding");
    requireRefused(head("Transfer-Encoding: chunked, gzip\r\n"), 400, "final coding");
    requireRefused(head("Transfer-Encoding: chunked;q=1\r\n"), 400, "invalid transfer coding");
    requireRefused(head("Transfer-Encoding:\r\n"), 400, "empty Transfer-Encoding");
    requireRefused(head("Transfer-Encoding: gzip, chunked\r\n") + "0\r\n\r\n", 501, "other than chunked");
    requireRefused(head("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n") + "0\r\n\r\n", 501,
                   "other than chunked");
    requireRefused("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "HTTP/1.0");
}

TEST_CASE("Obsolete line folding is refused with 400")
{
    requireRefused(head("X-A: one\r\n two\r\n"), 400, "obs-fold");
    requireRefused(head("X-A: one\r\n\ttwo\r\n"), 400, "obs-fold");
    requireRefused(head("X-A:\r\n two\r\n"), 400, "obs-fold");
    requireRefused(head("Transfer-Encoding: gzip,\r\n chunked\r\n") + "0\r\n\r\n", 400, "obs-fold");
    requireRefused("GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400, "whitespace between the start line");
}

TEST_CASE("Bare LF and bare CR line terminators are refused with 400")
{
    requireRefused("GET / HTTP/1.1\nHost: a\r\n\r\n", 400, "bare LF");
    requireRefused("GET / HTTP/1.1\r\nHost: a\n\r\n", 400, "bare LF");
    requireRefused("GET / HTTP/1.1\r\nHost: a\r\n\n", 400, "bare LF");
    requireRefused("GET / HTTP/1.1\n\n", 400, "bare LF");
    requireRefused("GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", 400, "bare CR");
    requireRefused("GET / HTTP/1.1\rHost: a\r\n\r\n", 400, "bare CR");
    requireRefused("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bare LF");
}

TEST_CASE("Invalid field names are refused with 400")
{
    requireRefused(head("Content-Length : 5\r\n") + "hello", 400, "field name");
    requireRefused(head("Content Length: 5\r\n") + "hello", 400, "field name");
    requireRefused(head("X-A\0B: 1\r\n"s), 400, "field name");
    requireRefused(head("X(A): 1\r\n"), 400, "field name");
    requireRefused(head(": empty\r\n"), 400, "field name");
    requireRefused(head("no colon here\r\n"), 400, "field name");
    requireRefused(head("X-\xc3\xa9: 1\r\n"), 400, "field name");
}

TEST_CASE("NUL and control characters in field values are refused with 400")
{
    requireRefused(head("X-A: a\0b\r\n"s), 400, "field value");
    requireRefused(head("X-A: a\x01" "b\r\n"), 400, "field value");
    requireRefused(head("X-A: a\x7f" "b\r\n"), 400, "field value");
    requireRefused(head("Connection: close,,@@\r\n"), 400, "field value");
    // obs-text is allowed in values (RFC 9110 field-vchar).
    CHECK_FALSE(request(head("X-A: caf\xc3\xa9\r\nContent-Length: 0\r\n")).error);
}

TEST_CASE("HTTP/0.9, unsupported versions and the HTTP/2 preface are refused")
{
    requireRefused("GET /\r\n\r\n", 400, "HTTP/0.9");
    requireRefused("GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505, "not supported");
    requireRefused("GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505, "not supported");
    requireRefused("GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505, "not supported");
    requireRefused("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505, "HTTP/2 connection preface");
    requireRefused("GET / HTTP/1.1x\r\nHost: a\r\n\r\n", 400, "HTTP version");
    requireRefused("GET / http/1.1\r\nHost: a\r\n\r\n", 400, "HTTP version");
    requireRefused("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400, "HTTP version");
    requireRefused("GET / HTTP/11\r\nHost: a\r\n\r\n", 400, "HTTP version");
}

TEST_CASE("Malformed request lines and targets are refused with 400")
{
    requireRefused("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "request-target");
    requireRefused("G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "method");
    requireRefused(" GET / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "method");
    requireRefused("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"s, 400, "method");
    // Garbage is refused at its first byte, without waiting for a line end.
    Outcome o = drive<RequestParser>({"\x16\x03\x01"}, DriveOptions{{}, {}, false, false});
    CHECK(o.status() == 400);
    requireRefused("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", 400, "non-ASCII");
    requireRefused("GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n", 400, "fragment");
    requireRefused("GET foo HTTP/1.1\r\nHost: a\r\n\r\n", 400, "form");
    requireRefused("GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400, "OPTIONS");
    requireRefused("CONNECT /x HTTP/1.1\r\nHost: a\r\n\r\n", 400, "CONNECT");
    CHECK_FALSE(request("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n").error);
    CHECK_FALSE(request("CONNECT api.anthropic.com:443 HTTP/1.1\r\nHost: api.anthropic.com:443\r\n\r\n").error);
}

TEST_CASE("Size limits: request line 414, header section and field count 431")
{
    Limits small;
    small.maxStartLine = 64;
    small.maxHeaderBytes = 256;
    small.maxHeaderCount = 4;
    DriveOptions opt;
    opt.limits = small;

    std::string longTarget = "/" + std::string(51, 'a'); // "GET " + target + " HTTP/1.1" = 65 bytes
    Outcome o = request("GET " + longTarget + " HTTP/1.1\r\nHost: a\r\n\r\n", opt);
    CHECK(o.status() == 414);
    CHECK(o.error->kind == "uri_too_long");
    CHECK(o.messages.empty());
    // Exactly at the limit is fine.
    CHECK_FALSE(request("GET /" + std::string(50, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n", opt).error);
    // An endless request line is refused without waiting for its end.
    o = drive<RequestParser>({"GET /" + std::string(100, 'a')}, DriveOptions{small, {}, false, false});
    CHECK(o.status() == 414);

    o = request("GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(300, 'v') + "\r\n\r\n", opt);
    CHECK(o.status() == 431);
    CHECK(o.error->kind == "headers_too_large");
    o = drive<RequestParser>({"GET / HTTP/1.1\r\nX: " + std::string(300, 'v')}, DriveOptions{small, {}, false, false});
    CHECK(o.status() == 431);

    o = request("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\n\r\n", opt);
    CHECK(o.status() == 431);
    CHECK_THAT(o.message(), Catch::Contains("more than 4 fields"));
    CHECK_FALSE(request("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 1\r\nC: 1\r\n\r\n", opt).error);

    // The defaults: 8 KiB request line, 64 KiB field section, 100 fields.
    std::string fields;
    for (int i = 0; i < 101; ++i)
        fields += "X-" + std::to_string(i) + ": v\r\n";
    CHECK(request("GET / HTTP/1.1\r\nHost: a\r\n" + fields + "\r\n").status() == 431);
    CHECK(request("GET /" + std::string(8192, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n").status() == 414);
    CHECK(request("GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(65536, 'a') + "\r\n\r\n").status() == 431);
}

TEST_CASE("Bad chunk sizes, missing CRLFs and chunk-extension abuse are refused with 400")
{
    const std::string h = head("Transfer-Encoding: chunked\r\n");
    struct Case {
        std::string body;
        std::string message;
    };
    const std::vector<Case> cases = {
        {"zz\r\nhello\r\n0\r\n\r\n", "chunk size"},
        {"-5\r\nhello\r\n0\r\n\r\n", "chunk size"},
        {"0x5\r\nhello\r\n0\r\n\r\n", "chunk"},
        {" 5\r\nhello\r\n0\r\n\r\n", "chunk size"},
        {"5 \r\nhello\r\n0\r\n\r\n", "chunk extension"},
        {"\r\nhello\r\n0\r\n\r\n", "chunk size"},
        {"10000000000000000\r\nhello\r\n0\r\n\r\n", "chunk size"},
        {"5\r\nhelloX0\r\n\r\n", "not followed by CRLF"},
        {"5\r\nhello\rX0\r\n\r\n", "not followed by CRLF"},
        {"5\r\nhello\n0\r\n\r\n", "not followed by CRLF"},
        {"5\nhello\r\n0\r\n\r\n", "bare LF"},
        {"5\rhello\r\n0\r\n\r\n", "bare CR"},
        {"5;=x\r\nhello\r\n0\r\n\r\n", "chunk extension"},
        {"5;a=\"x\0y\"\r\nhello\r\n0\r\n\r\n"s, "control character"},
        {"5;a b\r\nhello\r\n0\r\n\r\n", "chunk extension"},
        {"5;" + std::string(5000, 'a') + "\r\nhello\r\n0\r\n\r\n", "longer than"},
        {"0\r\nX: a\r\n b\r\n\r\n", "obs-fold"},
        {"0\r\nX: a\n\r\n", "bare LF"},
        {"0\r\nContent-Length: 5\r\n\r\n", "trailer"},
        {"0\r\nTransfer-Encoding: chunked\r\n\r\n", "trailer"},
        {"0\r\nBad Name: 1\r\n\r\n", "trailer field name"},
    };
    for (const Case& c : cases) {
        INFO("body: " << c.body);
        Outcome o = request(h + c.body);
        REQUIRE(o.error);
        CHECK(o.status() == 400);
        CHECK_THAT(o.message(), Catch::Contains(c.message));
        REQUIRE(o.messages.size() == 1);
        CHECK_FALSE(o.messages[0].ended);
    }

    // Many small chunks each carrying extensions: the per-message budget.
    Limits l;
    l.maxChunkExtensionBytes = 1000;
    std::string body;
    for (int i = 0; i < 50; ++i)
        body += "1;ext=" + std::string(30, 'e') + "\r\nx\r\n";
    body += "0\r\n\r\n";
    Outcome o = request(h + body, DriveOptions{l, {}, true, false});
    CHECK(o.status() == 400);
    CHECK_THAT(o.message(), Catch::Contains("chunk extensions larger than"));
}

TEST_CASE("A request truncated by the client's close is an error, a clean close between requests is not")
{
    Outcome o = request(kPost.substr(0, kPost.size() - 3));
    CHECK(o.status() == 400);
    CHECK_THAT(o.message(), Catch::Contains("middle of the body"));
    o = request("GET / HTTP/1.1\r\nHost");
    CHECK_THAT(o.message(), Catch::Contains("before the message head"));
    o = request(kChunked.substr(0, kChunked.size() - 2));
    CHECK(o.status() == 400);
    o = request(kPost);
    CHECK(o.closed);
    CHECK_FALSE(o.error);
}

TEST_CASE("After an error the parser stays dead")
{
    RequestParser p;
    ParseResult r = p.parse("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n");
    REQUIRE(r.event == ParseEvent::Error);
    CHECK(r.consumed == 0);
    CHECK(p.parse("GET / HTTP/1.1\r\nHost: a\r\n\r\n").event == ParseEvent::Error);
    CHECK(p.finish().event == ParseEvent::Error);
}

TEST_CASE("Upgrade requests are flagged so the session can refuse or strip them")
{
    Outcome o = request("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n");
    REQUIRE_FALSE(o.error);
    RequestParser p;
    REQUIRE(p.parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n").event ==
            ParseEvent::Head);
    CHECK(p.head().upgrade);
}

TEST_CASE("Parse errors render as veil's JSON error with the right status line and headers")
{
    RequestParser p;
    REQUIRE(p.parse(head("Content-Length: 3\r\nTransfer-Encoding: chunked\r\n")).event == ParseEvent::Error);
    std::string rendered = renderErrorResponse(p.error());
    std::string body = R"({"type":"error","error":{"type":"veil_bad_request",)"
                       R"("message":"Content-Length and Transfer-Encoding together","side":"downstream"}})";
    CHECK(rendered == "HTTP/1.1 400 Bad Request\r\n"
                      "Content-Type: application/json\r\n"
                      "Content-Length: " + std::to_string(body.size()) + "\r\n"
                      "Connection: close\r\n\r\n" + body);

    HttpError e{413, kindForStatus(413), "quote \" backslash \\ newline \n", Side::Internal};
    std::string kept = renderErrorResponse(e, false);
    CHECK_THAT(kept, Catch::StartsWith("HTTP/1.1 413 Content Too Large\r\n"));
    CHECK_THAT(kept, !Catch::Contains("Connection: close"));
    CHECK_THAT(kept, Catch::EndsWith(R"("message":"quote \" backslash \\ newline \n","side":"internal"}})"));
    CHECK_THAT(kept, Catch::Contains("veil_body_too_large"));
}

TEST_CASE("Error messages never echo request content")
{
    const std::string secret = "AKIAIOSFODNN7EXAMPLE";
    std::vector<std::string> inputs = {
        head("X-" + secret + " : 1\r\n"),
        head("X: " + secret + "\x01\r\n"),
        "GET /" + secret + "#x HTTP/1.1\r\nHost: a\r\n\r\n",
        head("Transfer-Encoding: " + secret + "\r\n"),
        head("Transfer-Encoding: chunked\r\n") + secret + "\r\n",
        head("Content-Length: " + secret + "\r\n"),
    };
    for (const std::string& input : inputs) {
        Outcome o = request(input);
        REQUIRE(o.error);
        CHECK_THAT(renderErrorResponse(*o.error), !Catch::Contains(secret));
    }
}
