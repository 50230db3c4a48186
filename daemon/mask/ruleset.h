#pragma once

// Compiled rules: one Vectorscan block-mode database over every enabled
// rule, compiled without start-of-match tracking (which costs Vectorscan
// about 4x on this rule set), and a PCRE2 JIT program per rule, anchored at
// the end, that finds where a match Vectorscan reported starts and where its
// capture group is. Immutable once built; shared between threads.

#include <array>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "mask/rule.h"

struct hs_database;
struct pcre2_real_code_8;

namespace veil::mask {

class RuleSet {
public:
    // Compiles the enabled rules. Errors name the rule and say what is wrong
    // with its regex, type or name.
    static Result<std::shared_ptr<const RuleSet>> compile(std::vector<RuleSpec> rules);

    ~RuleSet();
    RuleSet(const RuleSet&) = delete;
    RuleSet& operator=(const RuleSet&) = delete;

    struct Compiled {
        RuleSpec spec;
        // Anchored at the subject's end: run on text[..end) from a window
        // start, it finds the leftmost start of a match ending at `end`.
        pcre2_real_code_8* finder = nullptr;
        // Rules whose matches all have the same length: the finder anchored
        // at both ends, so a reported end is checked with one attempt at
        // end - maxWidth (the only place such a match can start) instead of
        // a search over the window. nullptr for other rules.
        pcre2_real_code_8* anchored = nullptr;
        bool group = false;                   // false: the whole match is the value
        unsigned minWidth = 0;                // shortest match in bytes
        unsigned maxWidth = 0;                // longest match in bytes (UINT_MAX: unbounded)
        unsigned type = 0;                    // index of spec.tokenType in tokenTypes()
        std::array<bool, 256> notBefore{};
        std::array<bool, 256> notAfter{};
    };

    const std::vector<Compiled>& rules() const { return rules_; }
    // Distinct token types of the enabled rules (Compiled::type indexes it).
    const std::vector<std::string>& tokenTypes() const { return types_; }
    // True if some rule can tell where the scanned text begins or ends
    // (^, $, \A, \z, \Z, \G): the masker then scans its texts one by one
    // instead of joined by a separator. nullptr database: no enabled rule.
    bool boundarySensitive() const { return boundarySensitive_; }
    hs_database* database() const { return db_; }

private:
    RuleSet() = default;
    std::vector<Compiled> rules_;
    std::vector<std::string> types_;
    bool boundarySensitive_ = false;
    hs_database* db_ = nullptr;
};

// True if `regex` may contain an anchor to the start or end of the text
// (^ outside "[^", $, \A, \z, \Z, \G). Errs on the side of true.
bool mentionsTextBoundary(std::string_view regex);

// Checks a token type name: [A-Z][A-Z0-9_]*, at most 32 bytes, not ending in
// '_' followed by digits (which would make tokens ambiguous).
bool validTokenType(std::string_view type);

} // namespace veil::mask
