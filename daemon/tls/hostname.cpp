#include "tls/hostname.h"

#include <arpa/inet.h>

namespace veil::tls {

namespace {

bool isDigit(char c) { return c >= '0' && c <= '9'; }
bool isHexDigit(char c) { return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool isLdh(char c) { return isDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-'; }

// WHATWG URL's "ends in a number": a last label of digits, or 0x + hex, makes
// browsers parse the whole host as IPv4. Such names are never DNS names here.
bool endsInNumber(std::string_view name)
{
    std::size_t dot = name.rfind('.');
    std::string_view last = dot == std::string_view::npos ? name : name.substr(dot + 1);
    if (last.empty())
        return false;
    bool digits = true;
    for (char c : last)
        digits = digits && isDigit(c);
    if (digits)
        return true;
    if (last.size() >= 2 && last[0] == '0' && (last[1] == 'x' || last[1] == 'X')) {
        for (char c : last.substr(2))
            if (!isHexDigit(c))
                return false;
        return true;
    }
    return false;
}

} // namespace

/**
 * True if `name` is an address rather than a name. Bounded input: longer than
 * any textual address means not a literal (the copy below needs a terminator).
 */
bool isIpLiteral(std::string_view name)
{
    if (name.empty())
        return false;
    if (name.size() < INET6_ADDRSTRLEN + 2) {
        std::string s(name);
        if (s.size() >= 2 && s.front() == '[' && s.back() == ']')
            s = s.substr(1, s.size() - 2);
        unsigned char addr[16];
        if (::inet_pton(AF_INET, s.c_str(), addr) == 1 || ::inet_pton(AF_INET6, s.c_str(), addr) == 1)
            return true;
    }
    return endsInNumber(name);
}

/**
 * Strict LDH check (RFC 952/1123 as used by RFC 6066 host_name): the only
 * bytes allowed are letters, digits, '-' and the label separator '.'. That
 * also keeps names safe to put in OpenSSL extension strings ("DNS:<name>"),
 * which treat ',' and ':' as syntax.
 */
std::optional<std::string> normalizeHostName(std::string_view name)
{
    if (name.empty() || name.size() > kMaxHostNameLength)
        return std::nullopt;
    std::size_t labelLen = 0;
    char prev = '.';
    for (char c : name) {
        if (c == '.') {
            if (labelLen == 0 || prev == '-')
                return std::nullopt;
            labelLen = 0;
        } else {
            if (!isLdh(c) || (labelLen == 0 && c == '-') || ++labelLen > 63)
                return std::nullopt;
        }
        prev = c;
    }
    // A trailing dot (labelLen == 0) is not allowed in host_name (RFC 6066 §3).
    if (labelLen == 0 || prev == '-')
        return std::nullopt;
    if (isIpLiteral(name))
        return std::nullopt;
    std::string out(name);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z')
            c = static_cast<char>(c - 'A' + 'a');
    return out;
}

} // namespace veil::tls
