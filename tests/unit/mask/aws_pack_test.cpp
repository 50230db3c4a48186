// The built-in "aws" pattern pack, family by family: what it masks (exact
// output and mapping) and the look-alikes it must leave alone.

#include <catch2/catch.hpp>

#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mask/masker.h"
#include "mask/restore.h"
#include "mask/sse.h"
#include "mask/rule.h"
#include "mask/ruleset.h"

using namespace veil::mask;

namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

std::shared_ptr<const RuleSet> compileOrNull(std::vector<RuleSpec> rules)
{
    auto rs = RuleSet::compile(std::move(rules));
    if (!rs.ok()) {
        UNSCOPED_INFO("rule set did not compile: " << rs.error().message);
        return nullptr;
    }
    return rs.value();
}

// Compiling the pack takes about a second; do it once for the whole file.
std::shared_ptr<const RuleSet> awsRules()
{
    static const std::shared_ptr<const RuleSet> rules = compileOrNull(builtinPack("aws"));
    return rules;
}

std::shared_ptr<const RuleSet> awsRulesWithHeuristics()
{
    static const std::shared_ptr<const RuleSet> rules = [] {
        auto pack = builtinPack("aws");
        for (auto& r : pack)
            if (r.heuristic)
                r.enabled = true;
        return compileOrNull(std::move(pack));
    }();
    return rules;
}

// Mappings as one line each so a failing CHECK shows both sides readably.
std::string show(const Pairs& pairs)
{
    std::string s;
    for (const auto& [token, original] : pairs)
        s += token + "=" + original + "\n";
    return s;
}

std::string show(const Mapping& m)
{
    std::string s;
    for (const auto& e : m.entries())
        s += e.token + "=" + e.original + "\n";
    return s;
}

void expectText(std::string_view in, std::string_view body, const Pairs& mapping,
                const std::shared_ptr<const RuleSet>& rules = awsRules())
{
    INFO("input: " << in);
    REQUIRE(rules);
    Masker m(rules);
    auto r = m.maskText(in);
    if (!r.ok())
        FAIL("maskText failed: " << r.error().detail);
    CHECK(r->body == body);
    CHECK(show(r->mapping) == show(mapping));
}

void expectUnchanged(std::string_view in, const std::shared_ptr<const RuleSet>& rules = awsRules())
{
    INFO("input: " << in);
    REQUIRE(rules);
    Masker m(rules);
    auto r = m.maskText(in);
    if (!r.ok())
        FAIL("maskText failed: " << r.error().detail);
    CHECK(r->body == in);
    CHECK(show(r->mapping).empty());
}

void expectJson(std::string_view in, std::string_view body, const Pairs& mapping)
{
    INFO("input: " << in);
    REQUIRE(awsRules());
    Masker m(awsRules());
    auto r = m.maskJson(in);
    if (!r.ok())
        FAIL("maskJson failed: " << r.error().detail);
    CHECK(r->body == body);
    CHECK(show(r->mapping) == show(mapping));
}

// One masked value standing alone in a sentence.
void expectOne(const std::string& value, const std::string& type)
{
    expectText("see " + value + " now", "see " + type + "_001 now", {{type + "_001", value}});
}

const std::string kHex17 = "0123456789abcdef0";
const std::string kHex8 = "0a1b2c3d";
const std::string kSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const std::string kUuid = "1234abcd-12ab-34cd-56ef-1234567890ab";

} // namespace

// ---- the pack as a whole ---------------------------------------------------

TEST_CASE("the aws pack is listed and unknown pack names give no rules")
{
    auto names = builtinPackNames();
    CHECK(std::find(names.begin(), names.end(), "aws") != names.end());
    CHECK(builtinPack("aws").size() > 100);
    CHECK(builtinPack("no-such-pack").empty());
    CHECK(builtinPack("").empty());
}

TEST_CASE("every aws rule compiles on its own and has a unique dotted name and a valid token type")
{
    std::set<std::string> names;
    for (auto r : builtinPack("aws")) {
        INFO("rule " << r.name << ": " << r.regex);
        CHECK(r.name.rfind("aws.", 0) == 0);
        CHECK(names.insert(r.name).second);
        CHECK(validTokenType(r.tokenType));
        r.enabled = true;
        auto rs = RuleSet::compile({r});
        if (!rs.ok())
            FAIL(rs.error().message);
    }
}

TEST_CASE("the aws pack compiles as one rule set, with and without its heuristics")
{
    REQUIRE(awsRules());
    REQUIRE(awsRulesWithHeuristics());
    CHECK(awsRulesWithHeuristics()->rules().size() == builtinPack("aws").size());
    CHECK(awsRules()->rules().size() < awsRulesWithHeuristics()->rules().size());
}

TEST_CASE("heuristic aws rules exist but are off by default")
{
    std::set<std::string> heuristics;
    for (const auto& r : builtinPack("aws")) {
        INFO("rule " << r.name);
        CHECK(r.heuristic == !r.enabled);
        if (r.heuristic)
            heuristics.insert(r.name);
    }
    CHECK(heuristics.count("aws.heuristic.bucket_name") == 1);
    CHECK(heuristics.count("aws.heuristic.public_ipv4") == 1);
}

TEST_CASE("the aws pack covers at least the fifty resource types Kong's masker grew to")
{
    std::set<std::string> types;
    for (const auto& r : builtinPack("aws"))
        if (r.enabled)
            types.insert(r.tokenType);
    CHECK(types.size() >= 50);
}

// ---- resource ids ------------------------------------------------------------

TEST_CASE("an EC2 instance id in prose is masked and mapped")
{
    expectText("instance i-0123456789abcdef0 is up", "instance EC2_001 is up", {{"EC2_001", "i-0123456789abcdef0"}});
    expectText("old i-0123abcd, then i-0123abcd again (i-0fedcba9).", "old EC2_001, then EC2_001 again (EC2_002).",
               {{"EC2_001", "i-0123abcd"}, {"EC2_002", "i-0fedcba9"}});
}

