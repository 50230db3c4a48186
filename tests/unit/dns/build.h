#pragma once

// Builders for hand-made DNS messages and the IPv4/IPv6 packets that carry
// them, for the dns/ unit tests.

#include <arpa/inet.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace veil::dns::test {

using Bytes = std::vector<std::uint8_t>;

inline Bytes cat(std::initializer_list<Bytes> parts)
{
    Bytes out;
    for (const auto& p : parts)
        out.insert(out.end(), p.begin(), p.end());
    return out;
}

inline Bytes u16(unsigned v) { return {static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)}; }

inline Bytes u32(std::uint32_t v)
{
    return {static_cast<std::uint8_t>(v >> 24), static_cast<std::uint8_t>(v >> 16), static_cast<std::uint8_t>(v >> 8),
            static_cast<std::uint8_t>(v)};
}

// Labels of a dotted name; `terminate` adds the root label.
inline Bytes labels(std::string_view dotted, bool terminate = true)
{
    Bytes out;
    while (!dotted.empty()) {
        auto dot = dotted.find('.');
        auto label = dotted.substr(0, dot);
        out.push_back(static_cast<std::uint8_t>(label.size()));
        out.insert(out.end(), label.begin(), label.end());
        dotted = dot == std::string_view::npos ? std::string_view() : dotted.substr(dot + 1);
    }
    if (terminate)
        out.push_back(0);
    return out;
}

inline Bytes name(std::string_view dotted) { return labels(dotted, true); }
inline Bytes ptr(unsigned offset) { return {static_cast<std::uint8_t>(0xC0 | (offset >> 8)), static_cast<std::uint8_t>(offset)}; }

inline constexpr unsigned kResponse = 0x8180; // QR, RD, RA, NOERROR

inline Bytes header(unsigned qd, unsigned an, unsigned ns = 0, unsigned ar = 0, unsigned flags = kResponse,
                    unsigned id = 0x1234)
{
    return cat({u16(id), u16(flags), u16(qd), u16(an), u16(ns), u16(ar)});
}

inline Bytes question(const Bytes& owner, unsigned type = 1) { return cat({owner, u16(type), u16(1)}); }

inline Bytes rr(const Bytes& owner, unsigned type, std::uint32_t ttl, const Bytes& rdata, unsigned cls = 1)
{
    return cat({owner, u16(type), u16(cls), u32(ttl), u16(static_cast<unsigned>(rdata.size())), rdata});
}

inline Bytes ip4(const char* text)
{
    Bytes b(4);
    inet_pton(AF_INET, text, b.data());
    return b;
}

inline Bytes ip6(const char* text)
{
    Bytes b(16);
    inet_pton(AF_INET6, text, b.data());
    return b;
}

inline Bytes a(const Bytes& owner, std::uint32_t ttl, const char* addr) { return rr(owner, 1, ttl, ip4(addr)); }
inline Bytes aaaa(const Bytes& owner, std::uint32_t ttl, const char* addr) { return rr(owner, 28, ttl, ip6(addr)); }
inline Bytes cname(const Bytes& owner, std::uint32_t ttl, const Bytes& target) { return rr(owner, 5, ttl, target); }

inline Bytes udp(const Bytes& payload, unsigned sport = 53, unsigned dport = 40000)
{
    return cat({u16(sport), u16(dport), u16(static_cast<unsigned>(payload.size() + 8)), u16(0), payload});
}

inline Bytes ipv4(const Bytes& l4, unsigned proto = 17, unsigned fragField = 0x4000 /* DF */)
{
    Bytes h = cat({{0x45, 0}, u16(static_cast<unsigned>(20 + l4.size())), u16(0x1111), u16(fragField),
                   {64, static_cast<std::uint8_t>(proto)}, u16(0), ip4("198.18.0.2"), ip4("198.18.0.1")});
    return cat({h, l4});
}

// `ext`: extension headers (each with its next-header byte first) placed
// before `l4`; `first` is the next-header value of the fixed header.
inline Bytes ipv6(const Bytes& l4, unsigned first = 17, const Bytes& ext = {})
{
    Bytes h = cat({{0x60, 0, 0, 0}, u16(static_cast<unsigned>(ext.size() + l4.size())),
                   {static_cast<std::uint8_t>(first), 64}, ip6("fd00:18::2"), ip6("fd00:18::1")});
    return cat({h, ext, l4});
}

} // namespace veil::dns::test
