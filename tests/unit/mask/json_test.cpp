#include <catch2/catch.hpp>

#include <random>

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

TEST_CASE("the parser's indexed walk reports what the span walker reports")
{
    json::Parser parser;
    for (std::string_view doc : {
             std::string_view(R"({"a": ["x\"y", 1.5e3, true, null], "b\\": {"c": "d"}, "e":[]})"),
             std::string_view(R"(  "top-level \u00e9 string"  )"),
             std::string_view("-12.5e-3"),
             std::string_view("[ ]"),
             std::string_view(R"({"k":"ends with a backslash \\","l" : [{},{"m":""}] ,"n":false})"),
             std::string_view("{\n\t\"k\"\r\n:\t\"v\"\n}\n"),
             std::string_view(R"(["\"", "\\\"", "a\/b", "x\\", "\\\\"])"),
         }) {
        REQUIRE(parser.parse(doc));
        Recorder a(doc), b(doc);
        json::walk(doc, a);
        parser.walk(doc, b);
        CHECK(b.events == a.events);
    }
    // A long document: the backslash bitmap spans many words.
    std::string big = "[";
    for (int i = 0; i < 300; ++i)
        big += std::string(i ? "," : "") + "\"s" + std::to_string(i) + (i % 7 == 0 ? "\\n" : "") + std::string(i % 90, 'x') + "\"";
    big += "]";
    REQUIRE(parser.parse(big));
    Recorder a(big), b(big);
    json::walk(big, a);
    parser.walk(big, b);
    CHECK(b.events == a.events);
    CHECK_FALSE(parser.parse("{\"a\": }"));
}

TEST_CASE("unescapeTo decodes like unescape, and its escape units map offsets like unescape's raw positions")
{
    std::mt19937 rng(7);
    const std::vector<std::string> pieces = {"a", "bcdefghij", "\\n", "\\\"", "\\\\", "\\/", "\\u0069", "\\u00e9",
                                             "\\u2192", "\\ud83d\\ude00", "\xC3\xA9", "klmnopqrstuvwxyz0123"};
    for (int round = 0; round < 300; ++round) {
        std::string raw;
        const int n = static_cast<int>(rng() % 40);
        for (int i = 0; i < n; ++i)
            raw += pieces[rng() % pieces.size()];
        std::string want;
        std::vector<std::uint32_t> pos;
        REQUIRE(json::unescape(raw, want, &pos));
        std::string got(raw.size(), '\0');
        std::vector<json::EscapeUnit> units;
        const std::ptrdiff_t len = json::unescapeTo(raw, got.data(), &units);
        REQUIRE(len >= 0);
        got.resize(static_cast<std::size_t>(len));
        CHECK(got == want);
        // Every decoded offset, ascending, with its unit-start flag.
        std::vector<std::uint32_t> at(want.size() + 1);
        for (std::uint32_t d = 0; d <= want.size(); ++d)
            at[d] = d;
        std::vector<std::uint8_t> start;
        json::rawOffsets(units.data(), units.size(), want.size(), raw.size(), at, &start);
        for (std::uint32_t d = 0; d <= want.size(); ++d) {
            CHECK(at[d] == pos[d]);
            CHECK(static_cast<bool>(start[d]) == (d == 0 || d == want.size() || pos[d] != pos[d - 1]));
        }
    }
    char out[8];
    CHECK(json::unescapeTo(R"(\ud800)", out) < 0);
    CHECK(json::unescapeTo(R"(\x)", out) < 0);
    CHECK(json::unescapeTo("\\", out) < 0);
}

TEST_CASE("backslash bits mark every backslash and anyBit finds one in a range")
{
    std::mt19937 rng(11);
    std::string text(1000, 'a');
    for (int i = 0; i < 40; ++i)
        text[rng() % text.size()] = '\\';
    std::vector<std::uint64_t> bits;
    json::backslashBits(text, bits);
    for (int round = 0; round < 2000; ++round) {
        std::size_t b = rng() % (text.size() + 1), e = rng() % (text.size() + 1);
        if (b > e)
            std::swap(b, e);
        const bool want = text.substr(b, e - b).find('\\') != std::string::npos;
        CHECK(json::anyBit(bits, b, e) == want);
    }
}
