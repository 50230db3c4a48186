#include <catch2/catch.hpp>

#include "mask/json.h"
#include "mask/masker.h"
#include "mask/restore.h"

using namespace veil::mask;

namespace {

RuleSpec rule(std::string name, std::string type, std::string regex, int priority = 100)
{
    RuleSpec r;
    r.name = std::move(name);
    r.tokenType = std::move(type);
    r.regex = std::move(regex);
    r.priority = priority;
    return r;
}

std::shared_ptr<const RuleSet> compileOrDie(std::vector<RuleSpec> rules)
{
    auto rs = RuleSet::compile(std::move(rules));
    if (!rs.ok())
        FAIL("rule set did not compile: " << rs.error().message);
    return rs.value();
}

std::shared_ptr<const RuleSet> testRules()
{
    return compileOrDie({
        rule("t.ec2", "EC2", R"(\bi-(?:[0-9a-f]{8}|[0-9a-f]{17})\b)", 30),
        rule("t.arn", "IAM_ARN", R"(\barn:aws:iam::[0-9]{12}:[A-Za-z0-9_+=,.@/-]*[A-Za-z0-9_+=@/-])", 10),
        rule("t.account", "ACCOUNT", R"((?i:account(?:[ _-]?id)?)["']?\s*[:=]\s*["']?([0-9]{12})\b)", 50),
        rule("t.ip", "PRIVATE_IP", R"(\b10\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\b)", 60),
    });
}

std::string maskedJson(Masker& m, std::string_view body)
{
    auto r = m.maskJson(body);
    if (!r.ok())
        FAIL("maskJson failed: " << r.error().detail);
    CHECK(json::validate(r->body));
    return r->body;
}

} // namespace

TEST_CASE("rule sets refuse bad rules with the rule's name")
{
    auto bad = RuleSet::compile({rule("x.bad", "X", "(unclosed")});
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error().message.find("x.bad") != std::string::npos);
    CHECK_FALSE(RuleSet::compile({rule("x.two", "X", "(a)(b)")}).ok());
    CHECK_FALSE(RuleSet::compile({rule("x.type", "lower", "abc")}).ok());
    CHECK_FALSE(RuleSet::compile({rule("x.type", "X_12", "abc")}).ok());
    CHECK_FALSE(RuleSet::compile({rule("x.a", "X", "abc"), rule("x.a", "Y", "def")}).ok());
    auto lookbehind = RuleSet::compile({rule("x.lb", "X", "(?<=a)b")});
    CHECK_FALSE(lookbehind.ok()); // Vectorscan has no lookaround
    CHECK(RuleSet::compile({}).ok());
}

TEST_CASE("tokens are numbered per type by first occurrence and reused for the same original")
{
    Masker m(testRules());
    auto r = m.maskText("i-0123abcd at 10.0.0.1, i-0fedcba9 and again i-0123abcd via 10.0.0.1");
    REQUIRE(r.ok());
    CHECK(r->body == "EC2_001 at PRIVATE_IP_001, EC2_002 and again EC2_001 via PRIVATE_IP_001");
    REQUIRE(r->mapping.size() == 3);
    CHECK(*r->mapping.find("EC2_002") == "i-0fedcba9");
    CHECK(r->stats.perType.at("EC2") == 3);
    CHECK(r->stats.total == 5);
}

TEST_CASE("a token already in the body is never handed out")
{
    Masker m(testRules());
    auto r = m.maskText("EC2_001 was i-0123abcd; EC2_002 too");
    REQUIRE(r.ok());
    CHECK(r->body == "EC2_001 was EC2_003; EC2_002 too");
    auto j = m.maskJson(R"({"a": "EC2\u005f001", "b": "i-0123abcd"})");
    REQUIRE(j.ok());
    CHECK(j->body == R"({"a": "EC2\u005f001", "b": "EC2_002"})");
}

TEST_CASE("masking is a pure function of the body")
{
    Masker m1(testRules()), m2(testRules());
    std::string body = R"({"messages":[{"role":"user","content":"i-0123abcd 10.1.2.3 i-0fedcba9"}]})";
    CHECK(maskedJson(m1, body) == maskedJson(m2, body));
    CHECK(maskedJson(m1, body) == maskedJson(m1, body));
}

