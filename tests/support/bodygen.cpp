// Seeded generator of Anthropic Messages API bodies with planted AWS
// identifiers and decoys. See bodygen.h for the contract.
//
// How a body is built
// -------------------
// Content is assembled as a tree of Values whose strings are Texts: runs of
// plain bytes and planted identifiers. An identifier may carry a forced escape
// (\u0069 for one of its bytes, or \/ for its slashes) that is applied when the
// string holding it is encoded; tool output that is itself JSON (AWS CLI,
// CloudTrail, policies) is serialised first and becomes plain text of the
// enclosing string, so an identifier is escaped at its own level and then
// once more per level it is nested in.
//
// Density: every identifier written is counted against a budget of
// idsPer10k × bytes-so-far. Snippets are picked by how far behind the budget
// is (CLI JSON and tables when far behind, prose when ahead), and optional
// slots in log lines and tables fill with an identifier only while behind.
//
// Everything that the aws pack should mask goes through put() (recorded as
// Planted); every look-alike goes through decoy() (recorded as Decoy).
// Plain filler never contains either.

#include "support/bodygen.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <functional>
#include <map>
#include <random>
#include <utility>

namespace veil::bodygen {

namespace {

// ---- randomness ----------------------------------------------------------

constexpr std::string_view kHex = "0123456789abcdef";
constexpr std::string_view kHexUpper = "0123456789ABCDEF";
constexpr std::string_view kLower = "abcdefghijklmnopqrstuvwxyz";
constexpr std::string_view kLowerAlnum = "abcdefghijklmnopqrstuvwxyz0123456789";
constexpr std::string_view kUpperAlnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
constexpr std::string_view kBase32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
constexpr std::string_view kBase62 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
constexpr std::string_view kBase64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
// Kubernetes' "safe" alphabet for generated name suffixes (no vowels, no 0/1/3).
constexpr std::string_view kK8sSafe = "bcdfghjklmnpqrstvwxz2456789";

// Bounded draws of our own: <random>'s distributions differ between
// standard libraries, mt19937_64's raw output does not.
class Rng {
public:
    explicit Rng(std::uint64_t seed) : g_(seed) {}

    std::uint64_t below(std::uint64_t n)
    {
        const std::uint64_t threshold = (0 - n) % n;
        std::uint64_t x = g_();
        while (x < threshold)
            x = g_();
        return x % n;
    }
    int range(int lo, int hi) { return lo + static_cast<int>(below(static_cast<std::uint64_t>(hi - lo + 1))); }
    double unit() { return static_cast<double>(g_() >> 11) * 0x1.0p-53; }
    bool chance(double p) { return unit() < p; }

    template <typename T, std::size_t N> const T& pick(const T (&a)[N]) { return a[below(N)]; }
    template <typename T> const T& pick(const std::vector<T>& v) { return v[below(v.size())]; }

    std::string chars(std::string_view alphabet, std::size_t n)
    {
        std::string s(n, ' ');
        for (auto& c : s)
            c = alphabet[below(alphabet.size())];
        return s;
    }
    // Random characters with at least one digit (validators want one).
    std::string charsWithDigit(std::string_view alphabet, std::size_t n)
    {
        std::string s = chars(alphabet, n);
        s[below(n)] = static_cast<char>('0' + below(10));
        return s;
    }
    std::string hex(std::size_t n) { return chars(kHex, n); }
    std::string digits(std::size_t n)
    {
        std::string s = chars("0123456789", n);
        if (s[0] == '0')
            s[0] = static_cast<char>('1' + below(9));
        return s;
    }
    std::string uuid()
    {
        return hex(8) + "-" + hex(4) + "-4" + hex(3) + "-" + chars("89ab", 1) + hex(3) + "-" + hex(12);
    }

private:
    std::mt19937_64 g_;
};

// ---- text with planted identifiers -----------------------------------------

// A forced escape on an identifier, applied when its string is encoded.
enum class Esc : std::uint8_t {
    None,
    Unicode, // the byte at `at` as \u00XX
    Slash,   // every '/' as \/
};

struct Piece {
    std::string s;
    Esc esc = Esc::None;
    std::uint32_t at = 0;
};

struct Text {
    std::vector<Piece> pieces;

    Text() = default;
    Text(std::string_view s) { append(s); }    // NOLINT: implicit on purpose
    Text(const char* s) : Text(std::string_view(s)) {}
    Text(const std::string& s) : Text(std::string_view(s)) {}

    void append(std::string_view s)
    {
        if (s.empty())
            return;
        if (!pieces.empty() && pieces.back().esc == Esc::None)
            pieces.back().s += s;
        else
            pieces.push_back(Piece{std::string(s)});
    }
    void appendText(const Text& t)
    {
        for (const auto& p : t.pieces) {
            if (p.esc == Esc::None)
                append(p.s);
            else
                pieces.push_back(p);
        }
    }
    std::size_t size() const
    {
        std::size_t n = 0;
        for (const auto& p : pieces)
            n += p.s.size();
        return n;
    }
    std::string plain() const
    {
        std::string s;
        for (const auto& p : pieces)
            s += p.s;
        return s;
    }
};

// ---- a small JSON tree ----------------------------------------------------------

struct Value {
    enum class Kind : std::uint8_t { Null, Literal, String, Array, Object };
    Kind kind = Kind::Null;
    std::string literal;      // numbers, true, false
    Text text;                // strings
    std::vector<Text> keys;   // objects: keys[i] names items[i]
    std::vector<Value> items; // arrays and objects

    Value& set(Text key, Value v)
    {
        keys.push_back(std::move(key));
        items.push_back(std::move(v));
        return *this;
    }
    Value& push(Value v)
    {
        items.push_back(std::move(v));
        return *this;
    }
};

Value object()
{
    Value v;
    v.kind = Value::Kind::Object;
    return v;
}
Value array()
{
    Value v;
    v.kind = Value::Kind::Array;
    return v;
}
Value str(Text t)
{
    Value v;
    v.kind = Value::Kind::String;
    v.text = std::move(t);
    return v;
}
Value lit(std::string s)
{
    Value v;
    v.kind = Value::Kind::Literal;
    v.literal = std::move(s);
    return v;
}
Value num(long long n)
{
    return lit(std::to_string(n));
}
Value boolean(bool b)
{
    return lit(b ? "true" : "false");
}

// ---- encoding ----------------------------------------------------------------------

struct Style {
    JsonStyle id;
    const char* name;
    bool escapeSlash; // "/" → "\/"
    bool asciiOnly;   // non-ASCII → \uXXXX
    bool htmlSafe;    // < > & U+2028 U+2029 → \uXXXX
    bool spaced;      // ", " and ": " (compact output only)
};

constexpr Style kStyles[] = {
    {JsonStyle::JavaScript, "javascript", false, false, false, false},
    {JsonStyle::Python, "python", false, true, false, true},
    {JsonStyle::Go, "go", false, false, true, false},
    {JsonStyle::Php, "php", true, true, false, false},
};

const Style& styleOf(JsonStyle s)
{
    for (const auto& st : kStyles)
        if (st.id == s)
            return st;
    return kStyles[0];
}

// Tool output printed by CLIs: `aws` and kubectl indent by 4, CloudTrail and
// policies are compact, both with Python-like separators or none.
struct Format {
    const Style* style;
    int indent; // 0: compact
};

void hexUnit(unsigned u, std::string& out)
{
    char buf[16];
    std::snprintf(buf, sizeof buf, "\\u%04x", u & 0xFFFF);
    out += buf;
}

// Decodes one UTF-8 sequence starting at s[i]; returns its length (1 on a
// stray byte, which is then passed through).
std::size_t utf8At(std::string_view s, std::size_t i, unsigned& cp)
{
    auto b = static_cast<unsigned char>(s[i]);
    std::size_t n = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
    if (i + n > s.size())
        n = 1;
    cp = n == 1 ? b : (b & (0x7F >> n));
    for (std::size_t k = 1; k < n; ++k)
        cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    return n;
}

void encodeBytes(std::string_view s, const Style& st, const Piece* forced, std::string& out)
{
    for (std::size_t i = 0; i < s.size();) {
        const char c = s[i];
        const auto u = static_cast<unsigned char>(c);
        if (forced && forced->esc == Esc::Unicode && i == forced->at && u < 0x80) {
            hexUnit(u, out);
            ++i;
            continue;
        }
        if (u >= 0x80) {
            unsigned cp = 0;
            std::size_t n = utf8At(s, i, cp);
            const bool lineSep = cp == 0x2028 || cp == 0x2029;
            if (st.asciiOnly || (st.htmlSafe && lineSep)) {
                if (cp >= 0x10000) {
                    cp -= 0x10000;
                    hexUnit(0xD800 + (cp >> 10), out);
                    hexUnit(0xDC00 + (cp & 0x3FF), out);
                } else {
                    hexUnit(cp, out);
                }
            } else {
                out.append(s.substr(i, n));
            }
            i += n;
            continue;
        }
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        case '/':
            if (st.escapeSlash || (forced && forced->esc == Esc::Slash))
                out += "\\/";
            else
                out += '/';
            break;
        case '<': case '>': case '&':
            if (st.htmlSafe)
                hexUnit(u, out);
            else
                out += c;
            break;
        default:
            if (u < 0x20)
                hexUnit(u, out);
            else
                out += c;
        }
        ++i;
    }
}

void encodeText(const Text& t, const Style& st, std::string& out)
{
    for (const auto& p : t.pieces)
        encodeBytes(p.s, st, p.esc == Esc::None ? nullptr : &p, out);
}

void newline(const Format& f, int depth, std::string& out)
{
    out += '\n';
    out.append(static_cast<std::size_t>(f.indent * depth), ' ');
}

void write(const Value& v, const Format& f, int depth, std::string& out)
{
    const bool pretty = f.indent > 0;
    const char* comma = pretty ? "," : f.style->spaced ? ", " : ",";
    const char* colon = pretty || f.style->spaced ? ": " : ":";
    switch (v.kind) {
    case Value::Kind::Null: out += "null"; break;
    case Value::Kind::Literal: out += v.literal; break;
    case Value::Kind::String:
        out += '"';
        encodeText(v.text, *f.style, out);
        out += '"';
        break;
    case Value::Kind::Array:
    case Value::Kind::Object: {
        const bool obj = v.kind == Value::Kind::Object;
        out += obj ? '{' : '[';
        for (std::size_t i = 0; i < v.items.size(); ++i) {
            if (i)
                out += comma;
            if (pretty)
                newline(f, depth + 1, out);
            if (obj) {
                out += '"';
                encodeText(v.keys[i], *f.style, out);
                out += '"';
                out += colon;
            }
            write(v.items[i], f, depth + 1, out);
        }
        if (pretty && !v.items.empty())
            newline(f, depth, out);
        out += obj ? '}' : ']';
        break;
    }
    }
}

std::string serialize(const Value& v, const Format& f)
{
    std::string out;
    write(v, f, 0, out);
    return out;
}


// ---- vocabulary ------------------------------------------------------------------------

struct HexFamily {
    const char* prefix;
    const char* type;
    const char* family;
    bool legacy8; // the 8-hex form exists too
    int weight;   // how often it turns up in ops talk
};

constexpr HexFamily kHexFamilies[] = {
    {"i-", "EC2", "ec2_instance", true, 30},
    {"ami-", "AMI", "ami", true, 6},
    {"vol-", "EBS_VOL", "ebs_volume", true, 8},
    {"snap-", "EBS_SNAP", "ebs_snapshot", true, 4},
    {"sg-", "SG", "security_group", true, 14},
    {"sgr-", "SGR", "security_group_rule", false, 2},
    {"subnet-", "SUBNET", "subnet", true, 14},
    {"vpc-", "VPC", "vpc", true, 10},
    {"igw-", "IGW", "internet_gateway", true, 3},
    {"eigw-", "EIGW", "egress_only_igw", true, 1},
    {"nat-", "NAT_GW", "nat_gateway", true, 4},
    {"tgw-", "TGW", "transit_gateway", true, 2},
    {"eni-", "ENI", "network_interface", true, 6},
    {"rtb-", "RTB", "route_table", true, 5},
    {"vpce-", "VPCE", "vpc_endpoint", true, 3},
    {"fs-", "EFS", "efs", true, 2},
    {"fsap-", "EFS_AP", "efs_access_point", true, 1},
    {"acl-", "NACL", "network_acl", true, 1},
    {"eipalloc-", "EIP_ALLOC", "eip_allocation", true, 2},
    {"eipassoc-", "EIP_ASSOC", "eip_association", true, 1},
    {"pcx-", "PCX", "vpc_peering", true, 1},
    {"dopt-", "DOPT", "dhcp_options", true, 1},
    {"lt-", "LT", "launch_template", true, 2},
    {"cgw-", "CGW", "customer_gateway", true, 1},
    {"vgw-", "VGW", "vpn_gateway", true, 1},
    {"vpn-", "VPN", "vpn_connection", true, 1},
    {"pl-", "PL", "prefix_list", true, 1},
    {"fl-", "FLOW_LOG", "flow_log", true, 1},
    {"key-", "KEY_PAIR", "key_pair", false, 1},
    {"cr-", "CAP_RES", "capacity_reservation", true, 1},
    {"lgw-", "LGW", "local_gateway", true, 1},
    {"cagw-", "CAGW", "carrier_gateway", true, 1},
    {"ipam-", "IPAM", "ipam", true, 1},
    {"rtbassoc-", "RTB_ASSOC", "rtb_association", true, 2},
    {"aclassoc-", "NACL_ASSOC", "acl_association", true, 1},
    {"h-", "DEDICATED_HOST", "dedicated_host", false, 1},
    {"r-", "RESERVATION", "reservation", false, 2},
    {"mi-", "SSM_MI", "ssm_managed_instance", false, 1},
    {"tgw-attach-", "TGW_ATTACH", "tgw_attachment", true, 2},
    {"tgw-rtb-", "TGW_RTB", "tgw_route_table", true, 1},
    {"tgw-mcast-domain-", "TGW_MCAST", "tgw_multicast_domain", true, 1},
    {"eni-attach-", "ENI_ATTACH", "eni_attachment", true, 3},
    {"vpce-svc-", "VPCE_SVC", "vpc_endpoint_service", true, 1},
    {"ipam-pool-", "IPAM_POOL", "ipam_pool", true, 1},
    {"ipam-scope-", "IPAM_SCOPE", "ipam_scope", true, 1},
    {"vpc-cidr-assoc-", "VPC_CIDR_ASSOC", "vpc_cidr_association", true, 1},
    {"subnet-cidr-assoc-", "SUBNET_CIDR_ASSOC", "subnet_cidr_association", true, 1},
    {"cvpn-endpoint-", "CVPN", "client_vpn_endpoint", true, 1},
    {"lgw-rtb-", "LGW_RTB", "local_gateway_route_table", true, 1},
};

struct ArnKind {
    const char* service;
    const char* type; // nullptr: the pack masks only the account (ACCOUNT)
    int weight;
    bool regional;
    bool account;
};

constexpr ArnKind kArnKinds[] = {
    {"iam", "IAM_ARN", 14, false, true},
    {"sts", "STS_ARN", 5, false, true},
    {"lambda", "LAMBDA_ARN", 8, true, true},
    {"rds", "RDS_ARN", 4, true, true},
    {"ec2", "EC2_ARN", 4, true, true},
    {"sqs", "SQS_ARN", 4, true, true},
    {"sns", "SNS_ARN", 4, true, true},
    {"dynamodb", "DYNAMODB_ARN", 4, true, true},
    {"kms", "KMS_ARN", 5, true, true},
    {"secretsmanager", "SECRET_ARN", 3, true, true},
    {"ecs", "ECS_ARN", 3, true, true},
    {"eks", "EKS_ARN", 3, true, true},
    {"elasticloadbalancing", "ELB_ARN", 4, true, true},
    {"logs", "LOGS_ARN", 3, true, true},
    {"cloudformation", "CFN_ARN", 2, true, true},
    {"states", "SFN_ARN", 2, true, true},
    {"ecr", "ECR_ARN", 2, true, true},
    {"acm", "ACM_ARN", 2, true, true},
    {"ssm", "SSM_ARN", 2, true, true},
    {"execute-api", "APIGW_ARN", 1, true, true},
    {"apigateway", "APIGW_ARN", 1, true, false},
    {"events", "EVENTS_ARN", 1, true, true},
    {"kinesis", "KINESIS_ARN", 1, true, true},
    {"firehose", "KINESIS_ARN", 1, true, true},
    {"elasticache", "ELASTICACHE_ARN", 1, true, true},
    {"es", "OPENSEARCH_ARN", 1, true, true},
    {"glue", "GLUE_ARN", 1, true, true},
    {"athena", "ATHENA_ARN", 1, true, true},
    {"route53", "ROUTE53_ARN", 1, false, false},
    {"cloudfront", "CLOUDFRONT_ARN", 1, false, true},
    {"redshift", "REDSHIFT_ARN", 1, true, true},
    {"elasticfilesystem", "EFS_ARN", 1, true, true},
    {"cognito-idp", "COGNITO_ARN", 1, true, true},
    {"codebuild", "CODE_ARN", 1, true, true},
    {"backup", "BACKUP_ARN", 1, true, true},
    {"batch", "BATCH_ARN", 1, true, true},
    {"sagemaker", "SAGEMAKER_ARN", 1, true, true},
    {"bedrock", "BEDROCK_ARN", 1, true, true},
    {"elasticmapreduce", "EMR_ARN", 1, true, true},
    {"autoscaling", "ASG_ARN", 1, true, true},
    {"wafv2", "WAF_ARN", 1, true, true},
    {"organizations", "ORG_ARN", 1, false, true},
    {"cloudwatch", "CLOUDWATCH_ARN", 1, true, true},
    {"cloudtrail", "CLOUDTRAIL_ARN", 1, true, true},
    {"appsync", "APPSYNC_ARN", 1, true, true},
    {"kafka", "MSK_ARN", 1, true, true},
    {"mq", "MQ_ARN", 1, true, true},
    {"ses", "SES_ARN", 1, true, true},
    {"elasticbeanstalk", "EB_ARN", 1, true, true},
    {"ds", "DIRECTORY_ARN", 1, true, true},
    // Services without a typed rule: only the account id is masked.
    {"iot", nullptr, 1, true, true},
    {"appflow", nullptr, 1, true, true},
    {"transfer", nullptr, 1, true, true},
    {"ram", nullptr, 1, true, true},
    {"xray", nullptr, 1, true, true},
    {"synthetics", nullptr, 1, true, true},
    {"imagebuilder", nullptr, 1, true, true},
    {"network-firewall", nullptr, 1, true, true},
};

constexpr const char* kRegions[] = {"us-east-1",    "us-east-1",      "us-east-2",      "us-west-2",    "us-west-2",
                                    "eu-west-1",    "eu-central-1",   "ap-southeast-2", "ap-northeast-1",
                                    "ca-central-1", "sa-east-1",      "eu-north-1"};
constexpr const char* kServices[] = {"payments", "orders",   "checkout", "inventory", "auth",     "search",
                                     "billing",  "ledger",   "notify",   "catalog",   "reporting", "ingest",
                                     "etl",      "gateway",  "frontend", "profile",   "pricing",  "shipping"};
constexpr const char* kRoles[] = {"api", "worker", "web", "consumer", "scheduler", "sync", "batch", "proxy"};
constexpr const char* kEnvs[] = {"prod", "prod", "production", "staging", "dev", "qa"};
constexpr const char* kSyllables[] = {"tar", "vo", "lix", "mer", "qua", "zen", "dro", "ka", "bri",
                                      "nex", "sol", "vi", "tro", "pel", "gor", "an", "ux",  "ri"};
constexpr const char* kUsers[] = {"alice", "bob", "carol", "dmitri", "erin", "farah", "gustavo", "hana", "ivan", "jules"};
constexpr const char* kWords[] = {"latency", "throughput", "retries", "timeouts", "backoff", "quota",
                                  "rollout", "canary",     "drain",   "failover", "cutover", "runbook"};

// Look-alike words Kong's seed patterns matched, and other words that must survive.
constexpr const char* kDecoyWords[] = {"feedback",  "mongodb",     "prod-cluster", "access-logs", "dbadmin",
                                       "sandbox",   "couchdb",     "dynamodb-local", "token bucket", "bucket list",
                                       "jdbc",      "subnet mask", "ip-address",   "multi-az",    "wi-fi",
                                       "rds-style", "pgdb",        "kdb",          "x-ray",       "e-mail"};

constexpr const char* kModels[] = {"claude-sonnet-4-5-20250929", "claude-opus-4-1-20250805", "claude-sonnet-4-20250514",
                                   "claude-3-7-sonnet-20250219", "claude-3-5-haiku-20241022"};

// Prose without identifiers: what an engineer writes around them.
constexpr const char* kProse[] = {
    "We rolled back the last deploy but latency is still elevated.",
    "The alert fired at 03:12 UTC and paged whoever was on call.",
    "I already tried restarting the pods; it helped for about ten minutes.",
    "Nothing changed in the network config as far as I know.",
    "The dashboard shows p99 going from 180 ms to well over 2 s.",
    "We use connection pooling with a max of 50 connections per task.",
    "Could this be DNS? The resolver config is the default one.",
    "Let me know if you need more output — I can run any read-only command.",
    "The runbook says to check the target group first, then the security groups.",
    "It only happens under load, roughly above 400 requests per second.",
    "Our change freeze starts Friday, so I'd like a fix that is low risk.",
    "Café-grade coffee won't fix this one, I'm afraid ☕ — it's been going on since Monday.",
    "The retry policy is exponential backoff with jitter, capped at 5 attempts.",
    "Memory looks fine; CPU sits around 35 % on every node.",
    "I'm not sure whether the health check path changed in the last release.",
    "We moved the cron jobs to the new scheduler two weeks ago → maybe related?",
    "Logs are shipped with Fluent Bit to the central aggregator.",
    "The on-call handbook (日本語 version too) says to escalate after 30 minutes.",
    "Everything is deployed with Terraform and Argo CD, nothing by hand. ✓",
    "Please keep the answer short, I need to paste it into the incident channel 🚀.",
    "TLS terminates at the load balancer; the backends speak plain HTTP.",
    "We enabled cross-zone load balancing last quarter.",
    "The timeout on the client side is 30 s, on the server side 60 s.",
    "Autoscaling kicked in, but new tasks failed their health checks.",
};

constexpr const char* kAnalysis[] = {
    "Looking at the output, the most likely cause is a missing route back through the NAT gateway.",
    "The error suggests the role's trust policy does not allow this principal to assume it.",
    "This points to the security group rather than the network ACL: the ACL allows ephemeral ports.",
    "The timestamps line up with the deploy, so a configuration change is more likely than capacity.",
    "The health checks fail because the target port does not match the container port.",
    "I'd check the KMS key policy next; the volume cannot attach without kms:CreateGrant.",
    "The connection resets happen exactly at the idle timeout, which is a strong hint.",
    "Let me look at the related resources before suggesting a change.",
    "Good news: nothing here indicates data loss; it is a connectivity problem.",
    "To confirm, I'll query the current state of the resources involved.",
};

// ---- the generator ----------------------------------------------------------------------

struct Id {
    std::string value;
    const char* type;
    const char* family;
};

struct Dec {
    std::string value;
    const char* family;
};

struct ToolCall {
    std::string tool;
    Value input;
    Text output;
    bool isError = false;
};

class Gen {
public:
    explicit Gen(const BodyOptions& o);
    Body run();

