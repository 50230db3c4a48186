#include <catch2/catch.hpp>

#include <algorithm>
#include <map>

#include "build.h"
#include "config/config.h"
#include "dns/follower.h"

using namespace veil::dns;
using namespace veil::dns::test;
using namespace std::chrono_literals;
using Clock = Follower::Clock;

namespace {

// Records what would have gone to the kernel; can pretend a set is missing.
class FakeSets : public SetUpdater {
public:
    struct Call {
        std::string address;
        std::chrono::seconds timeout;
    };
    std::vector<Call> calls;
    bool missing = false;
    std::string set4 = "veil_targets4", set6 = "veil_targets6";

    veil::Result<void, SetError> add(const Address& a, std::chrono::seconds timeout) override
    {
        if (missing)
            return veil::fail(SetError{SetErrorKind::Missing, "ipset " + setFor(a.family) + ": does not exist"});
        calls.push_back({a.text(), timeout});
        return veil::Ok{};
    }
    const std::string& setFor(int family) const override { return family == AF_INET6 ? set6 : set4; }
};

struct Logged {
    std::string event, level;
    std::map<std::string, std::string> fields;
};

struct Fixture {
    veil::config::Config cfg;
    FakeSets sets;
    veil::metrics::Metrics metrics;
    std::vector<Logged> log;
    Clock::time_point t0 = Clock::now();

    Follower make(FollowerOptions o = {})
    {
        cfg.targets.push_back({"api.anthropic.com", {}});
        return Follower([this](std::string_view n) { return cfg.targetFor(n) != nullptr; }, sets, metrics,
                        [this](std::string_view ev, std::string_view lvl, std::span<const LogField> f) {
                            Logged l{std::string(ev), std::string(lvl), {}};
                            for (const auto& x : f)
                                l.fields[std::string(x.key)] = x.value;
                            log.push_back(std::move(l));
                        },
                        o);
    }
    std::size_t count(const char* event) const
    {
        return static_cast<std::size_t>(
            std::count_if(log.begin(), log.end(), [&](const Logged& l) { return l.event == event; }));
    }
};

Bytes answer(const char* host, std::uint32_t ttl, const char* addr, bool v6 = false)
{
    Bytes dns = cat({header(1, 1), question(name(host), v6 ? 28 : 1),
                     v6 ? aaaa(ptr(12), ttl, addr) : a(ptr(12), ttl, addr)});
    return v6 ? ipv6(udp(dns)) : ipv4(udp(dns));
}

std::span<const std::uint8_t> view(const Bytes& b) { return {b.data(), b.size()}; }

} // namespace

TEST_CASE("a target answer puts its address in the set with the clamped TTL and logs it once")
{
    Fixture f;
    FollowerOptions o;
    o.ttlFloor = 60s;
    o.ttlCeiling = 300s;
    Follower fl = f.make(o);
    fl.onPacket(view(answer("api.anthropic.com", 5, "198.18.5.10")), f.t0);
    REQUIRE(f.sets.calls.size() == 1);
    CHECK(f.sets.calls[0].address == "198.18.5.10");
    CHECK(f.sets.calls[0].timeout == 60s); // floor
    fl.onPacket(view(answer("api.anthropic.com", 5, "198.18.5.11")), f.t0);
    fl.onPacket(view(answer("api.anthropic.com", 999999, "198.18.5.12")), f.t0);
    CHECK(f.sets.calls[2].timeout == 300s); // ceiling
    CHECK(f.metrics.dnsAnswers.get() == 3);
    CHECK(f.metrics.dnsAdded.get() == 3);
    REQUIRE(f.count("dns_target") == 3);
    CHECK(f.log[0].fields["address"] == "198.18.5.10");
    CHECK(f.log[0].fields["name"] == "api.anthropic.com");
    CHECK(f.log[0].fields["set"] == "veil_targets4");
    CHECK(f.log[0].fields["timeout"] == "60");
}

TEST_CASE("a later, shorter answer never shortens an entry; an expired one is new again")
{
    Fixture f;
    FollowerOptions o;
    o.ttlFloor = 10s;
    o.ttlCeiling = 3600s;
    Follower fl = f.make(o);
    fl.onPacket(view(answer("api.anthropic.com", 300, "198.18.5.10")), f.t0);
    fl.onPacket(view(answer("api.anthropic.com", 60, "198.18.5.10")), f.t0 + 100s);
    fl.onPacket(view(answer("api.anthropic.com", 600, "198.18.5.10")), f.t0 + 150s);
    fl.onPacket(view(answer("api.anthropic.com", 20, "198.18.5.10")), f.t0 + 150s + 601s);
    REQUIRE(f.sets.calls.size() == 4);
    CHECK(f.sets.calls[0].timeout == 300s);
    CHECK(f.sets.calls[1].timeout == 200s); // what is left of the first, not 60
    CHECK(f.sets.calls[2].timeout == 600s); // longer: extends
    CHECK(f.sets.calls[3].timeout == 20s);  // the old entry had expired
    CHECK(f.metrics.dnsAdded.get() == 2);
    CHECK(f.metrics.dnsRefreshed.get() == 2);
    CHECK(f.count("dns_target") == 2);
}