TEST_CASE("every prefixed resource id is masked with its own type, in both lengths where AWS used both")
{
    struct Id {
        const char* prefix;
        const char* type;
        bool legacy8;
    };
    const Id ids[] = {
        {"i-", "EC2", true},
        {"ami-", "AMI", true},
        {"vol-", "EBS_VOL", true},
        {"snap-", "EBS_SNAP", true},
        {"sg-", "SG", true},
        {"sgr-", "SGR", false},
        {"subnet-", "SUBNET", true},
        {"vpc-", "VPC", true},
        {"igw-", "IGW", true},
        {"eigw-", "EIGW", true},
        {"nat-", "NAT_GW", true},
        {"tgw-", "TGW", true},
        {"tgw-attach-", "TGW_ATTACH", true},
        {"tgw-rtb-", "TGW_RTB", true},
        {"eni-", "ENI", true},
        {"eni-attach-", "ENI_ATTACH", true},
        {"rtb-", "RTB", true},
        {"rtbassoc-", "RTB_ASSOC", true},
        {"vpce-", "VPCE", true},
        {"vpce-svc-", "VPCE_SVC", true},
        {"fs-", "EFS", true},
        {"fsap-", "EFS_AP", true},
        {"acl-", "NACL", true},
        {"eipalloc-", "EIP_ALLOC", true},
        {"eipassoc-", "EIP_ASSOC", true},
        {"pcx-", "PCX", true},
        {"dopt-", "DOPT", true},
        {"lt-", "LT", true},
        {"cgw-", "CGW", true},
        {"vgw-", "VGW", true},
        {"vpn-", "VPN", true},
        {"pl-", "PL", true},
        {"fl-", "FLOW_LOG", true},
        {"key-", "KEY_PAIR", false},
        {"cr-", "CAP_RES", true},
        {"lgw-", "LGW", true},
        {"lgw-rtb-", "LGW_RTB", true},
        {"cagw-", "CAGW", true},
        {"ipam-", "IPAM", true},
        {"ipam-pool-", "IPAM_POOL", true},
        {"ipam-scope-", "IPAM_SCOPE", true},
        {"cvpn-endpoint-", "CVPN", true},
        {"vpc-cidr-assoc-", "VPC_CIDR_ASSOC", true},
        {"h-", "DEDICATED_HOST", false},
        {"r-", "RESERVATION", false},
        {"mi-", "SSM_MI", false},
    };
    for (const auto& id : ids) {
        expectOne(id.prefix + kHex17, id.type);
        if (id.legacy8)
            expectOne(id.prefix + kHex8, id.type);
        else
            expectUnchanged(std::string("see ") + id.prefix + kHex8 + " now");
    }
}

TEST_CASE("a resource id with a compound prefix is one token, not the id it contains")
{
    expectText("route via tgw-rtb-0123456789abcdef0", "route via TGW_RTB_001",
               {{"TGW_RTB_001", "tgw-rtb-0123456789abcdef0"}});
    expectText("arn .../rtb-0123abcd and lgw-rtb-0123abcd", "arn .../RTB_001 and LGW_RTB_001",
               {{"RTB_001", "rtb-0123abcd"}, {"LGW_RTB_001", "lgw-rtb-0123abcd"}});
}

TEST_CASE("resource-id look-alikes inside longer words or of the wrong length are not masked")
{
    expectUnchanged("msg-0a1b2c3d");
    expectUnchanged("api-0123456789abcdef0");
    expectUnchanged("xi-0123abcd");
    expectUnchanged("i-0abc");
    expectUnchanged("i-0123456789abcdef01"); // 18 hex
    expectUnchanged("i-0123abcd9");          // 9 hex
    expectUnchanged("i-0123abcd_old");
    expectUnchanged("I-0123ABCD and ami-0123ABCD"); // ids are lowercase
    expectUnchanged("ami-xyz12345 ami-latest ami-");
    expectUnchanged("key-deadbeef cache-key-cafe1234"); // key pairs are 17 hex only
    expectUnchanged("vol-au-vent, snap-ins, fs-extra, sg-hello, nat-gateway, vpc-peering, pl-sql");
    expectUnchanged("r-deadbeef h-cafebabe mi-12345678");
}

TEST_CASE("other fixed-shape ids are masked: EMR, Directory, Organizations, Cognito, KMS multi-region keys")
{
    expectOne("j-2AXXXXXXGAPLF", "EMR_CLUSTER");
    expectOne("d-1234567890", "DIRECTORY");
    expectOne("o-a1b2c3d4e5", "ORG");
    expectOne("ou-ab12-cd34ef56", "ORG_OU");
    expectOne("us-east-1_AbCdEfGhI", "COGNITO_POOL");
    expectOne("eu-west-2_x1y2z3w4v", "COGNITO_POOL");
    expectOne("us-east-1:" + kUuid, "COGNITO_IDPOOL");
    expectOne("mrk-1234abcd12ab34cd56ef1234567890ab", "KMS_KEY");
    expectOne("sir-08b93456", "SPOT_REQ");
}

TEST_CASE("fixed-shape id look-alikes without a random part are not masked")
{
    expectUnchanged("j-ABCDEFGHIJKLM"); // 13 capitals: a shouted word
    expectUnchanged("o-exampleorg and o-rings");
    expectUnchanged("us-east-1_something"); // a word after the region
    expectUnchanged("ou-root-accounts");
    expectUnchanged("mrk-1234");
}

// ---- credentials ---------------------------------------------------------------

TEST_CASE("access key ids and other IAM unique ids are masked on their own")
{
    expectText("key AKIAIOSFODNN7EXAMPLE here", "key ACCESS_KEY_001 here",
               {{"ACCESS_KEY_001", "AKIAIOSFODNN7EXAMPLE"}});
    expectOne("ASIAY34FZKBOKMUTVV7A", "ACCESS_KEY");
    expectOne("AIDAJQABLZS4A3QDU576Q", "IAM_ID");
    expectOne("AROADBQP57FF2AEXAMPLE", "IAM_ID");
    expectOne("ANPAJ2UCCR6DPCEXAMPLE", "IAM_ID");
    expectText("Credential=AKIAIOSFODNN7EXAMPLE/20240101/us-east-1/s3/aws4_request",
               "Credential=ACCESS_KEY_001/20240101/us-east-1/s3/aws4_request",
               {{"ACCESS_KEY_001", "AKIAIOSFODNN7EXAMPLE"}});
}

TEST_CASE("access key look-alikes are not masked")
{
    expectUnchanged("AKIAIOSFODNN7EXAMPLEX"); // 21 characters
    expectUnchanged("XAKIAIOSFODNN7EXAMPLE");
    expectUnchanged("AKIA_IOSFODNN7EXAMPLE");
    expectUnchanged("akiaiosfodnn7example");
    expectUnchanged("AKIA1234");
}