    // Appends text and identifiers to one string's Text.
    struct Tb {
        Gen* g;
        Text t;
        Tb& operator<<(std::string_view s)
        {
            g->pending_ += s.size();
            t.append(s);
            return *this;
        }
        Tb& operator<<(const char* s) { return *this << std::string_view(s); }
        Tb& operator<<(const std::string& s) { return *this << std::string_view(s); }
        Tb& operator<<(const Id& id)
        {
            g->put(t, id);
            return *this;
        }
        Tb& operator<<(const Dec& d)
        {
            g->putDecoy(t, d);
            return *this;
        }
        Tb& operator<<(const Text& x)
        {
            g->pending_ += x.size();
            t.appendText(x);
            return *this;
        }
    };
    Tb tb() { return Tb{this, {}}; }

private:
    // ---- budget
    double deficit(std::size_t ahead = 0) const
    {
        const double bytes = static_cast<double>(bytes_ + pending_ + ahead);
        return o_.idsPer10k * bytes / 10240.0 - static_cast<double>(body_.planted.size());
    }
    bool want()
    {
        const double d = deficit();
        return d >= 1 || (d > 0 && r_.chance(d));
    }
    // Bytes left before the target size (at least a little: turns are whole).
    std::size_t room() const
    {
        const std::size_t used = bytes_ + pending_;
        return used + 600 < o_.targetBytes ? o_.targetBytes - used : 600;
    }
    double decoyDeficit() const
    {
        const double bytes = static_cast<double>(bytes_ + pending_);
        return o_.decoysPer10k * bytes / 10240.0 - static_cast<double>(body_.decoys.size());
    }

    // Known gaps of the pack are written only when asked for (gapRate).
    bool gap() { return o_.gapRate > 0 && r_.chance(o_.gapRate); }

    // ---- recording
    void put(Text& t, const Id& id, bool forceEscape = false);
    void putDecoy(Text& t, const Dec& d);
    Value sv(const Id& id)
    {
        Text t;
        put(t, id);
        return str(std::move(t));
    }
    Value sd(const Dec& d)
    {
        Text t;
        putDecoy(t, d);
        return str(std::move(t));
    }
    // A planted value written as a JSON number (account ids in tool input).
    Value nv(const Id& id)
    {
        body_.planted.push_back({id.value, id.type, id.family, false});
        pending_ += id.value.size();
        return lit(id.value);
    }

    // ---- world
    std::string acct() { return r_.chance(0.75) ? accounts_[0] : r_.pick(accounts_); }
    std::string region() { return r_.chance(0.8) ? regions_[0] : r_.pick(regions_); }
    std::string svc() { return r_.pick(kServices); }
    std::string env() { return r_.pick(kEnvs); }
    std::string kebab() { return svc() + "-" + r_.pick(kRoles); }
    std::string pascal();
    std::string ts();
    std::string k8sName() { return kebab() + "-" + r_.chars(kK8sSafe, 10) + "-" + r_.chars(kK8sSafe, 5); }
    std::string privIp();
    std::string pubIp();
    std::string bucketName();
    std::string objectKey();
    std::string hex17() { return "0" + r_.hex(16); }
    std::string dashed(const std::string& ip)
    {
        std::string s = ip;
        std::replace(s.begin(), s.end(), '.', '-');
        return s;
    }
    std::string shortRegion(const std::string& region);

    // Reuses an earlier value of the same kind with probability p: the same
    // instance turns up in the question, the command and its output.
    Id reuse(const std::string& key, const std::function<Id()>& make, double p = 0.4);

    // ---- identifiers
    Id hexId(std::string_view prefix);
    Id anyHexId();
    Id arn(std::string_view service = {});
    Id arnOf(const ArnKind& k);
    Id s3Bucket(const char* family) { return {bucketName(), "BUCKET", family}; }
    Id account(const char* family = "account_in_context") { return {acct(), "ACCOUNT", family}; }
    Id make(std::string_view slot);

    void s3Uri(Tb& b);
    void s3VirtualHosted(Tb& b);
    void s3PathStyle(Tb& b);
    void s3Arn(Tb& b);
    void presignedUrl(Tb& b);
    void sqsUrl(Tb& b);
    void ecrImage(Tb& b);
    void signinUrl(Tb& b);
    void eksOidcIssuer(Tb& b);
    void cidr(Tb& b);

    // ---- decoys
    Dec decoy(std::string_view family);

    // ---- templates: "{slot}" (identifier, "?slot" only while behind budget),
    // "{d:family}" (decoy), "{svc}", "{region}", … (filler); "{{" is "{".
    Text fill(std::string_view tpl);
    void slot(Tb& b, std::string_view name);
    void fallback(Tb& b, std::string_view name);

    // ---- content
    Text prose(int sentences);
    Text question();
    Text analysis();
    Text logLines(int n);
    Text textListing(int n);
    Text kubectlPods(int n);
    Text kubectlNodes(int n);
    Text terraformPlan(int n);
    Text manifest();
    Text credentialsFile();
    Text pasted(); // a blob the user pastes under a question
    ToolCall toolCall();
    Text jsonDoc(const Value& v);

    Value describeInstances(int n);
    Value securityGroups(int n);
    Value subnets(int n);
    Value routeTables(int n);
    Value callerIdentity();
    Value assumeRole();
    Value lambdaConfig();
    Value cloudTrail(int n);
    Value dbInstances();
    Value loadBalancers();
    Value queueAttributes();
    Value kmsKey();
    Value eksCluster();
    Value ecrRepositories(int n);
    Value bucketPolicy();
    Value recordSets(int n);
    Value natGateways(int n);
    Value volumes(int n);
    Value cacheClusters();
    Value organization();
    Value metricStats(bool withDimension);
    Value miscIds();
    ToolCall gapCall();

    Value tools();
    Value system();
    Value imageBlock();
    Value thinkingBlock();
    void conversation(Value& messages);

