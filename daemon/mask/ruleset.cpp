#include "mask/ruleset.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <hs/hs.h>
#include <pcre2.h>

#include <climits>
#include <cstdint>
#include <cstdlib>
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

std::uint32_t captureCount(const pcre2_code* code)
{
    std::uint32_t captures = 0;
    pcre2_pattern_info(code, PCRE2_INFO_CAPTURECOUNT, &captures);
    return captures;
}

// The PCRE2 program that locates a match Vectorscan reported by its end, and
// the longest match Vectorscan's analysis allows.
bool makeFinder(const std::string& regex, RuleSet::Compiled& c, std::string& why)
{
    int err = 0;
    PCRE2_SIZE off = 0;
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(regex.data()), regex.size(), PCRE2_ENDANCHORED,
                                     &err, &off, nullptr);
    if (!code) {
        why = "regex error at offset " + std::to_string(off) + ": " + pcre2Message(err);
        return false;
    }
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE); // falls back to the interpreter if JIT is unavailable
    c.finder = code;
    c.group = captureCount(code) > 0;
    hs_expr_info_t* info = nullptr;
    hs_compile_error_t* cerr = nullptr;
    c.maxWidth = UINT_MAX;
    if (hs_expression_info(regex.c_str(), 0, &info, &cerr) == HS_SUCCESS) {
        c.maxWidth = info->max_width;
        std::free(info);
    } else {
        hs_free_compile_error(cerr); // reported with the rule's name when the database is compiled
    }
    return true;
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
        std::string why;
        if (!makeFinder(spec.regex, c, why))
            return fail("rule " + spec.name + ": " + why);
        if (c.group && captureCount(c.finder) > 1) {
            pcre2_code_free(c.finder);
            return fail("rule " + spec.name +
                        ": at most one capturing group (the masked part); use (?:...) for grouping");
        }
        fill(c.notBefore, spec.notBefore);
        fill(c.notAfter, spec.notAfter);
        c.spec = std::move(spec);
        rs->rules_.push_back(std::move(c));
    }

    std::string why;
    if (!makeFinder(kTokenShape, rs->shape_, why))
        return fail("token shape: " + why);
    std::vector<const char*> exprs;
    std::vector<unsigned> flags;
    std::vector<unsigned> ids;
    for (std::size_t i = 0; i < rs->rules_.size(); ++i) {
        exprs.push_back(rs->rules_[i].spec.regex.c_str());
        flags.push_back(0); // end offsets only: the finder locates starts
        ids.push_back(static_cast<unsigned>(i));
    }
    exprs.push_back(kTokenShape);
    flags.push_back(0);
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
        if (c.finder)
            pcre2_code_free(c.finder);
    if (shape_.finder)
        pcre2_code_free(shape_.finder);
    if (db_)
        hs_free_database(db_);
}

} // namespace veil::mask
