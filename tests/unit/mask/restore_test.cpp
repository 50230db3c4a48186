#include <catch2/catch.hpp>

#include "mask/restore.h"

using namespace veil::mask;

namespace {
Mapping sample()
{
    Mapping m;
    m.add("EC2_001", "i-0123456789abcdef0");
    m.add("EC2_002", "i-0fedcba9876543210");
    m.add("ACCOUNT_001", "123456789012");
    m.add("ODD_001", "a\"b\\c");
    return m;
}
} // namespace

TEST_CASE("whole tokens are restored and partial ones are left alone")
{
    Mapping m = sample();
    CHECK(TokenRestorer::restoreAll(m, "EC2_001 and EC2_002.", Escape::None) ==
          "i-0123456789abcdef0 and i-0fedcba9876543210.");
    CHECK(TokenRestorer::restoreAll(m, "EC2_0012 XEC2_001 EC2_001x EC2_00 ec2_001", Escape::None) ==
          "EC2_0012 XEC2_001 EC2_001x EC2_00 ec2_001");
    CHECK(TokenRestorer::restoreAll(m, "(EC2_001)", Escape::None) == "(i-0123456789abcdef0)");
}

TEST_CASE("in raw JSON an escape sequence is a token boundary")
{
    Mapping m = sample();
    CHECK(TokenRestorer::restoreAll(m, R"(line\nEC2_001\tEC2_002\u00e9ACCOUNT_001)", Escape::Json) ==
          R"(line\ni-0123456789abcdef0\ti-0fedcba9876543210\u00e9123456789012)");
    // In plain text the same bytes are one word.
    CHECK(TokenRestorer::restoreAll(m, R"(x\nEC2_001)", Escape::None) == R"(x\nEC2_001)");
}

TEST_CASE("in raw JSON an escape letter after an escaped backslash is a boundary too")
{
    // JSON text in a string (a tool_result's content): its own \n is raw
    // \\n, and the token after it starts a word of the inner text.
    Mapping m = sample();
    CHECK(TokenRestorer::restoreAll(m, R"({\"a\": \"x\\nEC2_001\\u0041EC2_002\\tACCOUNT_001\"})", Escape::Json) ==
          R"({\"a\": \"x\\ni-0123456789abcdef0\\u0041i-0fedcba9876543210\\t123456789012\"})");
    // Not an escape letter, or not four hex digits: the word goes on.
    CHECK(TokenRestorer::restoreAll(m, R"(\\xEC2_001 \\u00gEC2_001 \\\\nEC2_001)", Escape::Json) ==
          R"(\\xEC2_001 \\u00gEC2_001 \\\\nEC2_001)");
    // Split anywhere, the same.
    const std::string text = R"(a\\nEC2_001 b\\u0041EC2_002\\)";
    const std::string whole = TokenRestorer::restoreAll(m, text, Escape::Json);
    for (std::size_t cut = 0; cut <= text.size(); ++cut) {
        TokenRestorer r(m, Escape::Json);
        std::string out;
        r.feed(std::string_view(text).substr(0, cut), out);
        r.feed(std::string_view(text).substr(cut), out);
        r.finish(out);
        CHECK(out == whole);
    }
}

TEST_CASE("originals are escaped once for JSON and twice for JSON inside a JSON string")
{
    Mapping m = sample();
    CHECK(TokenRestorer::restoreAll(m, "ODD_001", Escape::None) == "a\"b\\c");
    CHECK(TokenRestorer::restoreAll(m, "ODD_001", Escape::Json) == R"(a\"b\\c)");
    CHECK(TokenRestorer::restoreAll(m, R"({\"k\": \"ODD_001\"})", Escape::JsonInJson) ==
          R"({\"k\": \"a\\\"b\\\\c\"})");
}

