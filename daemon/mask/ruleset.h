#pragma once

// Compiled rules: one Vectorscan block-mode database over every enabled rule
// (plus the token-shape pattern used to avoid handing out a token that is
// already in the body), compiled without start-of-match tracking (which
// costs Vectorscan about 4x on this rule set), and a PCRE2 JIT program per
// rule, anchored at the end, that finds where a match Vectorscan reported
// starts and where its capture group is. Immutable once built; shared
// between threads.

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
        bool group = false;                   // false: the whole match is the value
        unsigned maxWidth = 0;                // longest match in bytes (UINT_MAX: unbounded)
        std::array<bool, 256> notBefore{};
        std::array<bool, 256> notAfter{};
    };

    const std::vector<Compiled>& rules() const { return rules_; }
    // Vectorscan id of the token-shape pattern (== rules().size()).
    unsigned tokenShapeId() const { return static_cast<unsigned>(rules_.size()); }
    const Compiled& tokenShape() const { return shape_; }
    hs_database* database() const { return db_; }

private:
    RuleSet() = default;
    std::vector<Compiled> rules_;
    Compiled shape_;
    hs_database* db_ = nullptr;
};

// Checks a token type name: [A-Z][A-Z0-9_]*, at most 32 bytes, not ending in
// '_' followed by digits (which would make tokens ambiguous).
bool validTokenType(std::string_view type);

} // namespace veil::mask
