#include <catch2/catch.hpp>

#include "mask/json.h"

using namespace veil::mask;

namespace {
struct Recorder : json::Walker {
    std::string_view text;
    std::vector<std::string> events;
    explicit Recorder(std::string_view t) : text(t) {}
    void objectBegin(std::size_t) { events.push_back("{"); }
    void objectEnd(std::size_t) { events.push_back("}"); }
    void arrayBegin(std::size_t) { events.push_back("["); }
    void arrayEnd(std::size_t) { events.push_back("]"); }
    void key(json::Span s) { events.push_back("K:" + std::string(text.substr(s.begin, s.end - s.begin))); }
    void string(json::Span s)
    {
        events.push_back(std::string(s.escaped ? "S*:" : "S:") + std::string(text.substr(s.begin, s.end - s.begin)));
    }
    void scalar(std::size_t b, std::size_t e) { events.push_back("N:" + std::string(text.substr(b, e - b))); }
};
} // namespace

TEST_CASE("the walker reports keys, strings and scalars with their raw spans")
{
    std::string_view doc = R"({"a": ["x\"y", 1.5e3, true, null], "b\\": {"c": "d"}, "e":[]})";
    REQUIRE(json::validate(doc));
    Recorder r(doc);
    json::walk(doc, r);
    std::vector<std::string> want = {"{", "K:a", "[", "S*:x\\\"y", "N:1.5e3", "N:true", "N:null", "]", "K:b\\\\",
                                     "{", "K:c", "S:d", "}", "K:e", "[", "]", "}"};
    CHECK(r.events == want);
}

TEST_CASE("validation rejects what is not one JSON document")
{
    std::string why;
    CHECK_FALSE(json::validate("{\"a\": }", &why));
    CHECK_FALSE(why.empty());
    CHECK_FALSE(json::validate("{} {}"));
    CHECK_FALSE(json::validate("\"\xff\""));
    CHECK_FALSE(json::validate(std::string(2000, '[') + std::string(2000, ']')));
    CHECK(json::validate("[1, {\"x\": \"\\u00e9\"}]"));
}

TEST_CASE("unescape decodes every escape and maps decoded bytes to raw units")
{
    std::string out;
    std::vector<std::uint32_t> pos;
    REQUIRE(json::unescape(R"(a\n\u0069\/\ud83d\ude00\"é)", out, &pos));
    CHECK(out == "a\ni/\xF0\x9F\x98\x80\"\xC3\xA9");
    // a(0) \n(1) \u0069(3) \/(9) surrogate pair(11, 4 bytes) \"(23) é(25, two raw bytes)
    std::vector<std::uint32_t> want = {0, 1, 3, 9, 11, 11, 11, 11, 23, 25, 26, 27};
    CHECK(pos == want);
}

TEST_CASE("unescape refuses lone surrogates and bad escapes")
{
    std::string out;
    CHECK_FALSE(json::unescape(R"(\ud800)", out));
    CHECK_FALSE(json::unescape(R"(\udc00x)", out));
    CHECK_FALSE(json::unescape(R"(\x)", out));
    CHECK_FALSE(json::unescape(R"(\u12)", out));
    CHECK_FALSE(json::unescape("\\", out));
}

TEST_CASE("escape produces string content that decodes back to the input")
{
    std::string in = std::string("q\"b\\n\n\t\x01/\xC3\xA9") + '\0';
    std::string esc;
    json::escape(in, esc);
    CHECK(esc == R"(q\"b\\n\n\t\u0001/é\u0000)");
    std::string back;
    REQUIRE(json::unescape(esc, back));
    CHECK(back == in);
    REQUIRE(json::validate("\"" + esc + "\""));
}
