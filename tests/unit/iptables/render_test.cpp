#include <catch2/catch.hpp>

#include <algorithm>
#include <string>

#include "config/config.h"
#include "iptables/render.h"

using namespace veil;
using namespace veil::iptables;

namespace {

config::Config load(const std::string& capture, const std::string& extra = "")
{
    auto c = config::parse("listeners:\n"
                           "  - {name: side, mode: redirect, address: '[::]:15001'}\n"
                           "  - {name: gw, mode: tproxy, address: '[::]:15002'}\n"
                           "targets: [{host: api.anthropic.com}]\n" +
                               extra + "capture:\n" + capture,
                           "veil.yaml");
    INFO((c.ok() ? std::string() : c.error().message));
    REQUIRE(c.ok());
    return c.value();
}

Plan planOf(const config::Config& c, Backend b = Backend::Iptables, bool v4 = true, bool v6 = true)
{
    return plan(c.capture, c.capture.effectiveExcludeMark(c.upstreamMark), Options{b, v4, v6});
}

const XtTable* table(const FamilyPlan& f, const std::string& name)
{
    for (const auto& t : f.tables)
        if (t.name == name)
            return &t;
    return nullptr;
}

std::vector<std::string> rulesOf(const XtTable& t, const std::string& chain)
{
    std::vector<std::string> out;
    for (const auto& r : t.rules)
        if (r.chain == chain)
            out.push_back(r.spec);
    return out;
}

bool contains(const std::string& s, const std::string& part)
{
    return s.find(part) != std::string::npos;
}

} // namespace

TEST_CASE("sidecar: the excluded uid returns before anything is redirected to the listener port")
{
    auto p = planOf(load("  style: sidecar\n  exclude_uids: [65534]\n"));
    REQUIRE(p.families.size() == 2);
    const XtTable* nat = table(p.families[0], "nat");
    REQUIRE(nat);
    CHECK(nat->chains == std::vector<std::string>{"VEIL_OUTPUT"});
    auto rules = rulesOf(*nat, "VEIL_OUTPUT");
    REQUIRE(rules.size() == 4);
    CHECK(contains(rules[0], "-m owner --uid-owner 65534"));
    CHECK(contains(rules[0], "-j RETURN"));
    CHECK(contains(rules.back(), "-p tcp -m tcp --dport 443"));
    CHECK(contains(rules.back(), "-j REDIRECT --to-ports 15001"));
    REQUIRE(nat->jumps.size() == 1);
    CHECK(nat->jumps[0].chain == "OUTPUT");
    CHECK(contains(nat->jumps[0].spec, "-j VEIL_OUTPUT"));
    CHECK_FALSE(p.families[0].routing);
}

TEST_CASE("every rule and jump carries a veil comment; every rule lives in a VEIL_ chain")
{
    for (const char* cap : {"  style: sidecar\n  exclude_uids: [1]\n  destinations: dns\n",
                            "  style: gateway\n  interfaces: [eth0]\n  ipv6: false\n",
                            "  style: gateway\n  destinations: dns\n  skip_cidrs: [10.0.0.0/8]\n"}) {
        for (Backend b : {Backend::Iptables, Backend::Nft}) {
            auto p = planOf(load(cap), b);
            for (const auto& f : p.families) {
                for (const auto& t : f.tables) {
                    for (const auto& r : t.rules) {
                        CHECK(r.chain.rfind("VEIL_", 0) == 0);
                        CHECK(contains(r.spec, "--comment \"veil: "));
                    }
                    for (const auto& j : t.jumps) {
                        CHECK(j.chain.rfind("VEIL_", 0) != 0);
                        CHECK(contains(j.spec, "-j VEIL_"));
                        CHECK(contains(j.spec, "--comment \"veil: "));
                    }
                }
                for (const auto& ch : f.nftChains) {
                    CHECK(ch.name.back() == static_cast<char>('0' + f.family));
                    for (const auto& r : ch.rules) {
                        CHECK(contains(r, "comment \"veil: "));
                        if (!ch.hook.empty())
                            CHECK(contains(r, " jump VEIL_"));
                    }
                    if (ch.hook.empty())
                        CHECK(ch.name.rfind("VEIL_", 0) == 0);
                }
            }
        }
    }
}

