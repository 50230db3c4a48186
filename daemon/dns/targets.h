#pragma once

// From a parsed DNS answer to the addresses DNS-following captures. No I/O.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "dns/message.h"

namespace veil::dns {

// Whether a name (presentation form, lower case) is a target host; veild
// passes config::Config::targetFor (exact or "*.domain" wildcard).
using TargetMatcher = std::function<bool(std::string_view name)>;

struct TargetAddress {
    Address address;
    std::uint32_t ttl = 0; // seconds: the smallest TTL along the chain, the address record's included
    std::string name;      // the first name on the chain that is a target (for the log)
};

// CNAME chains are followed from each question name (records may come in
// any order; at most kMaxChain links; a loop ends the chain). An A or AAAA
// record counts when its owner is on such a chain and some name on the chain
// up to and including the owner is a target. Records not reachable from a
// question are ignored (they are not what the client asked for), and so is
// every message that is not a NOERROR response to a standard query. Each
// address appears once (with the longest TTL it was given).
inline constexpr unsigned kMaxChain = 16;
std::vector<TargetAddress> targetAddresses(const Message& m, const TargetMatcher& isTarget);

// How long a set entry lives for an answer TTL: the TTL clamped to
// [floor, ceiling] (floor rounded up, ceiling down to whole seconds, never
// under the floor), and at most kMaxSetTimeout, the largest timeout ipset
// accepts.
inline constexpr std::chrono::seconds kMaxSetTimeout{2147483};
std::chrono::seconds clampTtl(std::uint32_t ttl, std::chrono::milliseconds floor, std::chrono::milliseconds ceiling);

} // namespace veil::dns