TEST_CASE("overlaps go to the lower priority number, then leftmost-longest")
{
    Masker m(compileOrDie({
        rule("o.long", "LONG", "abcdef", 50),
        rule("o.short", "SHORT", "cd", 10),
        rule("o.ab", "AB", "ab(?:ab)*", 60),
    }));
    auto r = m.maskText("abcdef ababab");
    REQUIRE(r.ok());
    CHECK(r->body == "AB_001SHORT_001ef AB_002");
}

TEST_CASE("a capture group masks only the value and keeps its context")
{
    Masker m(testRules());
    auto r = m.maskText("AWS account: 123456789012 but order 123456789012 stays");
    REQUIRE(r.ok());
    CHECK(r->body == "AWS account: ACCOUNT_001 but order 123456789012 stays");
}

TEST_CASE("JSON keys and values are masked and the structure is kept")
{
    Masker m(testRules());
    CHECK(maskedJson(m, R"({"i-0123abcd": ["10.0.0.9", {"x": "host i-0fedcba9"}], "n": 12})") ==
          R"({"EC2_001": ["PRIVATE_IP_001", {"x": "host EC2_002"}], "n": 12})");
}

TEST_CASE("identifiers written with escapes are found and the escapes around them are kept")
{
    Masker m(testRules());
    CHECK(maskedJson(m, R"({"a": "\u0069-0123abcd"})") == R"({"a": "EC2_001"})");
    CHECK(maskedJson(m, R"({"a": "line\ni-0123abcd\tok"})") == R"({"a": "line\nEC2_001\tok"})");
    CHECK(maskedJson(m, R"({"a": "arn:aws:iam::123456789012:role\/Admin"})") == R"({"a": "IAM_ARN_001"})");
    CHECK(maskedJson(m, R"({"a": "\u00e9 i-0123abcd \"q\""})") == R"({"a": "\u00e9 EC2_001 \"q\""})");
}

TEST_CASE("the original recorded for an escaped identifier is the decoded value")
{
    Masker m(testRules());
    auto r = m.maskJson(R"({"a": "arn:aws:iam::123456789012:role\/Admin"})");
    REQUIRE(r.ok());
    CHECK(*r->mapping.find("IAM_ARN_001") == "arn:aws:iam::123456789012:role/Admin");
}

TEST_CASE("a rule that would cut a multi-byte character fails closed")
{
    // The rule matches the first byte of the two that \u00e9 decodes to.
    Masker m(compileOrDie({rule("u.e", "E", "x\xC3")}));
    auto r = m.maskJson(R"({"a": "x\u00e9"})");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().reason == Unmaskable::Residual);
    CHECK(r.error().detail.find("u.e") != std::string::npos);
}

TEST_CASE("key context reaches values in the raw body and after decoding")
{
    Masker m(testRules());
    CHECK(maskedJson(m, R"({"AccountId": "123456789012"})") == R"({"AccountId": "ACCOUNT_001"})");
    CHECK(maskedJson(m, R"({"AccountId": "12345678901\u0032"})") == R"({"AccountId": "ACCOUNT_001"})");
    CHECK(maskedJson(m, R"({"Acc\u006funt": "123456789012"})") == R"({"Acc\u006funt": "ACCOUNT_001"})");
    CHECK(maskedJson(m, R"({"account": 123456789012})") == R"({"account": "ACCOUNT_001"})");
    CHECK(maskedJson(m, R"({"order": "123456789012"})") == R"({"order": "123456789012"})");
}

TEST_CASE("base64 source data is skipped, whatever the key order")
{
    Masker m(compileOrDie({rule("b.x", "X", "AAAA")}));
    std::string img = R"({"type":"image","source":{"data":"AAAAAAAA","type":"base64","media_type":"image/png"}})";
    CHECK(maskedJson(m, img) == img);
    CHECK(maskedJson(m, R"({"source":{"type":"text","data":"AAAA"}})") == R"({"source":{"type":"text","data":"X_001"}})");
}

TEST_CASE("identifiers inside JSON-encoded strings are masked as JSON")
{
    Masker m(testRules());
    std::string body =
        R"({"type":"tool_result","content":"{\"InstanceId\": \"i-0123abcd\", \"Ip\": \"10.0.0.5\", \"Owner\": \"\\u0069-0fedcba9\"}"})";
    auto r = m.maskJson(body);
    REQUIRE(r.ok());
    CHECK(json::validate(r->body));
    CHECK(r->body ==
          R"({"type":"tool_result","content":"{\"InstanceId\": \"EC2_001\", \"Ip\": \"PRIVATE_IP_001\", \"Owner\": \"EC2_002\"}"})");
    std::string restored = TokenRestorer::restoreAll(r->mapping, r->body, Escape::Json);
    CHECK(restored.find("i-0123abcd") != std::string::npos);
}