TEST_CASE("a secret access key is masked next to any spelling of its key")
{
    expectText("aws_secret_access_key = " + kSecret, "aws_secret_access_key = SECRET_KEY_001",
               {{"SECRET_KEY_001", kSecret}});
    expectText("export AWS_SECRET_ACCESS_KEY=\"" + kSecret + "\"", "export AWS_SECRET_ACCESS_KEY=\"SECRET_KEY_001\"",
               {{"SECRET_KEY_001", kSecret}});
    expectText("{\"SecretAccessKey\": \"" + kSecret + "\"}", "{\"SecretAccessKey\": \"SECRET_KEY_001\"}",
               {{"SECRET_KEY_001", kSecret}});
    expectText("{'aws_secret_key': '" + kSecret + "'}", "{'aws_secret_key': 'SECRET_KEY_001'}",
               {{"SECRET_KEY_001", kSecret}});
    expectText("{\"name\":\"AWS_SECRET_ACCESS_KEY\",\"value\":\"" + kSecret + "\"}",
               "{\"name\":\"AWS_SECRET_ACCESS_KEY\",\"value\":\"SECRET_KEY_001\"}", {{"SECRET_KEY_001", kSecret}});
    expectText("env:\n  - name: AWS_SECRET_ACCESS_KEY\n    value: " + kSecret + "\n",
               "env:\n  - name: AWS_SECRET_ACCESS_KEY\n    value: SECRET_KEY_001\n", {{"SECRET_KEY_001", kSecret}});
}

TEST_CASE("a 40-character base64 run without a secret key next to it is not masked")
{
    expectUnchanged(kSecret);
    expectUnchanged("hash: " + kSecret);
    expectUnchanged("aws_secret_access_key = " + kSecret + "X"); // 41 characters
    expectUnchanged("aws_secret_access_key = short");
}

TEST_CASE("session tokens are masked next to their key and, for STS tokens, by their prefix alone")
{
    const std::string sts = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQDexample+abc/def==";
    expectText("aws_session_token = " + sts, "aws_session_token = SESSION_TOKEN_001", {{"SESSION_TOKEN_001", sts}});
    expectText("token " + sts + " ok", "token SESSION_TOKEN_001 ok", {{"SESSION_TOKEN_001", sts}});
    const std::string old = "FwoGZXIvYXdzEBYaDHqa0AP1nGFCDgbVdSKhAR9EXAMPLE";
    expectOne(old, "SESSION_TOKEN");
    const std::string other = "AQoDYXdzEJr1K6s3bJ8Ym1oXAMPLEexampleEXAMPLEexampleEXAMPLE";
    expectText("\"SessionToken\": \"" + other + "\"", "\"SessionToken\": \"SESSION_TOKEN_001\"",
               {{"SESSION_TOKEN_001", other}});
    const std::string encoded = "IQoJb3JpZ2luX2VjEJr%2F%2F%2F%2F%2F%2FwEaCXVzLWVhc3QtMSJHMEUCIQD";
    expectText("?X-Amz-Security-Token=" + encoded + "&X-Amz-Date=20240101T000000Z",
               "?X-Amz-Security-Token=SESSION_TOKEN_001&X-Amz-Date=20240101T000000Z", {{"SESSION_TOKEN_001", encoded}});
    const std::string sig = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    expectText("&X-Amz-Signature=" + sig, "&X-Amz-Signature=SIGNATURE_001", {{"SIGNATURE_001", sig}});
}

TEST_CASE("a session token key with a short or missing value is not masked")
{
    expectUnchanged("session token: none");
    expectUnchanged("the session token expired after 3600 seconds");
}

// ---- ARNs ------------------------------------------------------------------

TEST_CASE("ARNs of common services become whole typed tokens")
{
    const std::pair<std::string, std::string> arns[] = {
        {"arn:aws:iam::123456789012:role/Admin", "IAM_ARN"},
        {"arn:aws:iam::123456789012:root", "IAM_ARN"},
        {"arn:aws:sts::123456789012:assumed-role/Dev/alice@example.com", "STS_ARN"},
        {"arn:aws:lambda:us-east-1:123456789012:function:my-fn:$LATEST", "LAMBDA_ARN"},
        {"arn:aws:rds:us-east-1:123456789012:db:prod-db", "RDS_ARN"},
        {"arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0", "EC2_ARN"},
        {"arn:aws:sqs:us-east-1:123456789012:orders.fifo", "SQS_ARN"},
        {"arn:aws:sns:us-east-1:123456789012:alerts", "SNS_ARN"},
        {"arn:aws:dynamodb:us-east-1:123456789012:table/Users/stream/2024-01-01T00:00:00.000", "DYNAMODB_ARN"},
        {"arn:aws:kms:us-east-1:123456789012:key/" + kUuid, "KMS_ARN"},
        {"arn:aws:kms:us-east-1:123456789012:alias/prod", "KMS_ARN"},
        {"arn:aws:secretsmanager:us-east-1:123456789012:secret:db-pass-AbCdEf", "SECRET_ARN"},
        {"arn:aws:ecs:us-east-1:123456789012:task/my-cluster/0123456789abcdef0123456789abcdef", "ECS_ARN"},
        {"arn:aws:eks:us-east-1:123456789012:cluster/prod", "EKS_ARN"},
        {"arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/50dc6c495c0c9188", "ELB_ARN"},
        {"arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/fn:*", "LOGS_ARN"},
        {"arn:aws:cloudformation:us-east-1:123456789012:stack/web/" + kUuid, "CFN_ARN"},
        {"arn:aws:states:us-east-1:123456789012:stateMachine:Flow", "SFN_ARN"},
        {"arn:aws:ecr:us-east-1:123456789012:repository/app", "ECR_ARN"},
        {"arn:aws:acm:us-east-1:123456789012:certificate/" + kUuid, "ACM_ARN"},
        {"arn:aws:ssm:us-east-1:123456789012:parameter/prod/db/password", "SSM_ARN"},
        {"arn:aws:execute-api:us-east-1:123456789012:abc123defg/*/GET/pets/{petId}", "APIGW_ARN"},
        {"arn:aws:apigateway:us-east-1::/restapis/a1b2c3d4e5", "APIGW_ARN"},
        {"arn:aws:events:us-east-1:123456789012:rule/nightly", "EVENTS_ARN"},
        {"arn:aws:kinesis:us-east-1:123456789012:stream/clicks", "KINESIS_ARN"},
        {"arn:aws:elasticache:us-east-1:123456789012:cluster:redis-prod", "ELASTICACHE_ARN"},
        {"arn:aws:es:us-east-1:123456789012:domain/logs", "OPENSEARCH_ARN"},
        {"arn:aws:glue:us-east-1:123456789012:table/db/events", "GLUE_ARN"},
        {"arn:aws:athena:us-east-1:123456789012:workgroup/primary", "ATHENA_ARN"},
        {"arn:aws:route53:::hostedzone/Z1D633PJN98FT9", "ROUTE53_ARN"},
        {"arn:aws:cloudfront::123456789012:distribution/EDFDVBD6EXAMPLE", "CLOUDFRONT_ARN"},
        {"arn:aws:organizations::123456789012:account/o-a1b2c3d4e5/123456789012", "ORG_ARN"},
    };
    for (const auto& [arn, type] : arns)
        expectOne(arn, type);
}

