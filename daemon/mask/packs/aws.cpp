// The built-in "aws" pattern pack.
//
// Every regex here is in the subset both Vectorscan (block mode) and PCRE2
// accept: no lookaround, no backreferences, at
// most one capturing group. Where a rule needs a look-behind or look-ahead
// it uses the one-byte notBefore/notAfter lists, and where it needs a check
// a regex cannot express (a valid IPv6 address, "has a digit") a validator.
//
// What the pack deliberately does NOT do, unlike the Kong aws-masker it
// replaces: match ordinary words that merely contain "db" or "bucket", match
// resource-id shapes inside longer tokens (msg-0a1b2c3d, api-0123…), match
// bare 12-digit numbers or UUIDs, or touch public, loopback and documentation
// addresses. Rules that cannot avoid that (bucket-ish words, public IPv4,
// bare 12-digit numbers) are heuristic and off unless enabled by name.
//
// Priorities (lower wins on overlap), from specific to generic:
//    5  secrets named by their key (secret access key, session token)
//   10  ARNs of known services, S3 ARNs
//   15  the account id inside any other ARN
//   19  the account id in NNNNNNNNNNNN.signin.aws.amazon.com (beats the alias)
//   20  service hostnames and URLs (S3, RDS, ELB, EKS, SQS, ECR, …)
//   25  bare EC2 private-IP host names (ip-10-0-1-5)
//   30  resource ids with a compound prefix (tgw-rtb-…), IAM unique ids,
//       access key ids, session tokens by prefix, other fixed-shape ids
//   40  resource ids with a simple prefix (i-, vpc-, …)
//   50  values named by their key (account id, KMS key id, hosted zone)
//   60  private IPv4 / IPv6 ULA addresses
//  200  heuristics (off by default)
//
// Tokens must never be matched again by a rule (the masker re-scans its
// output): every rule either masks its whole match or requires a value shape
// a token (UPPER_CASE_001) cannot have.
//
// Speed: with leftmost start-of-match tracking, a structured host-name
// prefix ("[a-z][a-z0-9-]*\.[a-z0-9]{6,16}\.<region>\.rds…") made
// Vectorscan run a full automaton over all lowercase text (~25 MB/s for the
// pack); a single repeated class before a literal suffix
// ("[a-z0-9.-]+\.rds\.amazonaws\.com") plus a validator keeps the pack
// above 1 GB/s. Large bounded repeats ({0,62}, {40,}) after a context
// keyword do not compile at all ("Pattern is too large").

#include <arpa/inet.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mask/rule.h"