    Rng r_;
    BodyOptions o_;
    const Style* style_;
    Body body_;
    std::size_t bytes_ = 0;   // size of the body as last measured
    std::size_t pending_ = 0; // bytes written since
    std::vector<std::string> accounts_;
    std::vector<std::string> regions_;
    std::vector<int> vpcOctets_;
    std::string org_;
    std::string rdsHash_;
    std::string date_;
    std::map<std::string, std::vector<Id>> inv_;
    int toolSeq_ = 0;
};

// AWS CLI output: json.dumps(indent=4, ensure_ascii=False).
constexpr Style kCliStyle = {JsonStyle::Python, "aws-cli", false, false, false, true};
// CloudTrail records and IAM policies as services store them: compact.
constexpr Style kCompactStyle = {JsonStyle::JavaScript, "compact", false, false, false, false};

Value S(std::string_view s)
{
    return str(Text(s));
}

Gen::Gen(const BodyOptions& o) : r_(o.seed), o_(o)
{
    JsonStyle st = o.style;
    if (st == JsonStyle::Random) {
        // Most traffic comes from the TypeScript and Python SDKs.
        const std::uint64_t u = r_.below(10);
        st = u < 4 ? JsonStyle::JavaScript : u < 8 ? JsonStyle::Python : u < 9 ? JsonStyle::Go : JsonStyle::Php;
    }
    style_ = &styleOf(st);
    body_.style = st;

    const int syllables = r_.range(2, 3);
    for (int i = 0; i < syllables; ++i)
        org_ += r_.pick(kSyllables);
    const int accounts = r_.range(1, 3);
    for (int i = 0; i < accounts; ++i)
        accounts_.push_back(r_.digits(12));
    regions_.push_back(r_.pick(kRegions));
    if (r_.chance(0.3))
        regions_.push_back(r_.pick(kRegions));
    vpcOctets_ = {r_.range(0, 255), r_.range(0, 255)};
    rdsHash_ = "c" + r_.chars(kLowerAlnum, 11);
    char date[32];
    std::snprintf(date, sizeof date, "2024-%02d-%02d", r_.range(1, 12), r_.range(1, 28));
    date_ = date;
}

void Gen::put(Text& t, const Id& id, bool forceEscape)
{
    Piece p{id.value};
    bool forced = false;
    if (forceEscape || (o_.escapeRate > 0 && r_.chance(o_.escapeRate))) {
        forced = true;
        if (id.value.find('/') != std::string::npos && r_.chance(0.6)) {
            p.esc = Esc::Slash;
        } else {
            p.esc = Esc::Unicode;
            p.at = r_.chance(0.5) ? 0 : static_cast<std::uint32_t>(r_.below(id.value.size()));
        }
    }
    t.pieces.push_back(std::move(p));
    body_.planted.push_back({id.value, id.type, id.family, forced});
    pending_ += id.value.size();
}

void Gen::putDecoy(Text& t, const Dec& d)
{
    t.append(d.value);
    body_.decoys.push_back({d.value, d.family});
    pending_ += d.value.size();
}

std::string Gen::pascal()
{
    std::string s = svc();
    s[0] = static_cast<char>(s[0] - 'a' + 'A');
    std::string role = r_.pick(kRoles);
    role[0] = static_cast<char>(role[0] - 'a' + 'A');
    return s + role;
}

std::string Gen::ts()
{
    char buf[96];
    std::snprintf(buf, sizeof buf, "%sT%02d:%02d:%02d.%03dZ", date_.c_str(), r_.range(0, 23), r_.range(0, 59),
                  r_.range(0, 59), r_.range(0, 999));
    return buf;
}

std::string Gen::privIp()
{
    const auto o = [&](int lo, int hi) { return std::to_string(r_.range(lo, hi)); };
    const std::uint64_t u = r_.below(100);
    if (u < 60)
        return "10." + std::to_string(vpcOctets_[r_.below(2)]) + "." + o(0, 255) + "." + o(1, 254);
    if (u < 80)
        return "172." + o(16, 31) + "." + o(0, 255) + "." + o(1, 254);
    if (u < 95)
        return "192.168." + o(0, 255) + "." + o(1, 254);
    return "100." + o(64, 127) + "." + o(0, 255) + "." + o(1, 254);
}

std::string Gen::pubIp()
{
    static constexpr int kFirst[] = {3, 13, 18, 34, 35, 44, 50, 52, 54, 99};
    return std::to_string(r_.pick(kFirst)) + "." + std::to_string(r_.range(0, 255)) + "." +
           std::to_string(r_.range(0, 255)) + "." + std::to_string(r_.range(1, 254));
}

std::string Gen::bucketName()
{
    static constexpr const char* kPurpose[] = {"logs",    "data",    "artifacts", "backups", "exports",
                                               "assets",  "uploads", "tfstate",   "athena-results", "cdn"};
    const std::uint64_t u = r_.below(10);
    std::string purpose = r_.pick(kPurpose);
    if (u < 6)
        return org_ + "-" + purpose + "-" + env();
    if (u < 8)
        return org_ + "-" + purpose + "-" + region();
    if (u < 9)
        return purpose + "." + org_ + ".com";
    // The CDK bootstrap bucket carries the account id; the bucket is masked whole.
    return "cdk-" + r_.chars(kLowerAlnum, 9) + "-assets-" + acct() + "-" + region();
}

std::string Gen::objectKey()
{
    char buf[96];
    switch (r_.below(5)) {
    case 0:
        std::snprintf(buf, sizeof buf, "exports/2024/%02d/%02d/part-%05d.parquet", r_.range(1, 12), r_.range(1, 28),
                      r_.range(0, 999));
        return buf;
    case 1:
        return svc() + "/releases/v1." + std::to_string(r_.range(0, 30)) + "." + std::to_string(r_.range(0, 9)) +
               "/app.tar.gz";
    case 2: return "terraform/" + env() + "/terraform.tfstate";
    case 3: return "reports/" + date_ + "/daily.csv";
    default: return "incoming/" + r_.hex(8) + ".json";
    }
}

std::string Gen::shortRegion(const std::string& reg)
{
    // us-east-1 → use1, ap-southeast-2 → apse2, eu-central-1 → euc1
    std::string out;
    std::size_t a = reg.find('-');
    std::size_t b = reg.rfind('-');
    out = reg.substr(0, a);
    std::string dir = reg.substr(a + 1, b - a - 1);
    static constexpr std::pair<const char*, const char*> kDirs[] = {
        {"northeast", "ne"}, {"northwest", "nw"}, {"southeast", "se"}, {"southwest", "sw"}, {"north", "n"},
        {"south", "s"},      {"east", "e"},       {"west", "w"},       {"central", "c"}};
    for (const auto& [full, abbr] : kDirs)
        if (dir == full) {
            out += abbr;
            break;
        }
    return out + reg.substr(b + 1);
}

Id Gen::reuse(const std::string& key, const std::function<Id()>& make, double p)
{
    auto& v = inv_[key];
    if (!v.empty() && r_.chance(p))
        return r_.pick(v);
    v.push_back(make());
    return v.back();
}

Id Gen::hexId(std::string_view prefix)
{
    const HexFamily* fam = nullptr;
    for (const auto& f : kHexFamilies)
        if (prefix == f.prefix)
            fam = &f;
    if (!fam) {
        std::fprintf(stderr, "bodygen: unknown id prefix %.*s\n", static_cast<int>(prefix.size()), prefix.data());
        std::abort();
    }
    return reuse(fam->prefix, [&] {
        std::string v = std::string(fam->prefix) + (fam->legacy8 && r_.chance(0.15) ? r_.hex(8) : hex17());
        return Id{v, fam->type, fam->family};
    });
}

Id Gen::anyHexId()
{
    int total = 0;
    for (const auto& f : kHexFamilies)
        total += f.weight;
    int x = static_cast<int>(r_.below(static_cast<std::uint64_t>(total)));
    for (const auto& f : kHexFamilies) {
        if (x < f.weight)
            return hexId(f.prefix);
        x -= f.weight;
    }
    return hexId("i-");
}

Id Gen::arn(std::string_view service)
{
    if (!service.empty()) {
        for (const auto& k : kArnKinds)
            if (service == k.service)
                return arnOf(k);
    }
    int total = 0;
    for (const auto& k : kArnKinds)
        if (k.type)
            total += k.weight;
    int x = static_cast<int>(r_.below(static_cast<std::uint64_t>(total)));
    for (const auto& k : kArnKinds) {
        if (!k.type)
            continue;
        if (x < k.weight)
            return arnOf(k);
        x -= k.weight;
    }
    return arnOf(kArnKinds[0]);
}

Id Gen::arnOf(const ArnKind& k)
{
    return reuse(std::string("arn:") + k.service, [&] {
        std::string partition = "aws";
        std::string reg = region();
        if (k.regional && r_.chance(0.04)) {
            if (r_.chance(0.5)) {
                partition = "aws-cn";
                reg = "cn-north-1";
            } else {
                partition = "aws-us-gov";
                reg = "us-gov-west-1";
            }
        }
        const std::string_view s = k.service;
        const std::string name = kebab();
        std::string res;
        const std::uint64_t u = r_.below(4);
        if (s == "iam") {
            res = u == 0   ? "role/" + pascal() + "Role"
                  : u == 1 ? "role/service-role/" + name + "-role-" + r_.chars(kLowerAlnum, 8)
                  : u == 2 ? "user/" + std::string(r_.pick(kUsers))
                           : "instance-profile/" + name + "-profile";
            if (r_.chance(0.08))
                res = "root";
            else if (r_.chance(0.05))
                res = "oidc-provider/oidc.eks." + reg + ".amazonaws.com/id/" + r_.chars(kHexUpper, 32);
            else if (r_.chance(0.1))
                res = "policy/" + pascal() + "Policy";
        } else if (s == "sts") {
            res = "assumed-role/" + pascal() + "Role/" +
                  (u < 2 ? "botocore-session-" + r_.digits(10) : std::string(r_.pick(kUsers)) + "@" + org_ + ".com");
        } else if (s == "lambda") {
            res = u == 0 ? "function:" + name + ":$LATEST"
                  : u == 1 ? "layer:" + name + "-deps:" + std::to_string(r_.range(1, 40))
                           : "function:" + name;
        } else if (s == "rds") {
            res = u == 0 ? "db:" + name + "-db" : u == 1 ? "cluster:" + name + "-cluster" : "db:" + name;
        } else if (s == "ec2") {
            static constexpr std::pair<const char*, const char*> kTypes[] = {
                {"instance/", "i-"}, {"volume/", "vol-"}, {"security-group/", "sg-"}, {"vpc/", "vpc-"},
                {"subnet/", "subnet-"}, {"network-interface/", "eni-"}, {"natgateway/", "nat-"}};
            const auto& [kind, prefix] = r_.pick(kTypes);
            res = std::string(kind) + prefix + hex17();
        } else if (s == "sqs") {
            res = name + (u == 0 ? ".fifo" : u == 1 ? "-dlq" : "");
        } else if (s == "sns") {
            res = name + "-alerts" + (u == 0 ? ":" + r_.uuid() : "");
        } else if (s == "dynamodb") {
            res = "table/" + pascal() + (u == 0 ? "/stream/" + date_ + "T10:20:30.123" : "");
        } else if (s == "kms") {
            res = u == 0 ? "alias/" + name : u == 1 ? "key/mrk-" + r_.hex(32) : "key/" + r_.uuid();
        } else if (s == "secretsmanager") {
            res = "secret:" + env() + "/" + name + "/db-credentials-" + r_.chars(kBase62, 6);
        } else if (s == "ecs") {
            res = u == 0   ? "cluster/" + name
                  : u == 1 ? "service/" + svc() + "-cluster/" + name
                  : u == 2 ? "task/" + svc() + "-cluster/" + r_.hex(32)
                           : "task-definition/" + name + ":" + std::to_string(r_.range(1, 200));
        } else if (s == "eks") {
            res = u == 0 ? "nodegroup/" + svc() + "-" + env() + "/ng-" + r_.chars(kLowerAlnum, 4) + "/" + r_.uuid()
                         : "cluster/" + svc() + "-" + env();
        } else if (s == "elasticloadbalancing") {
            res = u == 0   ? "targetgroup/" + name + "-tg/" + r_.hex(16)
                  : u == 1 ? "loadbalancer/net/" + name + "/" + r_.hex(16)
                           : "loadbalancer/app/" + name + "/" + r_.hex(16);
        } else if (s == "logs") {
            res = u == 0 ? "log-group:/aws/lambda/" + name + ":*" : "log-group:/ecs/" + name;
        } else if (s == "cloudformation") {
            res = "stack/" + pascal() + "Stack/" + r_.uuid();
        } else if (s == "states") {
            res = u == 0 ? "execution:" + pascal() + ":" + r_.uuid() : "stateMachine:" + pascal();
        } else if (s == "ecr") {
            res = "repository/" + name;
        } else if (s == "acm") {
            res = "certificate/" + r_.uuid();
        } else if (s == "ssm") {
            res = "parameter/" + env() + "/" + name + "/db-password";
        } else if (s == "execute-api") {
            res = r_.chars(kLowerAlnum, 10) + "/" + (u == 0 ? "*" : "prod") + "/GET/orders";
        } else if (s == "apigateway") {
            res = "/restapis/" + r_.chars(kLowerAlnum, 10);
        } else if (s == "events") {
            res = u == 0 ? "event-bus/" + name : "rule/" + name + "-nightly";
        } else if (s == "kinesis") {
            res = "stream/" + name + "-events";
        } else if (s == "firehose") {
            res = "deliverystream/" + name + "-to-s3";
        } else if (s == "elasticache") {
            res = u == 0 ? "replicationgroup:" + name : "cluster:" + name + "-001";
        } else if (s == "es") {
            res = "domain/" + svc() + "-logs";
        } else if (s == "glue") {
            res = u == 0 ? "database/" + svc() + "_raw" : "table/" + svc() + "_raw/events";
        } else if (s == "athena") {
            res = "workgroup/" + svc() + "-analysts";
        } else if (s == "route53") {
            res = "hostedzone/Z" + r_.chars(kUpperAlnum, 13);
        } else if (s == "cloudfront") {
            res = "distribution/E" + r_.chars(kUpperAlnum, 13);
        } else if (s == "redshift") {
            res = "cluster:" + svc() + "-warehouse";
        } else if (s == "elasticfilesystem") {
            res = "file-system/fs-" + hex17();
        } else if (s == "cognito-idp") {
            res = "userpool/" + reg + "_" + r_.charsWithDigit(kBase62, 9);
        } else if (s == "codebuild") {
            res = "project/" + name + "-build";
        } else if (s == "backup") {
            res = "backup-vault:" + env() + "-vault";
        } else if (s == "batch") {
            res = "job-queue/" + name + "-queue";
        } else if (s == "sagemaker") {
            res = "endpoint/" + svc() + "-model-" + env();
        } else if (s == "bedrock") {
            res = u == 0 ? "provisioned-model/" + r_.chars(kLowerAlnum, 12)
                         : "inference-profile/us.anthropic.claude-3-5-sonnet-20240620-v1:0";
        } else if (s == "elasticmapreduce") {
            res = "cluster/j-" + r_.charsWithDigit(kUpperAlnum, 13);
        } else if (s == "autoscaling") {
            res = "autoScalingGroup:" + r_.uuid() + ":autoScalingGroupName/" + name + "-asg";
        } else if (s == "wafv2") {
            res = "regional/webacl/" + name + "-acl/" + r_.uuid();
        } else if (s == "organizations") {
            res = "account/o-" + r_.charsWithDigit(kLowerAlnum, 10) + "/" + r_.digits(12);
        } else if (s == "cloudwatch") {
            res = "alarm:" + name + "-high-cpu";
        } else if (s == "cloudtrail") {
            res = "trail/" + org_ + "-org-trail";
        } else if (s == "appsync") {
            res = "apis/" + r_.chars(kLowerAlnum, 26);
        } else if (s == "kafka") {
            res = "cluster/" + svc() + "-kafka/" + r_.uuid() + "-" + std::to_string(r_.range(1, 25));
        } else if (s == "mq") {
            res = "broker:" + name + ":b-" + r_.uuid();
        } else if (s == "ses") {
            res = "identity/" + org_ + ".com";
        } else if (s == "elasticbeanstalk") {
            res = "environment/" + svc() + "/" + svc() + "-" + env();
        } else if (s == "ds") {
            res = "directory/d-" + r_.hex(10);
        } else {
            res = "thing/" + name;
        }
        const std::string region = k.regional ? reg : "";
        const std::string account = k.account ? acct() : "";
        return Id{"arn:" + partition + ":" + std::string(s) + ":" + region + ":" + account + ":" + res,
                  k.type ? k.type : "ACCOUNT", "arn"};
    });
}

Id Gen::make(std::string_view slot)
{
    const std::string reg = region();
    // Resource ids by prefix.
    static constexpr std::pair<const char*, const char*> kPrefixes[] = {
        {"ec2", "i-"},        {"ami", "ami-"},       {"vol", "vol-"},         {"snap", "snap-"},
        {"sg", "sg-"},        {"subnet", "subnet-"}, {"vpc", "vpc-"},         {"igw", "igw-"},
        {"nat", "nat-"},      {"eni", "eni-"},       {"rtb", "rtb-"},         {"vpce", "vpce-"},
        {"tgw", "tgw-"},      {"efs", "fs-"},        {"lt", "lt-"},           {"eipalloc", "eipalloc-"},
        {"tgwattach", "tgw-attach-"}, {"eniattach", "eni-attach-"}, {"rtbassoc", "rtbassoc-"},
        {"reservation", "r-"}, {"pl", "pl-"},
    };
    for (const auto& [name, prefix] : kPrefixes)
        if (slot == name)
            return hexId(prefix);
    if (slot == "hexid")
        return anyHexId();

    if (slot == "akid")
        return reuse("akid", [&] {
            return Id{(r_.chance(0.6) ? "ASIA" : "AKIA") + r_.chars(kBase32, 16), "ACCESS_KEY", "access_key_id"};
        });
    if (slot == "iamid") {
        static constexpr const char* kPrefix[] = {"AIDA", "AROA", "AIPA", "ANPA", "AGPA"};
        return reuse("iamid", [&] { return Id{r_.pick(kPrefix) + r_.chars(kBase32, 17), "IAM_ID", "iam_unique_id"}; });
    }
    if (slot == "roleid")
        return reuse("roleid", [&] { return Id{"AROA" + r_.chars(kBase32, 17), "IAM_ID", "iam_unique_id"}; });
    if (slot == "secret")
        return reuse("secret", [&] { return Id{r_.chars(kBase64, 40), "SECRET_KEY", "secret_access_key"}; });
    if (slot == "token")
        return reuse("token", [&] {
            std::string t = std::string(r_.chance(0.8) ? "IQoJb3JpZ2luX2Vj" : "FwoGZXIvYXdzE") +
                            r_.chars(kBase64, static_cast<std::size_t>(r_.range(200, 420)));
            return Id{t, "SESSION_TOKEN", "session_token"};
        });
    if (slot == "sig")
        return Id{r_.charsWithDigit(kHex, 64), "SIGNATURE", "presigned_signature"};

    if (slot == "arn")
        return arn();
    if (slot == "arn_role")
        return reuse("arn_role", [&] {
            return Id{"arn:aws:iam::" + acct() + ":role/" +
                          (r_.chance(0.7) ? pascal() + "Role" : "service-role/" + kebab() + "-role"),
                      "IAM_ARN", "arn"};
        });
    if (slot == "arn_sts")
        return reuse("arn_sts", [&] { return arn("sts"); }, 0.6);
    static constexpr std::pair<const char*, const char*> kArnSlots[] = {
        {"arn_lambda", "lambda"},  {"arn_kms", "kms"},         {"arn_eks", "eks"},     {"arn_cfn", "cloudformation"},
        {"arn_sqs", "sqs"},        {"arn_sns", "sns"},         {"arn_elb", "elasticloadbalancing"},
        {"arn_secret", "secretsmanager"}, {"arn_logs", "logs"}, {"arn_ecs", "ecs"}, {"arn_dynamodb", "dynamodb"},
        {"arn_rds", "rds"},        {"arn_ecr", "ecr"},         {"arn_iam", "iam"},
    };
    for (const auto& [name, service] : kArnSlots)
        if (slot == name)
            return arn(service);

    if (slot == "acct")
        return account();
    if (slot == "acctdash") {
        const std::string a = acct();
        return Id{a.substr(0, 4) + "-" + a.substr(4, 4) + "-" + a.substr(8, 4), "ACCOUNT", "account_dashed"};
    }

    // Service host names.
    if (slot == "rds")
        return reuse("rds", [&] {
            const std::string name = r_.chance(0.5) ? svc() + "-db" : kebab();
            const std::uint64_t u = r_.below(10);
            std::string h = u < 4   ? name + "." + rdsHash_ + "." + reg + ".rds.amazonaws.com"
                            : u < 7 ? name + ".cluster-" + rdsHash_ + "." + reg + ".rds.amazonaws.com"
                            : u < 8 ? name + ".cluster-ro-" + rdsHash_ + "." + reg + ".rds.amazonaws.com"
                            : u < 9 ? name + ".proxy-" + rdsHash_ + "." + reg + ".rds.amazonaws.com"
                                    : name + ".cluster-" + rdsHash_ + "." + reg + ".docdb.amazonaws.com";
            return Id{h, "RDS_HOST", "rds_host"};
        });
    if (slot == "elb")
        return reuse("elb", [&] {
            static constexpr const char* kKinds[] = {"alb", "nlb", "lb", "public-alb"};
            const std::string name = svc() + "-" + r_.pick(kKinds);
            const std::uint64_t u = r_.below(10);
            std::string h = u < 5   ? name + "-" + r_.digits(10) + "." + reg + ".elb.amazonaws.com"
                            : u < 7 ? "internal-" + name + "-" + r_.digits(10) + "." + reg + ".elb.amazonaws.com"
                            : u < 9 ? name + "-" + r_.hex(16) + ".elb." + reg + ".amazonaws.com"
                                    : "dualstack." + name + "-" + r_.digits(10) + "." + reg + ".elb.amazonaws.com";
            return Id{h, "ELB_HOST", "elb_host"};
        });
    if (slot == "eks") {
        const Id hex = reuse("ekshex", [&] { return Id{r_.chars(kHexUpper, 32), "EKS_OIDC", "eks_oidc"}; }, 0.9);
        static constexpr const char* kCells[] = {"gr7", "yl4", "sk1"};
        return Id{hex.value + "." + r_.pick(kCells) + "." + regions_[0] + ".eks.amazonaws.com", "EKS_HOST", "eks_host"};
    }
    if (slot == "apigw")
        return reuse("apigw", [&] {
            return Id{r_.chars(kLowerAlnum, 10) + ".execute-api." + reg + ".amazonaws.com", "APIGW_HOST", "apigw_host"};
        });
    if (slot == "lambdaurl")
        return Id{r_.chars(kLowerAlnum, 32) + ".lambda-url." + reg + ".on.aws", "LAMBDA_URL_HOST", "lambda_url_host"};
    if (slot == "appsync")
        return Id{r_.chars(kLowerAlnum, 26) + ".appsync-api." + reg + ".amazonaws.com", "APPSYNC_HOST", "appsync_host"};
    if (slot == "cf")
        return reuse("cf", [&] { return Id{"d" + r_.chars(kLowerAlnum, 13) + ".cloudfront.net", "CLOUDFRONT_HOST", "cloudfront_host"}; });
    if (slot == "cache")
        return reuse("cache", [&] {
            static constexpr const char* kKinds[] = {"redis", "cache", "valkey", "sessions"};
            const std::string name = svc() + "-" + r_.pick(kKinds);
            const std::string sr = shortRegion(reg);
            const std::string h6 = r_.chars(kLowerAlnum, 6);
            const std::uint64_t u = r_.below(10);
            std::string h = u < 5   ? name + "-001." + h6 + ".0001." + sr + ".cache.amazonaws.com"
                            : u < 8 ? "master." + name + "." + h6 + "." + sr + ".cache.amazonaws.com"
                                    : "clustercfg." + name + "." + h6 + "." + sr + ".cache.amazonaws.com";
            return Id{h, "ELASTICACHE_HOST", "elasticache_host"};
        });
    if (slot == "redshift")
        return Id{r_.chance(0.7) ? svc() + "-warehouse." + r_.chars(kLowerAlnum, 12) + "." + reg + ".redshift.amazonaws.com"
                                 : svc() + "-wg." + acct() + "." + reg + ".redshift-serverless.amazonaws.com",
                  "REDSHIFT_HOST", "redshift_host"};
    if (slot == "es")
        return Id{std::string(r_.chance(0.5) ? "search-" : "vpc-") + svc() + "-logs-" + r_.chars(kLowerAlnum, 26) +
                      "." + reg + ".es.amazonaws.com",
                  "OPENSEARCH_HOST", "opensearch_host"};
    if (slot == "msk")
        return Id{"b-" + std::to_string(r_.range(1, 3)) + "." + svc() + "-kafka." + r_.chars(kLowerAlnum, 6) + ".c" +
                      std::to_string(r_.range(1, 9)) + ".kafka." + reg + ".amazonaws.com",
                  "MSK_HOST", "msk_host"};
    if (slot == "mq")
        return Id{"b-" + r_.uuid() + "-1.mq." + reg + ".amazonaws.com", "MQ_HOST", "mq_host"};
    if (slot == "eb")
        return Id{svc() + "-" + env() + ".eba-" + r_.chars(kLowerAlnum, 8) + "." + reg + ".elasticbeanstalk.com",
                  "EB_HOST", "eb_host"};
    if (slot == "ec2host" || slot == "ec2hostbare") {
        const std::string ip = privIp();
        if (slot == "ec2hostbare")
            return Id{"ip-" + dashed(ip), "EC2_HOST", "ec2_private_name"};
        return Id{"ip-" + dashed(ip) + (reg == "us-east-1" ? ".ec2.internal" : "." + reg + ".compute.internal"),
                  "EC2_HOST", "ec2_internal_host"};
    }
    if (slot == "ec2pub")
        return Id{"ec2-" + dashed(pubIp()) +
                      (reg == "us-east-1" ? ".compute-1.amazonaws.com" : "." + reg + ".compute.amazonaws.com"),
                  "EC2_HOST", "ec2_public_host"};

    // Other fixed shapes.
    if (slot == "spot")
        return Id{"sir-" + r_.charsWithDigit(kLowerAlnum, 8), "SPOT_REQ", "spot_request"};
    if (slot == "mrk")
        return Id{"mrk-" + r_.hex(32), "KMS_KEY", "kms_multi_region_key"};
    if (slot == "cogpool")
        return Id{reg + "_" + r_.charsWithDigit(kBase62, 9), "COGNITO_POOL", "cognito_user_pool"};
    if (slot == "cogid")
        return Id{reg + ":" + r_.uuid(), "COGNITO_IDPOOL", "cognito_identity_pool"};
    if (slot == "emr")
        return Id{"j-" + r_.charsWithDigit(kUpperAlnum, 13), "EMR_CLUSTER", "emr_cluster"};
    if (slot == "dir")
        return reuse("dir", [&] { return Id{"d-" + r_.hex(10), "DIRECTORY", "directory"}; });
    if (slot == "org")
        return reuse("org", [&] { return Id{"o-" + r_.charsWithDigit(kLowerAlnum, 10), "ORG", "organization"}; }, 0.9);
    if (slot == "ou")
        return Id{"ou-" + r_.charsWithDigit(kLowerAlnum, 4) + "-" + r_.charsWithDigit(kLowerAlnum, 8), "ORG_OU",
                  "organizational_unit"};
    if (slot == "kmskey")
        return reuse("kmskey", [&] { return Id{r_.uuid(), "KMS_KEY", "kms_key_in_context"}; });
    if (slot == "kmsalias")
        return reuse("kmsalias", [&] { return Id{"alias/" + kebab(), "KMS_ALIAS", "kms_alias"}; });
    if (slot == "cfdist")
        return reuse("cfdist", [&] { return Id{"E" + r_.chars(kUpperAlnum, 13), "CLOUDFRONT_DIST", "cloudfront_distribution"}; });
    if (slot == "zone")
        return reuse("zone", [&] {
            return Id{"Z" + r_.chars(kUpperAlnum, static_cast<std::size_t>(r_.range(12, 20))), "HOSTED_ZONE",
                      "route53_hosted_zone"};
        });
    if (slot == "ip")
        return reuse("ip", [&] { return Id{privIp(), "PRIVATE_IP", "private_ipv4"}; }, 0.3);
    if (slot == "ipv6")
        return Id{r_.chance(0.05) ? std::string("fd00:ec2::254")
                                  : "fd" + r_.hex(2) + ":" + r_.hex(4) + ":" + r_.hex(4) + "::" +
                                        std::to_string(r_.range(1, 9999)),
                  "PRIVATE_IPV6", "ipv6_ula"};

    std::fprintf(stderr, "bodygen: unknown slot {%.*s}\n", static_cast<int>(slot.size()), slot.data());
    std::abort();
}

// ---- identifiers written with their surroundings ---------------------------------

void Gen::s3Uri(Tb& b)
{
    b << (r_.chance(0.9) ? "s3://" : "s3a://") << reuse("bucket", [&] { return s3Bucket("s3_uri"); }, 0.5);
    if (gap())
        b << "/AWSLogs/" << Id{acct(), "ACCOUNT", "gap_awslogs_key"} << "/CloudTrail/" << region() << "/2024/01/15/";
    else if (r_.chance(0.85))
        b << "/" << objectKey();
}

void Gen::s3VirtualHosted(Tb& b)
{
    const std::string reg = region();
    b << "https://" << reuse("bucket", [&] { return s3Bucket("s3_virtual_hosted"); }, 0.5);
    const std::uint64_t u = r_.below(10);
    b << (u < 6 ? ".s3." + reg + ".amazonaws.com" : u < 9 ? std::string(".s3.amazonaws.com") : ".s3-website-" + reg + ".amazonaws.com");
    b << "/" << objectKey();
}

void Gen::s3PathStyle(Tb& b)
{
    b << "https://s3." << region() << ".amazonaws.com/" << reuse("bucket", [&] { return s3Bucket("s3_path_style"); }, 0.5)
      << "/" << objectKey();
}

void Gen::s3Arn(Tb& b)
{
    b << "arn:aws:s3:::" << reuse("bucket", [&] { return s3Bucket("s3_arn"); }, 0.5);
    const std::uint64_t u = r_.below(3);
    if (u == 0)
        b << "/*";
    else if (u == 1)
        b << "/" << objectKey();
}

void Gen::presignedUrl(Tb& b)
{
    const std::string reg = region();
    std::string token = make("token").value;
    std::string enc;
    for (char c : token) {
        if (c == '/')
            enc += "%2F";
        else if (c == '+')
            enc += "%2B";
        else if (c == '=')
            enc += "%3D";
        else
            enc += c;
    }
    std::string day = date_;
    day.erase(std::remove(day.begin(), day.end(), '-'), day.end());
    b << "https://" << reuse("bucket", [&] { return s3Bucket("s3_virtual_hosted"); }, 0.5) << ".s3." << reg
      << ".amazonaws.com/" << objectKey() << "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential="
      << Id{"ASIA" + r_.chars(kBase32, 16), "ACCESS_KEY", "access_key_id"} << "%2F" << day << "%2F" << reg
      << "%2Fs3%2Faws4_request&X-Amz-Date=" << day << "T101500Z&X-Amz-Expires=3600&X-Amz-Security-Token="
      << Id{enc, "SESSION_TOKEN", "session_token_url"} << "&X-Amz-SignedHeaders=host&X-Amz-Signature=" << make("sig");
}

void Gen::sqsUrl(Tb& b)
{
    const Id q = reuse("sqs", [&] {
        const std::uint64_t u = r_.below(5);
        return Id{acct() + "/" + kebab() + (u == 0 ? ".fifo" : u == 1 ? "-dlq" : ""), "SQS_QUEUE", "sqs_url"};
    });
    b << (r_.chance(0.9) ? "https://sqs." + region() + ".amazonaws.com/" : std::string("https://queue.amazonaws.com/")) << q;
}

void Gen::ecrImage(Tb& b)
{
    b << Id{acct(), "ACCOUNT", "ecr_registry"} << ".dkr.ecr." << region() << ".amazonaws.com/" << kebab();
    const std::uint64_t u = r_.below(3);
    if (u == 0)
        b << ":v1." << std::to_string(r_.range(0, 40)) << "." << std::to_string(r_.range(0, 9));
    else if (u == 1)
        b << ":" << r_.hex(7);
    else
        b << "@" << Dec{"sha256:" + r_.hex(64), "sha256"};
}

void Gen::signinUrl(Tb& b)
{
    b << "https://";
    if (r_.chance(0.5))
        b << Id{acct(), "ACCOUNT", "signin_account"};
    else
        b << reuse("alias", [&] { return Id{org_ + "-" + env(), "ACCOUNT_ALIAS", "signin_alias"}; }, 0.8);
    b << ".signin.aws.amazon.com/console";
}

void Gen::eksOidcIssuer(Tb& b)
{
    const Id hex = reuse("ekshex", [&] { return Id{r_.chars(kHexUpper, 32), "EKS_OIDC", "eks_oidc"}; }, 0.9);
    b << "https://oidc.eks." << regions_[0] << ".amazonaws.com/id/" << hex;
}

void Gen::cidr(Tb& b)
{
    const std::uint64_t u = r_.below(10);
    const std::string a = std::to_string(vpcOctets_[r_.below(2)]);
    const std::string c = std::to_string(r_.range(0, 255));
    if (u < 4)
        b << Id{"10." + a + ".0.0", "PRIVATE_IP", "private_cidr"} << "/16";
    else if (u < 7)
        b << Id{"10." + a + "." + c + ".0", "PRIVATE_IP", "private_cidr"} << "/24";
    else if (u < 9)
        b << Id{"172." + std::to_string(r_.range(16, 31)) + ".0.0", "PRIVATE_IP", "private_cidr"} << "/16";
    else
        b << Id{"192.168." + c + ".0", "PRIVATE_IP", "private_cidr"} << "/24";
}

// ---- decoys ------------------------------------------------------------------------

Dec Gen::decoy(std::string_view family)
{
    const auto f = [&](const char* name, std::string v) { return Dec{std::move(v), name}; };
    if (family == "word")
        return f("word", r_.pick(kDecoyWords));
    if (family == "lookalike") {
        switch (r_.below(6)) {
        case 0: return f("lookalike", "msg-" + r_.hex(8));
        case 1: return f("lookalike", "api-" + hex17());
        case 2: return f("lookalike", "uuid-" + r_.hex(8));
        case 3: return f("lookalike", "req-" + hex17());
        case 4: return f("lookalike", "i-" + r_.hex(16)); // 16 hex: neither length
        default: return f("lookalike", "job-" + r_.hex(8));
        }
    }
    if (family == "anthropic") {
        static constexpr const char* kPrefix[] = {"toolu_01", "msg_01", "req_011C"};
        return f("anthropic", r_.pick(kPrefix) + r_.chars(kBase62, 22));
    }
    if (family == "public_ip")
        return f("public_ip", r_.chance(0.2) ? std::string(r_.chance(0.5) ? "8.8.8.8" : "1.1.1.1") : pubIp());
    if (family == "doc_ip") {
        static constexpr const char* kNets[] = {"192.0.2.", "198.51.100.", "203.0.113."};
        return f("doc_ip", r_.pick(kNets) + std::to_string(r_.range(1, 254)));
    }
    if (family == "loopback") {
        static constexpr const char* kAddrs[] = {"127.0.0.1", "169.254.169.254", "0.0.0.0"};
        return f("loopback", r_.pick(kAddrs));
    }
    if (family == "version") {
        switch (r_.below(4)) {
        case 0: return f("version", "v10." + std::to_string(r_.range(0, 9)) + "." + std::to_string(r_.range(0, 20)));
        case 1: return f("version", "1." + std::to_string(r_.range(20, 31)) + "." + std::to_string(r_.range(0, 12)));
        case 2: return f("version", "v1." + std::to_string(r_.range(26, 31)) + ".0-eks-" + r_.hex(7));
        default: return f("version", "python3." + std::to_string(r_.range(8, 13)));
        }
    }
    if (family == "order")
        return f("order", r_.digits(12));
    if (family == "uuid")
        return f("uuid", r_.uuid());
    if (family == "sha")
        return f("git_sha", r_.hex(r_.chance(0.5) ? 40 : 7));
    if (family == "sha256")
        return f("sha256", "sha256:" + r_.hex(64));
    if (family == "aws_word") {
        static constexpr const char* kWordsAws[] = {
            "arn:aws:iam::aws:policy/ReadOnlyAccess",
            "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
            "s3.amazonaws.com",
            "ec2.amazonaws.com",
            "logging.s3.amazonaws.com",
            "sts.amazonaws.com",
            "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-5-sonnet-20240620-v1:0",
            "us-east-1",
            "eu-west-2",
        };
        return f("aws_word", r_.pick(kWordsAws));
    }
    if (family == "ipv6") {
        static constexpr const char* kV6[] = {"2001:db8::1", "fe80::1ff:fe23:4567:890a", "::1"};
        return f("ipv6", r_.chance(0.5) ? std::string(r_.pick(kV6)) : "2600:1f18:" + r_.hex(4) + "::" + r_.hex(3));
    }
    if (family == "hex_noctx")
        return f("hex_noctx", (r_.chance(0.5) ? "E" : "Z") + r_.chars(kUpperAlnum, 13));
    if (family == "token_shape") {
        static constexpr const char* kTokens[] = {"EC2_001", "VPC_002", "BUCKET_001", "PRIVATE_IP_001"};
        return f("token_shape", r_.pick(kTokens));
    }
    if (family == "timestamp")
        return f("timestamp", "17" + r_.chars("0123456789", 11));
    std::fprintf(stderr, "bodygen: unknown decoy family %.*s\n", static_cast<int>(family.size()), family.data());
    std::abort();
}

// ---- templates ---------------------------------------------------------------------------

Text Gen::fill(std::string_view tpl)
{
    Tb b = tb();
    std::size_t i = 0;
    while (i < tpl.size()) {
        const std::size_t open = tpl.find('{', i);
        if (open == std::string_view::npos) {
            b << tpl.substr(i);
            break;
        }
        b << tpl.substr(i, open - i);
        if (open + 1 < tpl.size() && tpl[open + 1] == '{') {
            b << "{";
            i = open + 2;
            continue;
        }
        const std::size_t close = tpl.find('}', open);
        slot(b, tpl.substr(open + 1, close - open - 1));
        i = close + 1;
    }
    return std::move(b.t);
}

void Gen::slot(Tb& b, std::string_view name)
{
    if (name.substr(0, 2) == "d:") {
        b << decoy(name.substr(2));
        return;
    }
    if (!name.empty() && name[0] == '?') {
        name.remove_prefix(1);
        if (!want()) {
            fallback(b, name);
            return;
        }
    }
    // Filler.
    if (name == "svc")
        b << svc();
    else if (name == "env")
        b << env();
    else if (name == "region")
        b << region();
    else if (name == "kebab")
        b << kebab();
    else if (name == "pascal")
        b << pascal();
    else if (name == "org")
        b << org_;
    else if (name == "n")
        b << std::to_string(r_.range(1, 99));
    else if (name == "ms")
        b << std::to_string(r_.range(3, 4999));
    else if (name == "ts")
        b << ts();
    else if (name == "word")
        b << r_.pick(kWords);
    else if (name == "user")
        b << r_.pick(kUsers);
    else if (name == "pod")
        b << k8sName();
    else if (name == "clf")
        b << "15/Jan/2024:" + std::to_string(r_.range(10, 23)) + ":" + std::to_string(r_.range(10, 59)) + ":" +
                 std::to_string(r_.range(10, 59)) + " +0000";
    // Identifiers with their surroundings.
    else if (name == "s3uri")
        s3Uri(b);
    else if (name == "s3vhost")
        s3VirtualHosted(b);
    else if (name == "s3path")
        s3PathStyle(b);
    else if (name == "s3arn")
        s3Arn(b);
    else if (name == "presigned")
        presignedUrl(b);
    else if (name == "sqsurl")
        sqsUrl(b);
    else if (name == "ecr")
        ecrImage(b);
    else if (name == "signin")
        signinUrl(b);
    else if (name == "oidc")
        eksOidcIssuer(b);
    else if (name == "cidr")
        cidr(b);
    else if (name == "arn_other") {
        static constexpr const char* kOther[] = {"iot",        "appflow",      "transfer",        "ram",
                                                 "synthetics", "imagebuilder", "network-firewall", "xray"};
        static constexpr const char* kRes[] = {"thing/", "flow/", "server/s-", "resource-share/",
                                               "canary:", "image-pipeline/", "firewall/", "group/"};
        const std::size_t k = r_.below(8);
        std::string res = kRes[k];
        res += k == 2 ? r_.hex(17) : k == 3 ? r_.uuid() : kebab();
        b << "arn:aws:" << kOther[k] << ":" << region() << ":" << Id{acct(), "ACCOUNT", "arn_account"} << ":" << res;
    } else
        b << make(name);
}

void Gen::fallback(Tb& b, std::string_view name)
{
    if (name == "ip" || name == "cidr")
        b << decoy(r_.chance(0.5) ? "doc_ip" : "public_ip");
    else if (name.substr(0, 3) == "arn")
        b << decoy("aws_word");
    else if (name.substr(0, 2) == "s3")
        b << "./data/" << objectKey();
    else if (name == "rds" || name == "cache" || name == "es" || name == "msk" || name == "mq" || name == "redshift")
        b << svc() << "." << env() << ".svc.cluster.local";
    else if (name == "sqsurl")
        b << svc() << "-queue";
    else
        b << kebab();
}

constexpr const char* kQuestions[] = {
    "Can you check why {ec2} keeps failing its health checks behind {elb}?",
    "Pods on {ec2host} can't reach {rds}:5432 — security group {sg} should allow it. What am I missing?",
    "I get AccessDenied when {arn_role} reads {s3uri}. The bucket policy looks fine to me.",
    "Our AWS account ID is {acct} and everything runs in {vpc} ({region}). Where should the new subnet go?",
    "Traffic from {ip} to {ip} is dropped; the flow log is attached to {eni}.",
    "Terraform wants to replace {nat} in {subnet}. Is that expected after bumping the provider to {d:version}?",
    "{arn_lambda} times out when it calls https://{apigw}/prod/orders — any idea why?",
    "Messages are piling up in {sqsurl} since 09:40 and the consumer logs show nothing.",
    "CloudFront {cf} returns 403 for {s3vhost} even though OAC is configured.",
    "Our EKS cluster {arn_eks} lost two nodes right after the AMI update to {ami}.",
    "Please help me rotate the access key {akid}; it was committed to a public repo by mistake.",
    "The snapshot {snap} of {vol} fails with an error about {arn_kms}.",
    "Why does {ec2hostbare} resolve to {ip} when the target group says the target is unhealthy?",
    "Fargate can't pull {ecr} from tasks in {subnet}; the VPC endpoint is {vpce}.",
    "The EMR cluster {emr} can't write to {s3uri}; it uses the default roles.",
    "Our ULA range {ipv6}/64 is not routed through {tgw} — how do I check the attachment {tgwattach}?",
    "Compare {ec2} and {ec2}: same image {ami}, but only one of them can reach {ip}.",
    "Cognito user pool {cogpool} rejects tokens issued for identity pool {cogid}.",
    "The AD directory {dir} sits in {vpc}; our organization is {org} with the OU {ou}.",
    "The spot request {spot} for launch template {lt} was never fulfilled.",
    "We replicate the multi-region key {mrk} to {region} and decryption fails there.",
    "After deploying I ran `aws cloudfront create-invalidation --distribution-id {cfdist} --paths '/*'` but old files are still served.",
    "Route 53 zone /hostedzone/{zone} has an alias record pointing at {elb}; it stopped resolving.",
    "Should I log in through {signin} and look at the console, or can you tell from the CLI?",
    "The OpenSearch domain {es} turned yellow overnight.",
    "Redis at {cache}:6379 evicts keys although memory usage looks low.",
    "Kafka brokers {msk}:9094 are unreachable from {ip}.",
    "The Amazon MQ broker {mq}:5671 refuses connections from {ec2}.",
    "The Beanstalk environment {eb} has been degraded since this morning.",
    "Redshift {redshift}:5439 is slow for our nightly ETL.",
    "This presigned link expired too early: {presigned}",
    "The Lambda function URL https://{lambdaurl}/ returns 502 after the deploy.",
    "AppSync https://{appsync}/graphql gives 401 for IAM-signed requests from {arn_role}.",
    "The EC2 public DNS name {ec2pub} doesn't answer on 443.",
    "The EBS volume {vol} is encrypted with KMS key id {kmskey}; can {arn_role} use it?",
    "We encrypt with --key-id {kmsalias} in the pipeline; is that alias in the right region?",
    "The secret {arn_secret} holds the password for {rds}.",
    "Who owns account {acct}? It shows up as a principal in our bucket policy.",
    "Account ID: {acctdash} — can you tell me which OU it belongs to?",
    "These ids came up in the incident review: {hexid}, {hexid} and {hexid}.",
    "Role {arn_sts} tried to call {arn} and was denied.",
    "The SNS topic {arn_sns} doesn't deliver to {arn_sqs}.",
    "Check {arn_other} please — it belongs to the same stack.",
    "The user {iamid} in account {acct} has an inline policy I don't understand.",
    "Objects under {s3path} are served stale; {s3arn} is the bucket in question.",
    "The IRSA issuer is {oidc} and the role {arn_role} trusts it.",
    "Subnet {subnet} ({cidr}) has run out of addresses; NAT is {nat} with {eipalloc}.",
};

constexpr const char* kDecoyProse[] = {
    "Thanks for the {d:word} — the {d:word} migration is done.",
    "We're on {d:version} of the agent and the changelog mentions a retry fix.",
    "Order {d:order} failed at checkout with a 500 (request id {d:uuid}).",
    "The resolver is {d:public_ip}; the test fixtures use {d:doc_ip} and {d:doc_ip}.",
    "Commit {d:sha} introduced the regression; the image digest is {d:sha256}.",
    "Trace ids like {d:lookalike} and {d:lookalike} show up in the logs but are unrelated.",
    "It works against {d:loopback} locally but not in {region}.",
    "Tool call {d:anthropic} returned an empty result earlier.",
    "We attach {d:aws_word} to the role; that one is AWS-managed.",
    "The IPv6 address {d:ipv6} is the one our office uses.",
    "The strings {d:hex_noctx} and {d:hex_noctx} were in the screenshot, no idea what they are.",
    "In the wiki the placeholder {d:token_shape} stands for an instance.",
    "Ticket #{d:order} tracks the follow-up; build {d:timestamp} was the last green one.",
    "The {d:word} job on {d:word} finished; upstream {d:public_ip} answered in time.",
};

constexpr const char* kAnalysisIds[] = {
    "Instance {ec2} is in {subnet}, whose route table {rtb} sends 0.0.0.0/0 to {nat}. That looks right, so let's check {sg}.",
    "The role {arn_role} has no kms:Decrypt permission on {arn_kms}; add it to the key policy.",
    "{rds} resolves to {ip}, which is in {subnet}. The security group {sg} only allows 5432 from {cidr}.",
    "The task role in account {acct} can't read {s3arn}; the bucket policy denies requests that don't come through {vpce}.",
    "Node {ec2host} ({ip}) is NotReady because the ENI {eni} hit its IP address limit.",
    "The load balancer {elb} forwards to targets on port 8080, but {sg} only opens port 80.",
    "Your queue {sqsurl} has a redrive policy pointing at {arn_sqs}; 1,204 messages are in the DLQ.",
    "The events show {arn_sts} calling RunInstances with {akid} from {ip}.",
    "{ec2} mounts {efs} through the mount target in {subnet}.",
};

constexpr const char* kLogTemplates[] = {
    "{ts} INFO  [{svc}] request completed in {ms}ms status=200 path=/api/v1/{word}",
    "{ts} ERROR [{svc}] dial tcp {?ip}:5432: connect: connection timed out",
    "{ts} WARN  [{svc}] retrying connection to {?rds} (attempt {n}/5)",
    "{ts} ERROR [{svc}] AccessDenied: User: {?arn_sts} is not authorized to perform: s3:GetObject on resource: {?s3arn}",
    "{ts} INFO  [{svc}] published message to {?sqsurl} id={d:uuid}",
    "{ts} DEBUG [{svc}] resolved {?ec2host} -> {?ip}",
    "START RequestId: {d:uuid} Version: $LATEST",
    "REPORT RequestId: {d:uuid}\tDuration: {ms}.{n} ms\tBilled Duration: {ms} ms\tMemory Size: 512 MB\tMax Memory Used: {n} MB",
    "{?ip} - - [{clf}] \"GET /healthz HTTP/1.1\" 200 2 \"-\" \"ELB-HealthChecker/2.0\"",
    "level=error ts={ts} caller=main.go:{n} msg=\"failed to assume role\" role={?arn_role} err=\"AccessDenied\"",
    "{ts} INFO  [{svc}] uploaded {n} objects to {?s3uri}",
    "{ts} WARN  [{svc}] slow query ({ms} ms) on {?rds}",
    "{ts} ERROR [{svc}] InvalidInstanceID.NotFound: The instance ID '{?ec2}' does not exist",
    "{ts} INFO  [{svc}] health ok ({ms} ms)",
    "{ts} ERROR [{svc}] upstream {d:public_ip}:443 reset the connection",
    "{ts} INFO  [{svc}] cache hit ratio {n}% on {?cache}",
    "{ts} WARN  [{svc}] disk usage {n}% on {?vol} attached to {?ec2}",
    "{ts} INFO  [{svc}] GC pause {ms}ms, heap {n}%",
    "{ts} INFO  [{svc}] connected to {?msk}:9094",
};

Text Gen::prose(int sentences)
{
    Tb b = tb();
    for (int i = 0; i < sentences; ++i) {
        if (i)
            b << (r_.chance(0.2) ? "\n\n" : " ");
        if (decoyDeficit() > 0 && r_.chance(0.5))
            b << fill(r_.pick(kDecoyProse));
        else
            b << r_.pick(kProse);
    }
    return std::move(b.t);
}

Text Gen::question()
{
    Tb b = tb();
    if (gap())
        b << "Creds for the CI user are " << make("akid") << " / " << Id{r_.chars(kBase64, 40), "SECRET_KEY", "gap_secret_prose"}
          << " — are they still valid? ";
    if (deficit(200) >= 1) {
        b << fill(r_.pick(kQuestions));
        while (deficit(200) >= 4 && r_.chance(0.7))
            b << " " << fill(r_.pick(kQuestions));
    } else {
        b << prose(1);
    }
    if (deficit(200) < 4 && r_.chance(0.6))
        b << " " << prose(r_.range(1, 4));
    return std::move(b.t);
}

Text Gen::analysis()
{
    Tb b = tb();
    if (deficit(200) >= 2 && r_.chance(0.8))
        b << fill(r_.pick(kAnalysisIds));
    else
        b << r_.pick(kAnalysis);
    if (deficit(200) < 4 && r_.chance(0.5))
        b << " " << r_.pick(kAnalysis);
    return std::move(b.t);
}

Text Gen::logLines(int n)
{
    Tb b = tb();
    for (int i = 0; i < n; ++i) {
        if (i)
            b << "\n";
        b << fill(r_.pick(kLogTemplates));
    }
    if (gap()) {
        // A VPC flow log record: version, account, interface, addresses, ports, …
        b << "\n2 " << Id{acct(), "ACCOUNT", "gap_flow_log"} << " " << make("eni") << " " << make("ip") << " "
          << make("ip") << " 443 " << std::to_string(r_.range(32768, 60999)) << " 6 20 4000 1705312800 1705312860 ACCEPT OK";
    }
    return std::move(b.t);
}

// `--output text`: identifiers at the start of lines, right after a newline.
Text Gen::textListing(int n)
{
    static constexpr const char* kStates[] = {"running", "running", "stopped", "pending"};
    Tb b = tb();
    if (gap())
        b << "RESERVATIONS\t" << Id{acct(), "ACCOUNT", "gap_text_output"} << "\t" << make("reservation") << "\n";
    for (int i = 0; i < n; ++i) {
        if (i)
            b << "\n";
        b << make("ec2") << "\t" << make("ip") << "\t" << r_.pick(kStates) << "\t" << make("subnet") << "\t"
          << region() << "a";
    }
    return std::move(b.t);
}

namespace {

// Lays out rows of cells as kubectl does: columns padded to the widest cell
// plus three spaces.
Text table(const std::vector<std::vector<Text>>& rows)
{
    std::vector<std::size_t> width;
    for (const auto& row : rows)
        for (std::size_t c = 0; c < row.size(); ++c) {
            if (width.size() <= c)
                width.push_back(0);
            width[c] = std::max(width[c], row[c].size());
        }
    Text out;
    for (std::size_t r = 0; r < rows.size(); ++r) {
        if (r)
            out.append("\n");
        for (std::size_t c = 0; c < rows[r].size(); ++c) {
            out.appendText(rows[r][c]);
            if (c + 1 < rows[r].size())
                out.append(std::string(width[c] - rows[r][c].size() + 3, ' '));
        }
    }
    return out;
}

} // namespace

Text Gen::kubectlPods(int n)
{
    std::vector<std::vector<Text>> rows;
    rows.push_back({"NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED NODE", "READINESS GATES"});
    for (int i = 0; i < n; ++i) {
        const bool placed = want();
        Tb ip = tb();
        Tb node = tb();
        if (placed) {
            ip << make("ip");
            node << make("ec2host");
        } else {
            ip << "<none>";
            node << "<none>";
        }
        rows.push_back({k8sName(), placed ? "1/1" : "0/1", placed ? (r_.chance(0.8) ? "Running" : "CrashLoopBackOff") : "Pending",
                        std::to_string(r_.range(0, 12)), std::to_string(r_.range(1, 40)) + "d", ip.t, node.t, "<none>",
                        "<none>"});
    }
    Text t = table(rows);
    pending_ += t.size() / 2;
    return t;
}

Text Gen::kubectlNodes(int n)
{
    std::vector<std::vector<Text>> rows;
    rows.push_back({"NAME", "STATUS", "ROLES", "AGE", "VERSION", "INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE",
                    "KERNEL-VERSION", "CONTAINER-RUNTIME"});
    for (int i = 0; i < n; ++i) {
        Tb name = tb();
        name << make("ec2host");
        Tb ip = tb();
        ip << make("ip");
        Tb ext = tb();
        if (r_.chance(0.3))
            ext << decoy("public_ip");
        else
            ext << "<none>";
        Tb ver = tb();
        ver << Dec{"v1.29.0-eks-" + r_.hex(7), "version"};
        rows.push_back({name.t, r_.chance(0.9) ? "Ready" : "NotReady", "<none>", std::to_string(r_.range(1, 90)) + "d",
                        ver.t, ip.t, ext.t, "Amazon Linux 2", "5.10.210-201.852.amzn2.x86_64", "containerd://1.7.11"});
    }
    Text t = table(rows);
    pending_ += t.size() / 2;
    return t;
}

Text Gen::terraformPlan(int n)
{
    static constexpr const char* kResources[] = {
        "  # aws_instance.{svc} will be updated in-place\n"
        "  ~ resource \"aws_instance\" \"{svc}\" {{\n"
        "        id                           = \"{ec2}\"\n"
        "      ~ instance_type                = \"t3.medium\" -> \"t3.large\"\n"
        "        private_ip                   = \"{ip}\"\n"
        "        subnet_id                    = \"{subnet}\"\n"
        "        tags                         = {{\n"
        "            \"Name\" = \"{kebab}\"\n"
        "        }\n"
        "        # (28 unchanged attributes hidden)\n"
        "    }\n",
        "  # aws_security_group_rule.{svc}_https will be created\n"
        "  + resource \"aws_security_group_rule\" \"{svc}_https\" {{\n"
        "      + cidr_blocks              = [\n"
        "          + \"{cidr}\",\n"
        "        ]\n"
        "      + from_port                = 443\n"
        "      + id                       = (known after apply)\n"
        "      + protocol                 = \"tcp\"\n"
        "      + security_group_id        = \"{sg}\"\n"
        "      + to_port                  = 443\n"
        "      + type                     = \"ingress\"\n"
        "    }\n",
        "  # aws_lambda_function.{svc} will be updated in-place\n"
        "  ~ resource \"aws_lambda_function\" \"{svc}\" {{\n"
        "        arn   = \"{arn_lambda}\"\n"
        "        role  = \"{arn_role}\"\n"
        "      ~ environment {{\n"
        "          ~ variables = {{\n"
        "              ~ \"QUEUE_URL\" = \"{sqsurl}\" -> \"{sqsurl}\"\n"
        "                \"DATA_URI\"  = \"{s3uri}\"\n"
        "            }\n"
        "        }\n"
        "    }\n",
        "  # aws_db_instance.{svc} will be updated in-place\n"
        "  ~ resource \"aws_db_instance\" \"{svc}\" {{\n"
        "        address                = \"{rds}\"\n"
        "        arn                    = \"{arn_rds}\"\n"
        "      ~ kms_key_id             = \"{arn_kms}\" -> \"{arn_kms}\"\n"
        "        vpc_security_group_ids = [\n"
        "            \"{sg}\",\n"
        "        ]\n"
        "    }\n",
        "  # aws_vpc.main must be replaced\n"
        "-/+ resource \"aws_vpc\" \"main\" {{\n"
        "      ~ id         = \"{vpc}\" -> (known after apply)\n"
        "      ~ cidr_block = \"{cidr}\" -> \"{cidr}\" # forces replacement\n"
        "      ~ owner_id   = \"{acct}\" -> (known after apply)\n"
        "      ~ default_route_table_id = \"{rtb}\" -> (known after apply)\n"
        "    }\n",
        "  # aws_nat_gateway.this[0] will be created\n"
        "  + resource \"aws_nat_gateway\" \"this\" {{\n"
        "      + allocation_id = \"{eipalloc}\"\n"
        "      + id            = (known after apply)\n"
        "      + subnet_id     = \"{subnet}\"\n"
        "    }\n",
        // The alias name has no key context here, so it is not masked (by
        // design); it is not an inventory alias, so nothing planted leaks.
        "  # aws_kms_alias.{svc} will be created\n"
        "  + resource \"aws_kms_alias\" \"{svc}\" {{\n"
        "      + name          = \"alias/{svc}-data-key\"\n"
        "      + target_key_id = \"{kmskey}\"\n"
        "    }\n",
    };
    Tb b = tb();
    b << "Terraform will perform the following actions:\n\n";
    for (int i = 0; i < n; ++i)
        b << fill(r_.pick(kResources)) << "\n";
    b << "Plan: " << std::to_string(r_.range(0, 3)) << " to add, " << std::to_string(n) << " to change, 0 to destroy.";
    if (r_.chance(0.5))
        b << "\n\n" << fill("aws_instance.{svc}: Modifying... [id={ec2}]\naws_instance.{svc}: Still modifying... [id={ec2}, 10s elapsed]");
    return std::move(b.t);
}

Text Gen::manifest()
{
    return fill("apiVersion: v1\n"
                "kind: ServiceAccount\n"
                "metadata:\n"
                "  name: {svc}\n"
                "  annotations:\n"
                "    eks.amazonaws.com/role-arn: {arn_role}\n"
                "---\n"
                "apiVersion: apps/v1\n"
                "kind: Deployment\n"
                "metadata:\n"
                "  name: {kebab}\n"
                "spec:\n"
                "  replicas: 3\n"
                "  template:\n"
                "    spec:\n"
                "      containers:\n"
                "      - name: app\n"
                "        image: {ecr}\n"
                "        env:\n"
                "        - name: AWS_REGION\n"
                "          value: {region}\n"
                "        - name: AWS_ACCOUNT_ID\n"
                "          value: \"{acct}\"\n"
                "        - name: DB_HOST\n"
                "          value: {rds}\n"
                "        - name: QUEUE_URL\n"
                "          value: {sqsurl}\n");
}

Text Gen::credentialsFile()
{
    return fill("[default]\n"
                "aws_access_key_id = {akid}\n"
                "aws_secret_access_key = {secret}\n"
                "aws_session_token = {token}\n"
                "region = {region}\n");
}

// ---- AWS CLI output ---------------------------------------------------------------------

Text Gen::jsonDoc(const Value& v)
{
    // Tool wrappers often hand back JSON.stringify()'d results instead of the
    // CLI's indented output.
    Format f{r_.chance(o_.idsPer10k >= 50 ? 0.6 : 0.2) ? &kCompactStyle : &kCliStyle, 0};
    if (f.style == &kCliStyle)
        f.indent = 4;
    std::string s = serialize(v, f);
    pending_ += s.size() / 3; // ids were counted when planted
    return Text(s);
}

Value Gen::describeInstances(int n)
{
    Value reservations = array();
    static constexpr const char* kTypes[] = {"t3.large", "m6i.xlarge", "c7g.2xlarge", "r6g.large"};
    for (int i = 0; i < n; ++i) {
        const std::string reg = region();
        const std::string ip = privIp();
        const std::string host = "ip-" + dashed(ip) + (reg == "us-east-1" ? ".ec2.internal" : "." + reg + ".compute.internal");
        const Id subnet = make("subnet");
        const Id vpc = make("vpc");
        const Id sg = make("sg");
        Value inst = object();
        inst.set("AmiLaunchIndex", num(0))
            .set("ImageId", sv(make("ami")))
            .set("InstanceId", sv(make("ec2")))
            .set("InstanceType", S(r_.pick(kTypes)))
            .set("KeyName", S(svc() + "-deploy"))
            .set("LaunchTime", S(ts()))
            .set("Monitoring", object().set("State", S("disabled")))
            .set("Placement", object().set("AvailabilityZone", S(reg + "a")).set("GroupName", S("")).set("Tenancy", S("default")))
            .set("PrivateDnsName", sv(Id{host, "EC2_HOST", "ec2_internal_host"}))
            .set("PrivateIpAddress", sv(Id{ip, "PRIVATE_IP", "private_ipv4"}))
            .set("ProductCodes", array());
        if (r_.chance(0.4)) {
            const std::string pub = pubIp();
            inst.set("PublicDnsName",
                     sv(Id{"ec2-" + dashed(pub) + (reg == "us-east-1" ? ".compute-1.amazonaws.com" : "." + reg + ".compute.amazonaws.com"),
                           "EC2_HOST", "ec2_public_host"}))
                .set("PublicIpAddress", sd(Dec{pub, "public_ip"}));
        } else {
            inst.set("PublicDnsName", S(""));
        }
        inst.set("State", object().set("Code", num(16)).set("Name", S("running")))
            .set("StateTransitionReason", S(""))
            .set("SubnetId", sv(subnet))
            .set("VpcId", sv(vpc))
            .set("Architecture", S("x86_64"))
            .set("BlockDeviceMappings",
                 array().push(object().set("DeviceName", S("/dev/xvda")).set("Ebs", object()
                                                                                      .set("AttachTime", S(ts()))
                                                                                      .set("DeleteOnTermination", boolean(true))
                                                                                      .set("Status", S("attached"))
                                                                                      .set("VolumeId", sv(make("vol"))))))
            .set("EbsOptimized", boolean(false))
            .set("IamInstanceProfile", object()
                                           .set("Arn", sv(Id{"arn:aws:iam::" + acct() + ":instance-profile/" + kebab(), "IAM_ARN", "arn"}))
                                           .set("Id", sv(Id{"AIPA" + r_.chars(kBase32, 17), "IAM_ID", "iam_unique_id"})))
            .set("NetworkInterfaces",
                 array().push(object()
                                  .set("Attachment", object()
                                                         .set("AttachTime", S(ts()))
                                                         .set("AttachmentId", sv(make("eniattach")))
                                                         .set("DeviceIndex", num(0))
                                                         .set("Status", S("attached")))
                                  .set("Description", S(""))
                                  .set("Groups", array().push(object().set("GroupName", S(svc() + "-sg")).set("GroupId", sv(sg))))
                                  .set("MacAddress", S("0a:" + r_.hex(2) + ":" + r_.hex(2) + ":" + r_.hex(2) + ":" + r_.hex(2) + ":" + r_.hex(2)))
                                  .set("NetworkInterfaceId", sv(make("eni")))
                                  .set("OwnerId", sv(account("owner_id")))
                                  .set("PrivateDnsName", sv(Id{host, "EC2_HOST", "ec2_internal_host"}))
                                  .set("PrivateIpAddress", sv(Id{ip, "PRIVATE_IP", "private_ipv4"}))
                                  .set("SubnetId", sv(subnet))
                                  .set("VpcId", sv(vpc))))
            .set("SecurityGroups", array().push(object().set("GroupName", S(svc() + "-sg")).set("GroupId", sv(sg))))
            .set("Tags", array()
                             .push(object().set("Key", S("Name")).set("Value", S(kebab() + "-" + env())))
                             .push(object().set("Key", S("team")).set("Value", S(svc()))));
        reservations.push(object()
                              .set("Groups", array())
                              .set("Instances", array().push(std::move(inst)))
                              .set("OwnerId", sv(account("owner_id")))
                              .set("ReservationId", sv(make("reservation"))));
    }
    return object().set("Reservations", std::move(reservations));
}

Value Gen::securityGroups(int n)
{
    // describe-security-groups names the peer group's account as "UserId".
    const auto groupPair = [&] {
        Value pair = object().set("GroupId", sv(make("sg")));
        if (gap())
            pair.set("UserId", sv(Id{acct(), "ACCOUNT", "gap_sg_user_id"}));
        return pair;
    };
    Value groups = array();
    for (int i = 0; i < n; ++i) {
        Tb range = tb();
        cidr(range);
        groups.push(object()
                        .set("Description", S("managed by terraform — do not edit"))
                        .set("GroupName", S(kebab() + "-sg"))
                        .set("IpPermissions", array().push(object()
                                                               .set("FromPort", num(443))
                                                               .set("IpProtocol", S("tcp"))
                                                               .set("IpRanges", array().push(object()
                                                                                                 .set("CidrIp", str(range.t))
                                                                                                 .set("Description", S("from the VPC"))))
                                                               .set("Ipv6Ranges", array())
                                                               .set("PrefixListIds", array())
                                                               .set("ToPort", num(443))
                                                               .set("UserIdGroupPairs", array().push(groupPair()))))
                        .set("OwnerId", sv(account("owner_id")))
                        .set("GroupId", sv(make("sg")))
                        .set("IpPermissionsEgress", array().push(object()
                                                                     .set("IpProtocol", S("-1"))
                                                                     .set("IpRanges", array().push(object().set("CidrIp", S("0.0.0.0/0"))))))
                        .set("VpcId", sv(make("vpc"))));
    }
    return object().set("SecurityGroups", std::move(groups));
}

Value Gen::subnets(int n)
{
    Value list = array();
    for (int i = 0; i < n; ++i) {
        Tb range = tb();
        cidr(range);
        const Id subnet = make("subnet");
        list.push(object()
                      .set("AvailabilityZone", S(region() + "b"))
                      .set("AvailableIpAddressCount", num(r_.range(0, 4000)))
                      .set("CidrBlock", str(range.t))
                      .set("DefaultForAz", boolean(false))
                      .set("MapPublicIpOnLaunch", boolean(false))
                      .set("State", S("available"))
                      .set("SubnetId", sv(subnet))
                      .set("VpcId", sv(make("vpc")))
                      .set("OwnerId", sv(account("owner_id")))
                      .set("SubnetArn", sv(Id{"arn:aws:ec2:" + region() + ":" + acct() + ":subnet/" + subnet.value, "EC2_ARN", "arn"}))
                      .set("Tags", array().push(object().set("Key", S("Name")).set("Value", S(kebab() + "-private")))));
    }
    return object().set("Subnets", std::move(list));
}

Value Gen::routeTables(int n)
{
    Value list = array();
    for (int i = 0; i < n; ++i) {
        const Id rtb = make("rtb");
        Tb local = tb();
        cidr(local);
        Tb peer = tb();
        cidr(peer);
        list.push(object()
                      .set("Associations", array().push(object()
                                                            .set("Main", boolean(false))
                                                            .set("RouteTableAssociationId", sv(make("rtbassoc")))
                                                            .set("RouteTableId", sv(rtb))
                                                            .set("SubnetId", sv(make("subnet")))
                                                            .set("AssociationState", object().set("State", S("associated")))))
                      .set("PropagatingVgws", array())
                      .set("RouteTableId", sv(rtb))
                      .set("Routes", array()
                                         .push(object().set("DestinationCidrBlock", str(local.t)).set("GatewayId", S("local")).set("State", S("active")))
                                         .push(object().set("DestinationCidrBlock", S("0.0.0.0/0")).set("NatGatewayId", sv(make("nat"))).set("State", S("active")))
                                         .push(object().set("DestinationCidrBlock", str(peer.t)).set("TransitGatewayId", sv(make("tgw"))).set("State", S("active")))
                                         .push(object().set("DestinationPrefixListId", sv(make("pl"))).set("GatewayId", sv(make("vpce"))).set("State", S("active"))))
                      .set("VpcId", sv(make("vpc")))
                      .set("OwnerId", sv(account("owner_id"))));
    }
    return object().set("RouteTables", std::move(list));
}

Value Gen::callerIdentity()
{
    const Id role = make("roleid");
    Tb user = tb();
    user << role << ":botocore-session-" << r_.digits(10);
    return object()
        .set("UserId", str(user.t))
        .set("Account", sv(account()))
        .set("Arn", sv(make("arn_sts")));
}

Value Gen::assumeRole()
{
    Tb user = tb();
    user << make("roleid") << ":" << kebab() << "-session";
    return object()
        .set("Credentials", object()
                                .set("AccessKeyId", sv(Id{"ASIA" + r_.chars(kBase32, 16), "ACCESS_KEY", "access_key_id"}))
                                .set("SecretAccessKey", sv(make("secret")))
                                .set("SessionToken", sv(make("token")))
                                .set("Expiration", S(ts())))
        .set("AssumedRoleUser", object().set("AssumedRoleId", str(user.t)).set("Arn", sv(make("arn_sts"))));
}

Value Gen::lambdaConfig()
{
    const std::string fn = kebab();
    Tb queue = tb();
    sqsUrl(queue);
    Tb data = tb();
    s3Uri(data);
    return object()
        .set("FunctionName", S(fn))
        .set("FunctionArn", sv(Id{"arn:aws:lambda:" + region() + ":" + acct() + ":function:" + fn, "LAMBDA_ARN", "arn"}))
        .set("Runtime", S("python3.12"))
        .set("Role", sv(make("arn_role")))
        .set("Handler", S("app.handler"))
        .set("CodeSize", num(r_.range(10000, 9000000)))
        .set("Description", S("Processes " + svc() + " events → " + svc()))
        .set("Timeout", num(30))
        .set("MemorySize", num(512))
        .set("LastModified", S(date_ + "T10:00:00.000+0000"))
        .set("CodeSha256", S(r_.chars(kBase64, 43) + "="))
        .set("Version", S("$LATEST"))
        .set("VpcConfig", object()
                              .set("SubnetIds", array().push(sv(make("subnet"))).push(sv(make("subnet"))))
                              .set("SecurityGroupIds", array().push(sv(make("sg"))))
                              .set("VpcId", sv(make("vpc"))))
        .set("Environment", object().set("Variables", object()
                                                          .set("DB_HOST", sv(make("rds")))
                                                          .set("QUEUE_URL", str(queue.t))
                                                          .set("DATA_URI", str(data.t))
                                                          .set("LOG_LEVEL", S("info"))))
        .set("KMSKeyArn", sv(arn("kms")))
        .set("TracingConfig", object().set("Mode", S("PassThrough")))
        .set("Layers", array().push(object().set("Arn", sv(arn("lambda"))).set("CodeSize", num(r_.range(1000, 90000)))))
        .set("Architectures", array().push(S("arm64")));
}

Value Gen::cloudTrail(int n)
{
    Value events = array();
    for (int i = 0; i < n; ++i) {
        const Id akid = Id{"ASIA" + r_.chars(kBase32, 16), "ACCESS_KEY", "access_key_id"};
        const Id roleId = make("roleid");
        const std::string session = std::string(r_.pick(kUsers)) + "@" + org_ + ".com";
        const Id ec2 = make("ec2");
        Tb principal = tb();
        principal << roleId << ":" << session;
        Value source = r_.chance(0.6) ? sv(make("ip")) : sd(decoy("public_ip"));
        Value inner = object();
        inner.set("eventVersion", S("1.09"))
            .set("userIdentity", object()
                                     .set("type", S("AssumedRole"))
                                     .set("principalId", str(principal.t))
                                     .set("arn", sv(make("arn_sts")))
                                     .set("accountId", sv(account()))
                                     .set("accessKeyId", sv(akid))
                                     .set("sessionContext", object()
                                                                .set("sessionIssuer", object()
                                                                                          .set("type", S("Role"))
                                                                                          .set("principalId", sv(roleId))
                                                                                          .set("arn", sv(make("arn_role")))
                                                                                          .set("accountId", sv(account()))
                                                                                          .set("userName", S(pascal() + "Role")))
                                                                .set("attributes", object()
                                                                                       .set("creationDate", S(ts()))
                                                                                       .set("mfaAuthenticated", S("false")))))
            .set("eventTime", S(ts()))
            .set("eventSource", S("ec2.amazonaws.com"))
            .set("eventName", S("RunInstances"))
            .set("awsRegion", S(region()))
            .set("sourceIPAddress", std::move(source))
            .set("userAgent", S("aws-cli/2.15.0 Python/3.11.6 Linux/5.10.210 botocore/2.4.5"))
            .set("requestParameters", object()
                                          .set("instancesSet", object().set("items", array().push(object()
                                                                                                      .set("imageId", sv(make("ami")))
                                                                                                      .set("minCount", num(1))
                                                                                                      .set("maxCount", num(1)))))
                                          .set("instanceType", S("t3.micro"))
                                          .set("subnetId", sv(make("subnet"))))
            .set("responseElements", object()
                                         .set("requestId", sd(decoy("uuid")))
                                         .set("reservationId", sv(make("reservation")))
                                         .set("ownerId", sv(account("owner_id")))
                                         .set("instancesSet", object().set("items", array().push(object()
                                                                                                     .set("instanceId", sv(ec2))
                                                                                                     .set("privateIpAddress", sv(make("ip")))))))
            .set("requestID", sd(decoy("uuid")))
            .set("eventID", sd(decoy("uuid")))
            .set("readOnly", boolean(false))
            .set("eventType", S("AwsApiCall"))
            .set("managementEvent", boolean(true))
            .set("recipientAccountId", sv(account()))
            .set("eventCategory", S("Management"));
        events.push(object()
                        .set("EventId", sd(decoy("uuid")))
                        .set("EventName", S("RunInstances"))
                        .set("ReadOnly", S("false"))
                        .set("AccessKeyId", sv(akid))
                        .set("EventTime", S(ts()))
                        .set("EventSource", S("ec2.amazonaws.com"))
                        .set("Username", S(session))
                        .set("Resources", array().push(object().set("ResourceType", S("AWS::EC2::Instance")).set("ResourceName", sv(ec2))))
                        .set("CloudTrailEvent", S(serialize(inner, Format{&kCompactStyle, 0}))));
    }
    return object().set("Events", std::move(events));
}

Value Gen::dbInstances()
{
    const std::string name = kebab() + "-db";
    return object().set(
        "DBInstances",
        array().push(object()
                         .set("DBInstanceIdentifier", S(name))
                         .set("DBInstanceClass", S("db.r6g.large"))
                         .set("Engine", S("postgres"))
                         .set("DBInstanceStatus", S("available"))
                         .set("MasterUsername", S("app"))
                         .set("Endpoint", object()
                                              .set("Address", sv(make("rds")))
                                              .set("Port", num(5432))
                                              .set("HostedZoneId", sv(make("zone"))))
                         .set("AllocatedStorage", num(100))
                         .set("VpcSecurityGroups", array().push(object().set("VpcSecurityGroupId", sv(make("sg"))).set("Status", S("active"))))
                         .set("DBSubnetGroup", object()
                                                   .set("DBSubnetGroupName", S(name + "-subnets"))
                                                   .set("VpcId", sv(make("vpc")))
                                                   .set("Subnets", array()
                                                                       .push(object().set("SubnetIdentifier", sv(make("subnet"))).set("SubnetStatus", S("Active")))
                                                                       .push(object().set("SubnetIdentifier", sv(make("subnet"))).set("SubnetStatus", S("Active")))))
                         .set("MultiAZ", boolean(true))
                         .set("EngineVersion", S("15.4"))
                         .set("StorageEncrypted", boolean(true))
                         .set("KmsKeyId", sv(arn("kms")))
                         .set("DbiResourceId", S("db-" + r_.chars(kBase32, 26)))
                         .set("DBInstanceArn", sv(Id{"arn:aws:rds:" + region() + ":" + acct() + ":db:" + name, "RDS_ARN", "arn"}))
                         .set("CACertificateIdentifier", S("rds-ca-rsa2048-g1"))));
}

Value Gen::loadBalancers()
{
    return object().set(
        "LoadBalancers",
        array().push(object()
                         .set("LoadBalancerArn", sv(arn("elasticloadbalancing")))
                         .set("DNSName", sv(make("elb")))
                         .set("CanonicalHostedZoneId", sv(make("zone")))
                         .set("CreatedTime", S(ts()))
                         .set("LoadBalancerName", S(svc() + "-alb"))
                         .set("Scheme", S("internet-facing"))
                         .set("VpcId", sv(make("vpc")))
                         .set("State", object().set("Code", S("active")))
                         .set("Type", S("application"))
                         .set("AvailabilityZones", array()
                                                       .push(object().set("ZoneName", S(region() + "a")).set("SubnetId", sv(make("subnet"))))
                                                       .push(object().set("ZoneName", S(region() + "b")).set("SubnetId", sv(make("subnet")))))
                         .set("SecurityGroups", array().push(sv(make("sg"))))
                         .set("IpAddressType", S("ipv4"))));
}

Value Gen::queueAttributes()
{
    const Id queue = arn("sqs");
    Value principal = r_.chance(0.5) ? object().set("AWS", sv(account("account_principal")))
                                     : object().set("AWS", sv(Id{"arn:aws:iam::" + acct() + ":root", "IAM_ARN", "arn"}));
    if (gap()) {
        // Only the first account of a principal list has the "AWS" key next to it.
        principal = object().set("AWS", array()
                                            .push(sv(Id{"arn:aws:iam::" + acct() + ":root", "IAM_ARN", "arn"}))
                                            .push(sv(Id{acct(), "ACCOUNT", "gap_principal_list"})));
    } else if (gap()) {
        // An escaped account in a one-element list: the engine's slow path
        // loses the key context of array elements.
        Text t;
        put(t, Id{acct(), "ACCOUNT", "gap_escaped_array"}, true);
        principal = object().set("AWS", array().push(str(std::move(t))));
    } else if (r_.chance(0.3)) {
        principal = object().set("AWS", array().push(sv(account("account_principal"))));
    }
    Value policy = object()
                       .set("Version", S("2012-10-17"))
                       .set("Statement", array()
                                             .push(object()
                                                       .set("Sid", S("AllowSNS"))
                                                       .set("Effect", S("Allow"))
                                                       .set("Principal", object().set("Service", sd(Dec{"sns.amazonaws.com", "aws_word"})))
                                                       .set("Action", S("sqs:SendMessage"))
                                                       .set("Resource", sv(queue))
                                                       .set("Condition", object().set("ArnEquals", object().set("aws:SourceArn", sv(arn("sns"))))))
                                             .push(object()
                                                       .set("Sid", S("CrossAccount"))
                                                       .set("Effect", S("Allow"))
                                                       .set("Principal", std::move(principal))
                                                       .set("Action", array().push(S("sqs:SendMessage")))
                                                       .set("Resource", sv(queue))));
    Value redrive = object().set("deadLetterTargetArn", sv(arn("sqs"))).set("maxReceiveCount", num(5));
    Value attrs = object();
    attrs.set("QueueArn", sv(queue))
        .set("ApproximateNumberOfMessages", S(std::to_string(r_.range(0, 5000))))
        .set("Policy", S(serialize(policy, Format{&kCompactStyle, 0})))
        .set("RedrivePolicy", S(serialize(redrive, Format{&kCompactStyle, 0})))
        .set("VisibilityTimeout", S("30"));
    if (r_.chance(0.5))
        attrs.set("KmsMasterKeyId", sv(make("kmsalias")));
    else
        attrs.set("KmsMasterKeyId", sd(Dec{"alias/aws/sqs", "aws_word"}));
    return object().set("Attributes", std::move(attrs));
}

Value Gen::kmsKey()
{
    const bool multi = r_.chance(0.2);
    const Id key = multi ? make("mrk") : make("kmskey");
    const std::string reg = region();
    return object().set("KeyMetadata",
                        object()
                            .set("AWSAccountId", sv(account()))
                            .set("KeyId", sv(key))
                            .set("Arn", sv(Id{"arn:aws:kms:" + reg + ":" + acct() + ":key/" + key.value, "KMS_ARN", "arn"}))
                            .set("CreationDate", S(ts()))
                            .set("Enabled", boolean(true))
                            .set("Description", S("Encrypts " + svc() + " data at rest"))
                            .set("KeyUsage", S("ENCRYPT_DECRYPT"))
                            .set("KeyState", S("Enabled"))
                            .set("Origin", S("AWS_KMS"))
                            .set("KeyManager", S("CUSTOMER"))
                            .set("KeySpec", S("SYMMETRIC_DEFAULT"))
                            .set("EncryptionAlgorithms", array().push(S("SYMMETRIC_DEFAULT")))
                            .set("MultiRegion", boolean(multi)));
}

Value Gen::eksCluster()
{
    const std::string name = svc() + "-" + env();
    Tb endpoint = tb();
    endpoint << "https://" << make("eks");
    Tb issuer = tb();
    eksOidcIssuer(issuer);
    Tb service = tb();
    service << Id{"172.20.0.0", "PRIVATE_IP", "private_cidr"} << "/16";
    return object().set(
        "cluster", object()
                       .set("name", S(name))
                       .set("arn", sv(Id{"arn:aws:eks:" + regions_[0] + ":" + acct() + ":cluster/" + name, "EKS_ARN", "arn"}))
                       .set("createdAt", S(ts()))
                       .set("version", S("1.29"))
                       .set("endpoint", str(endpoint.t))
                       .set("roleArn", sv(make("arn_role")))
                       .set("resourcesVpcConfig", object()
                                                      .set("subnetIds", array().push(sv(make("subnet"))).push(sv(make("subnet"))))
                                                      .set("securityGroupIds", array().push(sv(make("sg"))))
                                                      .set("clusterSecurityGroupId", sv(make("sg")))
                                                      .set("vpcId", sv(make("vpc")))
                                                      .set("endpointPublicAccess", boolean(true))
                                                      .set("endpointPrivateAccess", boolean(true))
                                                      .set("publicAccessCidrs", array().push(S("0.0.0.0/0"))))
                       .set("kubernetesNetworkConfig", object().set("serviceIpv4Cidr", str(service.t)).set("ipFamily", S("ipv4")))
                       .set("identity", object().set("oidc", object().set("issuer", str(issuer.t))))
                       .set("status", S("ACTIVE"))
                       .set("certificateAuthority", object().set("data", S("LS0tLS1CRUdJTi" + r_.chars(kBase64, 180) + "==")))
                       .set("platformVersion", S("eks.7")));
}

Value Gen::ecrRepositories(int n)
{
    Value list = array();
    for (int i = 0; i < n; ++i) {
        const std::string name = kebab();
        const std::string reg = region();
        const std::string a = acct();
        Tb uri = tb();
        uri << Id{a, "ACCOUNT", "ecr_registry"} << ".dkr.ecr." << reg << ".amazonaws.com/" << name;
        list.push(object()
                      .set("repositoryArn", sv(Id{"arn:aws:ecr:" + reg + ":" + a + ":repository/" + name, "ECR_ARN", "arn"}))
                      .set("registryId", sv(Id{a, "ACCOUNT", "registry_id"}))
                      .set("repositoryName", S(name))
                      .set("repositoryUri", str(uri.t))
                      .set("createdAt", S(ts()))
                      .set("imageTagMutability", S("MUTABLE"))
                      .set("imageScanningConfiguration", object().set("scanOnPush", boolean(true))));
    }
    return object().set("repositories", std::move(list));
}

Value Gen::bucketPolicy()
{
    const std::string bucket = bucketName();
    // A list of accounts: the key's context does not reach into the array.
    Value sourceAccount = gap() ? array()
                                      .push(sv(Id{acct(), "ACCOUNT", "gap_account_list"}))
                                      .push(sv(Id{acct(), "ACCOUNT", "gap_account_list"}))
                                : sv(account());
    const auto res = [&](const char* suffix) {
        Tb b = tb();
        b << "arn:aws:s3:::" << Id{bucket, "BUCKET", "s3_arn"} << suffix;
        return str(std::move(b.t));
    };
    Value policy = object()
                       .set("Version", S("2012-10-17"))
                       .set("Statement", array()
                                             .push(object()
                                                       .set("Sid", S("DenyInsecureTransport"))
                                                       .set("Effect", S("Deny"))
                                                       .set("Principal", S("*"))
                                                       .set("Action", S("s3:*"))
                                                       .set("Resource", array().push(res("")).push(res("/*")))
                                                       .set("Condition", object().set("Bool", object().set("aws:SecureTransport", S("false")))))
                                             .push(object()
                                                       .set("Sid", S("OnlyThroughEndpoint"))
                                                       .set("Effect", S("Deny"))
                                                       .set("Principal", S("*"))
                                                       .set("Action", S("s3:GetObject"))
                                                       .set("Resource", res("/*"))
                                                       .set("Condition", object().set("StringNotEquals", object().set("aws:SourceVpce", sv(make("vpce"))))))
                                             .push(object()
                                                       .set("Sid", S("CrossAccountRead"))
                                                       .set("Effect", S("Allow"))
                                                       .set("Principal", object().set("AWS", sv(make("arn_role"))))
                                                       .set("Action", array().push(S("s3:GetObject")).push(S("s3:ListBucket")))
                                                       .set("Resource", res("/*"))
                                                       .set("Condition", object().set("StringEquals", object().set("aws:SourceAccount", sourceAccount))))
                                             .push(object()
                                                       .set("Sid", S("AWSLogDeliveryWrite"))
                                                       .set("Effect", S("Allow"))
                                                       .set("Principal", object().set("Service", sd(Dec{"logging.s3.amazonaws.com", "aws_word"})))
                                                       .set("Action", S("s3:PutObject"))
                                                       .set("Resource", res("/logs/*"))));
    return object().set("Policy", S(serialize(policy, Format{&kCompactStyle, 0})));
}

Value Gen::recordSets(int n)
{
    Value list = array();
    for (int i = 0; i < n; ++i) {
        const std::uint64_t u = r_.below(3);
        Value rs = object();
        if (u == 0) {
            Tb target = tb();
            target << make("elb") << ".";
            rs.set("Name", S("api." + org_ + ".com."))
                .set("Type", S("A"))
                .set("AliasTarget", object()
                                        .set("HostedZoneId", sv(make("zone")))
                                        .set("DNSName", str(target.t))
                                        .set("EvaluateTargetHealth", boolean(true)));
        } else if (u == 1) {
            rs.set("Name", S("cdn." + org_ + ".com."))
                .set("Type", S("CNAME"))
                .set("TTL", num(300))
                .set("ResourceRecords", array().push(object().set("Value", sv(make("cf")))));
        } else {
            rs.set("Name", S("db.internal." + org_ + ".com."))
                .set("Type", S("CNAME"))
                .set("TTL", num(60))
                .set("ResourceRecords", array().push(object().set("Value", sv(make("rds")))));
        }
        list.push(std::move(rs));
    }
    list.push(object()
                  .set("Name", S(org_ + ".com."))
                  .set("Type", S("NS"))
                  .set("TTL", num(172800))
                  .set("ResourceRecords", array().push(object().set("Value", S("ns-" + std::to_string(r_.range(100, 2000)) + ".awsdns-" + std::to_string(r_.range(10, 63)) + ".org.")))));
    return object().set("ResourceRecordSets", std::move(list));
}

Value Gen::natGateways(int n)
{
    Value list = array();
    for (int i = 0; i < n; ++i)
        list.push(object()
                      .set("CreateTime", S(ts()))
                      .set("NatGatewayAddresses", array().push(object()
                                                                   .set("AllocationId", sv(make("eipalloc")))
                                                                   .set("NetworkInterfaceId", sv(make("eni")))
                                                                   .set("PrivateIp", sv(make("ip")))
                                                                   .set("PublicIp", sd(decoy("public_ip")))
                                                                   .set("AssociationId", sv(hexId("eipassoc-")))
                                                                   .set("IsPrimary", boolean(true))
                                                                   .set("Status", S("succeeded"))))
                      .set("NatGatewayId", sv(make("nat")))
                      .set("State", S("available"))
                      .set("SubnetId", sv(make("subnet")))
                      .set("VpcId", sv(make("vpc")))
                      .set("ConnectivityType", S("public")));
    return object().set("NatGateways", std::move(list));
}

Value Gen::volumes(int n)
{
    Value list = array();
    for (int i = 0; i < n; ++i) {
        const Id vol = make("vol");
        list.push(object()
                      .set("Attachments", array().push(object()
                                                           .set("AttachTime", S(ts()))
                                                           .set("Device", S("/dev/xvda"))
                                                           .set("InstanceId", sv(make("ec2")))
                                                           .set("State", S("attached"))
                                                           .set("VolumeId", sv(vol))
                                                           .set("DeleteOnTermination", boolean(true))))
                      .set("AvailabilityZone", S(region() + "a"))
                      .set("CreateTime", S(ts()))
                      .set("Encrypted", boolean(true))
                      .set("KmsKeyId", sv(arn("kms")))
                      .set("Size", num(100))
                      .set("SnapshotId", sv(make("snap")))
                      .set("State", S("in-use"))
                      .set("VolumeId", sv(vol))
                      .set("Iops", num(3000))
                      .set("VolumeType", S("gp3")));
    }
    return object().set("Volumes", std::move(list));
}

Value Gen::cacheClusters()
{
    const std::string name = svc() + "-redis";
    return object().set(
        "ReplicationGroups",
        array().push(object()
                         .set("ReplicationGroupId", S(name))
                         .set("Description", S("session cache"))
                         .set("Status", S("available"))
                         .set("NodeGroups", array().push(object()
                                                             .set("NodeGroupId", S("0001"))
                                                             .set("PrimaryEndpoint", object().set("Address", sv(make("cache"))).set("Port", num(6379)))
                                                             .set("NodeGroupMembers", array().push(object()
                                                                                                       .set("CacheClusterId", S(name + "-001"))
                                                                                                       .set("CacheNodeId", S("0001"))
                                                                                                       .set("ReadEndpoint", object().set("Address", sv(make("cache"))).set("Port", num(6379)))
                                                                                                       .set("CurrentRole", S("primary"))))))
                         .set("ARN", sv(Id{"arn:aws:elasticache:" + region() + ":" + acct() + ":replicationgroup:" + name, "ELASTICACHE_ARN", "arn"}))
                         .set("AtRestEncryptionEnabled", boolean(true))
                         .set("KmsKeyId", sv(arn("kms")))));
}

Value Gen::organization()
{
    const Id org = make("org");
    const std::string mgmt = acct();
    const Id ou = make("ou");
    Value doc = object();
    if (gap()) {
        const std::string member = acct();
        doc.set("Accounts", array().push(object()
                                             .set("Id", sv(Id{member, "ACCOUNT", "gap_org_account_id"}))
                                             .set("Arn", sv(Id{"arn:aws:organizations::" + mgmt + ":account/" + org.value + "/" + member, "ORG_ARN", "arn"}))
                                             .set("Email", S("aws+workloads@" + org_ + ".com"))
                                             .set("Name", S("workloads-" + env()))));
    }
    return doc
        .set("Organization", object()
                                 .set("Id", sv(org))
                                 .set("Arn", sv(Id{"arn:aws:organizations::" + mgmt + ":organization/" + org.value, "ORG_ARN", "arn"}))
                                 .set("FeatureSet", S("ALL"))
                                 .set("MasterAccountArn", sv(Id{"arn:aws:organizations::" + mgmt + ":account/" + org.value + "/" + mgmt, "ORG_ARN", "arn"}))
                                 .set("MasterAccountId", sv(Id{mgmt, "ACCOUNT", "account_in_context"}))
                                 .set("MasterAccountEmail", S("aws-admin@" + org_ + ".com")))
        .set("OrganizationalUnits", array().push(object()
                                                     .set("Id", sv(ou))
                                                     .set("Arn", sv(Id{"arn:aws:organizations::" + mgmt + ":ou/" + org.value + "/" + ou.value, "ORG_ARN", "arn"}))
                                                     .set("Name", S("Workloads"))));
}

Value Gen::metricStats(bool withDimension)
{
    Value points = array();
    const int n = r_.range(4, 12);
    for (int i = 0; i < n; ++i) {
        char avg[32];
        std::snprintf(avg, sizeof avg, "%d.%02d", r_.range(1, 99), r_.range(0, 99));
        points.push(object().set("Timestamp", S(ts())).set("Average", lit(avg)).set("Unit", S("Percent")));
    }
    Value v = object().set("Label", S("CPUUtilization")).set("Datapoints", std::move(points));
    if (withDimension)
        v.set("Dimensions", array().push(object().set("Name", S("InstanceId")).set("Value", sv(make("ec2")))));
    return v;
}

// The rarer resource types, a few sections at a time.
Value Gen::miscIds()
{
    struct Simple {
        const char* listKey;
        std::vector<std::pair<const char*, const char*>> fields; // key, id prefix
    };
    static const Simple kSimple[] = {
        {"TransitGatewayAttachments", {{"TransitGatewayAttachmentId", "tgw-attach-"}, {"TransitGatewayId", "tgw-"}, {"ResourceId", "vpc-"}}},
        {"TransitGatewayRouteTables", {{"TransitGatewayRouteTableId", "tgw-rtb-"}, {"TransitGatewayId", "tgw-"}}},
        {"TransitGatewayMulticastDomains", {{"TransitGatewayMulticastDomainId", "tgw-mcast-domain-"}}},
        {"VpcPeeringConnections", {{"VpcPeeringConnectionId", "pcx-"}}},
        {"NetworkAcls", {{"NetworkAclId", "acl-"}, {"NetworkAclAssociationId", "aclassoc-"}, {"SubnetId", "subnet-"}}},
        {"FlowLogs", {{"FlowLogId", "fl-"}, {"ResourceId", "vpc-"}}},
        {"LaunchTemplates", {{"LaunchTemplateId", "lt-"}}},
        {"KeyPairs", {{"KeyPairId", "key-"}}},
        {"Hosts", {{"HostId", "h-"}}},
        {"CapacityReservations", {{"CapacityReservationId", "cr-"}}},
        {"Ipams", {{"IpamId", "ipam-"}, {"PrivateDefaultScopeId", "ipam-scope-"}}},
        {"IpamPools", {{"IpamPoolId", "ipam-pool-"}}},
        {"ClientVpnEndpoints", {{"ClientVpnEndpointId", "cvpn-endpoint-"}}},
        {"EgressOnlyInternetGateways", {{"EgressOnlyInternetGatewayId", "eigw-"}}},
        {"InternetGateways", {{"InternetGatewayId", "igw-"}}},
        {"VpnConnections", {{"VpnGatewayId", "vgw-"}, {"CustomerGatewayId", "cgw-"}, {"VpnConnectionId", "vpn-"}}},
        {"AccessPoints", {{"AccessPointId", "fsap-"}, {"FileSystemId", "fs-"}}},
        {"SecurityGroupRules", {{"SecurityGroupRuleId", "sgr-"}, {"GroupId", "sg-"}}},
        {"DhcpOptions", {{"DhcpOptionsId", "dopt-"}}},
        {"LocalGatewayRouteTables", {{"LocalGatewayRouteTableId", "lgw-rtb-"}, {"LocalGatewayId", "lgw-"}}},
        {"CarrierGateways", {{"CarrierGatewayId", "cagw-"}}},
        {"CidrAssociations", {{"VpcCidrAssociationId", "vpc-cidr-assoc-"}, {"SubnetCidrAssociationId", "subnet-cidr-assoc-"}}},
        {"InstanceInformationList", {{"InstanceId", "mi-"}}},
        {"VpcEndpointServices", {{"ServiceId", "vpce-svc-"}, {"VpcEndpointId", "vpce-"}}},
    };
    constexpr std::size_t kSimpleCount = sizeof kSimple / sizeof kSimple[0];
    constexpr std::size_t kSpecial = 4;
    std::vector<std::size_t> order(kSimpleCount + kSpecial);
    for (std::size_t i = 0; i < order.size(); ++i)
        order[i] = i;
    for (std::size_t i = order.size() - 1; i > 0; --i)
        std::swap(order[i], order[r_.below(i + 1)]);

    Value doc = object();
    const auto k = static_cast<std::size_t>(std::clamp(static_cast<int>(deficit(800) / 3), 2, 8));
    for (std::size_t i = 0; i < k; ++i) {
        const std::size_t s = order[i];
        if (s < kSimpleCount) {
            Value item = object();
            for (const auto& [key, prefix] : kSimple[s].fields)
                item.set(key, sv(hexId(prefix)));
            doc.set(kSimple[s].listKey, array().push(std::move(item)));
            continue;
        }
        switch (s - kSimpleCount) {
        case 0:
            doc.set("SpotInstanceRequests", array().push(object().set("SpotInstanceRequestId", sv(make("spot"))).set("State", S("open"))));
            break;
        case 1:
            doc.set("Clusters", array().push(object().set("Id", sv(make("emr"))).set("Name", S(svc() + "-spark"))));
            break;
        case 2:
            doc.set("DirectoryDescriptions", array().push(object().set("DirectoryId", sv(make("dir"))).set("Name", S("corp." + org_ + ".com"))));
            break;
        default:
            doc.set("UserPools", array().push(object().set("Id", sv(make("cogpool"))).set("Name", S(svc() + "-users"))));
            doc.set("IdentityPools", array().push(object().set("IdentityPoolId", sv(make("cogid")))));
            break;
        }
    }
    return doc;
}

// ---- tool calls and pasted output ----------------------------------------------------

Text Gen::pasted()
{
    Tb b = tb();
    const double d = deficit(1500);
    static constexpr const char* kIntro[] = {"Here is the output:\n```\n", "Logs from the last hour:\n```\n",
                                             "This is what I see:\n\n", "Output below.\n```\n"};
    b << r_.pick(kIntro);
    switch (r_.below(d >= 12 ? 9 : 3)) {
    case 0: b << logLines(r_.range(4, 14)); break;
    case 1: b << logLines(r_.range(2, 6)); break;
    case 2: b << kubectlPods(r_.range(2, 5)); break;
    case 3: b << textListing(std::clamp(std::min(static_cast<int>(d / 3), static_cast<int>(room() / 90)), 2, 16)); break;
    case 4: b << terraformPlan(std::clamp(std::min(static_cast<int>(d / 5), static_cast<int>(room() / 500)), 1, 4)); break;
    case 5: b << manifest(); break;
    case 6: b << credentialsFile(); break;
    case 7: {
        b << "instance_id,private_ip,private_dns,subnet_id,security_group";
        const int n = std::clamp(std::min(static_cast<int>(d / 5), static_cast<int>(room() / 140)), 2, 14);
        for (int i = 0; i < n; ++i)
            b << "\n" << make("ec2") << "," << make("ip") << "," << make("ec2host") << "," << make("subnet") << ","
              << make("sg");
        break;
    }
    default: b << kubectlNodes(std::clamp(std::min(static_cast<int>(d / 3), static_cast<int>(room() / 220)), 2, 6)); break;
    }
    b << "\n```";
    return std::move(b.t);
}

ToolCall Gen::gapCall()
{
    ToolCall c;
    c.tool = "aws_cli";
    switch (r_.below(6)) {
    case 3:
        c.input = object().set("command", S("aws s3api get-bucket-policy --bucket \"$BUCKET\""));
        c.output = jsonDoc(bucketPolicy());
        break;
    case 4:
        c.input = object().set("command", S("aws sqs get-queue-attributes --queue-url \"$QUEUE_URL\" --attribute-names All"));
        c.output = jsonDoc(queueAttributes());
        break;
    case 5:
        c.input = object().set("command", S("aws organizations describe-organization"));
        c.output = jsonDoc(organization());
        break;
    case 0: {
        // list-distributions calls the distribution id just "Id".
        const std::string id = "E" + r_.chars(kUpperAlnum, 13);
        c.input = object().set("command", S("aws cloudfront list-distributions"));
        c.output = jsonDoc(object().set(
            "DistributionList",
            object().set("Items", array().push(object()
                                                   .set("Id", sv(Id{id, "CLOUDFRONT_DIST", "gap_cloudfront_id"}))
                                                   .set("ARN", sv(Id{"arn:aws:cloudfront::" + acct() + ":distribution/" + id, "CLOUDFRONT_ARN", "arn"}))
                                                   .set("DomainName", sv(make("cf")))
                                                   .set("Status", S("Deployed"))))));
        break;
    }
    case 1: {
        // Bucket names without an s3:// or ARN around them.
        Value buckets = array();
        const int n = r_.range(2, 5);
        for (int i = 0; i < n; ++i)
            buckets.push(object().set("Name", sv(Id{bucketName(), "BUCKET", "gap_bucket_name"})).set("CreationDate", S(ts())));
        c.input = object().set("command", S("aws s3api list-buckets"));
        c.output = jsonDoc(object().set("Buckets", std::move(buckets)));
        break;
    }
    default: {
        // S3 interface endpoint DNS names: <endpoint id>-<suffix>.s3.<region>.vpce.amazonaws.com
        const Id vpce = hexId("vpce-");
        const std::string suffix = "-" + r_.chars(kLowerAlnum, 8) + ".s3." + region() + ".vpce.amazonaws.com";
        Tb plain = tb();
        plain << Id{vpce.value, "VPCE", "gap_vpce_dns"} << suffix;
        Tb wildcard = tb();
        wildcard << "*." << Id{vpce.value, "VPCE", "gap_vpce_dns"} << suffix;
        c.input = object().set("command", S("aws ec2 describe-vpc-endpoints"));
        c.output = jsonDoc(object().set(
            "VpcEndpoints", array().push(object()
                                             .set("VpcEndpointId", sv(vpce))
                                             .set("VpcEndpointType", S("Interface"))
                                             .set("ServiceName", S("com.amazonaws." + region() + ".s3"))
                                             .set("DnsEntries", array()
                                                                    .push(object().set("DnsName", str(std::move(plain.t))))
                                                                    .push(object().set("DnsName", str(std::move(wildcard.t)))))
                                             .set("OwnerId", sv(account("owner_id"))))));
        break;
    }
    }
    return c;
}

ToolCall Gen::toolCall()
{
    if (gap())
        return gapCall();
    ToolCall c;
    const double d = deficit(1500);
    const auto aws = [&](Text cmd, const Value& out) {
        c.tool = "aws_cli";
        c.input = object().set("command", str(std::move(cmd)));
        if (r_.chance(0.4))
            c.input.set("region", S(region()));
        c.output = jsonDoc(out);
    };
    const auto logs = [&](int n) {
        c.tool = "search_logs";
        c.input = object()
                      .set("log_group", S(r_.chance(0.5) ? "/aws/lambda/" + kebab() : "/ecs/" + kebab()))
                      .set("filter_pattern", S(r_.chance(0.5) ? "ERROR" : "?ERROR ?WARN"))
                      .set("start_time", S(ts()))
                      .set("limit", num(50));
        if (r_.chance(0.3)) {
            Value events = array();
            for (int i = 0; i < n; ++i)
                events.push(object().set("timestamp", num(1705312800000LL + static_cast<long long>(r_.below(90000000))))
                                .set("message", str(fill(r_.pick(kLogTemplates)))));
            c.output = jsonDoc(object().set("events", std::move(events)));
        } else {
            c.output = logLines(n);
        }
    };
    const auto kubectl = [&](const char* what, Text out) {
        c.tool = "kubectl";
        c.input = object().set("args", array().push(S("get")).push(S(what)).push(S("-n")).push(S(svc())).push(S("-o")).push(S("wide")));
        c.output = std::move(out);
    };
    const auto f = [&](std::string_view tpl) { return fill(tpl); };
    // Items wanted by the budget, capped by the room left before the target size.
    const auto clampN = [&](double per, int lo, int hi, int itemBytes) {
        return std::clamp(std::min(static_cast<int>(d / per), static_cast<int>(room() / itemBytes)), lo, hi);
    };

    if (d >= 12) {
        switch (r_.below(14)) {
        case 0: aws(f("aws ec2 describe-instances --instance-ids {ec2}"), describeInstances(clampN(16, 1, 3, 2000))); break;
        case 1: aws(f("aws cloudtrail lookup-events --lookup-attributes AttributeKey=EventName,AttributeValue=RunInstances"), cloudTrail(clampN(15, 1, 3, 2200))); break;
        case 2: kubectl("pods", kubectlPods(clampN(2, 3, 14, 170))); break;
        case 3: kubectl("nodes", kubectlNodes(clampN(3, 2, 8, 220))); break;
        case 4:
            c.tool = "terraform";
            c.input = object().set("workdir", S("infra/" + env())).set("command", S("plan"));
            c.output = terraformPlan(clampN(5, 1, 5, 500));
            break;
        case 5:
            c.tool = "aws_inventory";
            c.input = object().set("scope", S("network")).set("region", S(region()));
            c.output = jsonDoc(miscIds());
            break;
        case 6: aws(f("aws ec2 describe-route-tables --filters Name=vpc-id,Values={vpc}"), routeTables(clampN(10, 1, 2, 1200))); break;
        case 7: aws(f("aws ec2 describe-security-groups --group-ids {sg}"), securityGroups(clampN(6, 1, 3, 900))); break;
        case 8: aws(f("aws lambda get-function-configuration --function-name {kebab}"), lambdaConfig()); break;
        case 9: aws(f("aws rds describe-db-instances"), dbInstances()); break;
        case 10: aws(f("aws eks describe-cluster --name {svc}-{env}"), eksCluster()); break;
        case 11: aws(f("aws ec2 describe-nat-gateways --filter Name=vpc-id,Values={vpc}"), natGateways(clampN(8, 1, 3, 700))); break;
        case 12:
            c.tool = "aws_cli";
            c.input = object().set("command", S("aws ec2 describe-instances --query 'Reservations[].Instances[].[InstanceId,PrivateIpAddress,State.Name,SubnetId,Placement.AvailabilityZone]' --output text"));
            c.output = textListing(clampN(3, 3, 20, 90));
            break;
        default: aws(f("aws ec2 describe-volumes --filters Name=attachment.instance-id,Values={ec2}"), volumes(clampN(6, 1, 3, 700))); break;
        }
    } else if (d >= 3) {
        switch (r_.below(16)) {
        case 0: aws(f("aws sts get-caller-identity"), callerIdentity()); break;
        case 1: aws(f("aws kms describe-key --key-id {kmsalias}"), kmsKey()); break;
        case 2: aws(f("aws ecr describe-repositories"), ecrRepositories(1)); break;
        case 3: aws(f("aws route53 list-resource-record-sets --hosted-zone-id {zone}"), recordSets(r_.range(1, 2))); break;
        case 4: aws(f("aws sqs get-queue-attributes --queue-url {sqsurl} --attribute-names All"), queueAttributes()); break;
        case 5: aws(f("aws s3api get-bucket-policy --bucket \"$BUCKET\""), bucketPolicy()); break;
        case 6: aws(f("aws elbv2 describe-load-balancers --names {svc}-alb"), loadBalancers()); break;
        case 7: aws(f("aws organizations describe-organization"), organization()); break;
        case 8: aws(f("aws elasticache describe-replication-groups"), cacheClusters()); break;
        case 9: aws(f("aws sts assume-role --role-arn {arn_role} --role-session-name debug"), assumeRole()); break;
        case 10: logs(r_.range(4, 12)); break;
        case 11: aws(f("aws ec2 describe-subnets --subnet-ids {subnet}"), subnets(1)); break;
        case 12:
            c.tool = "aws_inventory";
            c.input = object().set("scope", S("network")).set("region", S(region()));
            c.output = jsonDoc(miscIds());
            break;
        case 13:
            c.tool = "read_file";
            c.input = object().set("path", S("k8s/" + svc() + "/deployment.yaml"));
            c.output = manifest();
            break;
        case 14:
            c.tool = "read_file";
            c.input = object().set("path", S("~/.aws/credentials"));
            c.output = credentialsFile();
            break;
        default:
            c.tool = "aws_cli";
            c.input = object().set("command", S("aws ec2 describe-instances"));
            c.output = f("An error occurred (UnauthorizedOperation) when calling the DescribeInstances operation: "
                         "You are not authorized to perform this operation. User: {arn_sts} is not authorized to "
                         "perform: ec2:DescribeInstances with an explicit deny in a service control policy");
            c.isError = true;
            break;
        }
    } else if (d >= 0.5) {
        switch (r_.below(4)) {
        case 0: logs(r_.range(5, 14)); break;
        case 1:
            aws(f("aws cloudwatch get-metric-statistics --namespace AWS/EC2 --metric-name CPUUtilization "
                  "--dimensions Name=InstanceId,Value={ec2} --statistics Average --period 300"),
                metricStats(true));
            break;
        case 2: kubectl("pods", kubectlPods(r_.range(3, 6))); break;
        default: aws(f("aws sts get-caller-identity"), callerIdentity()); break;
        }
    } else {
        switch (r_.below(5)) {
        case 0: logs(r_.range(4, 12)); break;
        case 1:
            aws(f("aws cloudwatch get-metric-statistics --namespace AWS/ApplicationELB --metric-name TargetResponseTime "
                  "--statistics Average --period 300"),
                metricStats(false));
            break;
        case 2: {
            std::vector<std::vector<Text>> rows;
            rows.push_back({"NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"});
            const int n = r_.range(3, 8);
            for (int i = 0; i < n; ++i) {
                const int want = r_.range(1, 6);
                rows.push_back({kebab(), std::to_string(r_.range(0, want)) + "/" + std::to_string(want),
                                std::to_string(want), std::to_string(want), std::to_string(r_.range(1, 200)) + "d"});
            }
            kubectl("deployments", table(rows));
            break;
        }
        case 3:
            c.tool = "terraform";
            c.input = object().set("workdir", S("infra/" + env())).set("command", S("validate"));
            c.output = Text("Success! The configuration is valid.\n");
            break;
        default:
            c.tool = "read_file";
            c.input = object().set("path", S("docs/runbooks/" + svc() + ".md"));
            c.output = prose(r_.range(4, 10));
            break;
        }
    }
    return c;
}

// ---- the request around the conversation ---------------------------------------------

Value Gen::tools()
{
    const auto prop = [](const char* type, const char* desc) {
        return object().set("type", S(type)).set("description", S(desc));
    };
    Value list = array();
    list.push(object()
                  .set("name", S("aws_cli"))
                  .set("description", S("Run a read-only AWS CLI command and return its output. Only describe-, list- "
                                        "and get- operations are allowed; mutating calls are rejected."))
                  .set("input_schema", object()
                                           .set("type", S("object"))
                                           .set("properties", object()
                                                                  .set("command", prop("string", "The full command line, starting with `aws`."))
                                                                  .set("region", prop("string", "Region override, e.g. us-east-1.")))
                                           .set("required", array().push(S("command")))));
    if (o_.idsPer10k < 50 || r_.chance(0.5))
        list.push(object()
                      .set("name", S("kubectl"))
                      .set("description", S("Run kubectl against the current cluster context (read-only verbs)."))
                      .set("input_schema", object()
                                               .set("type", S("object"))
                                               .set("properties", object().set("args", object()
                                                                                           .set("type", S("array"))
                                                                                           .set("items", object().set("type", S("string")))
                                                                                           .set("description", S("Arguments after `kubectl`."))))
                                               .set("required", array().push(S("args")))));
    if (o_.idsPer10k < 50) {
        list.push(object()
                      .set("name", S("search_logs"))
                      .set("description", S("Search CloudWatch Logs with a filter pattern and return matching events, newest first."))
                      .set("input_schema", object()
                                               .set("type", S("object"))
                                               .set("properties", object()
                                                                      .set("log_group", prop("string", "Log group name."))
                                                                      .set("filter_pattern", prop("string", "CloudWatch filter pattern."))
                                                                      .set("start_time", prop("string", "ISO 8601 start time."))
                                                                      .set("limit", prop("integer", "Maximum number of events.")))
                                               .set("required", array().push(S("log_group")))));
        list.push(object()
                      .set("name", S("terraform"))
                      .set("description", S("Run terraform plan, show or validate in a working directory."))
                      .set("input_schema", object()
                                               .set("type", S("object"))
                                               .set("properties", object()
                                                                      .set("workdir", prop("string", "Directory relative to the repository root."))
                                                                      .set("command", object().set("type", S("string")).set("enum", array().push(S("plan")).push(S("show")).push(S("validate")))))
                                               .set("required", array().push(S("workdir")).push(S("command")))));
        list.push(object()
                      .set("name", S("read_file"))
                      .set("description", S("Read a file from the infrastructure repository."))
                      .set("input_schema", object()
                                               .set("type", S("object"))
                                               .set("properties", object().set("path", prop("string", "Path of the file.")))
                                               .set("required", array().push(S("path")))));
    }
    if (r_.chance(0.5))
        list.items.back().set("cache_control", object().set("type", S("ephemeral")));
    return list;
}

Value Gen::system()
{
    Tb b = tb();
    b << "You are the on-call SRE assistant for " << org_ << ". Be concise, cite the exact resource you mean, "
      << "and never suggest a change you have not verified with a read-only command first.";
    if (o_.idsPer10k < 50)
        b << " Prefer managed services over self-hosted ones. When you are unsure, say so and propose how to find "
             "out. Format commands in code blocks. Escalate to a human for anything that touches customer data, IAM "
             "policies or network boundaries.";
    if (want())
        b << fill(" Production runs in AWS account {acct} ({region}).");
    if (r_.chance(0.4))
        return str(std::move(b.t));
    return array().push(object()
                            .set("type", S("text"))
                            .set("text", str(std::move(b.t)))
                            .set("cache_control", object().set("type", S("ephemeral"))));
}

Value Gen::imageBlock()
{
    Value source = object();
    Value data = S("iVBORw0KGgoAAAANSUhEUgAA" + r_.chars(kBase64, static_cast<std::size_t>(r_.range(200, 1200))) + "==");
    if (r_.chance(0.3))
        source.set("data", std::move(data)).set("type", S("base64")).set("media_type", S("image/png"));
    else
        source.set("type", S("base64")).set("media_type", S("image/png")).set("data", std::move(data));
    return object().set("type", S("image")).set("source", std::move(source));
}

Value Gen::thinkingBlock()
{
    Tb b = tb();
    b << "The user is asking about " << r_.pick(kWords) << ". " << analysis();
    return object()
        .set("type", S("thinking"))
        .set("thinking", str(std::move(b.t)))
        .set("signature", S("Eq" + r_.chars(kBase64, static_cast<std::size_t>(r_.range(200, 400)))));
}

void Gen::conversation(Value& messages)
{
    const std::size_t base = bytes_;
    const Format fmt{style_, 0};
    const auto measure = [&] {
        bytes_ = base + serialize(messages, fmt).size();
        pending_ = 0;
        return bytes_ >= o_.targetBytes;
    };
    const auto textBlock = [&](Text t) { return object().set("type", S("text")).set("text", str(std::move(t))); };
    const auto user = [&](Value content) {
        messages.push(object().set("role", S("user")).set("content", std::move(content)));
    };
    const auto assistant = [&](Value content) {
        messages.push(object().set("role", S("assistant")).set("content", std::move(content)));
    };

    for (;;) {
        // A question, sometimes with pasted output or a screenshot.
        Tb q = tb();
        q << question();
        const double behind = deficit(1500);
        if (behind >= 6 && r_.chance(behind >= 12 ? 0.9 : 0.5))
            q << "\n\n" << pasted();
        else if (r_.chance(0.15))
            q << "\n\n" << prose(r_.range(2, 5));
        if (r_.chance(0.08)) {
            user(array().push(imageBlock()).push(textBlock(std::move(q.t))));
        } else if (r_.chance(0.5)) {
            user(str(std::move(q.t)));
        } else {
            user(array().push(textBlock(std::move(q.t))));
        }
        if (measure())
            return;

        const int rounds = r_.range(1, 3);
        for (int k = 0; k < rounds; ++k) {
            ToolCall call = toolCall();
            const std::string toolId = "toolu_01" + r_.chars(kBase62, 22);
            Value blocks = array();
            if (deficit(1500) < 12 && r_.chance(0.2))
                blocks.push(thinkingBlock());
            blocks.push(textBlock(analysis()));
            blocks.push(object()
                            .set("type", S("tool_use"))
                            .set("id", sd(Dec{toolId, "anthropic"}))
                            .set("name", S(call.tool))
                            .set("input", std::move(call.input)));
            assistant(std::move(blocks));

            Value result = object().set("type", S("tool_result")).set("tool_use_id", sd(Dec{toolId, "anthropic"}));
            if (r_.chance(0.2))
                result.set("content", array().push(textBlock(std::move(call.output))));
            else
                result.set("content", str(std::move(call.output)));
            if (call.isError)
                result.set("is_error", boolean(true));
            Value content = array().push(std::move(result));
            if (r_.chance(0.15))
                content.push(textBlock(prose(1)));
            user(std::move(content));
            if (measure())
                return;
        }

        Tb answer = tb();
        answer << analysis();
        if (deficit(200) < 4)
            answer << "\n\n" << prose(r_.range(1, 3));
        if (r_.chance(0.4))
            assistant(str(std::move(answer.t)));
        else
            assistant(array().push(textBlock(std::move(answer.t))));
        if (measure()) {
            // A request ends with the user's turn.
            user(str(prose(1)));
            return;
        }
    }
}

Body Gen::run()
{
    Value root = object();
    root.set("model", S(r_.pick(kModels))).set("max_tokens", num(r_.chance(0.5) ? 4096 : 8192));
    if (r_.chance(0.3))
        root.set("temperature", lit("0.2"));
    root.set("system", system());
    root.set("tools", tools());
    const Format fmt{style_, 0};
    Value probe = root;
    probe.set("messages", array());
    bytes_ = serialize(probe, fmt).size();
    pending_ = 0;

    Value messages = array();
    conversation(messages);
    root.set("messages", std::move(messages));
    if (r_.chance(0.6))
        root.set("stream", boolean(true));
    if (r_.chance(0.3))
        root.set("metadata", object().set("user_id", S("user_" + r_.hex(32))));
    body_.json = serialize(root, fmt);
    return std::move(body_);
}

} // namespace