TEST_CASE("a stream split at every offset restores exactly what one call restores")
{
    Mapping m = sample();
    std::string text = R"(EC2_001 then EC2_0012, "EC2_002"\nACCOUNT_001 ODD_001 end EC2_001)";
    for (Escape esc : {Escape::None, Escape::Json}) {
        std::string whole = TokenRestorer::restoreAll(m, text, esc);
        for (std::size_t cut = 0; cut <= text.size(); ++cut) {
            for (std::size_t cut2 = cut; cut2 <= text.size(); cut2 += 7) {
                TokenRestorer r(m, esc);
                std::string out;
                r.feed(std::string_view(text).substr(0, cut), out);
                r.feed(std::string_view(text).substr(cut, cut2 - cut), out);
                r.feed(std::string_view(text).substr(cut2), out);
                r.finish(out);
                REQUIRE(out == whole);
            }
        }
    }
}

TEST_CASE("a trailing partial token is held back only while it can still become one")
{
    Mapping m = sample();
    TokenRestorer r(m, Escape::Json);
    std::string out;
    r.feed("see EC2_0", out);
    CHECK(out == "see ");
    CHECK(r.holding());
    r.feed("01", out);
    CHECK(out == "see "); // a whole token may still grow into EC2_0012
    r.feed(" ok", out);
    CHECK(out == "see i-0123456789abcdef0 ok");
    CHECK_FALSE(r.holding());
    r.feed("EC2_9", out); // prefix of no token: not held
    CHECK(out == "see i-0123456789abcdef0 okEC2_9");
    r.feed("x\\", out); // incomplete escape is held
    CHECK(r.holding());
    r.feed("n", out);
    r.finish(out);
    CHECK(out == "see i-0123456789abcdef0 okEC2_9x\\n");
    CHECK(r.restored() == 1);
}

TEST_CASE("a word split across chunks is not mistaken for a token start")
{
    Mapping m = sample();
    TokenRestorer r(m, Escape::None);
    std::string out;
    r.feed("abc", out);
    r.feed("EC2_001 ", out);
    r.finish(out);
    CHECK(out == "abcEC2_001 ");
}

TEST_CASE("the mapping file roundtrips and rejects bad input")
{
    Mapping m = sample();
    auto back = Mapping::fromJson(m.toJson());
    REQUIRE(back.ok());
    REQUIRE(back->size() == m.size());
    for (std::size_t i = 0; i < m.size(); ++i) {
        CHECK(back->entries()[i].token == m.entries()[i].token);
        CHECK(back->entries()[i].original == m.entries()[i].original);
    }
    CHECK_FALSE(Mapping::fromJson("[1]").ok());
    CHECK_FALSE(Mapping::fromJson("{\"A_001\": 1}").ok());
    CHECK_FALSE(Mapping::fromJson("{\"A_001\": \"x\", \"A_001\": \"y\"}").ok());
    CHECK_FALSE(Mapping::fromJson("{").ok());
    CHECK(m.isTokenPrefix("EC2_0"));
    CHECK(m.isTokenPrefix("EC2_001"));
    CHECK_FALSE(m.isTokenPrefix("EC2_0010"));
    CHECK_FALSE(m.isTokenPrefix("EC3"));
}

TEST_CASE("in JSON inside a JSON string an inner escape is a token boundary")
{
    Mapping m = sample();
    CHECK(TokenRestorer::restoreAll(m, R"({\"cmd\": \"ls\\nEC2_001\\tEC2_002\\u00e9ACCOUNT_001\"})",
                                    Escape::JsonInJson) ==
          R"({\"cmd\": \"ls\\ni-0123456789abcdef0\\ti-0fedcba9876543210\\u00e9123456789012\"})");
    CHECK(TokenRestorer::restoreAll(m, R"(\\\"EC2_001\\\\EC2_002)", Escape::JsonInJson) ==
          R"(\\\"i-0123456789abcdef0\\\\i-0fedcba9876543210)");
    // Split inside the inner escape: held back, then restored.
    std::string text = R"({\"a\": \"x\\nEC2_001\"})";
    std::string whole = TokenRestorer::restoreAll(m, text, Escape::JsonInJson);
    for (std::size_t cut = 0; cut <= text.size(); ++cut) {
        TokenRestorer r(m, Escape::JsonInJson);
        std::string out;
        r.feed(std::string_view(text).substr(0, cut), out);
        r.feed(std::string_view(text).substr(cut), out);
        r.finish(out);
        REQUIRE(out == whole);
    }
}
