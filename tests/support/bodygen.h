#pragma once

// Seeded generator of realistic Anthropic Messages API traffic for property
// tests and benchmarks of the masker.
//
// A request body has `model`, `max_tokens`, `system`, `tools` (with
// input_schema) and `messages`: user and assistant turns whose content blocks
// are text, tool_use (with an `input` object), tool_result (whose `content` is
// usually JSON text inside a string: AWS CLI, kubectl or CloudTrail output),
// thinking blocks and the occasional base64 image or document. The prose is
// ops talk: log lines, CLI output, terraform plans, kubectl tables.
//
// Into it the generator plants identifiers of every family the built-in
// `aws` pack covers, each value random with the right shape, and decoys that
// look like identifiers but must stay unmasked. Both are recorded, so a test
// can measure recall and precision. Some identifiers are written with JSON
// escapes (\u0069-…, \/ in ARNs, after \n), and each body picks one client's
// JSON style (Python json.dumps, JavaScript, Go, PHP).
//
// Same options (seed included) → same bytes, on every platform: the generator
// uses std::mt19937_64 and its own bounded draws, never <random>'s
// distributions (their output is implementation-defined).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace veil::bodygen {

// One identifier written into a body.
struct Planted {
    std::string value;  // decoded value: what the mapping must record as the original
    std::string type;   // token type the aws pack should give it ("EC2", "ACCOUNT", …)
    std::string family; // what it is, for reports ("ec2_instance", "s3_uri", …)
    bool escaped;       // written with a forced JSON escape inside the value itself
                        // (\u0069-…, \/ in an ARN), beyond what the style escapes
};

// A look-alike that must not be masked (and must not be part of a masked value).
struct Decoy {
    std::string value;  // decoded
    std::string family; // "word", "public_ip", "uuid", …
};

// How the client writes JSON: which characters it escapes and its separators.
//   JavaScript  JSON.stringify: compact, escapes only what it must
//   Python      json.dumps: ", " and ": ", non-ASCII as \uXXXX
//   Go          encoding/json: compact, <, > and & as \u003c…
//   Php         json_encode: compact, "/" as "\/", non-ASCII as \uXXXX
enum class JsonStyle { Random, JavaScript, Python, Go, Php };

struct BodyOptions {
    std::uint64_t seed = 1;
    JsonStyle style = JsonStyle::Random; // Random: drawn from the seed
    // The body ends up this size or somewhat above (turns are added whole).
    std::size_t targetBytes = 10 * 1024;
    // Planted identifier occurrences per 10 KiB of body (sparse ~3, dense ~100).
    double idsPer10k = 20;
    // Fraction of identifiers written with a JSON escape inside the value.
    double escapeRate = 0.08;
    // Decoys per 10 KiB (roughly; filler text adds its own).
    double decoysPer10k = 25;
    // Chance, where a generator has one, to write an identifier in a context
    // the aws pack is known to miss (Planted::family starts with "gap_"):
    // SG UserIdGroupPairs UserId, Organizations list-accounts Id, account
    // lists in policies, VPC flow log records, `--output text` reservations,
    // AWSLogs/<account>/ object keys, CloudFront "Id", bare bucket names,
    // S3 interface endpoint DNS names, escaped account ids in arrays. 0 for
    // recall tests; > 0 to measure the gaps.
    double gapRate = 0;
};

const char* styleName(JsonStyle style);

BodyOptions sparse(std::uint64_t seed, std::size_t targetBytes = 10 * 1024);
BodyOptions dense(std::uint64_t seed, std::size_t targetBytes = 10 * 1024);

struct Body {
    std::string json;
    JsonStyle style = JsonStyle::JavaScript;
    std::vector<Planted> planted; // one entry per occurrence, in no particular order
    std::vector<Decoy> decoys;    // likewise
};

Body generateBody(const BodyOptions& options);

// ---- the response side -------------------------------------------------

// A token of a request's mapping and the original it stands for.
struct TokenPair {
    std::string token;
    std::string original;
};

// A non-streaming Messages response (text and tool_use blocks) that echoes
// tokens of `tokens`, plus a few near misses (EC2_0019, XEC2_001) that are
// not whole tokens. `expected` is the same response with every whole token
// replaced by its JSON-escaped original: what restoring must produce.
struct Response {
    std::string masked;
    std::string expected;
};

Response generateResponse(const std::vector<TokenPair>& tokens, std::uint64_t seed,
                          std::size_t targetBytes = 4 * 1024);

// An Anthropic text/event-stream: message_start, ping, optional thinking
// block, text blocks and a tool_use block whose deltas cut text (and tokens)
// at random offsets, message_delta, message_stop.
struct Stream {
    std::string masked;  // the bytes upstream sends, with tokens
    // Per content block index: the concatenation of its decoded deltas after
    // restoring (text, thinking, or the partial_json text of a tool_use).
    std::vector<std::string> expected;
    std::size_t events = 0;
};

Stream generateStream(const std::vector<TokenPair>& tokens, std::uint64_t seed, std::size_t textBytes = 3 * 1024);

// JSON string content for `utf8` (no quotes), the way JSON.stringify writes it.
std::string jsonEscape(std::string_view utf8);

} // namespace veil::bodygen
