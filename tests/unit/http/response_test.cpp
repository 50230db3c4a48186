#include <catch2/catch.hpp>

#include <string>

#include "drive.h"
#include "http/parser.h"

using namespace veil::http;
using namespace veil::http::test;

namespace {

DriveOptions headRequest()
{
    DriveOptions opt;
    opt.headRequest = true;
    return opt;
}

void requireBadGateway(std::string_view bytes, std::string_view messagePart)
{
    INFO("input: " << std::string(bytes));
    Outcome o = response(bytes);
    REQUIRE(o.error);
    CHECK(o.status() == 502);
    CHECK(o.error->kind == "bad_gateway");
    CHECK(o.error->side == Side::Upstream);
    CHECK_THAT(o.message(), Catch::Contains(std::string(messagePart)));
    CHECK(o.messages.empty());
}

const std::string kJson = "HTTP/1.1 200 OK\r\n"
                          "Content-Type: application/json\r\n"
                          "Content-Encoding: gzip\r\n"
                          "Content-Length: 11\r\n"
                          "\r\n"
                          "{\"ok\":true}";

const std::string kSse = "HTTP/1.1 200 OK\r\n"
                         "Content-Type: text/event-stream\r\n"
                         "Transfer-Encoding: chunked\r\n"
                         "\r\n"
                         "16\r\nevent: ping\ndata: {}\n\n\r\n"
                         "b\r\ndata: x\n\n\r\n\r\n"
                         "0\r\n\r\n";

} // namespace

TEST_CASE("A Content-Length response exposes status, reason, Content-Type and Content-Encoding")
{
    ResponseParser p;
    ParseResult r = p.parse(kJson);
    REQUIRE(r.event == ParseEvent::Head);
    CHECK(p.head().status == 200);
    CHECK(p.head().reason == "OK");
    CHECK(p.head().contentType() == "application/json");
    CHECK(p.head().contentEncoding() == "gzip");
    CHECK(p.head().framing == Framing::ContentLength);
    CHECK(p.head().contentLength == 11u);
    CHECK_FALSE(p.head().chunked());
    CHECK(p.head().keepAlive);

    Outcome o = response(kJson);
    REQUIRE_FALSE(o.error);
    CHECK(o.messages[0].body == "{\"ok\":true}");
    CHECK(o.messages[0].ended);
}

TEST_CASE("A chunked response is delivered de-chunked and says it was chunked")
{
    Outcome o = response(kSse);
    REQUIRE_FALSE(o.error);
    REQUIRE(o.messages.size() == 1);
    CHECK(o.messages[0].framing == Framing::Chunked);
    CHECK(o.messages[0].body == "event: ping\ndata: {}\n\ndata: x\n\n\r\n");
    CHECK(o.messages[0].ended);
}

TEST_CASE("A response without length is read until the upstream closes")
{
    std::string bytes = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nsome body";
    Outcome open = drive<ResponseParser>({bytes}, DriveOptions{{}, {}, false, false});
    REQUIRE_FALSE(open.error);
    CHECK(open.messages[0].framing == Framing::UntilClose);
    CHECK_FALSE(open.messages[0].keepAlive);
    CHECK(open.messages[0].body == "some body");
    CHECK_FALSE(open.messages[0].ended);

    Outcome closed = response(bytes);
    REQUIRE_FALSE(closed.error);
    CHECK(closed.messages[0].ended);
    CHECK(closed.closed);
}

TEST_CASE("A response to HEAD has no body whatever its Content-Length says")
{
    std::string bytes = "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"
                        "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n";
    Outcome o = response(bytes, headRequest());
    REQUIRE_FALSE(o.error);
    REQUIRE(o.messages.size() == 2);
    CHECK(o.messages[0].framing == Framing::None);
    CHECK(o.messages[0].contentLength == 1234);
    CHECK(o.messages[0].body.empty());
    CHECK(o.messages[0].ended);
    CHECK(o.messages[1].contentLength == 99);
}

TEST_CASE("The HEAD flag is cleared by the final response it applied to")
{
    ResponseParser p;
    p.setHeadRequest(true);
    std::string bytes = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";
    std::string_view rest = bytes;
    ParseResult r = p.parse(rest);
    REQUIRE(r.event == ParseEvent::Head);
    rest.remove_prefix(r.consumed);
    REQUIRE(p.parse(rest).event == ParseEvent::End);
    r = p.parse(rest);
    REQUIRE(r.event == ParseEvent::Head);
    rest.remove_prefix(r.consumed);
    r = p.parse(rest);
    REQUIRE(r.event == ParseEvent::Body);
    CHECK(r.body == "abc");
}

