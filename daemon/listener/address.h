#pragma once

// Socket addresses for listeners and original destinations, IPv4 and IPv6.

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"

namespace veil::listener {

class Address {
public:
    Address() = default;
    // "0.0.0.0:15002", "198.18.0.1:443", "[::]:15002", "[fd00::1]:443".
    static Result<Address> parse(std::string_view hostPort);
    static Address fromSockaddr(const sockaddr* sa, socklen_t len);

    int family() const { return storage_.ss_family; }
    const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&storage_); }
    sockaddr* sa() { return reinterpret_cast<sockaddr*>(&storage_); }
    socklen_t length() const { return len_; }
    std::uint16_t port() const;
    bool isAny() const;      // 0.0.0.0 or ::
    bool isLoopback() const; // 127/8 or ::1
    // An IPv4-mapped IPv6 address (::ffff:a.b.c.d) as plain IPv4; else itself.
    Address unmapped() const;
    std::string toString() const; // "1.2.3.4:443" / "[fd00::1]:443"
    std::string host() const;      // without port or brackets

    bool operator==(const Address& o) const;

private:
    sockaddr_storage storage_{};
    socklen_t len_ = 0;
};

} // namespace veil::listener
