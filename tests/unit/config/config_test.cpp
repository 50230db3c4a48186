#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>
#include <string>

#include <unistd.h>

#include "config/config.h"
#include "mask/ruleset.h"

using namespace veil;

namespace {

const char* kMinimal = R"(listeners:
  - name: gateway
    mode: tproxy
    address: "0.0.0.0:15002"
ca:
  cert: /etc/veil/ca.pem
  key: /etc/veil/ca.key
upstream:
  ca_file: /etc/ssl/certs/ca-certificates.crt
targets:
  - host: api.anthropic.com
    mask:
      - {method: POST, path: /v1/messages}
masking:
  packs: [aws]
  on_unmaskable: block
)";

std::string errorOf(const std::string& yaml)
{
    auto c = config::parse(yaml, "veil.yaml");
    REQUIRE_FALSE(c.ok());
    return c.error().message;
}

struct TempDir {
    std::string path;
    TempDir()
    {
        char tmpl[] = "/tmp/veil-config-test-XXXXXX";
        path = ::mkdtemp(tmpl);
    }
    ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
    std::string write(const std::string& name, const std::string& text) const
    {
        std::string p = path + "/" + name;
        std::ofstream(p) << text;
        return p;
    }
};

} // namespace

TEST_CASE("the minimal configuration of DESIGN.md parses with its defaults")
{
    auto c = config::parse(kMinimal, "veil.yaml");
    REQUIRE(c.ok());
    REQUIRE(c->listeners.size() == 1);
    CHECK(c->listeners[0].mode == config::ListenerMode::Tproxy);
    CHECK(c->listeners[0].address == "0.0.0.0:15002");
    REQUIRE(c->targets.size() == 1);
    CHECK(c->targets[0].mask[0].method == "POST");
    CHECK(c->targets[0].mask[0].path == "/v1/messages");
    CHECK(c->masking.blockUnmaskable);
    CHECK(c->masking.maxBodyBytes == 32u << 20);
    auto rules = config::effectiveRules(c->masking);
    REQUIRE(rules.ok());
    CHECK(rules->size() >= 50);
}

TEST_CASE("an unknown key is an error naming file, line and column")
{
    std::string e = errorOf("masking:\n  packs: [aws]\n  on_unmaskabel: pass\n");
    CHECK(e.rfind("veil.yaml:3:3: unknown key 'on_unmaskabel' in masking", 0) == 0);
    CHECK(errorOf("listener:\n  - {}\n").rfind("veil.yaml:1:1: unknown key 'listener'", 0) == 0);
}

TEST_CASE("bad values are errors at the value's position")
{
    CHECK(errorOf("masking:\n  on_unmaskable: maybe\n").rfind("veil.yaml:2:18: masking.on_unmaskable must be", 0) ==
          0);
    CHECK(errorOf("listeners:\n  - {name: a, mode: bridge, address: 'x:1'}\n").rfind("veil.yaml:2:21: listener mode must be tproxy or redirect", 0) == 0);
    CHECK(errorOf("masking:\n  packs: [aws, gcp]\n").rfind("veil.yaml:2:16: unknown pack 'gcp'", 0) == 0);
    CHECK(errorOf("masking:\n  max_body_bytes: lots\n").rfind("veil.yaml:2:19:", 0) == 0);
    CHECK(errorOf("targets:\n  - host: a\n    mask: [{path: v1}]\n").find("must start with /") != std::string::npos);
}

TEST_CASE("YAML syntax errors carry the parser's position")
{
    std::string e = errorOf("masking:\n  packs: [aws\n");
    CHECK(e.rfind("veil.yaml:", 0) == 0);
    CHECK(e.find(':', 10) != std::string::npos);
}

TEST_CASE("custom rules are checked where they are written")
{
    std::string e = errorOf("masking:\n  rules:\n    - {name: corp.x, regex: '(a', type: CORP}\n");
    CHECK(e.rfind("veil.yaml:3:7: rule corp.x: regex error", 0) == 0);
    e = errorOf("masking:\n  rules:\n    - {name: corp.x, regex: 'a', type: corp}\n");
    CHECK(e.find("token type") != std::string::npos);
    e = errorOf("masking:\n  rules:\n    - {name: corp.x, regex: 'a', type: CORP, colour: red}\n");
    CHECK(e.find("unknown key 'colour' in a rule") != std::string::npos);
}

