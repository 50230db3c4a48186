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
