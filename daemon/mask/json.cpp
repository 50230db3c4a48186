#include "mask/json.h"

#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <simdjson.h>

namespace veil::mask::json {

struct Parser::Impl {
    simdjson::dom::parser parser;
};

Parser::Parser() : impl_(std::make_unique<Impl>()) {}
Parser::~Parser() = default;

bool Parser::parse(std::string_view text, std::string* why)
{
    auto err = impl_->parser.parse(text.data(), text.size(), true).error();
    if (err) {
        if (why)
            *why = simdjson::error_message(err);
        return false;
    }
    return true;
}

// simdjson keeps stage 1's index in the parser ("for benchmarking access");
// stage 2 reads it and leaves it as it was.
const std::uint32_t* Parser::indexes() const
{
    return impl_->parser.implementation->structural_indexes.get();
}

std::size_t Parser::indexCount() const
{
    return impl_->parser.implementation->n_structural_indexes;
}

void backslashBits(std::string_view text, std::vector<std::uint64_t>& bits)
{
    const std::size_t n = text.size();
    bits.assign(n / 64 + 1, 0);
    const char* p = text.data();
    std::size_t i = 0;
#if defined(__SSE2__)
    const __m128i bs = _mm_set1_epi8('\\');
    auto mask16 = [&](std::size_t at) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + at));
        return static_cast<std::uint64_t>(static_cast<std::uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, bs))));
    };
    for (; i + 64 <= n; i += 64)
        bits[i / 64] = mask16(i) | mask16(i + 16) << 16 | mask16(i + 32) << 32 | mask16(i + 48) << 48;
#endif
    for (; i < n; ++i)
        if (p[i] == '\\')
            bits[i / 64] |= std::uint64_t{1} << (i % 64);
}

bool validate(std::string_view text, std::string* why)
{
    // One parser per thread: its buffers grow to the largest document seen
    // and are reused, so validation does not allocate per body.
    thread_local simdjson::dom::parser parser;
    // An empty view may have no data pointer, which simdjson would memcpy
    // from (undefined even for 0 bytes); it is no document either way.
    auto err = text.empty() ? simdjson::EMPTY : parser.parse(text.data(), text.size(), true).error();
    if (err) {
        if (why)
            *why = simdjson::error_message(err);
        return false;
    }
    return true;
}