TEST_CASE("enable and disable name existing rules and take effect")
{
    CHECK(errorOf("masking:\n  enable: [aws.nope]\n").rfind("veil.yaml:2:12: no rule named 'aws.nope'", 0) == 0);
    auto c = config::parse("masking:\n  disable: [aws.ec2_instance]\n  rules:\n"
                           "    - {name: corp.project, regex: '\\bPRJ-[0-9]{4}\\b', type: PROJECT, priority: 5}\n",
                           "veil.yaml");
    REQUIRE(c.ok());
    auto rules = config::effectiveRules(c->masking);
    REQUIRE(rules.ok());
    bool sawProject = false;
    for (const auto& r : *rules) {
        if (r.name == "aws.ec2_instance")
            CHECK_FALSE(r.enabled);
        if (r.name == "corp.project") {
            sawProject = true;
            CHECK(r.priority == 5);
        }
    }
    CHECK(sawProject);
}

TEST_CASE("rule files are read relative to the configuration")
{
    TempDir d;
    d.write("corp.yaml", "rules:\n  - name: corp.ticket\n    regex: '\\bOPS-[0-9]+\\b'\n    type: TICKET\n");
    std::string cfg = d.write("veil.yaml", "masking:\n  rule_files: [corp.yaml]\n");
    auto c = config::load(cfg);
    REQUIRE(c.ok());
    REQUIRE(c->masking.rules.size() == 1);
    CHECK(c->masking.rules[0].tokenType == "TICKET");
    d.write("bad.yaml", "rules:\n  - name: corp.bad\n    regex: 'x'\n    type: T\n    prio: 1\n");
    std::string cfg2 = d.write("veil2.yaml", "masking:\n  rule_files: [bad.yaml]\n");
    auto c2 = config::load(cfg2);
    REQUIRE_FALSE(c2.ok());
    CHECK(c2.error().message.find("bad.yaml:5:5: unknown key 'prio'") != std::string::npos);
    CHECK_FALSE(config::load(d.path + "/missing.yaml").ok());
}

TEST_CASE("capture defaults to a sidecar on :443 feeding the first redirect listener")
{
    auto c = config::parse("listeners:\n  - {name: gw, mode: tproxy, address: '0.0.0.0:15002'}\n"
                           "  - {name: side, mode: redirect, address: '[::]:15001'}\n"
                           "targets: [{host: api.anthropic.com}]\ncapture: {exclude_uids: [1337]}\n",
                           "veil.yaml");
    REQUIRE(c.ok());
    const auto& cap = c->capture;
    CHECK(cap.present);
    CHECK(cap.style == config::CaptureStyle::Sidecar);
    CHECK(cap.backend == config::CaptureBackend::Iptables);
    CHECK(cap.listener == "side");
    CHECK(cap.listenerPort == 15001);
    CHECK(cap.ports == std::vector<std::uint16_t>{443});
    CHECK(cap.excludeUids == std::vector<std::uint32_t>{1337});
    CHECK(cap.ipv6);
    CHECK(cap.rejectQuic);
    CHECK(cap.destinations == config::CaptureDestinations::All);
    CHECK_FALSE(config::parse("listeners: []\n", "veil.yaml")->capture.present);
}