TEST_CASE("ARNs of every partition are recognised")
{
    for (const char* partition :
         {"aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f", "aws-eusc"})
        expectOne(std::string("arn:") + partition + ":iam::123456789012:user/bob", "IAM_ARN");
    expectOne("arn:aws-cn:lambda:cn-north-1:123456789012:function:fn", "LAMBDA_ARN");
    expectOne("arn:aws-us-gov:sqs:us-gov-west-1:123456789012:queue", "SQS_ARN");
    expectOne("arn:aws-eusc:ec2:eusc-de-east-1:123456789012:vpc/vpc-0123456789abcdef0", "EC2_ARN");
}

TEST_CASE("an ARN of any other service keeps its structure but loses its account id")
{
    expectText("arn:aws:appflow:us-east-1:123456789012:flow/sync", "arn:aws:appflow:us-east-1:ACCOUNT_001:flow/sync",
               {{"ACCOUNT_001", "123456789012"}});
    expectText("arn:aws-iso-b:foo:us-isob-east-1:123456789012:thing/x",
               "arn:aws-iso-b:foo:us-isob-east-1:ACCOUNT_001:thing/x", {{"ACCOUNT_001", "123456789012"}});
}

TEST_CASE("an ARN does not swallow the punctuation of the sentence around it")
{
    const std::string arn = "arn:aws:iam::123456789012:role/Admin";
    expectText("assume " + arn + ".", "assume IAM_ARN_001.", {{"IAM_ARN_001", arn}});
    expectText("(" + arn + "), then", "(IAM_ARN_001), then", {{"IAM_ARN_001", arn}});
    expectText("role: " + arn + ":", "role: IAM_ARN_001:", {{"IAM_ARN_001", arn}});
    expectText(
        "arn:aws:iam::123456789012:role/a,arn:aws:iam::123456789012:role/b", "IAM_ARN_001,IAM_ARN_002",
        {{"IAM_ARN_001", "arn:aws:iam::123456789012:role/a"}, {"IAM_ARN_002", "arn:aws:iam::123456789012:role/b"}});
}

TEST_CASE("an S3 ARN masks the bucket and keeps the object path")
{
    expectText("arn:aws:s3:::my-bucket/path/to/key.txt", "arn:aws:s3:::BUCKET_001/path/to/key.txt",
               {{"BUCKET_001", "my-bucket"}});
    expectText("\"Resource\": [\"arn:aws:s3:::my-bucket\", \"arn:aws:s3:::my-bucket/*\"]",
               "\"Resource\": [\"arn:aws:s3:::BUCKET_001\", \"arn:aws:s3:::BUCKET_001/*\"]",
               {{"BUCKET_001", "my-bucket"}});
    expectText("arn:aws-cn:s3:::logs.example.cn.", "arn:aws-cn:s3:::BUCKET_001.", {{"BUCKET_001", "logs.example.cn"}});
}

TEST_CASE("ARNs without an account id are left alone")
{
    expectUnchanged("arn:aws:iam::aws:policy/AdministratorAccess");
    expectUnchanged("arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole");
    expectUnchanged("the arn: prefix, arn:aws:, and arn:partition:service:region:account-id:resource");
}

// ---- account ids ---------------------------------------------------------------

TEST_CASE("a 12-digit account id next to an account key is masked")
{
    const Pairs acct = {{"ACCOUNT_001", "123456789012"}};
    expectText("account id 123456789012", "account id ACCOUNT_001", acct);
    expectText("the account id is 123456789012.", "the account id is ACCOUNT_001.", acct);
    expectText("AccountId: 123456789012", "AccountId: ACCOUNT_001", acct);
    expectText("Account: 123456789012", "Account: ACCOUNT_001", acct);
    expectText("aws_account_id=123456789012", "aws_account_id=ACCOUNT_001", acct);
    expectText("Account No.: 123456789012", "Account No.: ACCOUNT_001", acct);
    expectText("acct #123456789012", "acct #ACCOUNT_001", acct);
    expectText("{\"Account\": \"123456789012\", \"OwnerId\": \"123456789012\"}",
               "{\"Account\": \"ACCOUNT_001\", \"OwnerId\": \"ACCOUNT_001\"}", acct);
    expectText("\"account\":\"123456789012\"", "\"account\":\"ACCOUNT_001\"", acct);
    expectText("\"SourceAccount\": \"123456789012\"", "\"SourceAccount\": \"ACCOUNT_001\"", acct);
    expectText("\"Principal\": {\"AWS\": \"123456789012\"}", "\"Principal\": {\"AWS\": \"ACCOUNT_001\"}", acct);
    expectText("Account ID: 1234-5678-9012.", "Account ID: ACCOUNT_001.", {{"ACCOUNT_001", "1234-5678-9012"}});
}

TEST_CASE("a 12-digit number without account context is not masked")
{
    expectUnchanged("order 123456789012");
    expectUnchanged("order #123456789012 shipped on 2024-01-01");
    expectUnchanged("ts=202401011200 id=123456789012");
    expectUnchanged("account id 1234567890123");     // 13 digits
    expectUnchanged("Account: 1234-5678-9012-3456"); // a card number
}

// ---- S3 ----------------------------------------------------------------------

TEST_CASE("S3 buckets are masked in s3 URIs, virtual-hosted and path-style URLs, keeping the rest")
{
    const Pairs b = {{"BUCKET_001", "my-bucket"}};
    expectText("s3://my-bucket/path/file.csv", "s3://BUCKET_001/path/file.csv", b);
    expectText("copy to s3://my-bucket.", "copy to s3://BUCKET_001.", b);
    expectText("s3a://my-bucket/warehouse", "s3a://BUCKET_001/warehouse", b);
    expectText("https://my-bucket.s3.us-west-2.amazonaws.com/key", "https://BUCKET_001.s3.us-west-2.amazonaws.com/key",
               b);
    expectText("my-bucket.s3.amazonaws.com", "BUCKET_001.s3.amazonaws.com", b);
    expectText("my-bucket.s3-website-us-east-1.amazonaws.com", "BUCKET_001.s3-website-us-east-1.amazonaws.com", b);
    expectText("my-bucket.s3.dualstack.eu-west-1.amazonaws.com", "BUCKET_001.s3.dualstack.eu-west-1.amazonaws.com", b);
    expectText("https://s3.us-east-1.amazonaws.com/my-bucket/key", "https://s3.us-east-1.amazonaws.com/BUCKET_001/key",
               b);
    expectText("https://s3.amazonaws.com/my-bucket", "https://s3.amazonaws.com/BUCKET_001", b);
    expectText("https://logs.example.com.s3.amazonaws.com/x", "https://BUCKET_001.s3.amazonaws.com/x",
               {{"BUCKET_001", "logs.example.com"}});
}