TEST_CASE("gateway: socket divert before TPROXY, with the mark and policy routing of the config")
{
    auto p = planOf(load("  style: gateway\n  tproxy_mark: 0x4\n  route_table: 42\n", "upstream: {mark: 0x100}\n"));
    const auto& f4 = p.families[0];
    const XtTable* mangle = table(f4, "mangle");
    REQUIRE(mangle);
    CHECK(mangle->chains == std::vector<std::string>{"VEIL_DIVERT", "VEIL_PREROUTING"}); // as iptables-save lists them
    auto pre = rulesOf(*mangle, "VEIL_PREROUTING");
    REQUIRE(pre.size() == 4);
    CHECK(contains(pre[0], "-m mark --mark 0x100/0x100"));
    CHECK(contains(pre[1], "-m socket --transparent"));
    CHECK(contains(pre[1], "-j VEIL_DIVERT"));
    CHECK(contains(pre[2], "--ctstate INVALID"));
    CHECK(contains(pre[3], "-j TPROXY --on-port 15002 --on-ip 0.0.0.0 --tproxy-mark 0x4/0x4"));
    CHECK(contains(rulesOf(*mangle, "VEIL_DIVERT")[0], "--set-xmark 0x4/0x4"));
    REQUIRE(f4.routing);
    CHECK(f4.routing->ruleSelector() == "fwmark 0x4/0x4 lookup 42");
    CHECK(f4.routing->routeAddArgs(6) ==
          std::vector<std::string>{"-6", "route", "add", "local", "::/0", "dev", "lo", "table", "42"});
    const XtTable* filter = table(f4, "filter");
    REQUIRE(filter);
    CHECK(filter->jumps[0].chain == "FORWARD");
    CHECK(contains(rulesOf(*table(p.families[1], "mangle"), "VEIL_PREROUTING")[3], "--on-ip ::"));
}

TEST_CASE("gateway interfaces become one jump each; nft writes iptables' + wildcard as *")
{
    auto c = load("  style: gateway\n  interfaces: [veth-app, 'vlan+']\n");
    auto xt = planOf(c);
    const XtTable* mangle = table(xt.families[0], "mangle");
    REQUIRE(mangle->jumps.size() == 2);
    CHECK(contains(mangle->jumps[0].spec, "-i veth-app"));
    CHECK(contains(mangle->jumps[1].spec, "-i vlan+"));
    auto nft = planOf(c, Backend::Nft);
    CHECK(contains(nft.families[0].nftChains[0].rules[1], "iifname \"vlan*\" jump VEIL_PREROUTING4"));
}

TEST_CASE("ipv6 off: IPv6 to the captured ports is rejected, nothing of it captured")
{
    auto p = planOf(load("  style: sidecar\n  exclude_uids: [7]\n  ipv6: false\n  ports: [443, 8443]\n"));
    const auto& f6 = p.families[1];
    CHECK_FALSE(table(f6, "nat"));
    const XtTable* filter = table(f6, "filter");
    REQUIRE(filter);
    auto rules = rulesOf(*filter, "VEIL_FILTER");
    CHECK(contains(rules[0], "--uid-owner 7")); // veild's own traffic is not rejected either
    CHECK(std::count_if(rules.begin(), rules.end(), [](const std::string& r) {
              return contains(r, "-j REJECT --reject-with tcp-reset");
          }) == 2);
    CHECK(std::count_if(rules.begin(), rules.end(), [](const std::string& r) {
              return contains(r, "-p udp") && contains(r, "icmp6-port-unreachable");
          }) == 2);
    // IPv4 is still captured.
    CHECK(table(p.families[0], "nat"));
}

TEST_CASE("reject_quic off leaves the QUIC rule out, but INVALID is still dropped")
{
    auto p = planOf(load("  style: sidecar\n  reject_quic: false\n"));
    auto rules = rulesOf(*table(p.families[0], "filter"), "VEIL_FILTER");
    CHECK(std::none_of(rules.begin(), rules.end(), [](const std::string& r) { return contains(r, "-p udp"); }));
    CHECK(std::any_of(rules.begin(), rules.end(), [](const std::string& r) { return contains(r, "INVALID"); }));
    // A gateway has nothing to reject then, so no filter chain at all.
    auto g = planOf(load("  style: gateway\n  reject_quic: false\n"));
    CHECK_FALSE(table(g.families[0], "filter"));
}