// ---- public interface ------------------------------------------------------------------------

std::string jsonEscape(std::string_view utf8)
{
    std::string out;
    encodeBytes(utf8, styleOf(JsonStyle::JavaScript), nullptr, out);
    return out;
}

const char* styleName(JsonStyle style)
{
    return style == JsonStyle::Random ? "random" : styleOf(style).name;
}

BodyOptions sparse(std::uint64_t seed, std::size_t targetBytes)
{
    BodyOptions o;
    o.seed = seed;
    o.targetBytes = targetBytes;
    o.idsPer10k = 3;
    o.decoysPer10k = 15;
    return o;
}

BodyOptions dense(std::uint64_t seed, std::size_t targetBytes)
{
    BodyOptions o;
    o.seed = seed;
    o.targetBytes = targetBytes;
    o.idsPer10k = 140;
    o.decoysPer10k = 25;
    return o;
}

Body generateBody(const BodyOptions& options)
{
    Gen g(options);
    return g.run();
}

namespace {

// Text written twice in lockstep: with tokens (what upstream sends) and with
// the originals (what restoring must produce).
struct Twin {
    std::string masked;
    std::string expected;
    void plain(std::string_view s)
    {
        masked += s;
        expected += s;
    }
};

// Some prose that mentions tokens, plus near misses that are not whole tokens.
void echoProse(Rng& r, const std::vector<TokenPair>& tokens, std::size_t bytes, Twin& t)
{
    const std::size_t start = t.masked.size();
    while (t.masked.size() - start < bytes) {
        if (!t.masked.empty() && t.masked.size() > start)
            t.plain(r.chance(0.15) ? "\n" : " ");
        if (tokens.empty() || r.chance(0.35)) {
            t.plain(r.chance(0.5) ? r.pick(kAnalysis) : r.pick(kProse));
            continue;
        }
        const TokenPair& tp = r.pick(tokens);
        switch (r.below(6)) {
        case 0:
            t.plain("Near misses such as " + tp.token + "9 and X" + tp.token + " are not tokens.");
            break;
        case 1:
            t.plain("(");
            t.masked += tp.token;
            t.expected += tp.original;
            t.plain("),");
            break;
        default:
            t.plain("I checked ");
            t.masked += tp.token;
            t.expected += tp.original;
            t.plain(r.chance(0.5) ? " and it looks healthy." : ": nothing unusual.");
            break;
        }
    }
}

// The same, for text that sits inside a JSON string: originals JSON-escaped.
void echoJsonText(Rng& r, const std::vector<TokenPair>& tokens, std::size_t bytes, Twin& t)
{
    Twin raw;
    echoProse(r, tokens, bytes, raw);
    t.masked += jsonEscape(raw.masked);
    t.expected += jsonEscape(raw.expected);
}

// The JSON text of a tool_use input whose strings mention tokens; `escaped`:
// the originals on the expected side are JSON-escaped (they sit in strings).
void toolInput(Rng& r, const std::vector<TokenPair>& tokens, Twin& t)
{
    const auto tok = [&](const TokenPair& tp) {
        t.masked += tp.token;
        t.expected += jsonEscape(tp.original);
    };
    t.plain("{\"command\": \"aws ec2 describe-instances --instance-ids");
    const int n = tokens.empty() ? 0 : r.range(1, 3);
    for (int i = 0; i < n; ++i) {
        t.plain(" ");
        tok(r.pick(tokens));
    }
    t.plain("\", \"ids\": [");
    for (int i = 0; i < n; ++i) {
        if (i)
            t.plain(", ");
        t.plain("\"");
        tok(r.pick(tokens));
        t.plain("\"");
    }
    t.plain("], \"note\": \"line one\\nline two ");
    if (!tokens.empty())
        tok(r.pick(tokens));
    t.plain("\"}");
}

} // namespace

