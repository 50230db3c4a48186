#pragma once

// Runs the system's tools (iptables-restore, nft, ip, ipset, ...) with
// fork/exec, no shell: arguments are never parsed twice.

#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"

namespace veil::iptables {

struct Output {
    int status = 0;  // exit code; 128 + signal if the tool was killed
    std::string out; // standard output
    std::string err; // standard error
};

// Runs argv[0] (looked up in PATH, then /usr/sbin:/sbin:/usr/bin:/bin, since
// init containers often have a PATH without the sbin directories) with
// `input` on its standard input. An error only when it could not be run.
Result<Output> run(const std::vector<std::string>& argv, std::string_view input = {});

// Whether argv0 can be found as run() would look for it.
bool haveTool(const std::string& name);

// Waits for and takes the lock that serializes veil-iptables runs that
// change rules (released when the descriptor closes, or the process dies).
Result<UniqueFd> lockRules();

// Moves this process into the named network namespace (/run/netns/NAME, as
// `ip netns add` creates them); every tool run afterwards starts there.
Result<void> enterNetns(const std::string& name);

} // namespace veil::iptables
