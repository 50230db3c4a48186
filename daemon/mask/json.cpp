#include "mask/json.h"

#include <cstring>

#include <simdjson.h>

namespace veil::mask::json {

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

} // namespace

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