TEST_CASE("non-target answers and queries from port 53 touch no set")
{
    Fixture f;
    Follower fl = f.make();
    fl.onPacket(view(answer("other.example.com", 300, "198.18.5.20")), f.t0);
    Bytes query = ipv4(udp(cat({header(1, 0, 0, 0, 0x0100), question(name("api.anthropic.com"))})));
    fl.onPacket(view(query), f.t0);
    CHECK(f.sets.calls.empty());
    CHECK(f.metrics.dnsAnswers.get() == 1);
    CHECK(f.metrics.dnsMalformed.get() == 0);
}

TEST_CASE("AAAA answers go to the IPv6 set, or nowhere when IPv6 is off")
{
    Fixture f;
    FollowerOptions o;
    Follower on = f.make(o);
    on.onPacket(view(answer("api.anthropic.com", 300, "fd00:5::10", true)), f.t0);
    REQUIRE(f.sets.calls.size() == 1);
    CHECK(f.sets.calls[0].address == "fd00:5::10");
    CHECK(f.log.back().fields["set"] == "veil_targets6");

    Fixture g;
    o.ipv6 = false;
    Follower off = g.make(o);
    off.onPacket(view(answer("api.anthropic.com", 300, "fd00:5::10", true)), g.t0);
    CHECK(g.sets.calls.empty());
}

TEST_CASE("malformed packets are counted and logged at most once per interval")
{
    Fixture f;
    FollowerOptions o;
    o.logInterval = 10s;
    Follower fl = f.make(o);
    Bytes bad = ipv4(udp(Bytes{0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1}));
    for (int i = 0; i < 5; ++i)
        fl.onPacket(view(bad), f.t0 + std::chrono::seconds(i));
    CHECK(f.metrics.dnsMalformed.get() == 5);
    REQUIRE(f.count("dns_malformed") == 1);
    CHECK(f.log[0].fields["reason"] == "DNS header truncated");
    CHECK(f.log[0].fields["count"] == "1");
    CHECK(f.log[0].level == "warn");
    CHECK(fl.flush(f.t0 + 5s) == f.t0 + 10s); // four held back until the interval is over
    CHECK(f.count("dns_malformed") == 1);
    CHECK(fl.flush(f.t0 + 10s) == Clock::time_point::max());
    REQUIRE(f.count("dns_malformed") == 2);
    CHECK(f.log[1].fields["count"] == "4");
}

TEST_CASE("a missing set is a counted error, logged once per interval, and the address is retried")
{
    Fixture f;
    FollowerOptions o;
    o.logInterval = 10s;
    Follower fl = f.make(o);
    f.sets.missing = true;
    for (int i = 0; i < 3; ++i)
        fl.onPacket(view(answer("api.anthropic.com", 300, "198.18.5.10")), f.t0 + std::chrono::seconds(i));
    CHECK(f.metrics.dnsSetErrors.get() == 3);
    REQUIRE(f.count("dns_set_error") == 1);
    CHECK(f.log[0].fields["reason"] == "set does not exist");
    CHECK(f.log[0].fields["detail"].find("veil_targets4") != std::string::npos);
    CHECK(f.metrics.dnsAdded.get() == 0);
    // Once the set exists the next answer adds the address as new.
    f.sets.missing = false;
    fl.onPacket(view(answer("api.anthropic.com", 300, "198.18.5.10")), f.t0 + 20s);
    CHECK(f.sets.calls.size() == 1);
    CHECK(f.metrics.dnsAdded.get() == 1);
}

TEST_CASE("queue errors are counted")
{
    Fixture f;
    Follower fl = f.make();
    fl.queueError("ENOBUFS", f.t0);
    fl.queueError("ENOBUFS", f.t0);
    CHECK(f.metrics.dnsQueueErrors.get() == 2);
    CHECK(f.count("dns_queue_error") == 1);
    CHECK(f.metrics.summary().find("dns_queue_errors=2") != std::string::npos);
}