TEST_CASE("the client's escapes around identifiers in JSON-encoded strings are kept byte for byte")
{
    Masker m(testRules());
    // \u00e9, \/ and \u003e are the outer string's escapes, outside any
    // masked span: a Python, PHP or Go client wrote them and gets them back.
    std::string body =
        R"({"content":"{\"note\": \"caf\u00e9 \/ a \u003e b\", \"id\": \"i-0123abcd\"}"})";
    auto r = m.maskJson(body);
    REQUIRE(r.ok());
    CHECK(r->body == R"({"content":"{\"note\": \"caf\u00e9 \/ a \u003e b\", \"id\": \"EC2_001\"}"})");
    CHECK(TokenRestorer::restoreAll(r->mapping, r->body, Escape::Json) == body);
}

TEST_CASE("invalid JSON is reported unmaskable, never passed through")
{
    Masker m(testRules());
    for (std::string_view bad : {"{\"a\": \"i-0123abcd\"", "i-0123abcd", "{\"a\": \"\\ud800\"}", ""}) {
        auto r = m.maskJson(bad);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().reason == Unmaskable::InvalidJson);
        CHECK(r.error().detail.find("i-0123abcd") == std::string::npos);
    }
}

TEST_CASE("a rule still matching after masking makes the body unmaskable")
{
    Masker m(compileOrDie({rule("r.key", "KEYTYPE", R"(\bkey[0-9]\b)"), rule("r.tok", "TOKENISH", "KEYTYPE_0")}));
    auto r = m.maskText("use key1 now");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().reason == Unmaskable::Residual);
    CHECK(r.error().detail.find("r.tok") != std::string::npos);
    auto j = m.maskJson(R"({"k": "key1"})");
    REQUIRE_FALSE(j.ok());
    CHECK(j.error().reason == Unmaskable::Residual);
}

TEST_CASE("unmask of mask is the identity for text and JSON")
{
    Masker m(testRules());
    std::string text = "i-0123abcd, account=123456789012 via 10.9.8.7 and arn:aws:iam::123456789012:user/bob.";
    auto t = m.maskText(text);
    REQUIRE(t.ok());
    CHECK(TokenRestorer::restoreAll(t->mapping, t->body, Escape::None) == text);
    std::string body = R"({"a":"i-0123abcd\n10.0.0.1","i-0fedcba9":{"account":"123456789012"}})";
    auto j = m.maskJson(body);
    REQUIRE(j.ok());
    CHECK(TokenRestorer::restoreAll(j->mapping, j->body, Escape::Json) == body);
}

TEST_CASE("rule sets know which rules can see where a scanned text begins or ends")
{
    CHECK(mentionsTextBoundary("^abc"));
    CHECK(mentionsTextBoundary("abc$"));
    CHECK(mentionsTextBoundary(R"(\Aabc)"));
    CHECK(mentionsTextBoundary(R"(abc\z)"));
    CHECK(mentionsTextBoundary(R"(abc\Z)"));
    CHECK(mentionsTextBoundary("(?:x|^y)"));
    CHECK(mentionsTextBoundary(R"(\Q[\E$)")); // quoting is not parsed: assumed anchored
    CHECK(mentionsTextBoundary("(?x) [ # $ \n ]"));
    CHECK_FALSE(mentionsTextBoundary("[^a-z]b"));
    CHECK_FALSE(mentionsTextBoundary("[$^]x"));
    CHECK_FALSE(mentionsTextBoundary(R"(\$5 \^)"));
    CHECK_FALSE(mentionsTextBoundary("[]$]x"));
    CHECK_FALSE(mentionsTextBoundary("[^]$]x"));
    CHECK_FALSE(mentionsTextBoundary(R"([a\]$]x)"));
    CHECK(mentionsTextBoundary(R"([a\]]$)"));
    CHECK_FALSE(mentionsTextBoundary(R"(\bi-[0-9a-f]{8}\b)"));

    auto aws = RuleSet::compile(builtinPack("aws"));
    REQUIRE(aws.ok());
    CHECK_FALSE(aws.value()->boundarySensitive()); // the fast path: one scan per body
    CHECK(compileOrDie({rule("a.start", "A", "^x")})->boundarySensitive());
}