namespace {

int hexValue(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool readHex4(std::string_view raw, std::size_t at, std::uint32_t& cp)
{
    if (at + 4 > raw.size())
        return false;
    cp = 0;
    for (std::size_t k = 0; k < 4; ++k) {
        int h = hexValue(raw[at + k]);
        if (h < 0)
            return false;
        cp = cp * 16 + static_cast<std::uint32_t>(h);
    }
    return true;
}

void appendUtf8(std::uint32_t cp, std::string& out)
{
    if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
}

// appendUtf8 for a raw buffer; returns the bytes written.
std::size_t putUtf8(std::uint32_t cp, char* out)
{
    if (cp < 0x80) {
        out[0] = static_cast<char>(cp);
        return 1;
    }
    if (cp < 0x800) {
        out[0] = static_cast<char>(0xC0 | (cp >> 6));
        out[1] = static_cast<char>(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = static_cast<char>(0xE0 | (cp >> 12));
        out[1] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out[2] = static_cast<char>(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = static_cast<char>(0xF0 | (cp >> 18));
    out[1] = static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out[2] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out[3] = static_cast<char>(0x80 | (cp & 0x3F));
    return 4;
}

} // namespace

std::ptrdiff_t unescapeTo(std::string_view raw, char* out, std::vector<EscapeUnit>* units)
{
    const char* p = raw.data();
    const std::size_t n = raw.size();
    std::size_t i = 0;
    char* o = out;
    constexpr std::uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    constexpr std::uint64_t backslashes = ones * static_cast<unsigned char>('\\');
    while (i < n) {
        // Copy eight bytes at a time up to the next backslash. A word is
        // stored whole: out has room for raw.size() bytes and o <= out + i,
        // and the bytes past the backslash are overwritten next.
        if (i + 8 <= n) {
            std::uint64_t w;
            std::memcpy(&w, p + i, 8);
            std::memcpy(o, &w, 8);
            const std::uint64_t x = w ^ backslashes;
            const std::uint64_t zero = (x - ones) & ~x & highs; // exact for the lowest zero byte
            if (!zero) {
                i += 8;
                o += 8;
                continue;
            }
            const auto k = static_cast<std::size_t>(__builtin_ctzll(zero)) / 8;
            i += k;
            o += k;
        } else if (p[i] != '\\') {
            *o++ = p[i++];
            continue;
        }
        // p[i] is a backslash.
        if (i + 1 >= n)
            return -1;
        const char e = p[i + 1];
        const std::size_t unitRaw = i;
        char* const unitOut = o;
        i += 2;
        switch (e) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            std::uint32_t cp;
            if (!readHex4(raw, i, cp))
                return -1;
            i += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                std::uint32_t lo;
                if (i + 6 > n || p[i] != '\\' || p[i + 1] != 'u' || !readHex4(raw, i + 2, lo) || lo < 0xDC00 ||
                    lo > 0xDFFF)
                    return -1; // lone high surrogate
                i += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                return -1; // lone low surrogate
            }
            o += putUtf8(cp, o);
            break;
        }
        default:
            return -1;
        }
        if (units)
            units->push_back({static_cast<std::uint32_t>(unitOut - out), static_cast<std::uint32_t>(unitRaw),
                              static_cast<std::uint8_t>(o - unitOut), static_cast<std::uint8_t>(i - unitRaw)});
    }
    return o - out;
}

bool unescape(std::string_view raw, std::string& out, std::vector<std::uint32_t>* rawPos)
{
    out.reserve(out.size() + raw.size());
    if (rawPos)
        rawPos->reserve(raw.size() + 1);
    std::size_t i = 0;
    const std::size_t n = raw.size();
    while (i < n) {
        std::size_t unit = i;
        std::size_t before = out.size();
        char c = raw[i];
        if (c != '\\') {
            // A run without escapes: copied whole, one raw offset per byte.
            const void* bs = std::memchr(raw.data() + i, '\\', n - i);
            std::size_t end = bs ? static_cast<std::size_t>(static_cast<const char*>(bs) - raw.data()) : n;
            out.append(raw.data() + i, end - i);
            if (rawPos)
                for (std::size_t k = i; k < end; ++k)
                    rawPos->push_back(static_cast<std::uint32_t>(k));
            i = end;
            continue;
        } else {
            if (i + 1 >= n)
                return false;
            char e = raw[i + 1];
            i += 2;
            switch (e) {
            case '"': out.push_back('"'); break;
            case '\\': out.push_back('\\'); break;
            case '/': out.push_back('/'); break;
            case 'b': out.push_back('\b'); break;
            case 'f': out.push_back('\f'); break;
            case 'n': out.push_back('\n'); break;
            case 'r': out.push_back('\r'); break;
            case 't': out.push_back('\t'); break;
            case 'u': {
                std::uint32_t cp;
                if (!readHex4(raw, i, cp))
                    return false;
                i += 4;
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    std::uint32_t lo;
                    if (i + 6 > n || raw[i] != '\\' || raw[i + 1] != 'u' || !readHex4(raw, i + 2, lo) ||
                        lo < 0xDC00 || lo > 0xDFFF)
                        return false; // lone high surrogate
                    i += 6;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    return false; // lone low surrogate
                }
                appendUtf8(cp, out);
                break;
            }
            default:
                return false;
            }
        }
        if (rawPos)
            rawPos->insert(rawPos->end(), out.size() - before, static_cast<std::uint32_t>(unit));
    }
    if (rawPos)
        rawPos->push_back(static_cast<std::uint32_t>(n));
    return true;
}

void rawOffsets(const EscapeUnit* units, std::size_t n, std::size_t decodedSize, std::size_t rawSize,
                std::vector<std::uint32_t>& at, std::vector<std::uint8_t>* boundary)
{
    if (boundary)
        boundary->assign(at.size(), 0);
    std::size_t u = 0; // the first unit not before at[k]'s
    for (std::size_t k = 0; k < at.size(); ++k) {
        const std::uint32_t d = at[k];
        while (u < n && units[u].decoded + units[u].decodedLen <= d)
            ++u;
        bool start = true;
        std::uint32_t r;
        if (d >= decodedSize) {
            r = static_cast<std::uint32_t>(rawSize);
        } else if (u < n && units[u].decoded <= d) { // inside unit u
            r = units[u].raw;
            start = d == units[u].decoded;
        } else if (u > 0) { // after unit u-1, one to one
            const EscapeUnit& p = units[u - 1];
            r = p.raw + p.rawLen + (d - (p.decoded + p.decodedLen));
        } else {
            r = d;
        }
        at[k] = r;
        if (boundary)
            (*boundary)[k] = start;
    }
}

void escape(std::string_view utf8, std::string& out)
{
    static constexpr char hex[] = "0123456789abcdef";
    out.reserve(out.size() + utf8.size() + 8);
    for (char c : utf8) {
        auto u = static_cast<unsigned char>(c);
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        default:
            if (u < 0x20) {
                out += "\\u00";
                out.push_back(hex[u >> 4]);
                out.push_back(hex[u & 0xF]);
            } else {
                out.push_back(c);
            }
        }
    }
}

bool looksLikeContainer(std::string_view s)
{
    for (char c : s) {
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
            continue;
        return c == '{' || c == '[';
    }
    return false;
}

} // namespace veil::mask::json
