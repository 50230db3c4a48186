#pragma once

// The rules that feed veild, computed from veil.yaml's `capture:` section.
// Pure: Config in, rules and text out; no I/O, so golden-file and unit tests
// call it directly. See veil-iptables(8) for the shapes.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace veil::iptables {

// What the rules are written for. Iptables is whichever flavour the system's
// `iptables-restore` alternative is; the two others name it explicitly; Nft
// is one native `table inet veil`.
enum class Backend { Iptables, IptablesLegacy, IptablesNft, Nft };

std::string_view backendName(Backend b);
std::optional<Backend> parseBackend(std::string_view name);

// The tool of one family for a backend: "iptables-legacy-restore",
// "ip6tables-save", ... (`what` is "restore" or "save").
std::string xtTool(Backend b, int family, std::string_view what);

// One rule as iptables-save prints it: "-A <chain> <spec>".
struct XtRule {
    std::string chain;
    std::string spec;
    std::string line() const { return "-A " + chain + " " + spec; }
};

// What veil owns in one table of one family.
struct XtTable {
    std::string name;                // nat, mangle, filter
    std::vector<std::string> chains; // VEIL_ chains, in declaration order
    std::vector<XtRule> rules;       // the rules of those chains, in order
    std::vector<XtRule> jumps;       // into them from built-in chains, in order from the top
};

// A DNS-following destination set for the iptables backends.
struct IpSet {
    std::string name;
    int family = 4;
    std::uint64_t timeout = 0; // seconds: capture.dns.ttl_ceiling
    // The ipset(8) arguments that create it.
    std::vector<std::string> createArgs() const;
};

// Gateway: marked packets are delivered locally (TPROXY needs this).
struct PolicyRouting {
    std::uint32_t mark = 0;
    std::uint32_t table = 0;
    std::string fwmark() const;       // "0x1/0x1"
    std::string ruleSelector() const; // "fwmark 0x1/0x1 lookup 100"
    std::vector<std::string> ruleAddArgs(int family) const;
    std::vector<std::string> routeAddArgs(int family) const;
};

// nft backend: a chain of `table inet veil`. Every chain belongs to one
// family and its name ends in 4 or 6, so one family can be installed or
// removed without touching the other.
struct NftChain {
    std::string name;
    std::string hook; // "type nat hook output priority -100; policy accept;" for base chains, else empty
    std::vector<std::string> rules; // as `nft -s list` prints them
};

struct NftSet {
    std::string name;
    std::string type; // ipv4_addr, ipv6_addr
};

// Everything of one family (4 or 6).
struct FamilyPlan {
    int family = 4;
    std::vector<IpSet> ipsets;          // iptables backends
    std::vector<XtTable> tables;        // iptables backends: mangle, nat, filter (those used)
    std::vector<NftSet> nftSets;        // nft backend
    std::vector<NftChain> nftChains;    // nft backend
    std::optional<PolicyRouting> routing;
};

struct Plan {
    Backend backend = Backend::Iptables;
    config::CaptureStyle style = config::CaptureStyle::Sidecar;
    std::string listener;
    std::uint16_t listenerPort = 0;
    std::vector<FamilyPlan> families; // the selected ones, 4 before 6
};

struct Options {
    Backend backend = Backend::Iptables;
    bool v4 = true;
    bool v6 = true;
};

// The rules for `capture` (config.capture must be present: the caller
// checks) and the exclude mark (capture.effectiveExcludeMark(upstream.mark)).
Plan plan(const config::Capture& capture, std::uint32_t excludeMark, const Options& options);

// The dry run: sections per family and tool, deterministic.
std::string render(const Plan& plan);

// The text of one table for the nft backend, as `nft -s list table inet
// veil` prints it (families given by `plan`, sets first, elements absent).
std::string nftTableText(const Plan& plan);

// Table names in the order install writes them.
inline constexpr const char* kTables[] = {"mangle", "nat", "filter"};

// The prefix of every chain veil owns, and of every rule's comment.
inline constexpr std::string_view kChainPrefix = "VEIL_";
inline constexpr std::string_view kCommentPrefix = "veil:";
inline constexpr std::string_view kNftTable = "veil";

} // namespace veil::iptables
