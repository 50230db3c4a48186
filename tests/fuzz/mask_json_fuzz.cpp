// The masker on any request body a client can send. Properties:
//  - it never crashes; it masks or reports the body unmaskable;
//  - a masked body is valid JSON of the same structure, whose strings are
//    the input's with tokens in place of identifiers: restoring the tokens
//    gives back the input's decoded content (a number in account context
//    comes back as a string: the one change masking makes to a value's type);
//  - masking is idempotent: the masked body masks to itself with no token
//    (what the residual check promises: nothing is left to find);
//  - a token handed out never stands in the input as a whole word (the
//    unmasker restores whole tokens only, so "10EC2_002" is no collision);
//  - no original of 6 bytes or more stands whole in a decoded string of the
//    masked body (JSON text in strings decoded as the masker does; base64
//    source data aside): what one place's context revealed is masked
//    wherever else it stands — unless it is all letters and '_' (a word,
//    looked for only in context), or exactly the value of the body's own
//    "type", "role", "model" or "media_type" (the API's enumerations).
#include <memory>
#include <string>
#include <vector>

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

bool isHexDigit(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// An odd number of backslashes ends t[0, p).
bool oddBackslashes(std::string_view t, std::size_t p)
{
    std::size_t n = 0;
    while (p > n && t[p - 1 - n] == '\\')
        ++n;
    return n % 2 == 1;
}

// t[p] is the last letter of an escape letter unit of the decoded text:
// b f n r t, or u and 4 hex digits, after an odd run of backslashes. The
// masker reads it as the escape it spells as well as text, so a value after
// it (log:\nacme-logs) stands whole.
bool endsUnit(std::string_view t, std::size_t p)
{
    const char c = t[p];
    if ((c == 'b' || c == 'f' || c == 'n' || c == 'r' || c == 't') && oddBackslashes(t, p))
        return true;
    if (p < 4 || t[p - 4] != 'u' || !oddBackslashes(t, p - 4))
        return false;
    for (std::size_t k = p - 3; k <= p; ++k)
        if (!isHexDigit(t[k]))
            return false;
    return true;
}

// t[p] is a word byte that joins the word after it.
bool wordBefore(std::string_view t, std::size_t p)
{
    return isWord(t[p]) && !endsUnit(t, p);
}

// [b, e) of t is a whole occurrence: no word byte next to it, nor a '-' or
// '.' that continues into one (the masker's definition, with an escape
// letter before it a boundary; after it, its backslash would be in [b, e)).
bool wholeAt(std::string_view t, std::size_t b, std::size_t e)
{
    if (b > 0 && (wordBefore(t, b - 1) || ((t[b - 1] == '-' || t[b - 1] == '.') && b > 1 && wordBefore(t, b - 2))))
        return false;
    if (e < t.size() && (isWord(t[e]) || ((t[e] == '-' || t[e] == '.') && e + 1 < t.size() && isWord(t[e + 1]))))
        return false;
    return true;
}

// Finds an original of the mapping standing whole in a decoded string of a
// masked document, descending into JSON text as the masker does (3 levels)
// and leaving out the data of {"type": "base64"} objects.
struct Leftover : json::Walker {
    const Mapping& map;
    std::string_view text;
    unsigned depth;
    bool found = false;
    struct Frame {
        bool object;
        bool base64 = false;
        std::vector<std::string> strings; // decoded, checked when the object ends
        std::vector<bool> isData;
    };
    std::vector<Frame> frames;
    bool dataKey = false, typeKey = false, schemaKey = false;

    static bool distinctive(const std::string& o)
    {
        for (char c : o)
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'))
                return true;
        return false;
    }

    Leftover(const Mapping& m, std::string_view t, unsigned d) : map(m), text(t), depth(d) {}

    void check(const std::string& s)
    {
        if (depth < 3 && json::looksLikeContainer(s) && json::validate(s)) {
            Leftover inner(map, s, depth + 1);
            json::walk(std::string_view(s), inner);
            found = found || inner.found;
            return;
        }
        for (const auto& e : map.entries()) {
            const std::string& o = e.original;
            if (o.size() < 6 || !distinctive(o))
                continue;
            for (std::size_t at = s.find(o); at != std::string::npos; at = s.find(o, at + 1))
                found = found || wholeAt(s, at, at + o.size());
        }
    }
    std::string decode(json::Span sp)
    {
        std::string v;
        json::unescape(text.substr(sp.begin, sp.end - sp.begin), v);
        return v;
    }
    void add(std::string s, bool data)
    {
        if (!frames.empty() && frames.back().object) {
            frames.back().strings.push_back(std::move(s));
            frames.back().isData.push_back(data);
        } else {
            check(s);
        }
    }
    void objectBegin(std::size_t)
    {
        frames.push_back(Frame{true, false, {}, {}});
        schemaKey = false;
    }
    void arrayBegin(std::size_t)
    {
        frames.push_back(Frame{false, false, {}, {}});
        schemaKey = false;
    }
    void objectEnd(std::size_t)
    {
        Frame f = std::move(frames.back());
        frames.pop_back();
        for (std::size_t i = 0; i < f.strings.size(); ++i)
            if (!(f.base64 && f.isData[i]))
                check(f.strings[i]);
        dataKey = typeKey = schemaKey = false;
    }
    void arrayEnd(std::size_t)
    {
        frames.pop_back();
        dataKey = typeKey = schemaKey = false;
    }
    void key(json::Span sp)
    {
        const std::string_view raw = text.substr(sp.begin, sp.end - sp.begin);
        dataKey = raw == "data";
        typeKey = raw == "type";
        schemaKey = depth == 0 && (raw == "type" || raw == "role" || raw == "model" || raw == "media_type");
        add(decode(sp), false);
    }
    void string(json::Span sp)
    {
        const std::string_view raw = text.substr(sp.begin, sp.end - sp.begin);
        if (typeKey && raw == "base64" && !frames.empty() && frames.back().object)
            frames.back().base64 = true;
        std::string v = decode(sp);
        bool exempt = false; // the body's own enumerated value that is exactly an original
        for (const auto& e : map.entries())
            exempt = exempt || (schemaKey && v == e.original);
        if (!exempt)
            add(std::move(v), dataKey);
        dataKey = typeKey = schemaKey = false;
    }
    void scalar(std::size_t b, std::size_t e)
    {
        std::string_view v = text.substr(b, e - b);
        if (!v.empty() && v[0] == '-')
            v.remove_prefix(1);
        for (const auto& en : map.entries())
            found = found || (en.original.size() >= 6 && en.original == v);
        dataKey = typeKey = schemaKey = false;
    }
};

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
    Leftover left(m.mapping, m.body, 0);
    json::walk(std::string_view(m.body), left);
    VEIL_FUZZ_CHECK(!left.found);
    std::string restored = TokenRestorer::restoreAll(m.mapping, m.body, Escape::Json);
    VEIL_FUZZ_CHECK(json::validate(restored));
    VEIL_FUZZ_CHECK(canon(restored) == canon(in));

    auto again = masker().maskJson(m.body);
    VEIL_FUZZ_CHECK(again.ok());
    VEIL_FUZZ_CHECK(again.value().mapping.empty());
    VEIL_FUZZ_CHECK(again.value().body == m.body);
    return 0;
}
