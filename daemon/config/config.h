#pragma once

// veil.yaml: the configuration contract of DESIGN.md. yaml-cpp throws; this
// module is the boundary where exceptions become errors that name
// file:line:column (STYLE.md habit 4). Unknown keys are errors, so a typo is
// never silently ignored.

#include <cstddef>
#include <string>
#include <vector>

#include "base/result.h"
#include "mask/rule.h"

namespace veil::config {

struct MaskRoute {
    std::string method; // upper case, or "*" for any
    std::string path;   // exact, or a prefix ending in '*'
};

struct Target {
    std::string host;
    std::vector<MaskRoute> mask;
};

enum class ListenerMode { Tproxy, Redirect };

struct Listener {
    std::string name;
    ListenerMode mode = ListenerMode::Redirect;
    std::string address; // "0.0.0.0:15002", "[::]:15002"
};

struct Masking {
    std::vector<std::string> packs{"aws"};
    bool blockUnmaskable = true;      // on_unmaskable: block | pass
    std::vector<std::string> enable;  // rule names switched on (heuristics)
    std::vector<std::string> disable; // rule names switched off
    std::vector<mask::RuleSpec> rules; // custom rules, inline and from rule_files
    std::size_t maxBodyBytes = 32u << 20;
};

struct Config {
    std::string file;
    std::vector<Listener> listeners;
    std::string caCert;
    std::string caKey;
    std::string upstreamCaFile = "/etc/ssl/certs/ca-certificates.crt";
    std::vector<Target> targets;
    Masking masking;
};

// Parses a whole veil.yaml. `file` is used in messages and to resolve
// relative rule_files.
Result<Config> parse(const std::string& text, const std::string& file);
Result<Config> load(const std::string& path);

// A file holding only custom rules: `rules: [{name, regex, type, priority, enabled}]`.
Result<std::vector<mask::RuleSpec>> loadRuleFile(const std::string& path);

// The rules a Masker compiles: the packs, with enable/disable applied, then
// the custom rules. Errors name an unknown pack or rule.
Result<std::vector<mask::RuleSpec>> effectiveRules(const Masking& masking);

} // namespace veil::config