TEST_CASE("include_cidrs restrict each family to its own networks; none of a family means nothing for it")
{
    auto p = planOf(load("  style: gateway\n  include_cidrs: [198.18.0.0/15]\n  skip_cidrs: ['fd00::/8']\n"));
    auto pre = rulesOf(*table(p.families[0], "mangle"), "VEIL_PREROUTING");
    CHECK(contains(pre.back(), "-d 198.18.0.0/15 -p tcp"));
    CHECK(p.families[1].tables.empty());
    CHECK_FALSE(p.families[1].routing);
    CHECK(contains(render(p), "# ip6 nothing to install"));
}

TEST_CASE("destinations dns: sets per family, capture only their members, DNS answers queued with bypass")
{
    auto c = load("  style: sidecar\n  destinations: dns\n  dns: {queue: 9, ttl_ceiling: 2h, set: lab}\n");
    auto p = planOf(c);
    REQUIRE(p.families[0].ipsets.size() == 1);
    CHECK(p.families[0].ipsets[0].createArgs() ==
          std::vector<std::string>{"create", "lab4", "hash:ip", "family", "inet", "timeout", "7200"});
    CHECK(p.families[1].ipsets[0].createArgs()[4] == "inet6");
    auto nat = rulesOf(*table(p.families[0], "nat"), "VEIL_OUTPUT");
    CHECK(contains(nat.back(), "-m set --match-set lab4 dst"));
    const XtTable* mangle = table(p.families[1], "mangle");
    REQUIRE(mangle);
    CHECK(rulesOf(*mangle, "VEIL_DNS") ==
          std::vector<std::string>{"-p udp -m udp --sport 53 -m comment --comment \"veil: dns answers to queue 9\" -j "
                                   "NFQUEUE --queue-num 9 --queue-bypass"});
    CHECK(mangle->jumps[0].chain == "PREROUTING");

    auto n = planOf(c, Backend::Nft);
    CHECK(n.families[0].nftSets[0].name == "lab4");
    CHECK(n.families[0].nftSets[0].type == "ipv4_addr");
    std::string text = nftTableText(n);
    CHECK(contains(text, "ip daddr @lab4 tcp dport 443 redirect to :15001"));
    CHECK(contains(text, "ip6 daddr @lab6 tcp dport 443 redirect to :15001"));
    CHECK(contains(text, "udp sport 53 queue flags bypass to 9"));
}

TEST_CASE("--family selects what is planned; tool names follow the backend")
{
    auto c = load("  style: sidecar\n");
    auto p6 = planOf(c, Backend::Iptables, false, true);
    REQUIRE(p6.families.size() == 1);
    CHECK(p6.families[0].family == 6);
    CHECK(contains(render(p6), "# ip6 ip6tables-restore --noflush"));
    CHECK_FALSE(contains(render(p6), "# ip4"));
    CHECK(xtTool(Backend::IptablesLegacy, 6, "save") == "ip6tables-legacy-save");
    CHECK(xtTool(Backend::IptablesNft, 4, "restore") == "iptables-nft-restore");
    CHECK(xtTool(Backend::Iptables, 4, "restore") == "iptables-restore");
    CHECK(parseBackend("iptables-nft") == Backend::IptablesNft);
    CHECK_FALSE(parseBackend("pf"));
}

TEST_CASE("render is deterministic and inserts jumps at the top in plan order")
{
    auto c = load("  style: gateway\n  interfaces: [a, b]\n  destinations: dns\n");
    auto text = render(planOf(c));
    CHECK(text == render(planOf(c)));
    auto dns = text.find("-I PREROUTING 1 -m comment --comment \"veil: dns answers to veild\" -j VEIL_DNS\n");
    auto a = text.find("-I PREROUTING 2 -i a ");
    auto b = text.find("-I PREROUTING 3 -i b ");
    REQUIRE(dns != std::string::npos);
    REQUIRE(a != std::string::npos);
    REQUIRE(b != std::string::npos);
    CHECK(dns < a);
    CHECK(a < b);
}

TEST_CASE("nft: host addresses are written without a prefix length, as nft lists them")
{
    auto p = planOf(load("  style: sidecar\n  skip_cidrs: [198.18.7.7, 'fd00::1']\n"), Backend::Nft);
    auto text = nftTableText(p);
    CHECK(contains(text, "ip daddr 198.18.7.7 return comment \"veil: skip 198.18.7.7/32\""));
    CHECK(contains(text, "ip6 daddr fd00::1 return"));
    CHECK(contains(text, "ip6 daddr ::1 return comment \"veil: loopback\""));
}
