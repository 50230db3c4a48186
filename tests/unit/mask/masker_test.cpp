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

TEST_CASE("a token standing as a whole word in the raw text of an escaped string is never handed out")
{
    Masker m(testRules());
    // Raw SUBNET_001 followed by an escape decodes to SUBNET_00149: the raw
    // body still holds SUBNET_001 as a whole word, which restoring would
    // replace.
    const std::string body = R"({"a":"EC2_001\u00349 i-0123abcd", "EC2_002\n": "x",)"
                             R"( "src": {"type": "base64", "data": "EC2_003"},)"
                             R"( "c": "{\"d\": \"EC2_004\\u0031\"}"})";
    auto j = m.maskJson(body);
    REQUIRE(j.ok());
    CHECK(j->body == R"({"a":"EC2_001\u00349 EC2_005", "EC2_002\n": "x",)"
                     R"( "src": {"type": "base64", "data": "EC2_003"},)"
                     R"( "c": "{\"d\": \"EC2_004\\u0031\"}"})");
    CHECK(TokenRestorer::restoreAll(j->mapping, j->body, Escape::Json) == body);
    // The unmasker takes an escape unit for a boundary: after 9\u0033 (which
    // decodes to the word 93EC2_001) raw EC2_001 starts a word.
    const std::string unit = R"({"a":"9\u0033EC2_001 i-0123abcd"})";
    auto u = m.maskJson(unit);
    REQUIRE(u.ok());
    CHECK(u->body == R"({"a":"9\u0033EC2_001 EC2_002"})");
    CHECK(TokenRestorer::restoreAll(u->mapping, u->body, Escape::Json) == unit);
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
        rule("o.long", "LONG", "ab-cd-ef", 50),
        rule("o.short", "SHORT", "cd", 10),
        rule("o.ab", "AB", "ab(?:-ab)*", 60),
    }));
    auto r = m.maskText("ab-cd-ef ab-ab-ab");
    REQUIRE(r.ok());
    CHECK(r->body == "AB_001-SHORT_001-ef AB_002");
    CHECK(*r->mapping.find("AB_002") == "ab-ab-ab");
}

TEST_CASE("a masked span is widened to whole words, so its token stands alone and comes back")
{
    // The rule may start after an upper-case letter or '_' (its class has
    // neither): without widening, "notify-reEC2_HOST_001" would be one word
    // the unmasker never restores.
    Masker m(compileOrDie({rule("w.host", "HOST", R"([a-z0-9.-]+\.cache\.amazonaws\.com)", 20),
                           rule("w.id", "ID", "i-[0-9a-f]{8}", 30)}));
    const std::string text = "notify-reEC2_001dis.3tc42k.usw2.cache.amazonaws.com and xi-0123abcdZZ.";
    auto t = m.maskText(text);
    REQUIRE(t.ok());
    CHECK(t->body == "notify-HOST_001 and ID_001.");
    CHECK(*t->mapping.find("HOST_001") == "reEC2_001dis.3tc42k.usw2.cache.amazonaws.com");
    CHECK(*t->mapping.find("ID_001") == "xi-0123abcdZZ");
    CHECK(TokenRestorer::restoreAll(t->mapping, t->body, Escape::None) == text);

    // In JSON: a raw string, a decoded one (the word byte before the match
    // is an escape unit, \u0041, and is masked with it), a key, JSON text.
    const std::string body =
        R"({"a": "notify-reX_9dis.c1.cache.amazonaws.com", "b": "x\tre\u0041_9dis.cache.amazonaws.com!",)"
        R"( "Qi-0123abcd": 1, "c": "{\"d\": \"Ai-0fedcba9_\"}"})";
    auto j = m.maskJson(body);
    REQUIRE(j.ok());
    CHECK(j->body == R"({"a": "notify-HOST_001", "b": "x\tHOST_002!", "ID_001": 1, "c": "{\"d\": \"ID_002\"}"})");
    CHECK(*j->mapping.find("HOST_002") == "reA_9dis.cache.amazonaws.com");
    CHECK(*j->mapping.find("ID_002") == "Ai-0fedcba9_");
    CHECK(TokenRestorer::restoreAll(j->mapping, j->body, Escape::Json) ==
          R"({"a": "notify-reX_9dis.c1.cache.amazonaws.com", "b": "x\treA_9dis.cache.amazonaws.com!",)"
          R"( "Qi-0123abcd": 1, "c": "{\"d\": \"Ai-0fedcba9_\"}"})");
}