TEST_CASE("S3 service names and bucket-less URLs are not masked")
{
    expectUnchanged("\"Service\": \"logging.s3.amazonaws.com\"");
    expectUnchanged("https://s3.amazonaws.com/ and s3.us-east-1.amazonaws.com");
    expectUnchanged("s3:// is the scheme; s3://${BUCKET}/key is a template");
    expectUnchanged("aws s3 ls");
}

// ---- service hostnames -----------------------------------------------------------

TEST_CASE("service endpoints become whole typed tokens")
{
    const std::pair<std::string, std::string> hosts[] = {
        {"mydb.abc123xyz.us-east-1.rds.amazonaws.com", "RDS_HOST"},
        {"prod.cluster-abc123xyz.eu-west-1.rds.amazonaws.com", "RDS_HOST"},
        {"prod.cluster-ro-abc123xyz.eu-west-1.rds.amazonaws.com", "RDS_HOST"},
        {"docs.cluster-abc123xyz.us-east-1.docdb.amazonaws.com", "RDS_HOST"},
        {"mydb.abc123xyz.rds.cn-north-1.amazonaws.com.cn", "RDS_HOST"},
        {"my-alb-1234567890.us-east-1.elb.amazonaws.com", "ELB_HOST"},
        {"internal-My-Lb-123.us-west-2.elb.amazonaws.com", "ELB_HOST"},
        {"dualstack.my-alb-1234567890.us-east-1.elb.amazonaws.com", "ELB_HOST"},
        {"my-nlb-0123456789abcdef.elb.us-east-1.amazonaws.com", "ELB_HOST"},
        {"0123456789ABCDEF0123456789ABCDEF.gr7.us-east-1.eks.amazonaws.com", "EKS_HOST"},
        {"a1b2c3d4e5.execute-api.us-east-1.amazonaws.com", "APIGW_HOST"},
        {"d111111abcdef8.cloudfront.net", "CLOUDFRONT_HOST"},
        {"my-redis.abc123.0001.use1.cache.amazonaws.com", "ELASTICACHE_HOST"},
        {"clustercfg.my-redis.abc123.use1.cache.amazonaws.com", "ELASTICACHE_HOST"},
        {"my-cluster.abc123xyz.us-east-1.redshift.amazonaws.com", "REDSHIFT_HOST"},
        {"wg.123456789012.us-east-1.redshift-serverless.amazonaws.com", "REDSHIFT_HOST"},
        {"search-logs-abc123xyz.us-east-1.es.amazonaws.com", "OPENSEARCH_HOST"},
        {"vpc-logs-abc123xyz.us-east-1.es.amazonaws.com", "OPENSEARCH_HOST"},
        {"b-1.mycluster.abc123.c2.kafka.us-east-1.amazonaws.com", "MSK_HOST"},
        {"b-" + kUuid + "-1.mq.us-east-1.amazonaws.com", "MQ_HOST"},
        {"my-env.eba-abcd1234.us-east-1.elasticbeanstalk.com", "EB_HOST"},
        {"abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-east-1.on.aws", "LAMBDA_URL_HOST"},
        {"abcdefghijklmnopqrstuvwxyz.appsync-api.us-east-1.amazonaws.com", "APPSYNC_HOST"},
    };
    for (const auto& [host, type] : hosts)
        expectOne(host, type);
    expectText("jdbc:postgresql://mydb.abc123xyz.us-east-1.rds.amazonaws.com:5432/app",
               "jdbc:postgresql://RDS_HOST_001:5432/app",
               {{"RDS_HOST_001", "mydb.abc123xyz.us-east-1.rds.amazonaws.com"}});
    expectText("https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/prod/items", "https://APIGW_HOST_001/prod/items",
               {{"APIGW_HOST_001", "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com"}});
}

TEST_CASE("SQS queue URLs, ECR registries and sign-in URLs mask the identifying part only")
{
    expectText("https://sqs.us-east-1.amazonaws.com/123456789012/orders.fifo",
               "https://sqs.us-east-1.amazonaws.com/SQS_QUEUE_001", {{"SQS_QUEUE_001", "123456789012/orders.fifo"}});
    expectText("https://queue.amazonaws.com/123456789012/jobs", "https://queue.amazonaws.com/SQS_QUEUE_001",
               {{"SQS_QUEUE_001", "123456789012/jobs"}});
    expectText("123456789012.dkr.ecr.us-east-1.amazonaws.com/app:1.2",
               "ACCOUNT_001.dkr.ecr.us-east-1.amazonaws.com/app:1.2", {{"ACCOUNT_001", "123456789012"}});
    expectText("https://123456789012.signin.aws.amazon.com/console",
               "https://ACCOUNT_001.signin.aws.amazon.com/console", {{"ACCOUNT_001", "123456789012"}});
    expectText("https://my-corp.signin.aws.amazon.com/console",
               "https://ACCOUNT_ALIAS_001.signin.aws.amazon.com/console", {{"ACCOUNT_ALIAS_001", "my-corp"}});
}

TEST_CASE("an EKS OIDC issuer URL masks the cluster's issuer id")
{
    const std::string id = "EXAMPLED539D4633E53DE1B71EXAMPLE";
    expectText("\"Federated\": \"arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/" + id +
                   "\"",
               "\"Federated\": \"IAM_ARN_001\"",
               {{"IAM_ARN_001", "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/" + id}});
    expectText("\"oidc.eks.us-east-1.amazonaws.com/id/" + id + ":sub\"",
               "\"oidc.eks.us-east-1.amazonaws.com/id/EKS_OIDC_001:sub\"", {{"EKS_OIDC_001", id}});
}

TEST_CASE("regional service endpoints without a resource name are not masked")
{
    expectUnchanged("rds.us-east-1.amazonaws.com, us-east-1.rds.amazonaws.com, *.us-east-1.rds.amazonaws.com");
    expectUnchanged("es.amazonaws.com and us-east-1.es.amazonaws.com");
    expectUnchanged("elasticloadbalancing.us-east-1.amazonaws.com");
    expectUnchanged("sqs.us-east-1.amazonaws.com/ and https://sqs.us-east-1.amazonaws.com");
    expectUnchanged("api.ecr.us-east-1.amazonaws.com");
    expectUnchanged("cloudfront.net and www.cloudfront.net");
    expectUnchanged("mydb.example.com and redis.internal");
}

