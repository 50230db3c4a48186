#include <catch2/catch.hpp>

#include <algorithm>

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

namespace {
// Whether the word after `n` raw backslashes starts at a boundary in JSON:
// an odd number ends with a JSON escape (\n, \u0041), and an even one is
// n/2 inner backslashes whose odd count makes the letter an inner escape.
bool letterAfterBackslashesIsEscape(std::size_t n) { return n % 2 == 1 || (n / 2) % 2 == 1; }
} // namespace

namespace {
// Fed in three pieces cut anywhere, `text` restores exactly as in one call.
void requireSameInThreePieces(const Mapping& m, std::string_view text)
{
    const std::string whole = TokenRestorer::restoreAll(m, text, Escape::Json);
    for (std::size_t cut = 0; cut <= text.size(); ++cut) {
        for (std::size_t cut2 = cut; cut2 <= text.size(); ++cut2) {
            TokenRestorer r(m, Escape::Json);
            std::string out;
            r.feed(text.substr(0, cut), out);
            r.feed(text.substr(cut, cut2 - cut), out);
            r.feed(text.substr(cut2), out);
            r.finish(out);
            INFO(text << " cut at " << cut << " and " << cut2);
            REQUIRE(out == whole);
        }
    }
}
} // namespace

TEST_CASE("a long run of backslashes is not held back whole")
{
    // A model may print any number of backslashes; the restorer holds back
    // only the few bytes that decide the parity, and emits the same text as
    // when the stream arrives in one piece.
    Mapping m = sample();
    constexpr std::size_t kRun = std::size_t(1) << 20;
    constexpr std::size_t kMaxHeld = 6; // \\u004: an odd run's last pair and a \u short of its digits
    for (std::size_t n : {kRun, kRun + 1, kRun + 2, kRun + 3}) {
        for (std::string_view tail : {"nEC2_001", "u0041EC2_001", " EC2_001"}) {
            std::string text(n, '\\');
            text += tail;
            const bool restoredWhole = tail[0] == ' ' || letterAfterBackslashesIsEscape(n);
            unsigned wholeCount = 0;
            const std::string whole = TokenRestorer::restoreAll(m, text, Escape::Json, &wholeCount);
            CHECK(wholeCount == (restoredWhole ? 1u : 0u));
            for (std::size_t chunk : {std::size_t(7), std::size_t(1024)}) {
                INFO("run " << n << ", tail " << tail << ", chunks of " << chunk);
                TokenRestorer r(m, Escape::Json);
                std::string out;
                std::size_t maxHeld = 0;
                for (std::size_t at = 0; at < text.size(); at += chunk) {
                    r.feed(std::string_view(text).substr(at, chunk), out);
                    // Stop at the first excess: holding the run whole is quadratic.
                    if (r.held() > kMaxHeld && at + chunk < n)
                        FAIL("held " << r.held() << " bytes after " << at + chunk);
                    if (at + chunk < n)
                        maxHeld = std::max(maxHeld, r.held());
                }
                r.finish(out);
                CHECK(maxHeld <= kMaxHeld);
                CHECK(r.restored() == wholeCount);
                CHECK(out == whole);
            }
        }
    }
}

TEST_CASE("a run of backslashes split anywhere restores exactly what one call restores")
{
    // Every split of short runs, so that cuts land at each place of the
    // groups the restorer takes from a run and in an incomplete \u.
    Mapping m = sample();
    for (std::size_t n = 0; n <= 11; ++n) {
        for (std::string_view tail : {"nEC2_001", "u0041EC2_001", " EC2_001", "\\\"EC2_001", "x"}) {
            std::string text = "a" + std::string(n, '\\') + std::string(tail) + std::string(n, '\\');
            requireSameInThreePieces(m, text);
        }
    }
}

TEST_CASE("a backslash written \\u005c counts as an escaped backslash in JSON")
{
    // JSON text held in a string may write its inner escapes' backslash as
    // \u005c: raw \u005cn is the inner \n, a boundary, as raw \\n is.
    Mapping m = sample();
    unsigned restored = 0;
    CHECK(TokenRestorer::restoreAll(m, R"({"c": "{\"o\": \"a\u005cnEC2_001 \u005CtEC2_002\"}"})", Escape::Json,
                                    &restored) == R"({"c": "{\"o\": \"a\u005cni-0123456789abcdef0 \u005Cti-0fedcba9876543210\"}"})");
    CHECK(restored == 2);
    // Two of them are an escaped backslash of the inner text: the n is a
    // letter of the word, as after raw \\\\ (mixed forms alike).
    for (std::string_view run : {R"(\u005c\u005c)", R"(\\\u005c)", R"(\u005c\\)"}) {
        restored = 0;
        const std::string text = "a" + std::string(run) + "nEC2_001";
        CHECK(TokenRestorer::restoreAll(m, text, Escape::Json, &restored) == text);
        CHECK(restored == 0);
    }
    // Not \u005c: a \u escape of another character, then a word.
    CHECK(TokenRestorer::restoreAll(m, R"(a\u0041nEC2_001)", Escape::Json) == R"(a\u0041nEC2_001)");
    // Split anywhere: the same as whole.
    const std::string text = R"(x \u005cnEC2_001 \u005c\u005cnEC2_001 \\\u005cnEC2_002 \u005)";
    requireSameInThreePieces(m, text);
}
