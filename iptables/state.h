#pragma once

// What is installed, read from the tools' own listings (iptables-save,
// `nft -s list table`, `ipset save`, `ip rule`, `ip route`), compared with
// what render.h plans, and the transactions that turn one into the other.
// Pure: text in, findings and tool input out; exec.h runs the tools.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "iptables/render.h"

namespace veil::iptables {

// ---------------------------------------------------------------- iptables

struct SavedTable {
    std::string name;
    std::vector<std::string> builtinChains; // with a policy
    std::vector<std::string> userChains;    // declared with "-", in order
    std::vector<XtRule> rules;              // every rule, in order
};

// Every table in iptables-save / ip6tables-save output (either flavour).
std::vector<SavedTable> parseSave(std::string_view text);

// A rule in a form both flavours print alike: quotes normalized, the
// implicit "-m tcp"/"-m udp" and TPROXY's default "--on-ip" dropped.
std::string canonicalSpec(std::string_view spec);

// veil's rules: those in VEIL_ chains, those jumping to one, and those
// whose comment starts with "veil:".
bool ownedRule(const XtRule& rule);

// Differences between what one table should hold and what it holds, one
// line each ("missing rule: -A ..."); empty when they agree. Either side may
// be null (nothing expected / table absent). `where` prefixes each line.
std::vector<std::string> diffTable(const XtTable* expected, const SavedTable* saved, const std::string& where);

// The `iptables-restore --noflush` input that makes `saved` hold exactly
// `expected` (null: nothing of veil's), touching no other rule; empty when
// nothing needs doing. Declaring a chain creates or flushes it; jumps that
// are present once are kept where they are, missing ones are inserted in
// the plan's order (at the top when none is there), duplicates and stale
// ones deleted (iptables deletes the first that matches).
std::string repairTable(const XtTable* expected, const SavedTable* saved);

// ---------------------------------------------------------------- nft

struct NftSetState {
    std::string name;
    std::vector<std::string> attributes; // "type ipv4_addr", "flags timeout" (elements left out)
};

struct NftTableState {
    bool present = false;
    std::vector<NftSetState> sets;
    std::vector<NftChain> chains; // hook normalized, rules canonical
};

// `nft -s list table inet veil` output (empty text: the table is absent).
NftTableState parseNftTable(std::string_view text);

// Rule and hook lines in one form: whitespace collapsed, priority names as
// numbers, older spellings of the same statement (queue) in the new one.
std::string canonicalNftRule(std::string_view rule);
std::string canonicalNftHook(std::string_view hook);

// The family an object of `table inet veil` belongs to: its name's last
// digit (4 or 6), else 0.
int nftFamilyOf(const std::string& name);

// Differences for the families in `plan` (objects of other families are
// not looked at).
std::vector<std::string> diffNft(const Plan& plan, const NftTableState& state);

// The `nft -f` script that makes the table hold exactly what `plan` wants
// for its families (set elements kept unless a set must be recreated), or
// nothing of theirs when `remove` is set; empty when nothing needs doing.
// One script is one transaction.
std::string repairNft(const Plan& plan, const NftTableState& state, bool remove);

// ---------------------------------------------------------------- ipset

struct SavedIpSet {
    std::string name;
    std::vector<std::string> header; // the create line's words after the name
};

std::vector<SavedIpSet> parseIpsetSave(std::string_view text);

// Whether an existing set has the type, family and timeout wanted.
bool ipsetMatches(const IpSet& want, const SavedIpSet& have);

// ---------------------------------------------------------------- policy routing

// The preferences of the rules that are exactly "from all fwmark M/M lookup
// T", in `ip -N rule show` output.
std::vector<std::uint32_t> matchingIpRules(std::string_view ipRuleShow, const PolicyRouting& want);

// Whether `ip route show table T` output has the "local default dev lo" route.
bool hasLocalRoute(std::string_view ipRouteShow);

} // namespace veil::iptables