TEST_CASE("spans that overlap or touch once widened become one span, with the more specific rule")
{
    Masker m(compileOrDie({rule("g.a", "A", "aa[0-9]", 20), rule("g.b", "B", "[0-9]bb", 10),
                           rule("g.ip", "IP", R"(10\.0\.0\.[0-9])", 30), rule("g.path", "PATH", "/srv[0-9]", 40)}));
    // aa1 and 2bb are both widened to aa1_2bb; 10.0.0.1 and /srv2 touch, and
    // two tokens side by side would be one word.
    const std::string text = "x aa1_2bb y 10.0.0.1/srv2 z";
    auto t = m.maskText(text);
    REQUIRE(t.ok());
    CHECK(t->body == "x B_001 y IP_001 z");
    CHECK(*t->mapping.find("B_001") == "aa1_2bb");
    CHECK(*t->mapping.find("IP_001") == "10.0.0.1/srv2");
    CHECK(TokenRestorer::restoreAll(t->mapping, t->body, Escape::None) == text);
    auto j = m.maskJson(R"(["x aa1_2bb", "10.0.0.1/srv2"])");
    REQUIRE(j.ok());
    CHECK(j->body == R"(["x B_001", "IP_001"])");
}

TEST_CASE("a capture group masks only the value and keeps its context")
{
    Masker m(testRules());
    auto r = m.maskText("AWS account: 123456789012 but order 210987654321 stays");
    REQUIRE(r.ok());
    CHECK(r->body == "AWS account: ACCOUNT_001 but order 210987654321 stays");
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

TEST_CASE("a token after an escape of JSON text held in a string comes back")
{
    // The inner \n is raw \\n: the unmasker takes the n for part of the
    // escape, not for a word byte before the token.
    Masker m(testRules());
    const std::string body = R"({"content":"{\"log\": \"start\\ni-0123abcd\\t\\u00e9i-0fedcba9\"}"})";
    auto r = m.maskJson(body);
    REQUIRE(r.ok());
    CHECK(r->body == R"({"content":"{\"log\": \"start\\nEC2_001\\t\\u00e9EC2_002\"}"})");
    CHECK(TokenRestorer::restoreAll(r->mapping, r->body, Escape::Json) == body);
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

TEST_CASE("a value recognised by its context is masked with the same token wherever else it stands whole")
{
    Masker m(testRules());
    const std::string text = "account: 123456789012; later 123456789012 again (123456789012).";
    auto t = m.maskText(text);
    REQUIRE(t.ok());
    CHECK(t->body == "account: ACCOUNT_001; later ACCOUNT_001 again (ACCOUNT_001).");
    CHECK(t->mapping.size() == 1);
    CHECK(t->stats.perType.at("ACCOUNT") == 3);
    CHECK(TokenRestorer::restoreAll(t->mapping, t->body, Escape::None) == text);

    // Every string of the body, decoded, keys and JSON text included; a
    // number that is the whole value becomes a string token, as in account
    // context.
    const std::string body = R"({"a": {"AccountId": "123456789012"}, "b": ["123456789012", "x\t123456789012.", 123456789012],)"
                             R"( "123456789012": "\u00312345678901\u0032", "c": "{\"n\": \"owner 123456789012\", \"v\": 123456789012}"})";
    auto j = m.maskJson(body);
    REQUIRE(j.ok());
    CHECK(j->body == R"({"a": {"AccountId": "ACCOUNT_001"}, "b": ["ACCOUNT_001", "x\tACCOUNT_001.", "ACCOUNT_001"],)"
                     R"( "ACCOUNT_001": "ACCOUNT_001", "c": "{\"n\": \"owner ACCOUNT_001\", \"v\": \"ACCOUNT_001\"}"})");
    CHECK(j->mapping.size() == 1);
    CHECK(j->stats.perType.at("ACCOUNT") == 8);
    CHECK(j->stats.total == 8);
}

