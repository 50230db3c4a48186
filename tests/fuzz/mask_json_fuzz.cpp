// The masker on any request body a client can send. Properties:
//  - it never crashes; it masks or reports the body unmaskable;
//  - a masked body is valid JSON of the same structure, whose strings are
//    the input's with tokens in place of identifiers: restoring the tokens
//    gives back the input's decoded content (a number in account context
//    comes back as a string: the one change masking makes to a value's type);
//  - masking is idempotent: the masked body masks to itself with no token
//    (what the residual check promises: nothing is left to find);
//  - a token handed out never stands in the input as a whole word (the
//    unmasker restores whole tokens only, so "10EC2_002" is no collision).
#include <memory>

#include "fuzz.h"
#include "mask/json.h"
#include "mask/masker.h"
#include "mask/restore.h"
#include "mask/ruleset.h"

namespace {

using namespace veil::mask;

// Keys, strings and scalars in document order, decoded; structure as
// brackets. A number and a string of the same text compare equal.
struct Canon : json::Walker {
    std::string out;
    bool ok = true;
    void objectBegin(std::size_t) { out += '{'; }
    void objectEnd(std::size_t) { out += '}'; }
    void arrayBegin(std::size_t) { out += '['; }
    void arrayEnd(std::size_t) { out += ']'; }
    std::string_view text;
    void put(char kind, std::string_view raw, bool escaped)
    {
        std::string v;
        if (escaped) {
            ok = ok && json::unescape(raw, v);
        } else {
            v.assign(raw);
        }
        out += kind;
        out += std::to_string(v.size());
        out += ':';
        out += v;
    }
    void key(json::Span s) { put('K', text.substr(s.begin, s.end - s.begin), s.escaped); }
    void string(json::Span s) { put('V', text.substr(s.begin, s.end - s.begin), s.escaped); }
    void scalar(std::size_t b, std::size_t e) { put('V', text.substr(b, e - b), false); }
};

std::string canon(std::string_view text)
{
    Canon c;
    c.text = text;
    json::walk(text, c);
    VEIL_FUZZ_CHECK(c.ok);
    return c.out;
}

bool isWord(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

bool wholeWordIn(std::string_view text, std::string_view word)
{
    for (std::size_t at = text.find(word); at != std::string_view::npos; at = text.find(word, at + 1)) {
        bool left = at == 0 || !isWord(text[at - 1]);
        bool right = at + word.size() == text.size() || !isWord(text[at + word.size()]);
        if (left && right)
            return true;
    }
    return false;
}

Masker& masker()
{
    static Masker m(RuleSet::compile(builtinPack("aws")).value());
    return m;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    std::string_view in(reinterpret_cast<const char*>(data), size);
    auto masked = masker().maskJson(in);
    if (!masked) {
        VEIL_FUZZ_CHECK(!masked.error().detail.empty());
        return 0;
    }
    const Masked& m = masked.value();
    VEIL_FUZZ_CHECK(json::validate(m.body));
    for (const auto& e : m.mapping.entries())
        VEIL_FUZZ_CHECK(!wholeWordIn(in, e.token));
    VEIL_FUZZ_CHECK(m.stats.total >= m.mapping.size());
    if (m.mapping.empty()) {
        VEIL_FUZZ_CHECK(m.body == in);
        return 0;
    }
    std::string restored = TokenRestorer::restoreAll(m.mapping, m.body, Escape::Json);
    VEIL_FUZZ_CHECK(json::validate(restored));
    VEIL_FUZZ_CHECK(canon(restored) == canon(in));

    auto again = masker().maskJson(m.body);
    VEIL_FUZZ_CHECK(again.ok());
    VEIL_FUZZ_CHECK(again.value().mapping.empty());
    VEIL_FUZZ_CHECK(again.value().body == m.body);
    return 0;
}
