#include "listener/listener.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

// From <linux/netfilter_ipv4.h> and <linux/netfilter_ipv6/ip6_tables.h>,
// which do not mix well with the libc headers.
#ifndef SO_ORIGINAL_DST
#define SO_ORIGINAL_DST 80
#endif
#ifndef IP6T_SO_ORIGINAL_DST
#define IP6T_SO_ORIGINAL_DST 80
#endif

namespace veil::listener {

namespace {
std::string sysError(const std::string& what) { return what + ": " + std::strerror(errno); }
} // namespace

Result<UniqueFd> openListener(const Address& at, Mode mode, int backlog)
{
    UniqueFd fd(::socket(at.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd)
        return fail(sysError("socket"));
    int one = 1;
    if (::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)
        return fail(sysError("SO_REUSEADDR/SO_REUSEPORT on " + at.toString()));
    if (at.family() == AF_INET6 && at.isAny()) {
        // Dual-stack: one [::] listener takes IPv4 too.
        int zero = 0;
        ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    }
    if (mode == Mode::Tproxy) {
        int rc = at.family() == AF_INET6
                     ? ::setsockopt(fd.get(), SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof one)
                     : ::setsockopt(fd.get(), SOL_IP, IP_TRANSPARENT, &one, sizeof one);
        if (rc != 0)
            return fail(sysError("IP_TRANSPARENT on " + at.toString() + " (needs CAP_NET_ADMIN)"));
    }
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (::bind(fd.get(), at.sa(), at.length()) != 0)
        return fail(sysError("bind " + at.toString()));
    if (::listen(fd.get(), backlog) != 0)
        return fail(sysError("listen " + at.toString()));
    return fd;
}

Result<Address> originalDestination(int fd, Mode mode)
{
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (mode == Mode::Tproxy) {
        if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0)
            return fail(sysError("getsockname"));
        return Address::fromSockaddr(reinterpret_cast<sockaddr*>(&ss), len).unmapped();
    }
    // The family of the connection decides which table holds the NAT entry.
    sockaddr_storage local{};
    socklen_t llen = sizeof local;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &llen) != 0)
        return fail(sysError("getsockname"));
    Address here = Address::fromSockaddr(reinterpret_cast<sockaddr*>(&local), llen);
    if (here.unmapped().family() == AF_INET) {
        sockaddr_in in{};
        socklen_t l = sizeof in;
        if (::getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &in, &l) != 0)
            return fail(sysError("SO_ORIGINAL_DST"));
        return Address::fromSockaddr(reinterpret_cast<sockaddr*>(&in), l);
    }
    sockaddr_in6 in6{};
    socklen_t l = sizeof in6;
    if (::getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &in6, &l) != 0)
        return fail(sysError("IP6T_SO_ORIGINAL_DST"));
    return Address::fromSockaddr(reinterpret_cast<sockaddr*>(&in6), l).unmapped();
}

bool pointsAtListener(const Address& dst, const Address& listenAt, int acceptedFd, Mode mode)
{
    sockaddr_storage local{};
    socklen_t llen = sizeof local;
    if (::getsockname(acceptedFd, reinterpret_cast<sockaddr*>(&local), &llen) != 0)
        return true; // cannot tell: refuse
    Address here = Address::fromSockaddr(reinterpret_cast<sockaddr*>(&local), llen).unmapped();
    if (mode == Mode::Redirect)
        return dst == here; // conntrack saw no translation
    // TPROXY keeps the original destination as the local address; a client
    // that dialled the listener's own port came without the rules.
    return dst.port() == listenAt.port() && (listenAt.isAny() || dst == listenAt.unmapped());
}

} // namespace veil::listener
