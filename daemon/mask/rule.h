#pragma once

// A masking rule as written in a pattern pack or a custom-rules YAML file.
// Rules compile into one Vectorscan database (RuleSet); see ruleset.h.

#include <string>
#include <string_view>
#include <vector>

namespace veil::mask {

// Extra check on a candidate value that a regular expression cannot express
// (e.g. "is a valid IPv6 address"). Gets the value span only.
using Validator = bool (*)(std::string_view value);

struct RuleSpec {
    // Unique, dotted: "aws.ec2_instance". Logged and shown in errors.
    std::string name;
    // Token type: [A-Z][A-Z0-9_]*, not ending in "_<digits>". Tokens are TYPE_001...
    std::string tokenType;
    // A regular expression in the subset both Vectorscan and PCRE2 accept
    // (no lookaround, no backreferences). At most one capturing group: if
    // present, only the group is masked and the rest of the match is context
    // that stays in the body; use (?:...) for all other grouping.
    std::string regex;
    // Lower wins when two candidates overlap (the more specific rule).
    int priority = 100;
    bool enabled = true;
    // One-character look-behind/look-ahead Vectorscan cannot do: the byte
    // before the whole match must not be in notBefore, the byte after it must
    // not be in notAfter. Plain byte lists, e.g. "0123456789.".
    std::string notBefore;
    std::string notAfter;
    // Optional extra check on the value span.
    Validator validate = nullptr;
    // Heuristic rules exist in packs but are off unless enabled by name.
    bool heuristic = false;
};

// Built-in packs, by name ("aws"). Unknown name → empty vector.
std::vector<RuleSpec> builtinPack(std::string_view name);
std::vector<std::string> builtinPackNames();

} // namespace veil::mask