TEST_CASE("capture: a gateway with marks, CIDRs and DNS-following destinations")
{
    auto c = config::parse("listeners:\n  - {name: gw, mode: tproxy, address: '0.0.0.0:15002'}\n"
                           "upstream: {mark: 0x100}\ntargets: [{host: api.anthropic.com}]\n"
                           "capture:\n  style: gateway\n  backend: nft\n  ports: [443, 8443]\n  tproxy_mark: 0x1\n"
                           "  route_table: 100\n  interfaces: [veth-app, 'vlan+']\n"
                           "  include_cidrs: [198.18.0.0/15, 'fd00::/8']\n  skip_cidrs: [198.18.7.7]\n"
                           "  destinations: dns\n  ipv6: false\n  dns: {queue: 7, ttl_floor: 30s, set: lab_targets}\n",
                           "veil.yaml");
    REQUIRE(c.ok());
    const auto& cap = c->capture;
    CHECK(cap.style == config::CaptureStyle::Gateway);
    CHECK(cap.backend == config::CaptureBackend::Nft);
    CHECK(cap.listener == "gw");
    CHECK(cap.listenerPort == 15002);
    CHECK(cap.ports == std::vector<std::uint16_t>{443, 8443});
    CHECK(cap.effectiveExcludeMark(c->upstreamMark) == 0x100);
    CHECK(cap.interfaces == std::vector<std::string>{"veth-app", "vlan+"});
    REQUIRE(cap.includeCidrs.size() == 2);
    CHECK(cap.includeCidrs[0].text == "198.18.0.0/15");
    CHECK(cap.includeCidrs[1].text == "fd00::/8");
    REQUIRE(cap.skipCidrs.size() == 1);
    CHECK(cap.skipCidrs[0].text == "198.18.7.7/32");
    CHECK(cap.destinations == config::CaptureDestinations::Dns);
    CHECK_FALSE(cap.ipv6);
    CHECK(cap.dnsQueue == 7);
    CHECK(cap.dnsTtlFloor == std::chrono::seconds(30));
    CHECK(cap.setName == "lab_targets");
}

TEST_CASE("capture: bad values name their position")
{
    const std::string gw = "listeners: [{name: gw, mode: tproxy, address: '0.0.0.0:15002'}]\n";
    CHECK(errorOf(gw + "capture: {style: router}\n").find("veil.yaml:2:18: capture.style must be sidecar or gateway") == 0);
    CHECK(errorOf(gw + "capture: {backend: pf}\n").find("capture.backend must be iptables or nft") !=
          std::string::npos);
    CHECK(errorOf(gw + "capture: {style: sidecar}\n").find("capture needs a listener with mode redirect") !=
          std::string::npos);
    CHECK(errorOf(gw + "capture: {style: sidecar, listener: gw}\n").find("must have mode redirect") !=
          std::string::npos);
    CHECK(errorOf(gw + "capture: {style: gateway, listener: nope}\n").find("no listener named 'nope'") !=
          std::string::npos);
    CHECK(errorOf(gw + "capture:\n  style: gateway\n  skip_cidrs: [10.0.0.1/8]\n").find("veil.yaml:4:16:") == 0);
    CHECK(errorOf(gw + "capture:\n  style: gateway\n  skip_cidrs: [10.0.0.0/33]\n").find("prefix longer") !=
          std::string::npos);
    CHECK(errorOf(gw + "capture:\n  style: gateway\n  include_cidrs: [api.anthropic.com]\n").find("not an IPv4") !=
          std::string::npos);
    CHECK(errorOf(gw + "capture:\n  style: gateway\n  ports: [443, 443]\n").find("listed twice") != std::string::npos);
    CHECK(errorOf(gw + "capture:\n  style: gateway\n  ports: [0]\n").find("veil.yaml:4:11:") == 0);
    CHECK(errorOf(gw + "capture:\n  style: gateway\n  tproxy_mark: 0xzz\n").find("0x hex") != std::string::npos);
    CHECK(errorOf(gw + "capture:\n  style: gateway\n  route_table: 254\n").find("system table") != std::string::npos);
    CHECK(errorOf(gw + "capture:\n  style: gateway\n  tproxy_mark: 5\n  exclude_mark: 5\n").find("must differ") !=
          std::string::npos);
    CHECK(errorOf(gw + "capture:\n  style: gateway\n  destinations: dns\n").find("needs at least one target") !=
          std::string::npos);
    CHECK(errorOf(gw + "capture:\n  style: gateway\n  interfaces: ['a very long interface name']\n")
              .find("not an interface name") != std::string::npos);
    CHECK(errorOf(gw + "capture:\n  style: gateway\n  dns: {ttl_floor: 2h, ttl_ceiling: 1h}\n").find("ttl_floor") !=
          std::string::npos);
    CHECK(errorOf(gw + "capture:\n  style: gateway\n  colour: blue\n").find("unknown key 'colour' in capture") !=
          std::string::npos);
}