TEST_CASE("a rule anchored to the start of a text sees each decoded string on its own")
{
    // The body is one text (its start is the '['); array elements with
    // escapes are decoded and scanned on their own, each its own start.
    Masker m(compileOrDie({rule("a.start", "ANCHORED", "^abc"), rule("a.end", "END", "xyz$")}));
    CHECK(maskedJson(m, R"(["abc", "x\u0061bc", "\u0061bcd", "xyz", "\u0078yz!", "\u0078yz"])") ==
          R"(["abc", "x\u0061bc", "ANCHORED_001d", "xyz", "\u0078yz!", "END_001"])");
}

TEST_CASE("a value's context reaches back into its sibling, also when the sibling is JSON text")
{
    // The rule spans the end of the sibling, the key and the value. The
    // values have escapes, so only their decoded context shows the match.
    Masker m(compileOrDie({rule("c.ctx", "ROLE", R"(1\}","role": "([a-z]+))")}));
    // The sibling decodes to JSON text with nothing to blank ({"n": 1}).
    CHECK(maskedJson(m, R"({"cfg": "{\"n\": 1}", "role": "user\u0021"})") ==
          R"({"cfg": "{\"n\": 1}", "role": "ROLE_001\u0021"})");
    // The sibling's JSON text has a string with escapes of its own.
    CHECK(maskedJson(m, R"({"cfg": "{\"s\": \"a\\nb\", \"n\": 1}", "role": "user\u0021"})") ==
          R"({"cfg": "{\"s\": \"a\\nb\", \"n\": 1}", "role": "ROLE_001\u0021"})");
    // The sibling is a plain string with an escape, scanned just before.
    CHECK(maskedJson(m, R"({"cfg": "x\t1}", "role": "user"})") == R"({"cfg": "x\t1}", "role": "ROLE_001"})");
    // No sibling context without escapes around: the raw body has `", "`.
    CHECK(maskedJson(m, R"({"cfg": "1}", "role": "user"})") == R"({"cfg": "1}", "role": "user"})");
}

TEST_CASE("NUL bytes in decoded strings are text, not the end of one")
{
    Masker m(compileOrDie({rule("n.ec2", "EC2", R"(\bi-[0-9a-f]{8}\b)"), rule("n.nul", "NUL", "x\\x00y")}));
    CHECK(maskedJson(m, R"({"k": "a\u0000b i-0123abcd", "l": "x\u0000y", "m": "i-0123abcd\u0000"})") ==
          R"({"k": "a\u0000b EC2_001", "l": "NUL_001", "m": "EC2_001\u0000"})");
}

TEST_CASE("after a longest end is rejected, shorter ends of the same rule are tried")
{
    RuleSpec r = rule("v.word", "WORD", "[a-z]+");
    r.validate = [](std::string_view v) { return v == "abcd"; };
    Masker m(compileOrDie({r}));
    auto t = m.maskText("abcdefg hello");
    REQUIRE(t.ok());
    CHECK(t->body == "WORD_001efg hello");
}

TEST_CASE("a rule that would cut a multi-byte character fails closed in a string without escapes too")
{
    Masker m(compileOrDie({rule("u.e", "E", "caf\xC3")}));
    auto r = m.maskJson("{\"a\": \"caf\xC3\xA9 i-0123abcd\"}");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().reason == Unmaskable::Residual);
    CHECK(r.error().detail.find("u.e") != std::string::npos);
}

