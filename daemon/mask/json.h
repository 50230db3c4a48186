#pragma once

// JSON helpers for the masker and unmasker. Validation is simdjson's; on top
// of it, a small span scanner walks text already known to be valid and hands
// out the raw byte spans of keys, strings and scalars so the masker can edit
// the body in place (keeping every byte it does not mask).

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
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

// An escape unit of a decoded string: raw[raw, raw + rawLen) decoded to
// decoded[decoded, decoded + decodedLen). Bytes between units map one to one.
struct EscapeUnit {
    std::uint32_t decoded;
    std::uint32_t raw;
    std::uint8_t decodedLen;
    std::uint8_t rawLen;
};

// Decodes like unescape() into `out`, which has room for raw.size() bytes
// (decoding never grows a string, and this writes anywhere in that room).
// Appends the string's escape units to `units` if given. Returns the
// decoded size, or -1.
std::ptrdiff_t unescapeTo(std::string_view raw, char* out, std::vector<EscapeUnit>* units = nullptr);

// For decoded offsets `at` (ascending) of a string with escape units
// units[0, n): the raw offset of the unit that produced decoded byte at[k]
// (the raw end at the decoded end), i.e. rawPos[at[k]] of unescape(), in
// place; and whether at[k] starts a unit (or is the decoded end) in
// `boundary`.
void rawOffsets(const EscapeUnit* units, std::size_t n, std::size_t decodedSize, std::size_t rawSize,
                std::vector<std::uint32_t>& at, std::vector<std::uint8_t>* boundary = nullptr);

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

// Bit i % 64 of bits[i / 64] is set where text[i] is a backslash.
void backslashBits(std::string_view text, std::vector<std::uint64_t>& bits);

// True if a bit in [b, e) is set.
inline bool anyBit(const std::vector<std::uint64_t>& bits, std::size_t b, std::size_t e)
{
    if (b >= e)
        return false;
    const std::size_t wb = b / 64, we = (e - 1) / 64;
    const std::uint64_t first = ~std::uint64_t{0} << (b % 64);
    const std::uint64_t last = ~std::uint64_t{0} >> (63 - (e - 1) % 64);
    if (wb == we)
        return (bits[wb] & first & last) != 0;
    if (bits[wb] & first)
        return true;
    for (std::size_t w = wb + 1; w < we; ++w)
        if (bits[w])
            return true;
    return (bits[we] & last) != 0;
}

// Walks valid JSON by the structural index simdjson's stage 1 computed (the
// offset of every `{}[],:` and of the first byte of every string and
// scalar, in order): the same events as walk(), without reading the bytes
// of strings again. `backslashes` is backslashBits(text); `stack` scratch.
template <typename V>
void walkIndexed(std::string_view text, const std::uint32_t* idx, std::size_t n,
                 const std::vector<std::uint64_t>& backslashes, std::vector<std::uint8_t>& stack, V& v)
{
    stack.clear();
    bool expectKey = false;
    const char* base = text.data();
    auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
    for (std::size_t k = 0; k < n; ++k) {
        const std::size_t i = idx[k];
        // Where this value ends: before the next structural, less whitespace.
        auto endOf = [&] {
            std::size_t e = k + 1 < n ? idx[k + 1] : text.size();
            while (e > i + 1 && space(base[e - 1]))
                --e;
            return e;
        };
        switch (base[i]) {
        case '{':
            stack.push_back(1);
            expectKey = true;
            v.objectBegin(i);
            break;
        case '[':
            stack.push_back(0);
            expectKey = false;
            v.arrayBegin(i);
            break;
        case '}':
        case ']':
            if (!stack.empty())
                stack.pop_back();
            expectKey = false;
            if (base[i] == '}')
                v.objectEnd(i);
            else
                v.arrayEnd(i);
            break;
        case ',':
            expectKey = !stack.empty() && stack.back();
            break;
        case ':':
            break;
        case '"': {
            const std::size_t close = endOf() - 1; // the closing quote
            Span s{i + 1, close, anyBit(backslashes, i + 1, close)};
            if (expectKey) {
                expectKey = false;
                v.key(s);
            } else {
                v.string(s);
            }
            break;
        }
        default:
            v.scalar(i, endOf());
            break;
        }
    }
}

// A simdjson parser that keeps the structure of the last document it
// accepted, so that validating and walking cost one pass. One per thread
// (the Masker owns one); its buffers grow to the largest document seen.
class Parser {
public:
    Parser();
    ~Parser();
    Parser(const Parser&) = delete;
    Parser& operator=(const Parser&) = delete;

    // validate(), keeping the structure of `text` on success.
    bool parse(std::string_view text, std::string* why = nullptr);

    // Walks the text of the last successful parse() (pass the same bytes).
    template <typename V>
    void walk(std::string_view text, V& v)
    {
        backslashBits(text, backslashes_);
        walkIndexed(text, indexes(), indexCount(), backslashes_, stack_, v);
    }

private:
    const std::uint32_t* indexes() const;
    std::size_t indexCount() const;
    struct Impl;
    std::unique_ptr<Impl> impl_;
    std::vector<std::uint8_t> stack_;
    std::vector<std::uint64_t> backslashes_;
};

} // namespace veil::mask::json