TEST_CASE("204 and 304 responses have no body; 304 keeps its Content-Length for forwarding")
{
    Outcome o = response("HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"
                         "HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\nETag: \"x\"\r\n\r\n"
                         "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    REQUIRE_FALSE(o.error);
    REQUIRE(o.messages.size() == 3);
    CHECK(o.messages[0].framing == Framing::None);
    CHECK(o.messages[1].framing == Framing::None);
    CHECK(o.messages[1].contentLength == 50);
    CHECK(o.messages[2].body == "ok");
}

TEST_CASE("An interim 100 Continue is its own message before the final response")
{
    Outcome o = response("HTTP/1.1 100 Continue\r\n\r\n"
                         "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
                         "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok");
    REQUIRE_FALSE(o.error);
    REQUIRE(o.messages.size() == 3);
    CHECK(o.messages[0].status == 100);
    CHECK(o.messages[0].ended);
    CHECK(o.messages[1].status == 103);
    CHECK(o.messages[2].status == 201);
    CHECK(o.messages[2].body == "ok");
}

TEST_CASE("The HEAD flag holds across interim responses")
{
    Outcome o = response("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
                         headRequest());
    REQUIRE_FALSE(o.error);
    REQUIRE(o.messages.size() == 2);
    CHECK(o.messages[1].framing == Framing::None);
    CHECK(o.messages[1].ended);
}

TEST_CASE("HTTP/1.0 responses are kept alive only with Connection: keep-alive")
{
    Outcome o = response("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n");
    CHECK_FALSE(o.messages.at(0).keepAlive);
    o = response("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n");
    CHECK(o.messages.at(0).keepAlive);
    o = response("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    CHECK_FALSE(o.messages.at(0).keepAlive);
}

TEST_CASE("Responses split at every byte offset produce identical heads and bodies")
{
    for (const std::string& input :
         {kJson, kSse, std::string("HTTP/1.1 100 Continue\r\n\r\n") + kJson + kSse,
          std::string("HTTP/1.1 200 OK\r\n\r\nread until close")}) {
        INFO("input: " << input);
        Outcome whole = response(input);
        REQUIRE_FALSE(whole.error);
        for (const Outcome& split : splitOutcomes<ResponseParser>(input))
            REQUIRE(split == whole);
    }
}

TEST_CASE("Upstream framing errors become 502 on the upstream side")
{
    requireBadGateway("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
                      "Content-Length and Transfer-Encoding");
    requireBadGateway("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
                      "Content-Length and Transfer-Encoding");
    requireBadGateway("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", "duplicate");
    requireBadGateway("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", "Content-Length");
    requireBadGateway("HTTP/1.1 200 OK\r\nTransfer-Encoding: xchunked\r\n\r\n", "final coding");
    requireBadGateway("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", "more than once");
    requireBadGateway("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "other than chunked");
    requireBadGateway("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", "obs-fold");
    requireBadGateway("HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", "bare LF");
    requireBadGateway("HTTP/1.1 200 OK\r\nBad Name: 1\r\n\r\n", "field name");
    requireBadGateway("HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n", "1xx or 204");
    requireBadGateway("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "HTTP/1.0");
    requireBadGateway("HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n", "101");
    requireBadGateway("HTTP/1.1 099 Low\r\n\r\n", "status code");
    requireBadGateway("HTTP/1.1 600 High\r\n\r\n", "status code");
    requireBadGateway("HTTP/1.1 20 OK\r\n\r\n", "status code");
    requireBadGateway("HTTP/2.0 200 OK\r\n\r\n", "version");
    requireBadGateway("HTTP/1.1 200 O\x01K\r\n\r\n", "reason");
    requireBadGateway("HTTP/1.1 200 OK\r\nX: " + std::string(70000, 'a') + "\r\n\r\n", "larger than");
}

TEST_CASE("Bad chunks and truncated bodies from upstream are 502")
{
    const std::string h = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    Outcome o = response(h + "zz\r\n");
    CHECK(o.status() == 502);
    CHECK_THAT(o.message(), Catch::Contains("chunk size"));
    CHECK_FALSE(o.messages.at(0).ended);

    o = response(h + "5\r\nhelloX");
    CHECK(o.status() == 502);

    // Truncated: the upstream closed mid-body. The client must see an
    // abnormal end, never a clean short response.
    o = response(h + "5\r\nhel");
    CHECK(o.status() == 502);
    CHECK_THAT(o.message(), Catch::Contains("middle of the body"));
    o = response("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort");
    CHECK(o.status() == 502);
    CHECK(o.messages.at(0).body == "short");
    o = response("HTTP/1.1 200 OK\r\nContent-Le");
    CHECK(o.status() == 502);
}

TEST_CASE("A response body limit, when set, is enforced with 502")
{
    DriveOptions opt;
    opt.bodyLimit = 4;
    CHECK(response("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", opt).status() == 502);
    CHECK(response("HTTP/1.1 200 OK\r\n\r\nhello", opt).status() == 502);
    CHECK(response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", opt).status() ==
          502);
}