TEST_CASE("the residual check catches what masking made, in every kind of string")
{
    // Masking `id-1` makes ID_001, which the second rule matches once
    // followed by '!': a body with that is unmaskable, wherever it is.
    Masker m(compileOrDie({rule("r.id", "ID", R"(\bid-[0-9]\b)"), rule("r.after", "AFTER", "ID_0[0-9]{2}!")}));
    for (std::string_view body : {
             R"({"a": "id-1!"})",                        // a string without escapes
             R"({"a": "x\n id-1!"})",                    // a string with escapes
             R"({"a": "{\"b\": \"id-1!\"}"})",           // JSON text in a string
             R"({"a": "{\"b\": \"x\\n id-1!\"}"})",      // a string with escapes in JSON text
             R"({"a": "{\"c\": \"{\\\"d\\\": \\\"id-1!\\\"}\"}"})", // two levels of JSON text
             R"({"x": "\t", "a": "id-1!"})",             // a value whose context has escapes
         }) {
        auto r = m.maskJson(body);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().reason == Unmaskable::Residual);
        CHECK(r.error().detail.find("r.after") != std::string::npos);
    }
    // Text masking joined to text left of it: "abSHORT_001ef" matches ab[A-Z].
    Masker o(compileOrDie({rule("o.short", "SHORT", "cd", 10), rule("o.join", "JOIN", "ab[A-Z]", 20)}));
    for (std::string_view body : {R"({"a": "abcdef"})", R"({"a": "{\"b\": [\"abcdef\"]}"})"}) {
        auto r = o.maskJson(body);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().reason == Unmaskable::Residual);
    }
    // Masking a key named "data" changes what is skipped as base64 data.
    Masker d(compileOrDie({rule("d.key", "D", R"(\bdata\b)"), rule("d.val", "X", "AAAA")}));
    auto r = d.maskJson(R"({"source": {"type": "base64", "data": "AAAA"}})");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().reason == Unmaskable::Residual);
}

TEST_CASE("the residual check decides like the first pass for strings masking left alone")
{
    // "user" is scanned decoded, with the context `a/b","role": "`, because
    // its sibling has an escape: there the rule (which wants the closing
    // quote) does not match, so it stays. Masking the id elsewhere must not
    // make the residual check read "user" in the raw body instead.
    Masker m(compileOrDie({rule("k.ec2", "EC2", R"(\bi-[0-9a-f]{8}\b)"),
                           rule("k.role", "ROLE", R"X("role": ?"([a-z]+)")X")}));
    CHECK(maskedJson(m, R"({"x": "a\/b", "role": "user", "id": "i-0123abcd"})") ==
          R"({"x": "a\/b", "role": "user", "id": "EC2_001"})");
    // Once masking changes the sibling, "user" is read again where it is.
    Masker s(compileOrDie({rule("k.ab", "AB", R"(a\/b)", 5), rule("k.role", "ROLE", R"X("role": ?"([a-z]+)")X")}));
    auto r = s.maskJson(R"({"x": "a\/b", "role": "user"})");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().reason == Unmaskable::Residual);
}

TEST_CASE("a mapping finds tokens and token prefixes whatever order they were added in")
{
    Mapping map;
    map.add("VPC_002", "vpc-2");
    map.add("EC2_010", "i-10");
    map.add("EC2_001", "i-1");
    map.add("AMI_001", "ami-1");
    CHECK(*map.find("EC2_001") == "i-1");
    CHECK(*map.find("VPC_002") == "vpc-2");
    CHECK(map.find("EC2_00") == nullptr);
    CHECK(map.find("EC2_0011") == nullptr);
    CHECK(map.isTokenPrefix("EC2_0"));
    CHECK(map.isTokenPrefix("AMI_001"));
    CHECK_FALSE(map.isTokenPrefix("EC3"));
    CHECK_FALSE(map.isTokenPrefix("VPC_003"));
    CHECK(map.entries().front().token == "VPC_002"); // first occurrence order is kept
}

TEST_CASE("a body of several MiB is masked, and the next body after it too")
{
    // Above the size a Masker keeps its buffers at between calls.
    Masker m(testRules());
    std::string big = "[";
    for (int i = 0; i < 90000; ++i)
        big += std::string(i ? "," : "") + "\"line " + std::to_string(i) + ": i-0123abcd at 10.0.0." +
               std::to_string(i % 250) + (i % 3 ? "\\n" : "") + " {\\\"k\\\": \\\"i-0fedcba9\\\"}\"";
    big += "]";
    REQUIRE(big.size() > (5u << 20));
    auto r = m.maskJson(big);
    REQUIRE(r.ok());
    CHECK(r->body.find("i-0123abcd") == std::string::npos);
    CHECK(r->body.find("i-0fedcba9") == std::string::npos);
    CHECK(r->mapping.size() == 2 + 250);
    CHECK(TokenRestorer::restoreAll(r->mapping, r->body, Escape::Json) == big);
    CHECK(maskedJson(m, R"({"a": "x\ni-0123abcd"})") == R"({"a": "x\nEC2_001"})");
}