TEST_CASE("EC2 host names are masked whole")
{
    expectOne("ip-10-0-1-5.ec2.internal", "EC2_HOST");
    expectOne("ip-10-0-1-5.us-west-2.compute.internal", "EC2_HOST");
    expectOne("ip-172-31-20-7", "EC2_HOST");
    expectOne("ip-192-168-0-12", "EC2_HOST");
    expectOne("ec2-54-1-2-3.compute-1.amazonaws.com", "EC2_HOST");
    expectOne("ec2-54-1-2-3.us-west-2.compute.amazonaws.com", "EC2_HOST");
    expectText("node ip-10-0-1-5.ec2.internal and ip-10-0-1-5", "node EC2_HOST_001 and EC2_HOST_002",
               {{"EC2_HOST_001", "ip-10-0-1-5.ec2.internal"}, {"EC2_HOST_002", "ip-10-0-1-5"}});
}

TEST_CASE("ip- names that are not private EC2 names are not masked")
{
    expectUnchanged("ip-8-8-8-8");
    expectUnchanged("ip-10-0-1");
    expectUnchanged("ip-10-0-1-500");
    expectUnchanged("skip-10-0-1-5");
    expectUnchanged("ip-address and ip-range");
}

// ---- addresses ---------------------------------------------------------------

TEST_CASE("private IPv4 addresses are masked, CIDR suffixes stay")
{
    expectText("host 10.0.1.100 ok", "host PRIVATE_IP_001 ok", {{"PRIVATE_IP_001", "10.0.1.100"}});
    expectText(
        "ips 172.16.0.1, 172.31.255.255 and 192.168.1.1.", "ips PRIVATE_IP_001, PRIVATE_IP_002 and PRIVATE_IP_003.",
        {{"PRIVATE_IP_001", "172.16.0.1"}, {"PRIVATE_IP_002", "172.31.255.255"}, {"PRIVATE_IP_003", "192.168.1.1"}});
    expectText("cgnat 100.64.0.1 and 100.127.255.254", "cgnat PRIVATE_IP_001 and PRIVATE_IP_002",
               {{"PRIVATE_IP_001", "100.64.0.1"}, {"PRIVATE_IP_002", "100.127.255.254"}});
    expectText("cidr 10.0.0.0/16", "cidr PRIVATE_IP_001/16", {{"PRIVATE_IP_001", "10.0.0.0"}});
    expectText("http://10.1.2.3:8080/", "http://PRIVATE_IP_001:8080/", {{"PRIVATE_IP_001", "10.1.2.3"}});
}

TEST_CASE("public, loopback, documentation and malformed IPv4 addresses are not masked")
{
    for (const char* s : {"8.8.8.8", "192.0.2.10", "198.51.100.7", "203.0.113.9", "127.0.0.1", "0.0.0.0",
                          "169.254.169.254", "255.255.255.255", "10.300.1.1", "10.0.0.256", "172.32.0.1", "172.15.0.1",
                          "100.128.0.1", "100.63.0.1", "192.169.0.1", "10.0.0", "010.0.0.1"})
        expectUnchanged(std::string("addr ") + s + " here");
    expectUnchanged("v10.2.3 and 1.10.0.0.1 and 2.10.0.0.5");
    expectUnchanged("version 10.2.3.4a");
}

TEST_CASE("IPv6 unique local addresses are masked, other IPv6 addresses are not")
{
    expectText("ula fd12:3456:789a::1 and fd00::/8", "ula PRIVATE_IPV6_001 and PRIVATE_IPV6_002/8",
               {{"PRIVATE_IPV6_001", "fd12:3456:789a::1"}, {"PRIVATE_IPV6_002", "fd00::"}});
    expectText("[fc00:1:2:3:4:5:6:7]:443", "[PRIVATE_IPV6_001]:443", {{"PRIVATE_IPV6_001", "fc00:1:2:3:4:5:6:7"}});
    expectText("addr fd00::1: down", "addr PRIVATE_IPV6_001: down", {{"PRIVATE_IPV6_001", "fd00::1"}});
    expectUnchanged("fe80::1 and 2001:db8::1 and ::1 and 2001:fd00::1");
    expectUnchanged("fdfd: and fc0::1 and fd0::1");
}

// ---- keyed values: KMS, Route 53 -------------------------------------------------------

TEST_CASE("KMS key ids and aliases are masked in KMS context")
{
    const Pairs k = {{"KMS_KEY_001", kUuid}};
    expectText("\"KeyId\": \"" + kUuid + "\"", "\"KeyId\": \"KMS_KEY_001\"", k);
    expectText("kms key " + kUuid, "kms key KMS_KEY_001", k);
    expectText("--kms-key-id " + kUuid, "--kms-key-id KMS_KEY_001", k);
    expectText("key/" + kUuid, "key/KMS_KEY_001", k);
    expectText("--key-id alias/my-app-key now", "--key-id KMS_ALIAS_001 now", {{"KMS_ALIAS_001", "alias/my-app-key"}});
    expectText("\"AliasName\": \"alias/prod-payments\"", "\"AliasName\": \"KMS_ALIAS_001\"",
               {{"KMS_ALIAS_001", "alias/prod-payments"}});
}

TEST_CASE("a CloudFront distribution id is masked next to its key")
{
    expectText("\"DistributionId\": \"E2QWRUHAPOMQZL\"", "\"DistributionId\": \"CLOUDFRONT_DIST_001\"",
               {{"CLOUDFRONT_DIST_001", "E2QWRUHAPOMQZL"}});
    expectText("--distribution-id E2QWRUHAPOMQZL", "--distribution-id CLOUDFRONT_DIST_001",
               {{"CLOUDFRONT_DIST_001", "E2QWRUHAPOMQZL"}});
    expectUnchanged("E2QWRUHAPOMQZL and EXAMPLEEXAMPLE");
}

TEST_CASE("UUIDs and aliases outside KMS context are not masked")
{
    expectUnchanged("req 3f2b9c1e-8d4a-4c7b-9e2f-1a2b3c4d5e6f");
    expectUnchanged("x-request-id: 3f2b9c1e-8d4a-4c7b-9e2f-1a2b3c4d5e6f");
    expectUnchanged("kms key alias/aws/s3");
    expectUnchanged("may-alias/no-alias and git alias/foo");
}