TEST_CASE("with many originals every bare occurrence is found, wherever it lies in the text")
{
    // More originals than memmem is used for: the vector search over word
    // starts, and its one-by-one tail at the end of a text.
    Masker m(testRules());
    std::string ctx, bare;
    std::vector<std::string> ids;
    for (int i = 0; i < 9; ++i) {
        ids.push_back("1234567890" + std::to_string(10 + i));
        ctx += "account: " + ids.back() + "; ";
    }
    for (int pad = 0; pad < 40; ++pad) // every offset modulo the vector width
        bare += std::string(static_cast<std::size_t>(pad % 7), 'x') + " " + ids[static_cast<std::size_t>(pad) % ids.size()] + ",";
    bare += " and last " + ids[3];
    const std::string body = R"({"ctx": ")" + ctx + R"(", "bare": [")" + bare + R"(", ")" + ids[5] + R"("]})";
    auto r = m.maskJson(body);
    REQUIRE(r.ok());
    for (const std::string& id : ids)
        CHECK(r->body.find(id) == std::string::npos);
    CHECK(r->mapping.size() == ids.size());
    CHECK(r->stats.perType.at("ACCOUNT") == 9 + 40 + 1 + 1);
    CHECK(TokenRestorer::restoreAll(r->mapping, r->body, Escape::Json) == body);
    // A look-alike inside a longer word or number stays.
    auto n = m.maskJson(R"({"ctx": "account: 123456789010", "x": "a123456789010 1234567890100 123456789010-old"})");
    REQUIRE(n.ok());
    CHECK(n->body == R"({"ctx": "account: ACCOUNT_001", "x": "a123456789010 1234567890100 123456789010-old"})");
}

