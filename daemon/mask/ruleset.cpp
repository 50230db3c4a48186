#include "mask/ruleset.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <hs/hs.h>
#include <pcre2.h>

#include <set>

namespace veil::mask {

namespace {

// Any run that looks like a token this engine hands out. Found in the input
// so that a token already present in the body is never handed out.
constexpr const char* kTokenShape = R"(\b[A-Z][A-Z0-9_]*_[0-9]{3,}\b)";

std::string pcre2Message(int code)
{
    PCRE2_UCHAR buf[256];
    pcre2_get_error_message(code, buf, sizeof buf);
    return reinterpret_cast<const char*>(buf);
}

void fill(std::array<bool, 256>& set, std::string_view bytes)
{
    for (char c : bytes)
        set[static_cast<unsigned char>(c)] = true;
}

} // namespace

bool validTokenType(std::string_view type)
{
    if (type.empty() || type.size() > 32 || type[0] < 'A' || type[0] > 'Z')
        return false;
    for (char c : type)
        if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    // "FOO_12" would make FOO_12_001 read as type FOO_12 or FOO; forbid it.
    std::size_t u = type.rfind('_');
    if (u != std::string_view::npos && u + 1 < type.size()) {
        bool digits = true;
        for (char c : type.substr(u + 1))
            digits = digits && c >= '0' && c <= '9';
        if (digits)
            return false;
    }
    return type.back() != '_';
}

Result<std::shared_ptr<const RuleSet>> RuleSet::compile(std::vector<RuleSpec> specs)
{
    std::shared_ptr<RuleSet> rs(new RuleSet());
    std::set<std::string, std::less<>> names;
    for (auto& spec : specs) {
        if (spec.name.empty())
            return fail("a rule has no name");
        if (!names.insert(spec.name).second)
            return fail("rule " + spec.name + ": name used twice");
        if (!validTokenType(spec.tokenType))
            return fail("rule " + spec.name + ": token type '" + spec.tokenType +
                        "' must match [A-Z][A-Z0-9_]* and not end in _ or _<digits>");
        if (spec.regex.empty())
            return fail("rule " + spec.name + ": empty regex");
        if (!spec.enabled)
            continue;

        Compiled c;
        int err = 0;
        PCRE2_SIZE off = 0;
        // Compiled anchored at both ends: it only ever re-reads a span that
        // Vectorscan already matched, to find the capture group inside it.
        pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(spec.regex.data()), spec.regex.size(),
                                         PCRE2_ANCHORED | PCRE2_ENDANCHORED, &err, &off, nullptr);
        if (!code)
            return fail("rule " + spec.name + ": regex error at offset " + std::to_string(off) + ": " +
                        pcre2Message(err));
        std::uint32_t captures = 0;
        pcre2_pattern_info(code, PCRE2_INFO_CAPTURECOUNT, &captures);
        if (captures > 1) {
            pcre2_code_free(code);
            return fail("rule " + spec.name +
                        ": at most one capturing group (the masked part); use (?:...) for grouping");
        }
        if (captures == 1) {
            pcre2_jit_compile(code, PCRE2_JIT_COMPLETE); // falls back to the interpreter if JIT is unavailable
            c.group = code;
        } else {
            pcre2_code_free(code);
        }
        fill(c.notBefore, spec.notBefore);
        fill(c.notAfter, spec.notAfter);
        c.spec = std::move(spec);
        rs->rules_.push_back(std::move(c));
    }

    std::vector<const char*> exprs;
    std::vector<unsigned> flags;
    std::vector<unsigned> ids;
    for (std::size_t i = 0; i < rs->rules_.size(); ++i) {
        exprs.push_back(rs->rules_[i].spec.regex.c_str());
        flags.push_back(HS_FLAG_SOM_LEFTMOST);
        ids.push_back(static_cast<unsigned>(i));
    }
    exprs.push_back(kTokenShape);
    flags.push_back(HS_FLAG_SOM_LEFTMOST);
    ids.push_back(rs->tokenShapeId());

    hs_compile_error_t* cerr = nullptr;
    if (hs_compile_multi(exprs.data(), flags.data(), ids.data(), static_cast<unsigned>(exprs.size()), HS_MODE_BLOCK,
                         nullptr, &rs->db_, &cerr) != HS_SUCCESS) {
        std::string where = "rule set";
        if (cerr->expression >= 0 && static_cast<std::size_t>(cerr->expression) < rs->rules_.size())
            where = "rule " + rs->rules_[static_cast<std::size_t>(cerr->expression)].spec.name;
        std::string msg = where + ": " + cerr->message;
        hs_free_compile_error(cerr);
        return fail(std::move(msg));
    }
    return std::shared_ptr<const RuleSet>(std::move(rs));
}

RuleSet::~RuleSet()
{
    for (auto& c : rules_)
        if (c.group)
            pcre2_code_free(c.group);
    if (db_)
        hs_free_database(db_);
}

} // namespace veil::mask
