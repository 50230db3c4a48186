#include "mask/ruleset.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <hs/hs.h>
#include <pcre2.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <set>

namespace veil::mask {

namespace {

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
        c.minWidth = info->min_width;
        c.maxWidth = info->max_width;
        std::free(info);
    } else {
        hs_free_compile_error(cerr); // reported with the rule's name when the database is compiled
    }
    if (c.maxWidth != UINT_MAX && c.minWidth == c.maxWidth) {
        pcre2_code* anchored = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(regex.data()), regex.size(),
                                             PCRE2_ANCHORED | PCRE2_ENDANCHORED, &err, &off, nullptr);
        if (anchored) {
            pcre2_jit_compile(anchored, PCRE2_JIT_COMPLETE);
            c.anchored = anchored;
        }
    }
    return true;
}

void fill(std::array<bool, 256>& set, std::string_view bytes)
{
    for (char c : bytes)
        set[static_cast<unsigned char>(c)] = true;
}

void freeCompiled(RuleSet::Compiled& c)
{
    if (c.finder)
        pcre2_code_free(c.finder);
    if (c.anchored)
        pcre2_code_free(c.anchored);
    c.finder = c.anchored = nullptr;
}

} // namespace

bool mentionsTextBoundary(std::string_view re)
{
    bool inClass = false;
    for (std::size_t i = 0; i < re.size(); ++i) {
        const char c = re[i];
        if (c == '\\') {
            // \Q…\E could quote a '[' or ']' and mislead this scan.
            if (i + 1 >= re.size() || re[i + 1] == 'Q' ||
                (!inClass && std::string_view("AzZG").find(re[i + 1]) != std::string_view::npos))
                return true;
            ++i; // an escaped character: a literal (\^, \$, \]) or a class (\b, \d)
            continue;
        }
        if (inClass) {
            inClass = c != ']'; // '^' and '$' in a class are literals
            continue;
        }
        switch (c) {
        case '[':
            inClass = true;
            // A ']' right after '[' or '[^' is a literal.
            if (i + 1 < re.size() && re[i + 1] == '^')
                ++i;
            if (i + 1 < re.size() && re[i + 1] == ']')
                ++i;
            break;
        case '(':
            // (?#…) comments and (?x) extended mode could hide a '^' or
            // '$' from this scan (or show one that is not there).
            if (i + 1 < re.size() && re[i + 1] == '?') {
                for (std::size_t k = i + 2; k < re.size() && re[k] != ':' && re[k] != ')'; ++k)
                    if (re[k] == 'x' || re[k] == '#')
                        return true;
            }
            break;
        case '^':
        case '$':
            return true;
        default:
            break;
        }
    }
    return false;
}

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
            freeCompiled(c);
            return fail("rule " + spec.name +
                        ": at most one capturing group (the masked part); use (?:...) for grouping");
        }
        fill(c.notBefore, spec.notBefore);
        fill(c.notAfter, spec.notAfter);
        auto type = std::find(rs->types_.begin(), rs->types_.end(), spec.tokenType);
        c.type = static_cast<unsigned>(type - rs->types_.begin());
        if (type == rs->types_.end())
            rs->types_.push_back(spec.tokenType);
        rs->boundarySensitive_ = rs->boundarySensitive_ || mentionsTextBoundary(spec.regex);
        c.spec = std::move(spec);
        rs->rules_.push_back(std::move(c));
    }
    if (rs->rules_.empty())
        return std::shared_ptr<const RuleSet>(std::move(rs)); // nothing to scan for

    std::vector<const char*> exprs;
    std::vector<unsigned> flags;
    std::vector<unsigned> ids;
    for (std::size_t i = 0; i < rs->rules_.size(); ++i) {
        exprs.push_back(rs->rules_[i].spec.regex.c_str());
        flags.push_back(0); // end offsets only: the finder locates starts
        ids.push_back(static_cast<unsigned>(i));
    }

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
        freeCompiled(c);
    if (db_)
        hs_free_database(db_);
}

} // namespace veil::mask
