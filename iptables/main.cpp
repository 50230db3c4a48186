// veil-iptables: renders, installs, verifies and tears down the rules that
// feed veild, from veil.yaml's capture: section. See veil-iptables(8).
//
// Exit status: 0 success, 1 verify found rules missing or extra, 2 usage or
// configuration error, 3 a tool failed or could not be run.

#include <dirent.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "base/io.h"
#include "base/unique_fd.h"
#include "config/config.h"
#include "iptables/apply.h"
#include "iptables/exec.h"
#include "iptables/render.h"

namespace {

using namespace veil;
using namespace veil::iptables;

const char* kUsageText =
    "usage: veil-iptables render|install|verify|teardown --config FILE\n"
    "                     [--backend iptables|iptables-legacy|iptables-nft|nft]\n"
    "                     [--netns NAME] [--family 4|6|all] [--verbose]\n";

int usage(const std::string& why)
{
    if (!why.empty())
        std::fprintf(stderr, "veil-iptables: %s\n", why.c_str());
    std::fputs(kUsageText, stderr);
    return kExitUsage;
}

void note(const std::string& what)
{
    std::fprintf(stderr, "veil-iptables: note: %s\n", what.c_str());
}

int readInt(const std::string& path, int fallback)
{
    auto text = readAll(path);
    if (!text)
        return fallback;
    return std::atoi(text->c_str());
}

bool matchesIface(const std::string& pattern, const std::string& name)
{
    if (!pattern.empty() && pattern.back() == '+')
        return name.compare(0, pattern.size() - 1, pattern, 0, pattern.size() - 1) == 0;
    return pattern == name;
}

// TPROXY delivers packets for foreign addresses locally; strict
// reverse-path filtering (rp_filter 1) can drop them, loose (2) does not.
// Only read here, never changed: the sysctl belongs to whoever runs the
// machine.
void rpFilterNote(const config::Capture& c)
{
    const std::string base = "/proc/sys/net/ipv4/conf/";
    const int all = readInt(base + "all/rp_filter", 0);
    std::vector<std::string> strict;
    DIR* d = ::opendir(base.c_str());
    if (!d)
        return;
    while (dirent* e = ::readdir(d)) {
        std::string name = e->d_name;
        if (name == "." || name == ".." || name == "all" || name == "default" || name == "lo")
            continue;
        bool captured = c.interfaces.empty();
        for (const auto& p : c.interfaces)
            captured = captured || matchesIface(p, name);
        if (!captured)
            continue;
        // The kernel uses the larger of conf/all and conf/<interface>.
        int v = std::max(all, readInt(base + name + "/rp_filter", 0));
        if (v == 1)
            strict.push_back(name);
    }
    ::closedir(d);
    std::sort(strict.begin(), strict.end());
    if (strict.empty())
        return;
    std::string list, sysctl = "sysctl -w net.ipv4.conf.all.rp_filter=" + std::string(all == 1 ? "2" : "0");
    for (const auto& n : strict) {
        list += (list.empty() ? "" : ", ") + n;
        sysctl += " net.ipv4.conf." + n + ".rp_filter=2";
    }
    note("rp_filter is strict (1) on " + list +
         ": strict reverse-path filtering can drop the packets TPROXY diverts; loose mode is enough: " + sysctl);
}

void listenerNote(const config::Config& cfg)
{
    for (const auto& l : cfg.listeners)
        if (l.name == cfg.capture.listener && !l.address.empty() && l.address[0] != '[')
            note("capture.ipv6 is on but listener '" + l.name + "' (" + l.address +
                 ") accepts IPv4 only: give it \"[::]:" + std::to_string(cfg.capture.listenerPort) +
                 "\" (it takes both families) or set capture.ipv6: false");
}

} // namespace

int main(int argc, char** argv)
{
    std::vector<std::string> args(argv + 1, argv + argc);
    if (args.empty())
        return usage("");
    const std::string command = args[0];
    if (command == "help" || command == "--help" || command == "-h") {
        std::fputs(kUsageText, stdout);
        return kExitOk;
    }
    if (command != "render" && command != "install" && command != "verify" && command != "teardown")
        return usage("unknown command '" + command + "'");

    std::string configPath, backendArg, netns, family = "all";
    bool verbose = false;
    for (std::size_t i = 1; i < args.size(); ++i) {
        const std::string& a = args[i];
        auto value = [&](const char* name, std::string& out) -> int {
            std::string n(name);
            if (a == n) {
                if (i + 1 >= args.size())
                    return -1;
                out = args[++i];
                return 1;
            }
            if (a.rfind(n + "=", 0) == 0) {
                out = a.substr(n.size() + 1);
                return 1;
            }
            return 0;
        };
        int got = 0;
        for (auto [name, out] : {std::pair{"--config", &configPath}, std::pair{"--backend", &backendArg},
                                 std::pair{"--netns", &netns}, std::pair{"--family", &family}}) {
            got = value(name, *out);
            if (got != 0) {
                if (got < 0)
                    return usage(std::string(name) + " needs a value");
                break;
            }
        }
        if (got)
            continue;
        if (a == "--verbose" || a == "-v")
            verbose = true;
        else
            return usage("unknown option '" + a + "'");
    }
    if (configPath.empty())
        return usage("--config FILE is required");
    if (family != "4" && family != "6" && family != "all")
        return usage("--family must be 4, 6 or all, not '" + family + "'");

    auto cfg = config::load(configPath);
    if (!cfg) {
        std::fprintf(stderr, "veil-iptables: %s\n", cfg.error().message.c_str());
        return kExitUsage;
    }
    const config::Capture& cap = cfg->capture;
    if (!cap.present) {
        std::fprintf(stderr, "veil-iptables: %s: no capture: section, so there are no rules to %s\n",
                     configPath.c_str(), command.c_str());
        return kExitUsage;
    }
    Options opt;
    opt.backend = cap.backend == config::CaptureBackend::Nft ? Backend::Nft : Backend::Iptables;
    if (!backendArg.empty()) {
        auto b = parseBackend(backendArg);
        if (!b)
            return usage("--backend must be iptables, iptables-legacy, iptables-nft or nft, not '" + backendArg + "'");
        opt.backend = *b;
    }
    opt.v4 = family != "6";
    opt.v6 = family != "4";

    if (!netns.empty())
        if (auto r = enterNetns(netns); !r) {
            std::fprintf(stderr, "veil-iptables: %s\n", r.error().message.c_str());
            return kExitFailed;
        }

    Target t;
    t.plan = plan(cap, cap.effectiveExcludeMark(cfg->upstreamMark), opt);
    if (cap.style == config::CaptureStyle::Gateway)
        t.routing = PolicyRouting{cap.tproxyMark, cap.routeTable};
    t.setName = cap.setName;
    t.verbose = verbose;
    if (const char* k = std::getenv("VEIL_IPTABLES_KILL_AFTER"))
        t.killAfterSteps = std::atoi(k);

    if (command == "render" || command == "install") {
        if (cap.style == config::CaptureStyle::Gateway && opt.v4)
            rpFilterNote(cap);
        if (cap.ipv6 && opt.v6)
            listenerNote(*cfg);
    }
    if (command == "render") {
        std::fputs(render(t.plan).c_str(), stdout);
        return kExitOk;
    }
    UniqueFd lock;
    if (command == "install" || command == "teardown") {
        auto l = lockRules();
        if (!l)
            note(l.error().message + ": running without the lock"); // e.g. a read-only /run
        else
            lock = std::move(l.value());
    }
    if (command == "install")
        return install(t);
    if (command == "verify")
        return verify(t);
    return teardown(t);
}