TEST_CASE("Route 53 hosted zone ids are masked after hostedzone/ or a hosted zone key")
{
    const Pairs z = {{"HOSTED_ZONE_001", "Z1D633PJN98FT9"}};
    expectText("/hostedzone/Z1D633PJN98FT9", "/hostedzone/HOSTED_ZONE_001", z);
    expectText("\"HostedZoneId\": \"Z1D633PJN98FT9\"", "\"HostedZoneId\": \"HOSTED_ZONE_001\"", z);
    expectUnchanged("Z1D633PJN98FT9 without context");
}

// ---- heuristics ----------------------------------------------------------------

TEST_CASE("heuristic rules mask bucket-ish words and public IPv4 only when enabled")
{
    expectUnchanged("upload to my-logs-bucket from 54.12.3.4");
    expectText("upload to my-logs-bucket from 54.12.3.4", "upload to BUCKET_001 from PUBLIC_IP_001",
               {{"BUCKET_001", "my-logs-bucket"}, {"PUBLIC_IP_001", "54.12.3.4"}}, awsRulesWithHeuristics());
    // Even enabled, they keep away from plain words and non-public addresses.
    expectText("the bucket, buckets, 8.8.8.8, 127.0.0.1, 192.0.2.1, 10.0.0.1",
               "the bucket, buckets, PUBLIC_IP_001, 127.0.0.1, 192.0.2.1, PRIVATE_IP_001",
               {{"PUBLIC_IP_001", "8.8.8.8"}, {"PRIVATE_IP_001", "10.0.0.1"}}, awsRulesWithHeuristics());
}

// ---- things that must pass unchanged --------------------------------------------

TEST_CASE("ordinary words, versions, hashes and tokens pass unchanged")
{
    const char* texts[] = {
        // Kong's seed matched [a-z-]*db[a-z-]* and *bucket*.
        "feedback mongodb dbadmin sandbox rds-style prod-cluster access-logs",
        "the database, dbt, pgdb, couchdb, dynamodb-local, jdbc, kdb, db",
        "bucket list, bucket-list, my bucket, a bucket of water, token bucket",
        // resource-id look-alikes in prose and code
        "msg-0a1b2c3d api-0123456789abcdef0 uuid-0a1b2c3d wi-fi ai-0123abcd",
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "commit 3f2b9c1e8d4a4c7b9e2f1a2b3c4d5e6f7a8b9c0d, short 3f2b9c1",
        "docker pull nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        // numbers
        "v10.2.3, 1.10.0.0.1, python3.10, node 18.19.0, build 2024.01.15",
        "order 123456789012, phone +1 555 123 4567, isbn 978-3-16-148410-0",
        "req 3f2b9c1e-8d4a-4c7b-9e2f-1a2b3c4d5e6f",
        // addresses that identify nobody
        "8.8.8.8 1.1.1.1 192.0.2.10 127.0.0.1 ::1 fe80::1 2001:db8::1 localhost",
        // tokens and shouting
        "THE_QUICK_001 EC2_001 BUCKET_001 ACCOUNT_001 AKIA_ROTATION_POLICY",
        // AWS words that name no resource
        "us-east-1 eu-west-2 ap-southeast-1 arn aws iam s3 ec2 vpc subnet sg igw nat",
        "amazonaws.com s3.amazonaws.com ec2.amazonaws.com lambda.amazonaws.com",
        "aws s3 cp ./a s3:// --recursive; aws ec2 describe-instances --instance-ids",
        "AWS_REGION=us-east-1 AWS_PROFILE=dev AWS_DEFAULT_OUTPUT=json",
    };
    for (const char* t : texts)
        expectUnchanged(t);
}

// ---- JSON bodies -----------------------------------------------------------------

TEST_CASE("JSON values keep their key context for secrets and account ids")
{
    expectJson("{\"SecretAccessKey\":\"" + kSecret + "\"}", "{\"SecretAccessKey\":\"SECRET_KEY_001\"}",
               {{"SECRET_KEY_001", kSecret}});
    expectJson("{\"containerDefinitions\":[{\"environment\":[{\"name\":\"AWS_SECRET_ACCESS_KEY\",\"value\":\"" +
                   kSecret + "\"}]}]}",
               "{\"containerDefinitions\":[{\"environment\":[{\"name\":\"AWS_SECRET_ACCESS_KEY\",\"value\":\"SECRET_"
               "KEY_001\"}]}]}",
               {{"SECRET_KEY_001", kSecret}});
    expectJson(R"({"Account": "123456789012", "UserId": "AIDAJQABLZS4A3QDU576Q"})",
               R"({"Account": "ACCOUNT_001", "UserId": "IAM_ID_001"})",
               {{"ACCOUNT_001", "123456789012"}, {"IAM_ID_001", "AIDAJQABLZS4A3QDU576Q"}});
    // A number in account context becomes a string token.
    expectJson(R"({"AccountId": 123456789012})", R"({"AccountId": "ACCOUNT_001"})", {{"ACCOUNT_001", "123456789012"}});
}

TEST_CASE("JSON escapes inside identifiers are decoded before matching")
{
    expectJson(R"({"content":"\u0069-0123abcd is down"})", R"({"content":"EC2_001 is down"})",
               {{"EC2_001", "i-0123abcd"}});
    expectJson(R"({"arn":"arn:aws:iam::123456789012:role\/Admin"})", R"({"arn":"IAM_ARN_001"})",
               {{"IAM_ARN_001", "arn:aws:iam::123456789012:role/Admin"}});
    const std::string escaped = "wJalrXUtnFEMI\\/K7MDENG\\/bPxRfiCYEXAMPLEKEY";
    expectJson("{\"SecretAccessKey\":\"" + escaped + "\"}", "{\"SecretAccessKey\":\"SECRET_KEY_001\"}",
               {{"SECRET_KEY_001", kSecret}});
    expectJson(R"({"text":"s3:\/\/my-bucket\/a.txt\n"})", R"({"text":"s3:\/\/BUCKET_001\/a.txt\n"})",
               {{"BUCKET_001", "my-bucket"}});
}

TEST_CASE("a JSON document inside a JSON string is masked with its own key context")
{
    expectJson(R"({"content":"{\"AccountId\": \"123456789012\", \"SecretAccessKey\": \")" + kSecret + R"(\"}"})",
               R"({"content":"{\"AccountId\": \"ACCOUNT_001\", \"SecretAccessKey\": \"SECRET_KEY_001\"}"})",
               {{"ACCOUNT_001", "123456789012"}, {"SECRET_KEY_001", kSecret}});
}

