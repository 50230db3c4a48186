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
