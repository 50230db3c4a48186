#pragma once

// The kernel sets DNS-following fills: <set>4 and <set>6, created by
// veil-iptables install (ipsets `hash:ip ... timeout`, or nft sets with
// `flags timeout` in table inet veil). veild only adds entries. Both
// implementations talk netlink in-process (no fork per packet); each call is
// a blocking round trip, so they belong to the DNS thread, never to a worker
// loop (STYLE.md habit 7).

#include <chrono>
#include <memory>
#include <string>

#include "base/result.h"
#include "dns/message.h"

namespace veil::dns {

enum class SetErrorKind {
    Missing, // the set (or nft table) does not exist: rules not installed, or torn down
    Failed,  // anything else the kernel or library refused
};

struct SetError {
    SetErrorKind kind = SetErrorKind::Failed;
    std::string message; // one line; may name the set and the (target) address, nothing else
};

class SetUpdater {
public:
    virtual ~SetUpdater() = default;
    // Puts `address` in the set of its family so that it expires `timeout`
    // from now: added when absent, its timeout replaced when present (the
    // caller decides the value; see Follower for the never-shorten rule).
    virtual Result<void, SetError> add(const Address& address, std::chrono::seconds timeout) = 0;
    // The set an address of `family` goes to.
    virtual const std::string& setFor(int family) const = 0;
};

// ipsets via libipset (`ipset add -exist NAME ADDR timeout N`).
Result<std::unique_ptr<SetUpdater>> openIpsets(std::string set4, std::string set6);

// nft sets in `table inet <table>` via libnftables.
Result<std::unique_ptr<SetUpdater>> openNftSets(std::string table, std::string set4, std::string set6);

} // namespace veil::dns
