#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <string>

#include "listener/listener.h"

using namespace veil;
using namespace veil::listener;

TEST_CASE("addresses parse in both families and print back the same")
{
    for (const char* s : {"0.0.0.0:15002", "198.18.0.1:443", "[::]:15002", "[fd00::1]:443"}) {
        auto a = Address::parse(s);
        REQUIRE(a.ok());
        CHECK(a->toString() == s);
    }
    auto v6 = Address::parse("[::]:15002");
    CHECK(v6->family() == AF_INET6);
    CHECK(v6->isAny());
    CHECK(v6->port() == 15002);
    CHECK(Address::parse("127.0.0.1:80")->isLoopback());
    CHECK_FALSE(Address::parse("198.18.0.1:80")->isLoopback());
}

TEST_CASE("malformed addresses are refused with the reason")
{
    for (const char* s : {"", "1.2.3.4", "1.2.3.4:", "1.2.3.4:70000", "1.2.3.4:x", "host:80", "::1:80", "[::1]80",
                          "[::1]:", "[zz::]:1"}) {
        auto a = Address::parse(s);
        CHECK_FALSE(a.ok());
    }
}

TEST_CASE("an IPv4-mapped IPv6 address compares equal to the IPv4 one")
{
    auto mapped = Address::parse("[::ffff:198.18.0.7]:443");
    auto plain = Address::parse("198.18.0.7:443");
    REQUIRE(mapped.ok());
    REQUIRE(plain.ok());
    CHECK(mapped->unmapped().family() == AF_INET);
    CHECK(*mapped == *plain);
    CHECK_FALSE(*Address::parse("198.18.0.7:444") == *plain);
}

namespace {
// Connects to `at` and returns the accepted descriptor.
UniqueFd acceptOne(int lfd, const Address& at, UniqueFd& client)
{
    client.reset(::socket(at.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(::connect(client.get(), at.sa(), at.length()) == 0);
    for (int i = 0; i < 100; ++i) {
        int fd = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0)
            return UniqueFd(fd);
        ::usleep(10000);
    }
    FAIL("no connection accepted");
    return {};
}

Address boundAddress(int fd)
{
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0);
    return Address::fromSockaddr(reinterpret_cast<sockaddr*>(&ss), len);
}
} // namespace

TEST_CASE("two listeners share one address with SO_REUSEPORT")
{
    auto a = openListener(*Address::parse("127.0.0.1:0"), Mode::Redirect);
    REQUIRE(a.ok());
    Address at = boundAddress(a->get());
    auto b = openListener(at, Mode::Redirect);
    CHECK(b.ok());
}

TEST_CASE("a connection that was not redirected points at the listener itself")
{
    for (const char* where : {"127.0.0.1:0", "[::1]:0"}) {
        auto l = openListener(*Address::parse(where), Mode::Redirect);
        REQUIRE(l.ok());
        Address at = boundAddress(l->get());
        UniqueFd client;
        UniqueFd conn = acceptOne(l->get(), at, client);
        // Without a NAT entry the kernel either has no original destination
        // or reports the local address; both must be recognised.
        auto dst = originalDestination(conn.get(), Mode::Redirect);
        if (dst.ok())
            CHECK(pointsAtListener(*dst, at, conn.get(), Mode::Redirect));
        // TPROXY semantics: the local address is the destination.
        auto local = originalDestination(conn.get(), Mode::Tproxy);
        REQUIRE(local.ok());
        CHECK(*local == at);
        CHECK(pointsAtListener(*local, at, conn.get(), Mode::Tproxy));
    }
}

#include <sched.h>
#include <sys/wait.h>

#include <cstdlib>

namespace {

// Runs `body` in a child process inside a fresh network namespace (needs
// root, like the integration tests); returns the child's exit status.
int inNewNetns(const std::function<int()>& body)
{
    pid_t pid = ::fork();
    if (pid == 0) {
        if (::unshare(CLONE_NEWNET) != 0)
            ::_exit(90);
        ::_exit(body());
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 99;
}

int sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }

} // namespace

TEST_CASE("a connection redirected by nat OUTPUT reports its original destination")
{
    REQUIRE(::geteuid() == 0); // network namespaces need root
    for (std::string family : {"4", "6"}) {
        int rc = inNewNetns([&]() -> int {
            bool v6 = family == "6";
            if (sh("ip link set lo up") || sh(v6 ? "ip -6 addr add fd00:5::1/64 dev lo" : "ip addr add 198.18.5.1/24 dev lo"))
                return 10;
            auto l = openListener(*Address::parse(v6 ? "[::]:0" : "0.0.0.0:0"), Mode::Redirect);
            if (!l)
                return 11;
            Address at = boundAddress(l->get());
            std::string ipt = v6 ? "ip6tables" : "iptables";
            std::string dst = v6 ? "fd00:5::5" : "198.18.5.5";
            if (sh(ipt + " -t nat -A OUTPUT -p tcp -d " + dst + " --dport 443 -j REDIRECT --to-ports " +
                   std::to_string(at.port())))
                return 12;
            auto target = Address::parse(v6 ? "[fd00:5::5]:443" : "198.18.5.5:443");
            UniqueFd client;
            UniqueFd conn = acceptOne(l->get(), *target, client);
            auto orig = originalDestination(conn.get(), Mode::Redirect);
            if (!orig)
                return 13;
            if (!(*orig == *target))
                return 14;
            if (pointsAtListener(*orig, at, conn.get(), Mode::Redirect))
                return 15;
            return 0;
        });
        INFO("IPv" << family << " child status " << rc);
        CHECK(rc == 0);
    }
}