TEST_CASE("an occurrence is whole only if no word continues it, also across '-' or '.'")
{
    Masker m(compileOrDie({rule("p.bucket", "BUCKET", "s3://([a-z0-9.-]+)/", 10)}));
    auto r = m.maskJson(R"({"u": "s3://acme-checkout-artifacts/releases/", "x": ["acme-checkout-artifacts",)"
                        R"( "acme-checkout-artifacts-old", "acme-checkout-artifacts.example.com", "old-acme-checkout-artifacts",)"
                        R"( "xacme-checkout-artifacts", "see acme-checkout-artifacts.", "-acme-checkout-artifacts:"]})");
    REQUIRE(r.ok());
    CHECK(r->body == R"({"u": "s3://BUCKET_001/releases/", "x": ["BUCKET_001",)"
                     R"( "acme-checkout-artifacts-old", "acme-checkout-artifacts.example.com", "old-acme-checkout-artifacts",)"
                     R"( "xacme-checkout-artifacts", "see BUCKET_001.", "-BUCKET_001:"]})");
    CHECK(r->stats.perType.at("BUCKET") == 4);
    // Originals shorter than 6 bytes are not looked for elsewhere.
    auto s = m.maskJson(R"({"u": "s3://logs/", "x": "logs"})");
    REQUIRE(s.ok());
    CHECK(s->body == R"({"u": "s3://BUCKET_001/", "x": "logs"})");
}

TEST_CASE("an ARN's account id is masked where it stands bare, even when only the ARN was recognised")
{
    Masker m(testRules());
    const std::string body = R"({"role": "arn:aws:iam::123456789012:role/Admin", "note": "billed to 123456789012 in May"})";
    auto r = m.maskJson(body);
    REQUIRE(r.ok());
    CHECK(r->body == R"({"role": "IAM_ARN_001", "note": "billed to ACCOUNT_001 in May"})");
    REQUIRE(r->mapping.size() == 2);
    CHECK(*r->mapping.find("ACCOUNT_001") == "123456789012");
    CHECK(TokenRestorer::restoreAll(r->mapping, r->body, Escape::Json) == body);
    // Only inside the ARN: no ACCOUNT token.
    auto only = m.maskJson(R"({"role": "arn:aws:iam::123456789012:role/Admin"})");
    REQUIRE(only.ok());
    CHECK(only->mapping.size() == 1);
    CHECK(only->stats.perType.count("ACCOUNT") == 0);
}

TEST_CASE("the residual check fails closed when an original still stands after masking")
{
    // "base64" (a bucket here) is masked in "type": "base64" of JSON text
    // held in a string, so the residual check reads the source data the
    // first pass skipped, where the other bucket stands bare: no rule
    // matches it there, only the check for originals does.
    Masker m(compileOrDie({rule("p.bucket", "BUCKET", "s3://([a-z0-9]+)/", 10)}));
    const std::string body =
        R"({"u": "s3://base64/ s3://mybucket1/", "c": "{\"source\": {\"type\": \"base64\", \"data\": \"mybucket1\"}}"})";
    auto r = m.maskJson(body);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().reason == Unmaskable::Residual);
    CHECK(r.error().detail.find("BUCKET") != std::string::npos);
    CHECK(r.error().detail.find("mybucket1") == std::string::npos);
    MaskOptions unchecked;
    unchecked.residualCheck = false;
    Masker u(compileOrDie({rule("p.bucket", "BUCKET", "s3://([a-z0-9]+)/", 10)}), unchecked);
    auto o = u.maskJson(body);
    REQUIRE(o.ok());
    CHECK(o->body ==
          R"({"u": "s3://BUCKET_001/ s3://BUCKET_002/", "c": "{\"source\": {\"type\": \"BUCKET_001\", \"data\": \"mybucket1\"}}"})");
    // In the body itself "type" is the API's field and stays: the source
    // is still skipped, and the request still valid.
    auto top = m.maskJson(R"({"u": "s3://base64/ s3://mybucket1/", "source": {"type": "base64", "data": "mybucket1"}})");
    REQUIRE(top.ok());
    CHECK(top->body == R"({"u": "s3://BUCKET_001/ s3://BUCKET_002/", "source": {"type": "base64", "data": "mybucket1"}})");
    // Only a value that is exactly the original: one that holds it among
    // other text is masked.
    auto held = m.maskJson(R"({"u": "s3://mybucket1/", "model": "mybucket1 v2", "role": "mybucket1"})");
    REQUIRE(held.ok());
    CHECK(held->body == R"({"u": "s3://BUCKET_001/", "model": "BUCKET_001 v2", "role": "mybucket1"})");
}

TEST_CASE("originals that are words of the request's schema are not looked for beyond their context")
{
    // Buckets named like keys and enumerated values of the Messages API:
    // masked in their URIs and ARNs, nowhere else, so the request keeps its
    // structure (all-letter originals read as words: "content", "object").
    auto aws = RuleSet::compile(builtinPack("aws"));
    REQUIRE(aws.ok());
    Masker m(aws.value());
    const std::string body =
        R"({"messages": [{"role": "user", "content": "list s3://content/ and s3://messages/ of arn:aws:s3:::object"}],)"
        R"( "tools": [{"name": "t", "input_schema": {"type": "object", "properties": {}}}], "model": "claude-x"})";
    auto r = m.maskJson(body);
    REQUIRE(r.ok());
    CHECK(r->body.find(R"({"messages": [{"role": "user", "content": "list s3://BUCKET_)") == 0);
    CHECK(r->body.find(R"("input_schema": {"type": "object", "properties": {}})") != std::string::npos);
    CHECK(r->body.find("s3://content/") == std::string::npos);
    CHECK(r->body.find("arn:aws:s3:::object") == std::string::npos);
    CHECK(TokenRestorer::restoreAll(r->mapping, r->body, Escape::Json) == body);
    // A distinctive one (digits, '-', '.') is looked for everywhere, as before.
    auto d = m.maskJson(R"({"u": "s3://acme-logs-2/", "n": "acme-logs-2 is full"})");
    REQUIRE(d.ok());
    CHECK(d->body == R"({"u": "s3://BUCKET_001/", "n": "BUCKET_001 is full"})");
}

TEST_CASE("a negative number whose digits are an original is masked with its sign")
{
    auto aws = RuleSet::compile(builtinPack("aws"));
    REQUIRE(aws.ok());
    Masker m(aws.value());
    const std::string body = R"({"c": "arn:aws:iam::123456789012:role/x", "n": -123456789012, "m": [1, -1234567890123]})";
    auto r = m.maskJson(body);
    REQUIRE(r.ok());
    CHECK(r->body == R"({"c": "IAM_ARN_001", "n": "ACCOUNT_001", "m": [1, -1234567890123]})"); // a longer number stays
    CHECK(TokenRestorer::restoreAll(r->mapping, r->body, Escape::Json) ==
          R"({"c": "arn:aws:iam::123456789012:role/x", "n": "-123456789012", "m": [1, -1234567890123]})");
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
    CHECK(maskedJson(m, R"(["abc", "x\u0061bc", "\u0061bc-d", "xyz", "\u0078yz!", "\u0078yz"])") ==
          R"(["abc", "x\u0061bc", "ANCHORED_001-d", "xyz", "\u0078yz!", "END_001"])");
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
    // ("abcdefg" would be widened to the whole word again.)
    RuleSpec dotted = rule("v.dotted", "WORD", "[a-z.]+");
    dotted.validate = r.validate;
    Masker d(compileOrDie({dotted}));
    auto t = d.maskText("abcd.efg hello");
    REQUIRE(t.ok());
    CHECK(t->body == "WORD_001.efg hello");
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
    // Text masking joined to text left of it: "ab-SHORT_001" matches ab-[A-Z].
    Masker o(compileOrDie({rule("o.short", "SHORT", "cd", 10), rule("o.join", "JOIN", "ab-[A-Z]", 20)}));
    for (std::string_view body : {R"({"a": "ab-cd"})", R"({"a": "{\"b\": [\"ab-cd\"]}"})"}) {
        auto r = o.maskJson(body);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().reason == Unmaskable::Residual);
    }
    // Masking a key named "data" changes what is skipped as base64 data.
    Masker d(compileOrDie({rule("d.key", "D", R"(\bdata\b)"), rule("d.val", "X", "AAAA")}));
    auto r = d.maskJson(R"({"source": {"type": "base64", "data": "AAAA"}})");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().reason == Unmaskable::Residual);
    // So does masking "base64", also for data with escapes before it (the
    // first pass never decoded it, and masking changed neither it nor its
    // context).
    Masker b(compileOrDie({rule("d.b64", "B", R"(\bbase64\b)"), rule("d.val", "X", "AAAA")}));
    auto e = b.maskJson(R"({"source": {"data": "\tAAAA", "type": "base64"}})");
    REQUIRE_FALSE(e.ok());
    CHECK(e.error().reason == Unmaskable::Residual);
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

namespace {

std::shared_ptr<const RuleSet> escapeRules()
{
    return compileOrDie({
        rule("e.ec2", "EC2", R"(\bi-(?:[0-9a-f]{8}|[0-9a-f]{17})\b)", 30),
        rule("e.nat", "NAT_GW", R"(\bnat-[0-9a-f]{17}\b)", 30),
        rule("e.bucket", "BUCKET", R"(s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/)", 40),
    });
}

} // namespace

TEST_CASE("an escape letter after a literal backslash is a boundary for masking, as for the unmasker")
{
    // Decoded `log:\ni-0…` (a real backslash, then n): read as the escape
    // it spells, the n is no word byte and i-0… stands whole, as it does for
    // the unmasker in the raw text (\\n). Both the id and the bare bucket
    // after it are masked; the n stays, and the tokens come back.
    Masker m(escapeRules());
    const std::string body =
        R"({"content":"log:\\ni-0123456789abcdef0 started, s3://acme-logs-prod/x\\nacme-logs-prod ok"})";
    auto r = m.maskJson(body);
    REQUIRE(r.ok());
    CHECK(r->body == R"({"content":"log:\\nEC2_001 started, s3://BUCKET_001/x\\nBUCKET_001 ok"})");
    CHECK(r->mapping.size() == 2);
    REQUIRE(r->mapping.find("EC2_001"));
    CHECK(*r->mapping.find("EC2_001") == "i-0123456789abcdef0");
    CHECK(TokenRestorer::restoreAll(r->mapping, r->body, Escape::Json) == body);

    // Every escape letter, \u and 4 hex digits as one unit, and any odd run.
    for (const std::string esc : {R"(\\t)", R"(\\r)", R"(\\b)", R"(\\f)", R"(\\u0041)", R"(\\\\\\n)", R"(\\u00e9)"}) {
        INFO(esc);
        const std::string b = R"({"c":"x)" + esc + R"(i-0123456789abcdef0 y)" + esc + R"(acme-logs-prod", "u":"s3://acme-logs-prod/"})";
        auto e = m.maskJson(b);
        REQUIRE(e.ok());
        CHECK(e->body == R"({"c":"x)" + esc + R"(EC2_001 y)" + esc + R"(BUCKET_001", "u":"s3://BUCKET_001/"})");
        CHECK(TokenRestorer::restoreAll(e->mapping, e->body, Escape::Json) == b);
    }
    // Keys too.
    auto k = m.maskJson(R"({"a\\ni-0123456789abcdef0": 1})");
    REQUIRE(k.ok());
    CHECK(k->body == R"({"a\\nEC2_001": 1})");
}

TEST_CASE("an escape letter after a literal backslash is still text: an identifier starting with it is masked")
{
    // A Windows-like path: C:\nat-0… holds a NAT gateway id with its n.
    Masker m(escapeRules());
    const std::string body = R"({"path":"C:\\nat-0a9b8c7d6e5f4a3b2\\x", "two":"\\nat-0a9b8c7d6e5f4a3b2 \\ni-0123456789abcdef0"})";
    auto r = m.maskJson(body);
    REQUIRE(r.ok());
    CHECK(r->body == R"({"path":"C:\\NAT_GW_001\\x", "two":"\\NAT_GW_001 \\nEC2_001"})");
    CHECK(TokenRestorer::restoreAll(r->mapping, r->body, Escape::Json) == body);
}

TEST_CASE("after an even run of backslashes the letter is a word byte, for masking as for the unmasker")
{
    // Decoded `\\ni-0…`: a backslash, a backslash, then the word ni-0…
    // (raw \\\\n: the unmasker reads two escaped backslashes, then text).
    Masker m(escapeRules());
    const std::string body = R"({"c":"a\\\\ni-0123456789abcdef0 s3://acme-logs-prod/ \\\\nacme-logs-prod"})";
    auto r = m.maskJson(body);
    REQUIRE(r.ok());
    CHECK(r->body == R"({"c":"a\\\\ni-0123456789abcdef0 s3://BUCKET_001/ \\\\nacme-logs-prod"})");
    Mapping map;
    map.add("EC2_001", "i-0123456789abcdef0");
    CHECK(TokenRestorer::restoreAll(map, R"("a\\\\nEC2_001")", Escape::Json) == R"("a\\\\nEC2_001")");
    CHECK(TokenRestorer::restoreAll(map, R"("a\\nEC2_001")", Escape::Json) == R"("a\\ni-0123456789abcdef0")");
    // No backslash at all: nothing changes.
    const std::string plain = R"({"c":"log:ni-0123456789abcdef0 xi-0123456789abcdef0", "d":"line\ni-0123abcd"})";
    auto p = m.maskJson(plain);
    REQUIRE(p.ok());
    CHECK(p->body == R"({"c":"log:ni-0123456789abcdef0 xi-0123456789abcdef0", "d":"line\nEC2_001"})");
}

TEST_CASE("a backslash written \\u005c is read as a raw \\\\ by the masker and the unmasker alike")
{
    // The unmasker counts \u005c in a run of escaped backslashes: after an
    // odd run the letter is a boundary, so the span starts after it.
    Masker m(escapeRules());
    const std::string body = R"({"c":"a\u005cni-0123456789abcdef0 s3://acme-logs-prod/ \u005Cnacme-logs-prod"})";
    auto r = m.maskJson(body);
    REQUIRE(r.ok());
    CHECK(r->body == R"({"c":"a\u005cnEC2_001 s3://BUCKET_001/ \u005CnBUCKET_001"})");
    CHECK(TokenRestorer::restoreAll(r->mapping, r->body, Escape::Json) == body);
    // \u005c then a raw \\: two escaped backslashes, an even run: the n is
    // a letter of the word for both readings, as after raw \\\\.
    for (const std::string even : {R"({"c":"a\u005c\\ni-0123456789abcdef0"})", R"({"c":"a\\\\ni-0123456789abcdef0"})"}) {
        auto o = m.maskJson(even);
        REQUIRE(o.ok());
        CHECK(o->body == even);
    }
}

TEST_CASE("where the unmasker would not read the letter as a boundary, the letter is masked with what follows")
{
    Masker m(escapeRules());
    // In JSON text held in a string, the inner \\n is raw \\\\n, which the
    // unmasker reads as two backslashes and an n: the n is masked too.
    const std::string nested =
        R"({"c":"{\"x\":\"a\\\\ni-0123456789abcdef0 s3://acme-logs-prod/ \\\\nacme-logs-prod\"}"})";
    auto n = m.maskJson(nested);
    REQUIRE(n.ok());
    CHECK(n->body == R"({"c":"{\"x\":\"a\\\\EC2_001 s3://BUCKET_001/ \\\\BUCKET_002\"}"})");
    CHECK(TokenRestorer::restoreAll(n->mapping, n->body, Escape::Json) == nested);
}

TEST_CASE("the residual check reads escape letters both ways too")
{
    // The token after \n completes a match only with the n read as an
    // escape: the residual check must scan that reading as well.
    Masker m(compileOrDie({rule("r.key", "KEYTYPE", R"(\bkey[0-9]\b)"), rule("r.tok", "TOKENISH", R"(\bKEYTYPE_0)")}));
    auto j = m.maskJson(R"({"k": "a\\nkey1"})");
    REQUIRE_FALSE(j.ok());
    CHECK(j.error().reason == Unmaskable::Residual);
    CHECK(j.error().detail.find("r.tok") != std::string::npos);
}

TEST_CASE("with many originals, one right after an escape letter is found too")
{
    // More needles than memmem is used for: the search keeps word starts,
    // and in `\nacme-logs-5` the a is one only in the second reading.
    for (const bool vector : {true, false}) {
        MaskOptions o;
        o.vectorSearch = vector;
        Masker m(escapeRules(), o);
        std::string body = R"({"u":")", want = R"({"u":")";
        for (int k = 1; k <= 6; ++k)
            body += "s3://acme-logs-" + std::to_string(k) + "/ ", want += "s3://BUCKET_00" + std::to_string(k) + "/ ";
        body += R"(", "c":"x\\nacme-logs-5 y\u005cnacme-logs-2", "d":"{\"k\": \"\\\\nacme-logs-3\"}"})";
        want += R"(", "c":"x\\nBUCKET_005 y\u005cnBUCKET_002", "d":"{\"k\": \"\\\\BUCKET_007\"}"})";
        auto r = m.maskJson(body);
        REQUIRE(r.ok());
        CHECK(r->body == want);
        CHECK(TokenRestorer::restoreAll(r->mapping, r->body, Escape::Json) == body);
    }
}

TEST_CASE("the residual check finds an original right after an escape letter")
{
    // As in "the residual check fails closed when an original still stands
    // after masking": masking "type": "base64" makes the data read, where a
    // bucket stands after a literal \n (with many needles: word starts).
    const auto rules = compileOrDie({rule("p.bucket", "BUCKET", "s3://([a-z0-9]+)/", 10)});
    const std::string body = R"({"u": "s3://base64/ s3://mybucket1/ s3://bucket2xx/ s3://bucket3xx/ s3://bucket4xx/ s3://bucket5xx/",)"
                             R"( "c": "{\"source\": {\"type\": \"base64\", \"data\": \"x\\\\nmybucket1\"}}"})";
    Masker m(rules);
    auto r = m.maskJson(body);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().reason == Unmaskable::Residual);
    CHECK(r.error().detail.find("BUCKET") != std::string::npos);
    MaskOptions unchecked;
    unchecked.residualCheck = false;
    Masker u(rules, unchecked);
    auto o = u.maskJson(body);
    REQUIRE(o.ok());
    CHECK(o->body.find(R"(\"data\": \"x\\\\nmybucket1\")") != std::string::npos);
}

TEST_CASE("an original made by taking an escape letter in is looked for elsewhere too")
{
    // In JSON text the bare bucket after \n is masked with its n
    // (nacme-logs-prod, see above): that new original stands whole after an
    // even run of backslashes in the body, and is masked there in a further
    // round of propagation.
    Masker m(escapeRules());
    const std::string body = R"({"c":"{\"k\": \"\\\\nacme-logs-prod s3://acme-logs-prod/\"}", "d":"x\\\\nacme-logs-prod"})";
    auto r = m.maskJson(body);
    REQUIRE(r.ok());
    CHECK(r->body == R"({"c":"{\"k\": \"\\\\BUCKET_001 s3://BUCKET_002/\"}", "d":"x\\\\BUCKET_001"})");
    REQUIRE(r->mapping.find("BUCKET_001"));
    CHECK(*r->mapping.find("BUCKET_001") == "nacme-logs-prod");
    CHECK(TokenRestorer::restoreAll(r->mapping, r->body, Escape::Json) == body);
}

TEST_CASE("a token after an inner escape written with \\u005c in the input is not handed out")
{
    // The unmasker would restore EC2_001 after \u005cn (an inner \n), so
    // the masker must not give that token to another value.
    auto aws = RuleSet::compile(builtinPack("aws"));
    REQUIRE(aws.ok());
    Masker m(aws.value());
    for (std::string_view run : {R"(\u005c)", R"(\\\\\u005C)", R"(\u005c\u005c\u005c)"}) {
        for (const std::string& body :
             {R"({"c":"{\"o\": \"a)" + std::string(run) + R"(nEC2_001 x\"}", "d": "i-0123456789abcdef0"})",
              R"({"c":"a)" + std::string(run) + R"(nEC2_001 x", "d": "i-0123456789abcdef0"})"}) {
        auto r = m.maskJson(body);
        REQUIRE(r.ok());
        INFO(body);
        CHECK(r->body.find(R"("d": "EC2_002")") != std::string::npos);
        CHECK(TokenRestorer::restoreAll(r->mapping, r->body, Escape::Json) == body);
        }
    }
    // Two escaped backslashes: the n is a letter of the word, EC2_001 is free.
    auto even = m.maskJson(R"({"c":"a\u005c\u005cnEC2_001", "d": "i-0123456789abcdef0"})");
    REQUIRE(even.ok());
    CHECK(even->body == R"({"c":"a\u005c\u005cnEC2_001", "d": "EC2_001"})");
}
