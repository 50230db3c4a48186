#include "mask/restore.h"

#include "mask/json.h"

namespace veil::mask {

namespace {

constexpr bool isWord(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// Tokens are TYPE_NNN with TYPE starting with an upper-case letter: anything
// else needs no map lookup.
constexpr bool mayStartToken(char c) { return c >= 'A' && c <= 'Z'; }
constexpr std::size_t kMinTokenLength = 5; // "X_001"

constexpr bool isHex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// How many bytes of `rest` an escape letter takes (b f n r t: 1; u and 4
// hex digits: 5; anything else: 0). Not final and too short to tell: one
// more than there is, so that the caller holds back until the rest arrives.
std::size_t innerEscape(std::string_view rest, bool final)
{
    if (rest.empty())
        return final ? 0 : 1;
    switch (rest[0]) {
    case 'b': case 'f': case 'n': case 'r': case 't':
        return 1;
    case 'u':
        for (std::size_t k = 1; k < 5; ++k) {
            if (k >= rest.size())
                return final ? 0 : rest.size() + 1;
            if (!isHex(rest[k]))
                return 0;
        }
        return 5;
    default:
        return 0;
    }
}

constexpr std::size_t kIncomplete = static_cast<std::size_t>(-1);

// One escaped backslash in raw JSON at the start of `at`: \\ (2 bytes) or
// \u005c / \u005C (6: the same character, written as a \u escape). Its
// length; 0 if `at` starts with neither; kIncomplete if `at` ends where
// one may still be.
std::size_t backslashUnit(std::string_view at)
{
    if (at.empty() || at[0] != '\\')
        return 0;
    if (at.size() < 2)
        return kIncomplete;
    if (at[1] == '\\')
        return 2;
    if (at[1] != 'u')
        return 0;
    static constexpr std::string_view u = "\\u005c";
    for (std::size_t k = 2; k < u.size(); ++k) {
        if (k >= at.size())
            return kIncomplete;
        if (k == 5 ? (at[k] | 0x20) != 'c' : at[k] != u[k])
            return 0;
    }
    return u.size();
}

// The unit starting at an escaped backslash in JSON (`at` starts with a
// complete backslashUnit()): the run of escaped backslashes, and, if their
// number is odd, the escape letter after them. In JSON text held in a
// string, k escaped backslashes are k backslashes of the inner text; an odd
// number ends with one that starts an inner escape (inner \n is raw \\n or
// \u005cn, inner \\n is raw \\\\n: a backslash and an n).
// Not final and the unit is incomplete (the run reaches the end, or an
// inner \u lacks its digits): what follows depends only on the parity of
// the run, so whole pairs of escaped backslashes (an even number of inner
// backslashes) are taken as a unit of their own and the caller holds only
// the rest (at most \\\ or \\u004, 6 bytes; 11 if written \u005c). The
// scan resumes after them at a backslash with prevWord false, as inside the
// run, and the rest has the run's parity: the output is the same as for the
// whole run, and what is held stays bounded (holding the whole run held a
// model's long run of backslashes without bound and rescanned it on every
// feed). Nothing of the run to take: one more than there is (hold).
std::size_t escapedBackslashes(std::string_view at, bool final)
{
    std::size_t j = 0, units = 0, evenEnd = 0;
    bool incomplete = false;
    for (;;) {
        const std::size_t u = backslashUnit(at.substr(j));
        if (u == kIncomplete) {
            incomplete = true;
            break;
        }
        if (u == 0)
            break;
        j += u;
        if (++units % 2 == 0)
            evenEnd = j;
    }
    std::size_t len;
    if (j == at.size() || incomplete)
        len = final ? j : at.size() + 1;
    else
        len = units % 2 == 1 ? j + innerEscape(at.substr(j), final) : j;
    if (len <= at.size())
        return len;
    // Whole pairs of units keep the parity: an odd run keeps its last
    // unit, and with it the parity. An even run may be taken whole.
    return evenEnd > 0 ? evenEnd : len;
}

void insert(std::string_view original, Escape esc, std::string& out)
{
    switch (esc) {
    case Escape::None:
        out += original;
        break;
    case Escape::Json:
        json::escape(original, out);
        break;
    case Escape::JsonInJson: {
        std::string once;
        json::escape(original, once);
        json::escape(once, out);
        break;
    }
    }
}

} // namespace

std::size_t TokenRestorer::scan(std::string_view text, bool final, std::string& out)
{
    const std::size_t n = text.size();
    if (map_->empty()) {
        out += text;
        return n;
    }
    bool prevWord = prevWord_;
    std::size_t copied = 0; // text[copied, i) is pending copy
    std::size_t i = 0;
    while (i < n) {
        char c = text[i];
        if (c == '\\' && esc_ != Escape::None) {
            // One escape unit is one boundary. In JSON-in-JSON an inner escape
            // is itself escaped: inner \n is raw \\n (3 bytes), inner \" is
            // raw \\\" (4), inner \\ is raw \\\\ (4), inner \u00e9 is raw
            // \\u00e9 (7). In JSON, \\ followed by an escape letter (\\n,
            // \\t, \\u0041) is such an inner escape when the string holds
            // JSON text (a tool_result's content), and a boundary too: the
            // masker never leaves a token right after the letter otherwise
            // (it would be glued to it in the decoded text).
            // A backslash written \u005c counts as a raw \\ (the run's
            // parity is the number of inner backslashes however written).
            std::size_t len = 2;
            const std::size_t unit = esc_ == Escape::Json ? backslashUnit(text.substr(i)) : 0;
            if (unit == kIncomplete && !final)
                len = n - i + 1; // hold: it may be one
            else if (unit != 0 && unit != kIncomplete)
                len = escapedBackslashes(text.substr(i), final);
            else if (i + 1 < n && text[i + 1] == 'u')
                len = 6;
            else if (esc_ == Escape::JsonInJson && i + 1 < n && text[i + 1] == '\\')
                len = i + 2 >= n ? 3 : text[i + 2] == '\\' ? 4 : text[i + 2] == 'u' ? 7 : 3;
            if (i + len > n && !final) {
                out.append(text.substr(copied, i - copied));
                prevWord_ = prevWord;
                return i;
            }
            i = std::min(n, i + len);
            prevWord = false;
            continue;
        }
        if (!isWord(c)) {
            prevWord = false;
            ++i;
            continue;
        }
        std::size_t j = i + 1;
        while (j < n && isWord(text[j]))
            ++j;
        if (!prevWord && mayStartToken(c)) {
            std::string_view run = text.substr(i, j - i);
            if (j == n && !final && map_->isTokenPrefix(run)) {
                out.append(text.substr(copied, i - copied));
                prevWord_ = false;
                return i;
            }
            if (run.size() >= kMinTokenLength) {
                if (const std::string* original = map_->find(run)) {
                    out.append(text.substr(copied, i - copied));
                    insert(*original, esc_, out);
                    copied = j;
                    ++restored_;
                }
            }
        }
        prevWord = true;
        i = j;
    }
    out.append(text.substr(copied));
    prevWord_ = prevWord;
    return n;
}

void TokenRestorer::feed(std::string_view chunk, std::string& out)
{
    if (carry_.empty()) {
        std::size_t used = scan(chunk, false, out);
        carry_.assign(chunk.substr(used));
        return;
    }
    std::string text = std::move(carry_);
    text.append(chunk);
    std::size_t used = scan(text, false, out);
    carry_.assign(std::string_view(text).substr(used));
}

void TokenRestorer::finish(std::string& out)
{
    if (carry_.empty())
        return;
    std::string text = std::move(carry_);
    carry_.clear();
    scan(text, true, out);
}

std::string TokenRestorer::restoreAll(const Mapping& mapping, std::string_view text, Escape escape,
                                      unsigned* restored)
{
    TokenRestorer r(mapping, escape);
    std::string out;
    out.reserve(text.size() + 64);
    r.scan(text, true, out);
    if (restored)
        *restored = r.restored_;
    return out;
}

} // namespace veil::mask