namespace veil::mask {

// ---- validators -----------------------------------------------------------

static bool containsDigit(std::string_view v)
{
    for (char c : v)
        if (c >= '0' && c <= '9')
            return true;
    return false;
}

// Session tokens are hundreds of bytes; "session token: none" is prose.
static bool atLeast40Bytes(std::string_view v)
{
    return v.size() >= 40;
}

// fc00::/7. inet_pton decides what a valid address is; the regex only finds
// candidates, and the masker keeps the longest candidate that passes here.
static bool isUniqueLocalIpv6(std::string_view v)
{
    // INET6_ADDRSTRLEN (46) includes the terminating NUL.
    std::array<char, 46> buf{};
    if (v.empty() || v.size() >= buf.size())
        return false;
    v.copy(buf.data(), v.size());
    std::array<unsigned char, 16> addr{};
    if (inet_pton(AF_INET6, buf.data(), addr.data()) != 1)
        return false;
    return (addr[0] & 0xfe) == 0xfc;
}

static bool parseIpv4(std::string_view v, std::array<unsigned, 4>& out)
{
    unsigned part = 0;
    unsigned digits = 0;
    std::size_t n = 0;
    for (std::size_t i = 0; i <= v.size(); ++i) {
        if (i == v.size() || v[i] == '.') {
            if (digits == 0 || n >= 4)
                return false;
            out[n++] = part;
            part = 0;
            digits = 0;
        } else if (v[i] >= '0' && v[i] <= '9' && digits < 3) {
            part = part * 10 + static_cast<unsigned>(v[i] - '0');
            if (part > 255)
                return false;
            ++digits;
        } else {
            return false;
        }
    }
    return n == 4;
}

// A DNS name of at least MinLabels labels, each non-empty and not starting
// with '-'. Host rules whose names are too varied for a structured regex
// (a structured one is ~80x slower with leftmost-start tracking) take any
// run of host characters before a service suffix and are checked here:
// the run starts at a label, and "us-east-1.rds.amazonaws.com" alone names
// no one's database.
template <std::size_t MinLabels> static bool hostWithLabels(std::string_view v)
{
    std::size_t labels = 0;
    std::size_t len = 0;
    for (std::size_t i = 0; i <= v.size(); ++i) {
        if (i == v.size() || v[i] == '.') {
            if (len == 0)
                return false;
            ++labels;
            len = 0;
        } else {
            if (len == 0 && v[i] == '-')
                return false;
            ++len;
        }
    }
    return labels >= MinLabels;
}

// The bucket part of bucket.s3….amazonaws.com. Its regex takes any run of
// bucket characters (fast to scan); here it must also start and end like a
// bucket name, and not be one of the S3 service principals
// (logging.s3.amazonaws.com) that appear in every bucket policy.
static bool isVirtualHostedBucket(std::string_view v)
{
    auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
    if (v.size() < 3 || v.size() > 255 || !alnum(v.front()) || !alnum(v.back()))
        return false;
    return v != "logging" && v != "batchoperations";
}

// Public unicast only: private ranges have their own (default-on) rule, and
// loopback, link-local, documentation, benchmarking, multicast and reserved
// addresses identify nobody's infrastructure.
static bool isPublicIpv4(std::string_view v)
{
    std::array<unsigned, 4> o{};
    if (!parseIpv4(v, o))
        return false;
    const unsigned a = o[0];
    const unsigned b = o[1];
    const unsigned c = o[2];
    if (a == 0 || a == 10 || a == 127 || a >= 224)
        return false;
    if (a == 100 && b >= 64 && b <= 127)
        return false;
    if (a == 169 && b == 254)
        return false;
    if (a == 172 && b >= 16 && b <= 31)
        return false;
    if (a == 192 && b == 168)
        return false;
    if (a == 192 && b == 0 && (c == 0 || c == 2))
        return false;
    if (a == 198 && (b == 18 || b == 19))
        return false;
    if ((a == 198 && b == 51 && c == 100) || (a == 203 && b == 0 && c == 113))
        return false;
    return true;
}

// Cognito user pool ids end in 9 random letters and digits. Requiring a
// digit or two capitals keeps "us-east-1_something" (a word) unmasked while
// missing well under 1% of real ids.
static bool looksRandomAfterUnderscore(std::string_view v)
{
    const auto us = v.rfind('_');
    if (us == std::string_view::npos)
        return false;
    unsigned upper = 0;
    for (char c : v.substr(us + 1)) {
        if (c >= '0' && c <= '9')
            return true;
        if (c >= 'A' && c <= 'Z')
            ++upper;
    }
    return upper >= 2;
}

// AWS-managed key aliases (alias/aws/s3, …) are the same in every account.
// The rule's notAfter makes `v` the whole alias, never a prefix of one, so
// rejecting here cannot leave a shorter "alias/aw" to be masked instead.
static bool isCustomerKmsAlias(std::string_view v)
{
    return v != "alias/aws" && v.substr(0, 10) != "alias/aws/";
}

// "bucket" and "buckets" are words; "logs-bucket-2" is a name.
static bool looksLikeBucketName(std::string_view v)
{
    for (char c : v)
        if (c == '-' || (c >= '0' && c <= '9'))
            return true;
    return false;
}

// ---- shared regex fragments ----------------------------------------------

namespace {

// Every partition AWS has published, including the isolated ones.
constexpr std::string_view kPartition = "(?:aws|aws-cn|aws-us-gov|aws-iso|aws-iso-b|aws-iso-e|aws-iso-f|aws-eusc)";

// A region name: us-east-1, us-gov-west-1, us-isob-east-1, eusc-de-east-1.
// Spelled out so that it cannot be an arbitrary hyphenated word.
constexpr std::string_view kRegion =
    "(?:[a-z]{2}|eusc-[a-z]{2})(?:-gov|-iso[bef]?)?-"
    "(?:north|south|east|west|central|northeast|northwest|southeast|southwest)-[0-9]{1,2}";

// One IPv4 octet, 0-255, without leading zeros.
constexpr std::string_view kOctet = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";

// The private first two octets: 10/8, 172.16/12, 192.168/16, 100.64/10.
// `sep` is "\\." for dotted addresses and "-" for EC2 host names.
std::string privatePrefix(std::string_view sep)
{
    std::string o(kOctet);
    std::string s(sep);
    return "(?:10" + s + o + "|172" + s + "(?:1[6-9]|2[0-9]|3[01])|192" + s + "168|100" + s +
           "(?:6[4-9]|[7-9][0-9]|1[01][0-9]|12[0-7]))";
}

// The resource part of an ARN. Its last character comes from a narrower class
// so that the ARN ends before a sentence's ".", ":" or ")". "," is left out
// altogether because ARNs are so often listed comma-separated.
constexpr std::string_view kArnResource = "[A-Za-z0-9_+=.@:/*$#{}-]*[A-Za-z0-9_+=@/*$#}-]";

// Between a key ("aws_secret_access_key", "AccountId") and its value:
// quotes, colons, equals signs, commas, whitespace and JSON escapes, plus the
// `"value":` of name/value lists (ECS task definitions, Kubernetes env).
constexpr std::string_view kKeyGap = "[\\s\"':=,\\\\]{0,16}(?:(?i:value)[\\s\"':=,\\\\]{1,16})?";

// An S3 bucket name as S3 accepts it today (lowercase, digits, ".", "-"),
// plus "_" for legacy us-east-1 buckets. Lowercase-only means a token such as
// BUCKET_001 never matches again.
constexpr std::string_view kBucket = "[a-z0-9][a-z0-9._-]*[a-z0-9]";
constexpr std::string_view kUpper = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
constexpr std::string_view kWordBytes = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_";

constexpr std::string_view kUuid = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}";

std::string str(std::string_view s)
{
    return std::string(s);
}

RuleSpec rule(std::string name, std::string type, std::string regex, int priority)
{
    RuleSpec r;
    r.name = "aws." + std::move(name);
    r.tokenType = std::move(type);
    r.regex = std::move(regex);
    r.priority = priority;
    return r;
}

RuleSpec withNotAfter(RuleSpec r, std::string_view bytes)
{
    r.notAfter = std::string(bytes);
    return r;
}

RuleSpec withNotBefore(RuleSpec r, std::string_view bytes)
{
    r.notBefore = std::string(bytes);
    return r;
}

RuleSpec withValidator(RuleSpec r, Validator v)
{
    r.validate = v;
    return r;
}

RuleSpec heuristic(RuleSpec r)
{
    r.heuristic = true;
    r.enabled = false;
    return r;
}

// ---- resource ids: prefix + 8 or 17 lowercase hex -----------------------

struct HexId {
    const char* name;
    const char* prefix; // including the trailing '-'
    const char* type;
    bool legacy8; // also the 8-hex form of resources created before 2016-18
};

// Prefixes that contain another prefix (tgw-rtb- contains rtb-) are listed
// in kCompoundHexIds and get a lower priority number, so the longer, more
// specific id wins the overlap.
constexpr HexId kHexIds[] = {
    {"ec2_instance", "i-", "EC2", true},
    {"ami", "ami-", "AMI", true},
    {"ebs_volume", "vol-", "EBS_VOL", true},
    {"ebs_snapshot", "snap-", "EBS_SNAP", true},
    {"security_group", "sg-", "SG", true},
    {"security_group_rule", "sgr-", "SGR", false},
    {"subnet", "subnet-", "SUBNET", true},
    {"vpc", "vpc-", "VPC", true},
    {"internet_gateway", "igw-", "IGW", true},
    {"egress_only_igw", "eigw-", "EIGW", true},
    {"nat_gateway", "nat-", "NAT_GW", true},
    {"transit_gateway", "tgw-", "TGW", true},
    {"network_interface", "eni-", "ENI", true},
    {"route_table", "rtb-", "RTB", true},
    {"vpc_endpoint", "vpce-", "VPCE", true},
    {"efs", "fs-", "EFS", true},
    {"efs_access_point", "fsap-", "EFS_AP", true},
    {"network_acl", "acl-", "NACL", true},
    {"eip_allocation", "eipalloc-", "EIP_ALLOC", true},
    {"eip_association", "eipassoc-", "EIP_ASSOC", true},
    {"vpc_peering", "pcx-", "PCX", true},
    {"dhcp_options", "dopt-", "DOPT", true},
    {"launch_template", "lt-", "LT", true},
    {"customer_gateway", "cgw-", "CGW", true},
    {"vpn_gateway", "vgw-", "VGW", true},
    {"vpn_connection", "vpn-", "VPN", true},
    {"prefix_list", "pl-", "PL", true},
    {"flow_log", "fl-", "FLOW_LOG", true},
    // key-deadbeef, key-cafe1234 are ordinary cache keys; pair ids are 17.
    {"key_pair", "key-", "KEY_PAIR", false},
    {"capacity_reservation", "cr-", "CAP_RES", true},
    {"local_gateway", "lgw-", "LGW", true},
    {"carrier_gateway", "cagw-", "CAGW", true},
    {"ipam", "ipam-", "IPAM", true},
    {"rtb_association", "rtbassoc-", "RTB_ASSOC", true},
    {"acl_association", "aclassoc-", "NACL_ASSOC", true},
    // h-, r- and mi- are too short to be safe with 8 hex ("r-deadbeef").
    {"dedicated_host", "h-", "DEDICATED_HOST", false},
    {"reservation", "r-", "RESERVATION", false},
    {"ssm_managed_instance", "mi-", "SSM_MI", false},
};

constexpr HexId kCompoundHexIds[] = {
    {"tgw_attachment", "tgw-attach-", "TGW_ATTACH", true},
    {"tgw_route_table", "tgw-rtb-", "TGW_RTB", true},
    {"tgw_multicast_domain", "tgw-mcast-domain-", "TGW_MCAST", true},
    {"eni_attachment", "eni-attach-", "ENI_ATTACH", true},
    {"vpc_endpoint_service", "vpce-svc-", "VPCE_SVC", true},
    {"ipam_pool", "ipam-pool-", "IPAM_POOL", true},
    {"ipam_scope", "ipam-scope-", "IPAM_SCOPE", true},
    {"vpc_cidr_association", "vpc-cidr-assoc-", "VPC_CIDR_ASSOC", true},
    {"subnet_cidr_association", "subnet-cidr-assoc-", "SUBNET_CIDR_ASSOC", true},
    {"client_vpn_endpoint", "cvpn-endpoint-", "CVPN", true},
    {"local_gateway_route_table", "lgw-rtb-", "LGW_RTB", true},
};

RuleSpec hexIdRule(const HexId& id, int priority)
{
    // \b on both sides: "api-0123…" and "xi-0123abcd" are not EC2 ids, and an
    // 18th hex digit makes it something else too.
    std::string hex = id.legacy8 ? "(?:[0-9a-f]{8}|[0-9a-f]{17})" : "[0-9a-f]{17}";
    return rule(id.name, id.type, "\\b" + str(id.prefix) + hex + "\\b", priority);
}

// ---- ARNs -----------------------------------------------------------------

struct ArnService {
    const char* name;
    const char* service; // regex alternation of service names in the ARN
    const char* type;
    bool accountOptional; // the service's ARNs carry no account (route53, apigateway)
};

constexpr ArnService kArnServices[] = {
    {"iam", "iam", "IAM_ARN", false},
    {"sts", "sts", "STS_ARN", false},
    {"lambda", "lambda", "LAMBDA_ARN", false},
    {"rds", "rds", "RDS_ARN", false},
    {"ec2", "ec2", "EC2_ARN", false},
    {"sqs", "sqs", "SQS_ARN", false},
    {"sns", "sns", "SNS_ARN", false},
    {"dynamodb", "dynamodb", "DYNAMODB_ARN", false},
    {"kms", "kms", "KMS_ARN", false},
    {"secretsmanager", "secretsmanager", "SECRET_ARN", false},
    {"ecs", "ecs", "ECS_ARN", false},
    {"eks", "eks", "EKS_ARN", false},
    {"elb", "elasticloadbalancing", "ELB_ARN", false},
    {"logs", "logs", "LOGS_ARN", false},
    {"cloudformation", "cloudformation", "CFN_ARN", false},
    {"states", "states", "SFN_ARN", false},
    {"ecr", "ecr", "ECR_ARN", false},
    {"acm", "acm|acm-pca", "ACM_ARN", false},
    {"ssm", "ssm", "SSM_ARN", false},
    {"apigateway", "execute-api|apigateway", "APIGW_ARN", true},
    {"events", "events|scheduler", "EVENTS_ARN", false},
    {"kinesis", "kinesis|firehose|kinesisanalytics", "KINESIS_ARN", false},
    {"elasticache", "elasticache", "ELASTICACHE_ARN", false},
    {"opensearch", "es|aoss", "OPENSEARCH_ARN", false},
    {"glue", "glue", "GLUE_ARN", false},
    {"athena", "athena", "ATHENA_ARN", false},
    {"route53", "route53|route53resolver", "ROUTE53_ARN", true},
    {"cloudfront", "cloudfront", "CLOUDFRONT_ARN", false},
    {"redshift", "redshift|redshift-serverless", "REDSHIFT_ARN", false},
    {"efs", "elasticfilesystem|fsx", "EFS_ARN", false},
    {"cognito", "cognito-idp|cognito-identity", "COGNITO_ARN", false},
    {"codebuild", "codebuild|codepipeline|codecommit|codedeploy|codeartifact", "CODE_ARN", false},
    {"backup", "backup", "BACKUP_ARN", false},
    {"batch", "batch", "BATCH_ARN", false},
    {"sagemaker", "sagemaker", "SAGEMAKER_ARN", false},
    {"bedrock", "bedrock", "BEDROCK_ARN", false},
    {"emr", "elasticmapreduce|emr-serverless|emr-containers", "EMR_ARN", false},
    {"autoscaling", "autoscaling", "ASG_ARN", false},
    {"wafv2", "wafv2|waf|waf-regional", "WAF_ARN", false},
    {"organizations", "organizations", "ORG_ARN", false},
    {"cloudwatch", "cloudwatch", "CLOUDWATCH_ARN", false},
    {"cloudtrail", "cloudtrail", "CLOUDTRAIL_ARN", false},
    {"appsync", "appsync", "APPSYNC_ARN", false},
    {"kafka", "kafka", "MSK_ARN", false},
    {"mq", "mq", "MQ_ARN", false},
    {"ses", "ses", "SES_ARN", false},
    {"elasticbeanstalk", "elasticbeanstalk", "EB_ARN", false},
    {"ds", "ds", "DIRECTORY_ARN", false},
    {"sso", "sso", "SSO_ARN", false},
};

RuleSpec arnRule(const ArnService& s)
{
    std::string account = s.accountOptional ? "(?:[0-9]{12})?" : "[0-9]{12}";
    return rule("arn." + str(s.name), s.type,
                "\\barn:" + str(kPartition) + ":(?:" + s.service + "):[a-z0-9-]*:" + account + ":" + str(kArnResource),
                10);
}

// ---- the pack -------------------------------------------------------------

std::vector<RuleSpec> awsPack()
{
    std::vector<RuleSpec> r;
    const std::string region(kRegion);
    const std::string octet(kOctet);
    const std::string gap(kKeyGap);
    const std::string bucket(kBucket);

    // Credentials. The value class is base64's; notAfter keeps a longer
    // base64 run from being taken for a 40-byte secret.
    r.push_back(withNotAfter(
        rule("secret_access_key", "SECRET_KEY",
             "(?i:(?:aws[ _-]?)?secret[ _-]?(?:access[ _-]?)?key|aws[ _-]?secret)" + gap + "([A-Za-z0-9/+]{40})", 5),
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/+="));
    // '%': X-Amz-Security-Token in presigned URLs is percent-encoded.
    // The length floor is a validator: "[…]{40,}" after the key makes the
    // leftmost-start automaton too large for Vectorscan.
    r.push_back(withValidator(rule("session_token", "SESSION_TOKEN",
                                   "(?i:(?:aws[ _-]?)?session[ _-]?token|(?:aws[ _-]?)?security[ _-]?token|"
                                   "x-amz-security-token)" +
                                       gap + "([A-Za-z0-9/+=%]+)",
                                   5),
                              atLeast40Bytes));
    // STS tokens start with a serialised header that is the same for every
    // token ("\x02\n\torigin_ec…", "\x17\n\x06er/aws…"), so they are found
    // without a key next to them.
    r.push_back(rule("session_token_prefix", "SESSION_TOKEN",
                     "\\b(?:IQoJb3JpZ2luX2Vj|AgoJb3JpZ2luX2Vj|FwoGZXIvYXdzE|FQoGZXIvYXdzE)"
                     "[A-Za-z0-9/+=%]{20,}",
                     30));
    r.push_back(rule("access_key_id", "ACCESS_KEY", "\\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\\b", 30));
    r.push_back(
        rule("iam_unique_id", "IAM_ID", "\\b(?:AIDA|AROA|AIPA|ANPA|ANVA|AGPA|APKA|ASCA)[A-Z0-9]{16,28}\\b", 30));
    r.push_back(withValidator(rule("presigned_signature", "SIGNATURE", "(?i:x-amz-signature=)([0-9a-f]{64})\\b", 5),
                              containsDigit));

    // ARNs. S3 ARNs have no account and keep their structure; only the
    // bucket is masked, so the object key path stays readable.
    for (const auto& s : kArnServices)
        r.push_back(arnRule(s));
    r.push_back(withNotAfter(
        rule("arn.s3", "BUCKET", "\\barn:" + str(kPartition) + ":s3(?:-object-lambda)?:::(" + bucket + ")", 10),
        kUpper));
    r.push_back(
        rule("arn.account", "ACCOUNT", "\\barn:" + str(kPartition) + ":[a-z0-9-]+:[a-z0-9-]*:([0-9]{12}):", 15));

    // S3 URLs. Path-style must not start inside a virtual-hosted name
    // (bucket.s3.amazonaws.com/key), hence notBefore ".-".
    r.push_back(withNotAfter(rule("s3_uri", "BUCKET", "\\bs3[an]?://(" + bucket + ")", 20), kUpper));
    r.push_back(
        withNotBefore(withValidator(rule("s3_virtual_hosted", "BUCKET",
                                         "([a-z0-9._-]+)\\.s3(?:[.-][a-z0-9-]+)*\\.amazonaws\\.com(?:\\.cn)?", 20),
                                    isVirtualHostedBucket),
                      kUpper));
    r.push_back(
        withNotAfter(withNotBefore(rule("s3_path_style", "BUCKET",
                                        "\\bs3(?:[.-][a-z0-9-]+)*\\.amazonaws\\.com(?:\\.cn)?/(" + bucket + ")", 20),
                                   ".-"),
                     kUpper));

    // Service hostnames: the whole host name is the token unless only one
    // part of it identifies anything (ECR: the account; SQS: account/queue).
    // name.hash.region.rds.amazonaws.com (cluster-, cluster-ro-, proxy-
    // forms too) and China's name.hash.rds.cn-north-1.amazonaws.com.cn.
    r.push_back(withValidator(rule("host.rds", "RDS_HOST",
                                   "[a-z0-9.-]+\\.(?:rds|docdb|docdb-elastic|neptune)(?:\\.[a-z0-9-]+)?"
                                   "\\.amazonaws\\.com(?:\\.cn)?",
                                   20),
                              hostWithLabels<6>));
    r.push_back(rule("host.elb", "ELB_HOST",
                     "\\b(?:dualstack\\.)?[A-Za-z0-9][A-Za-z0-9-]*\\.(?:" + region + "\\.)?elb(?:\\." + region +
                         ")?\\.amazonaws\\.com(?:\\.cn)?\\b",
                     20));
    r.push_back(rule("host.eks", "EKS_HOST",
                     "\\b[0-9A-Fa-f]{32}\\.[a-z]{2}[0-9]{1,2}\\." + region + "\\.eks\\.amazonaws\\.com(?:\\.cn)?\\b",
                     20));
    // IRSA trust policies name the cluster's OIDC issuer; the id is per cluster.
    r.push_back(
        withNotAfter(rule("url.eks_oidc", "EKS_OIDC",
                          "\\boidc\\.eks\\." + region + "\\.amazonaws\\.com(?:\\.cn)?/id/([0-9A-Za-z]{32})", 20),
                     kWordBytes));
    r.push_back(rule("host.apigateway", "APIGW_HOST",
                     "\\b[a-z0-9]{10}(?:-vpce-[0-9a-f]{17})?\\.execute-api\\." + region +
                         "\\.(?:vpce\\.)?amazonaws\\.com(?:\\.cn)?\\b",
                     20));
    r.push_back(
        rule("host.lambda_url", "LAMBDA_URL_HOST", "\\b[a-z0-9]{32}\\.lambda-url\\." + region + "\\.on\\.aws\\b", 20));
    r.push_back(rule("host.appsync", "APPSYNC_HOST",
                     "\\b[a-z0-9]{26}\\.appsync-api\\." + region + "\\.amazonaws\\.com(?:\\.cn)?\\b", 20));
    r.push_back(withNotAfter(rule("url.sqs", "SQS_QUEUE",
                                  "\\b(?:sqs\\." + region + "|(?:" + region +
                                      "\\.)?queue)\\.amazonaws\\.com(?:\\.cn)?/([0-9]{12}/[A-Za-z0-9_-]+(?:\\.fifo)?)",
                                  20),
                             "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"));
    r.push_back(rule("host.ecr", "ACCOUNT",
                     "\\b([0-9]{12})\\.dkr\\.ecr(?:-fips)?\\." + region + "\\.amazonaws\\.com(?:\\.cn)?\\b", 20));
    r.push_back(rule("host.cloudfront", "CLOUDFRONT_HOST", "\\bd[a-z0-9]{12,13}\\.cloudfront\\.net\\b", 20));
    // Redis/Memcached/Valkey: name[.shard].hash[.node].use1.cache.amazonaws.com
    r.push_back(withValidator(
        rule("host.elasticache", "ELASTICACHE_HOST", "[a-z0-9.-]+\\.cache\\.amazonaws\\.com(?:\\.cn)?", 20),
        hostWithLabels<5>));
    r.push_back(withValidator(rule("host.redshift", "REDSHIFT_HOST",
                                   "[a-z0-9.-]+\\.redshift(?:-serverless)?\\.amazonaws\\.com(?:\\.cn)?", 20),
                              hostWithLabels<6>));
    r.push_back(withValidator(
        rule("host.opensearch", "OPENSEARCH_HOST", "[a-z0-9.-]+\\.(?:es|aoss)\\.amazonaws\\.com(?:\\.cn)?", 20),
        hostWithLabels<5>));
    r.push_back(rule("host.msk", "MSK_HOST",
                     "\\b(?:b-[0-9]{1,3}(?:-public)?\\.[a-z0-9-]+\\.[a-z0-9]{6}|boot-[a-z0-9]{8})"
                     "\\.c[0-9]{1,2}\\.kafka(?:-serverless)?\\." +
                         region + "\\.amazonaws\\.com(?:\\.cn)?\\b",
                     20));
    r.push_back(rule("host.mq", "MQ_HOST",
                     "\\bb-" + str(kUuid) + "(?:-[0-9])?\\.mq\\." + region + "\\.amazonaws\\.com(?:\\.cn)?\\b", 20));
    r.push_back(rule("host.elasticbeanstalk", "EB_HOST",
                     "\\b[a-z0-9][a-z0-9-]{2,39}(?:\\.eba-[a-z0-9]{8})?\\." + region + "\\.elasticbeanstalk\\.com\\b",
                     20));
    r.push_back(rule("host.signin_account", "ACCOUNT", "\\b([0-9]{12})\\.signin\\.aws\\.amazon\\.com\\b", 19));
    r.push_back(rule("host.signin_alias", "ACCOUNT_ALIAS",
                     "\\b([a-z0-9][a-z0-9-]{1,61}[a-z0-9])\\.signin\\.aws\\.amazon\\.com\\b", 20));

    // EC2 host names. ip-A-B-C-D names are always the private address, so
    // the qualified forms take any first octet; the bare form must start
    // like a private address to stay clear of other ip-… names.
    const std::string dashed = octet + "-" + octet + "-" + octet + "-" + octet;
    r.push_back(rule("host.ec2_internal", "EC2_HOST",
                     "\\bip-" + dashed + "\\.(?:ec2|" + region + "\\.compute)\\.internal\\b", 20));
    r.push_back(rule("host.ec2_public", "EC2_HOST",
                     "\\bec2-" + dashed + "\\.(?:compute-1|" + region + "\\.compute)\\.amazonaws\\.com(?:\\.cn)?\\b",
                     20));
    r.push_back(rule("host.ec2_private_name", "EC2_HOST",
                     "\\bip-" + privatePrefix("-") + "-" + octet + "-" + octet + "\\b", 25));

    // Resource ids.
    for (const auto& id : kCompoundHexIds)
        r.push_back(hexIdRule(id, 30));
    for (const auto& id : kHexIds)
        r.push_back(hexIdRule(id, 40));
    r.push_back(withValidator(rule("spot_request", "SPOT_REQ", "\\bsir-[a-z0-9]{8}\\b", 40), containsDigit));
    r.push_back(rule("kms_multi_region_key", "KMS_KEY", "\\bmrk-[0-9a-f]{32}\\b", 30));
    r.push_back(withValidator(rule("cognito_user_pool", "COGNITO_POOL", "\\b" + region + "_[A-Za-z0-9]{9}\\b", 30),
                              looksRandomAfterUnderscore));
    r.push_back(rule("cognito_identity_pool", "COGNITO_IDPOOL", "\\b" + region + ":" + str(kUuid) + "\\b", 30));
    // EMR, Directory Service, Organizations: short prefixes, so the random
    // part must look random (EMR: 13 capitals would also be a shouted word).
    r.push_back(withValidator(rule("emr_cluster", "EMR_CLUSTER", "\\bj-[A-Z0-9]{13}\\b", 30), containsDigit));
    r.push_back(rule("directory", "DIRECTORY", "\\bd-[0-9a-f]{10}\\b", 30));
    r.push_back(withValidator(rule("organization", "ORG", "\\bo-[a-z0-9]{10,32}\\b", 30), containsDigit));
    r.push_back(withValidator(rule("organizational_unit", "ORG_OU", "\\bou-[a-z0-9]{4,32}-[a-z0-9]{8,32}\\b", 30),
                              containsDigit));

    // Values named by their key. The account key also takes "No." and "#".
    const std::string accountValue = "([0-9]{12}|[0-9]{4}-[0-9]{4}-[0-9]{4})";
    r.push_back(
        withNotAfter(rule("account_in_context", "ACCOUNT",
                          "(?i:account(?:[ _-]?(?:id|number|no))?s?|owner(?:[ _-]?id)?|acct(?:[ _-]?id)?|"
                          "registry[ _-]?id)" +
                              str("[\\s\"':=,.#\\\\]{0,16}(?:(?i:is|value)[\\s\"':=,\\\\]{1,16})?") + accountValue,
                          50),
                     "0123456789-"));
    // Resource policies: "Principal": {"AWS": "123456789012"}
    r.push_back(withNotAfter(
        rule("account_principal", "ACCOUNT", "\\b(?i:aws)[\"']?\\s{0,4}[:=]\\s{0,4}\\[?\\s{0,4}[\"']?([0-9]{12})", 50),
        "0123456789-"));
    r.push_back(withNotAfter(rule("kms_key_in_context", "KMS_KEY",
                                  "(?i:kms[ _-]?(?:master[ _-]?)?key(?:[ _-]?id)?|key[ _-]?id|kms|alias|key/)" + gap +
                                      "(" + str(kUuid) + ")",
                                  50),
                             "0123456789abcdefABCDEF-"));
    // "alias/…" alone is too common in prose and code (may-alias/no-alias),
    // so an alias name needs a key that says it is one.
    r.push_back(withNotAfter(withValidator(rule("kms_alias", "KMS_ALIAS",
                                                "(?i:alias[ _-]?name|(?:target[ _-]?)?key[ _-]?id|kms[ _-]?key)" + gap +
                                                    "(alias/[A-Za-z0-9/_-]+)",
                                                50),
                                           isCustomerKmsAlias),
                             std::string(kWordBytes) + "/-"));
    r.push_back(withNotAfter(rule("cloudfront_distribution", "CLOUDFRONT_DIST",
                                  "(?i:distribution[ _-]?id)" + gap + "(E[A-Z0-9]{11,14})", 50),
                             kWordBytes));
    r.push_back(withNotAfter(rule("route53_hosted_zone", "HOSTED_ZONE",
                                  "(?i:hosted[ _-]?zone(?:[ _-]?id)?)(?:/|" + gap + ")(Z[A-Z0-9]{8,32})", 50),
                             kWordBytes));

    // Addresses. notBefore/notAfter keep them out of longer dotted runs
    // (1.10.0.0.1, 10.0.0.15 → not 10.0.0.1); 10.0.0.0/16 masks the address.
    r.push_back(
        withNotAfter(withNotBefore(rule("private_ipv4", "PRIVATE_IP",
                                        "\\b" + privatePrefix("\\.") + "\\." + octet + "\\." + octet + "\\b", 60),
                                   "0123456789."),
                     "0123456789"));
    r.push_back(withNotAfter(withNotBefore(withValidator(rule("ipv6_ula", "PRIVATE_IPV6",
                                                              "\\b[fF][cCdD][0-9a-fA-F]{2}:[0-9a-fA-F:.]{1,41}", 60),
                                                         isUniqueLocalIpv6),
                                           ":"),
                             "0123456789abcdefABCDEF"));

    // Heuristics: useful for some deployments, wrong for prose in general.
    r.push_back(heuristic(withValidator(
        rule("heuristic.bucket_name", "BUCKET", "\\b[a-z0-9-]*bucket[a-z0-9-]*\\b", 200), looksLikeBucketName)));
    r.push_back(heuristic(withNotAfter(
        withNotBefore(withValidator(rule("heuristic.public_ipv4", "PUBLIC_IP",
                                         "\\b" + octet + "\\." + octet + "\\." + octet + "\\." + octet, 200),
                                    isPublicIpv4),
                      "0123456789."),
        "0123456789")));
    r.push_back(heuristic(
        withNotAfter(withNotBefore(rule("heuristic.bare_account", "ACCOUNT", "\\b[0-9]{12}\\b", 200), "0123456789.-"),
                     "0123456789-")));

    return r;
}

} // namespace

std::vector<RuleSpec> builtinPack(std::string_view name)
{
    if (name == "aws")
        return awsPack();
    return {};
}

std::vector<std::string> builtinPackNames()
{
    return {"aws"};
}

} // namespace veil::mask