TEST_CASE("a realistic prompt with many identifiers masks each once and leaves the prose")
{
    const std::string body =
        R"({"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":)"
        R"("Please analyze: EC2 i-0123456789abcdef0 in vpc-0a1b2c3d (subnet-0123456789abcdef0, )"
        R"(sg-0123abcd) at 10.0.1.100 reads s3://my-data-bucket/2024/ and )"
        R"(mydb.abc123xyz.us-east-1.rds.amazonaws.com as arn:aws:iam::123456789012:role/App. )"
        R"(Account 123456789012. The feedback from mongodb users: i-0123456789abcdef0 is slow."}]})";
    const std::string want = R"({"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":)"
                             R"("Please analyze: EC2 EC2_001 in VPC_001 (SUBNET_001, )"
                             R"(SG_001) at PRIVATE_IP_001 reads s3://BUCKET_001/2024/ and )"
                             R"(RDS_HOST_001 as IAM_ARN_001. )"
                             R"(Account ACCOUNT_001. The feedback from mongodb users: EC2_001 is slow."}]})";
    expectJson(body, want,
               {{"EC2_001", "i-0123456789abcdef0"},
                {"VPC_001", "vpc-0a1b2c3d"},
                {"SUBNET_001", "subnet-0123456789abcdef0"},
                {"SG_001", "sg-0123abcd"},
                {"PRIVATE_IP_001", "10.0.1.100"},
                {"BUCKET_001", "my-data-bucket"},
                {"RDS_HOST_001", "mydb.abc123xyz.us-east-1.rds.amazonaws.com"},
                {"IAM_ARN_001", "arn:aws:iam::123456789012:role/App"},
                {"ACCOUNT_001", "123456789012"}});
}

TEST_CASE("a secret named by a sibling string is masked even when either side has escapes")
{
    auto rs = veil::mask::RuleSet::compile(veil::mask::builtinPack("aws"));
    REQUIRE(rs.ok());
    veil::mask::Masker m(rs.value());
    for (std::string body : {
             std::string(R"({"environment":[{"name":"AWS_SECRET_ACCESS_KEY","value":"wJalrXUtnFEMI\/K7MDENG\/bPxRfiCYEXAMPLEKEY"}]})"),
             std::string(R"({"environment":[{"name":"AWS_SECRET\u005fACCESS_KEY","value":"wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY12"}]})"),
             std::string(R"({"name":"AWS_ACCOUNT_ID","value":"12345678901\u0032"})"),
         }) {
        auto r = m.maskJson(body);
        REQUIRE(r.ok());
        CHECK(r->mapping.size() == 1);
        CHECK(r->body.find("EXAMPLEKEY") == std::string::npos);
        CHECK(r->body.find("12345678901") == std::string::npos);
    }
}

TEST_CASE("a host rule starting inside a word masks the whole word, so its token comes back")
{
    // host.elasticache's class has no upper case and no '_': its leftmost
    // start here is after EC2_; the span is widened to the word.
    expectJson(R"({"a":"notify-reEC2_001dis.3tc42k.usw2.cache.amazonaws.com"})",
               R"({"a":"notify-ELASTICACHE_HOST_001"})",
               {{"ELASTICACHE_HOST_001", "reEC2_001dis.3tc42k.usw2.cache.amazonaws.com"}});
}

TEST_CASE("a token whose text stands raw before an escape is not handed out")
{
    expectJson(R"({"a":"SUBNET_001\u00349 subnet-0123abcd4567ef890"})",
               R"({"a":"SUBNET_001\u00349 SUBNET_002"})", {{"SUBNET_002", "subnet-0123abcd4567ef890"}});
}

TEST_CASE("a bucket and an account recognised once are masked in the conversation history too")
{
    // Turn 1 masked s3://acme-checkout-artifacts/…; the model answered a
    // tool_use with BUCKET_001, veild restored it, and turn 2 carries that
    // input back with the bare name (the lab's leak case).
    const std::string body =
        R"({"model":"claude-sonnet-4-5","max_tokens":512,"messages":[{"role":"user","content":"It assumes arn:aws:iam::123456789012:role/checkout-prod and reads s3://acme-checkout-artifacts/releases/. What now?"},)"
        R"({"role":"assistant","content":[{"type":"text","text":"Found: arn:aws:iam::123456789012:role/checkout-prod acme-checkout-artifacts."},)"
        R"({"type":"tool_use","id":"toolu_1","name":"describe","input":{"instance_id":"i-0a1b2c3d4e5f67890","all":["i-0a1b2c3d4e5f67890","acme-checkout-artifacts","123456789012"]}}]},)"
        R"({"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"{\"OwnerId\": \"123456789012\", \"Bucket\": \"acme-checkout-artifacts\"}"}]}]})";
    REQUIRE(awsRules());
    Masker m(awsRules());
    auto r = m.maskJson(body);
    REQUIRE(r.ok());
    CHECK(r->body.find("acme-checkout-artifacts") == std::string::npos);
    CHECK(r->body.find("123456789012") == std::string::npos);
    CHECK(show(r->mapping) == show(Pairs{{"IAM_ARN_001", "arn:aws:iam::123456789012:role/checkout-prod"},
                                         {"BUCKET_001", "acme-checkout-artifacts"},
                                         {"EC2_001", "i-0a1b2c3d4e5f67890"},
                                         {"ACCOUNT_001", "123456789012"}}));
    CHECK(r->stats.perType.at("BUCKET") == 4);
    CHECK(r->stats.perType.at("ACCOUNT") == 2);
    CHECK(r->stats.total == 10);
    CHECK(TokenRestorer::restoreAll(r->mapping, r->body, Escape::Json) == body);

    // The next answer streams the tokens back: restored as before.
    const std::string stream =
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\","
        "\"partial_json\":\"{\\\"bucket\\\": \\\"BUCKET_0\"}}\n\n"
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\","
        "\"partial_json\":\"01\\\", \\\"owner\\\": \\\"ACCOUNT_001\\\"}\"}}\n\n"
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n";
    SseUnmasker sse(r->mapping);
    std::string out;
    REQUIRE(sse.feed(stream, out).ok());
    sse.finish(out);
    CHECK(out.find("acme-checkout-artifacts") != std::string::npos);
    CHECK(out.find("123456789012") != std::string::npos);
    CHECK(out.find("BUCKET_0") == std::string::npos);
    CHECK(sse.restored() == 2);
}

TEST_CASE("an account id carried only by typed ARNs is masked where it stands bare in prose")
{
    expectJson(R"({"a":"assume arn:aws:iam::123456789012:role/deploy","b":"billed to 123456789012 in May"})",
               R"({"a":"assume IAM_ARN_001","b":"billed to ACCOUNT_001 in May"})",
               {{"IAM_ARN_001", "arn:aws:iam::123456789012:role/deploy"}, {"ACCOUNT_001", "123456789012"}});
}
