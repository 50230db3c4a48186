#include "listener/address.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace veil::listener {

Result<Address> Address::parse(std::string_view hp)
{
    std::string_view host, port;
    if (!hp.empty() && hp.front() == '[') {
        auto close = hp.find(']');
        if (close == std::string_view::npos || close + 1 >= hp.size() || hp[close + 1] != ':')
            return fail("address '" + std::string(hp) + "' must look like [ipv6]:port");
        host = hp.substr(1, close - 1);
        port = hp.substr(close + 2);
    } else {
        auto colon = hp.rfind(':');
        if (colon == std::string_view::npos || hp.find(':') != colon)
            return fail("address '" + std::string(hp) + "' must look like ipv4:port or [ipv6]:port");
        host = hp.substr(0, colon);
        port = hp.substr(colon + 1);
    }
    unsigned p = 0;
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc() || ptr != port.data() + port.size() || p > 65535)
        return fail("address '" + std::string(hp) + "' has a bad port");
    Address a;
    std::string h(host);
    auto* v4 = reinterpret_cast<sockaddr_in*>(&a.storage_);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.storage_);
    if (::inet_pton(AF_INET, h.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(static_cast<std::uint16_t>(p));
        a.len_ = sizeof(sockaddr_in);
    } else if (::inet_pton(AF_INET6, h.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(static_cast<std::uint16_t>(p));
        a.len_ = sizeof(sockaddr_in6);
    } else {
        return fail("address '" + std::string(hp) + "' has a host that is not an IP address");
    }
    return a;
}

Address Address::fromSockaddr(const sockaddr* sa, socklen_t len)
{
    Address a;
    if (len > sizeof a.storage_)
        len = sizeof a.storage_;
    std::memcpy(&a.storage_, sa, len);
    a.len_ = len;
    return a;
}

std::uint16_t Address::port() const
{
    if (family() == AF_INET)
        return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
    if (family() == AF_INET6)
        return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
    return 0;
}

bool Address::isAny() const
{
    if (family() == AF_INET)
        return reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr.s_addr == htonl(INADDR_ANY);
    if (family() == AF_INET6)
        return IN6_IS_ADDR_UNSPECIFIED(&reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr);
    return false;
}

bool Address::isLoopback() const
{
    Address u = unmapped();
    if (u.family() == AF_INET)
        return (ntohl(reinterpret_cast<const sockaddr_in*>(&u.storage_)->sin_addr.s_addr) >> 24) == 127;
    if (u.family() == AF_INET6)
        return IN6_IS_ADDR_LOOPBACK(&reinterpret_cast<const sockaddr_in6*>(&u.storage_)->sin6_addr);
    return false;
}

Address Address::unmapped() const
{
    if (family() != AF_INET6)
        return *this;
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&storage_);
    if (!IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr))
        return *this;
    Address a;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&a.storage_);
    v4->sin_family = AF_INET;
    v4->sin_port = v6->sin6_port;
    std::memcpy(&v4->sin_addr, &v6->sin6_addr.s6_addr[12], 4);
    a.len_ = sizeof(sockaddr_in);
    return a;
}

std::string Address::host() const
{
    char buf[INET6_ADDRSTRLEN] = "?";
    if (family() == AF_INET)
        ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, buf, sizeof buf);
    else if (family() == AF_INET6)
        ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr, buf, sizeof buf);
    return buf;
}

std::string Address::toString() const
{
    if (family() == AF_INET6)
        return "[" + host() + "]:" + std::to_string(port());
    return host() + ":" + std::to_string(port());
}

bool Address::operator==(const Address& o) const
{
    Address a = unmapped(), b = o.unmapped();
    if (a.family() != b.family() || a.port() != b.port())
        return false;
    if (a.family() == AF_INET)
        return reinterpret_cast<const sockaddr_in*>(&a.storage_)->sin_addr.s_addr ==
               reinterpret_cast<const sockaddr_in*>(&b.storage_)->sin_addr.s_addr;
    if (a.family() == AF_INET6)
        return std::memcmp(&reinterpret_cast<const sockaddr_in6*>(&a.storage_)->sin6_addr,
                           &reinterpret_cast<const sockaddr_in6*>(&b.storage_)->sin6_addr, 16) == 0;
    return false;
}

} // namespace veil::listener