Response generateResponse(const std::vector<TokenPair>& tokens, std::uint64_t seed, std::size_t targetBytes)
{
    Rng r(seed);
    Twin t;
    t.plain("{\"id\":\"msg_01" + r.chars(kBase62, 22) +
            "\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5-20250929\",\"content\":[");
    bool first = true;
    while (t.masked.size() < targetBytes) {
        if (!first)
            t.plain(",");
        first = false;
        if (r.chance(0.7)) {
            t.plain("{\"type\":\"text\",\"text\":\"");
            echoJsonText(r, tokens, static_cast<std::size_t>(r.range(300, 1500)), t);
            t.plain("\"}");
        } else {
            t.plain("{\"type\":\"tool_use\",\"id\":\"toolu_01" + r.chars(kBase62, 22) +
                    "\",\"name\":\"aws_cli\",\"input\":");
            toolInput(r, tokens, t);
            t.plain("}");
        }
    }
    t.plain("],\"stop_reason\":\"end_turn\",\"stop_sequence\":null,\"usage\":{\"input_tokens\":" +
            std::to_string(r.range(1000, 90000)) + ",\"output_tokens\":" + std::to_string(r.range(100, 4000)) + "}}");
    return Response{std::move(t.masked), std::move(t.expected)};
}

Stream generateStream(const std::vector<TokenPair>& tokens, std::uint64_t seed, std::size_t textBytes)
{
    Rng r(seed);
    Stream s;
    const std::string eol = r.chance(0.1) ? "\r\n" : "\n";
    const auto event = [&](std::string_view name, const std::string& data) {
        s.masked += "event: ";
        s.masked += name;
        s.masked += eol;
        s.masked += "data: ";
        s.masked += data;
        s.masked += eol;
        s.masked += eol;
        ++s.events;
    };
    // Cuts `text` into deltas of 1-24 bytes, never inside a UTF-8 sequence.
    const auto deltas = [&](int index, const char* deltaType, const char* field, const std::string& text) {
        std::size_t pos = 0;
        while (pos < text.size()) {
            std::size_t end = std::min(text.size(), pos + static_cast<std::size_t>(r.range(1, 24)));
            while (end < text.size() && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80)
                ++end;
            event("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":" + std::to_string(index) +
                                             ",\"delta\":{\"type\":\"" + deltaType + "\",\"" + field + "\":\"" +
                                             jsonEscape(text.substr(pos, end - pos)) + "\"}}");
            pos = end;
        }
    };

    event("message_start", "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_01" + r.chars(kBase62, 22) +
                               "\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5-20250929\","
                               "\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":" +
                               std::to_string(r.range(1000, 90000)) + ",\"output_tokens\":1}}}");
    event("ping", "{\"type\": \"ping\"}");

    int index = 0;
    const auto block = [&](const char* kind) {
        Twin t;
        const std::string i = std::to_string(index);
        if (std::string_view(kind) == "thinking") {
            event("content_block_start", "{\"type\":\"content_block_start\",\"index\":" + i +
                                             ",\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\"}}");
            echoProse(r, tokens, textBytes / 3, t);
            deltas(index, "thinking_delta", "thinking", t.masked);
            event("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":" + i +
                                             ",\"delta\":{\"type\":\"signature_delta\",\"signature\":\"Eq" +
                                             r.chars(kBase64, 200) + "\"}}");
        } else if (std::string_view(kind) == "text") {
            event("content_block_start", "{\"type\":\"content_block_start\",\"index\":" + i +
                                             ",\"content_block\":{\"type\":\"text\",\"text\":\"\"}}");
            echoProse(r, tokens, textBytes, t);
            deltas(index, "text_delta", "text", t.masked);
        } else {
            event("content_block_start", "{\"type\":\"content_block_start\",\"index\":" + i +
                                             ",\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_01" +
                                             r.chars(kBase62, 22) + "\",\"name\":\"aws_cli\",\"input\":{}}}");
            toolInput(r, tokens, t);
            deltas(index, "input_json_delta", "partial_json", t.masked);
        }
        event("content_block_stop", "{\"type\":\"content_block_stop\",\"index\":" + i + "}");
        s.expected.push_back(std::move(t.expected));
        ++index;
    };
    if (r.chance(0.3))
        block("thinking");
    block("text");
    if (r.chance(0.6))
        block("tool_use");
    if (r.chance(0.3))
        block("text");
    event("message_delta", "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},"
                           "\"usage\":{\"output_tokens\":" + std::to_string(r.range(100, 4000)) + "}}");
    event("message_stop", "{\"type\":\"message_stop\"}");
    return s;
}

} // namespace veil::bodygen
