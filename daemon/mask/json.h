#pragma once

// JSON helpers for the masker and unmasker. Validation is simdjson's; on top
// of it, a small span scanner walks text already known to be valid and hands
// out the raw byte spans of keys, strings and scalars so the masker can edit
// the body in place (keeping every byte it does not mask).

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace veil::mask::json {

// Raw content of a JSON string: the bytes between the quotes.
struct Span {
    std::size_t begin;
    std::size_t end;
    bool escaped; // contains at least one backslash escape
};

// Validates `text` as one JSON document (RFC 8259, UTF-8, depth ≤ 1024).
// On failure, `why` says what is wrong (simdjson's message, no content).
bool validate(std::string_view text, std::string* why = nullptr);

// Decodes the raw content of a JSON string (no quotes) into UTF-8.
// If rawPos is given, rawPos[d] is the raw offset of the escape unit that
// produced decoded byte d, plus one final entry == raw.size().
// Returns false on an invalid escape or a lone surrogate.
bool unescape(std::string_view raw, std::string& out, std::vector<std::uint32_t>* rawPos = nullptr);

// Appends `utf8` escaped as the content of a JSON string.
void escape(std::string_view utf8, std::string& out);

// True if `s` (after leading whitespace) starts like an object or array.
bool looksLikeContainer(std::string_view s);

// Walks valid JSON (validate() first; behaviour on invalid input is bounded
// but unspecified). Visitor members, all optional via the Walker base below:
//   objectBegin(pos) objectEnd(pos) arrayBegin(pos) arrayEnd(pos)
//   key(Span) string(Span) scalar(begin, end)
struct Walker {
    void objectBegin(std::size_t) {}
    void objectEnd(std::size_t) {}
    void arrayBegin(std::size_t) {}
    void arrayEnd(std::size_t) {}
    void key(Span) {}
    void string(Span) {}
    void scalar(std::size_t, std::size_t) {}
};

// End of the string whose opening quote is at text[open]: the index of the
// closing quote (or text.size() if unterminated). Sets `escaped`.
inline std::size_t stringEnd(std::string_view text, std::size_t open, bool& escaped)
{
    escaped = false;
    std::size_t i = open + 1;
    const char* base = text.data();
    const std::size_t n = text.size();
    while (i < n) {
        const void* q = std::memchr(base + i, '"', n - i);
        std::size_t qi = q ? static_cast<std::size_t>(static_cast<const char*>(q) - base) : n;
        // Any backslash before the quote? Then the quote may be escaped.
        const void* b = std::memchr(base + i, '\\', qi - i);
        if (!b)
            return qi;
        escaped = true;
        std::size_t bi = static_cast<std::size_t>(static_cast<const char*>(b) - base);
        i = bi + 2; // skip the escaped character; \uXXXX digits are never quotes
    }
    return n;
}

template <typename V>
void walk(std::string_view text, V& v)
{
    // Containers: true = object. In an object, a string after '{' or ',' is a key.
    std::vector<bool> stack;
    stack.reserve(16);
    bool expectKey = false;
    const std::size_t n = text.size();
    std::size_t i = 0;
    while (i < n) {
        char c = text[i];
        switch (c) {
        case ' ': case '\t': case '\n': case '\r': case ':':
            ++i;
            break;
        case '{':
            stack.push_back(true);
            expectKey = true;
            v.objectBegin(i++);
            break;
        case '[':
            stack.push_back(false);
            expectKey = false;
            v.arrayBegin(i++);
            break;
        case '}':
        case ']':
            if (!stack.empty())
                stack.pop_back();
            expectKey = false;
            if (c == '}')
                v.objectEnd(i++);
            else
                v.arrayEnd(i++);
            break;
        case ',':
            expectKey = !stack.empty() && stack.back();
            ++i;
            break;
        case '"': {
            bool escaped = false;
            std::size_t e = stringEnd(text, i, escaped);
            Span s{i + 1, e, escaped};
            if (expectKey) {
                expectKey = false;
                v.key(s);
            } else {
                v.string(s);
            }
            i = e + 1;
            break;
        }
        default: {
            std::size_t b = i;
            while (i < n) {
                char d = text[i];
                if (d == ',' || d == '}' || d == ']' || d == ' ' || d == '\t' || d == '\n' || d == '\r')
                    break;
                ++i;
            }
            v.scalar(b, i);
            break;
        }
        }
    }
}

} // namespace veil::mask::json
