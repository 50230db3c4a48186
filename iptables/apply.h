#pragma once

// install, verify and teardown: read what the tools list, compare it with
// the plan (state.h), run the transactions that close the gap (exec.h).

#include <optional>
#include <string>

#include "iptables/render.h"

namespace veil::iptables {

// Exit codes of veil-iptables(8).
inline constexpr int kExitOk = 0;
inline constexpr int kExitMismatch = 1; // verify: rules missing or extra
inline constexpr int kExitUsage = 2;    // usage or configuration error
inline constexpr int kExitFailed = 3;   // a tool failed or could not be run

struct Target {
    Plan plan;                            // the selected families
    std::optional<PolicyRouting> routing; // gateway: the ip rule/route teardown removes (every selected family)
    std::string setName;                  // capture.dns.set: teardown removes <name>4 / <name>6
    bool verbose = false;                 // print every command that changes something
    // Test hook (VEIL_IPTABLES_KILL_AFTER): SIGKILL ourselves after this many
    // changing steps, to prove a half-done install is repaired. 0: off.
    int killAfterSteps = 0;
};

int install(const Target& target);
int verify(const Target& target);
int teardown(const Target& target);

} // namespace veil::iptables
