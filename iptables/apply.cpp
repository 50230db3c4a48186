#include "iptables/apply.h"

#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "iptables/exec.h"
#include "iptables/state.h"

namespace veil::iptables {

namespace {

// A tool that failed: the error names the command and what it said.
struct Failure {
    std::string message;
};

class Session {
public:
    explicit Session(const Target& t) : t_(t) {}

    // Reads: a failure to run or a non-zero exit is an error.
    Result<std::string> read(const std::vector<std::string>& argv, bool absentOk = false)
    {
        auto r = run(argv);
        if (!r)
            return fail(r.error().message);
        if (r->status != 0) {
            if (absentOk && (r->err.find("No such file or directory") != std::string::npos ||
                             r->err.find("does not exist") != std::string::npos))
                return std::string();
            return fail(describe(argv) + " exited with " + std::to_string(r->status) + ": " + firstLine(r->err));
        }
        return std::move(r->out);
    }

    // A step that changes something. Each is atomic on its own (one
    // restore/nft transaction, one ip or ipset command), so a run stopped
    // between two leaves a state the next install repairs.
    Result<void> change(const std::vector<std::string>& argv, const std::string& input = {})
    {
        if (t_.verbose) {
            std::fprintf(stderr, "+ %s\n", describe(argv).c_str());
            if (!input.empty())
                std::fputs(input.c_str(), stderr);
        }
        auto r = run(argv, input);
        if (!r)
            return fail(r.error().message);
        if (r->status != 0)
            return fail(describe(argv) + " exited with " + std::to_string(r->status) + ": " + trimmed(r->err));
        ++steps_;
        if (t_.killAfterSteps > 0 && steps_ == t_.killAfterSteps)
            ::raise(SIGKILL);
        return Ok{};
    }

    int steps() const { return steps_; }

private:
    static std::string describe(const std::vector<std::string>& argv)
    {
        std::string s;
        for (const auto& a : argv)
            s += (s.empty() ? "" : " ") + a;
        return s;
    }
    static std::string firstLine(const std::string& s)
    {
        return s.substr(0, s.find('\n'));
    }
    static std::string trimmed(std::string s)
    {
        while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
            s.pop_back();
        return s;
    }

    const Target& t_;
    int steps_ = 0;
};

bool isXt(Backend b)
{
    return b != Backend::Nft;
}

std::string famFlag(int family)
{
    return family == 4 ? "-4" : "-6";
}

std::string famName(int family)
{
    return "ip" + std::to_string(family);
}

std::vector<std::string> restoreArgs(Backend b, int family)
{
    // -w: legacy iptables serializes on /run/xtables.lock; wait for it
    // rather than fail when another run (or one we were killed in) holds it.
    return {xtTool(b, family, "restore"), "--noflush", "-w", "10"};
}

const SavedTable* findSaved(const std::vector<SavedTable>& saved, const std::string& name)
{
    for (const auto& t : saved)
        if (t.name == name)
            return &t;
    return nullptr;
}

const XtTable* findTable(const FamilyPlan& f, const std::string& name)
{
    for (const auto& t : f.tables)
        if (t.name == name)
            return &t;
    return nullptr;
}

Result<std::vector<SavedIpSet>> readIpsets(Session& s)
{
    auto out = s.read({"ipset", "save"});
    if (!out)
        return fail(out.error().message);
    return parseIpsetSave(*out);
}

const SavedIpSet* findIpset(const std::vector<SavedIpSet>& sets, const std::string& name)
{
    for (const auto& set : sets)
        if (set.name == name)
            return &set;
    return nullptr;
}

Result<std::string> readNft(Session& s)
{
    return s.read({"nft", "-s", "list", "table", "inet", std::string(kNftTable)}, true);
}

// Brings veil's nft table to the plan (remove: takes it away) in one
// `nft -f` transaction; none if it already is so.
Result<void> repairNftTable(Session& s, const Plan& p, bool remove)
{
    auto text = readNft(s);
    if (!text)
        return fail(text.error().message);
    std::string script = repairNft(p, parseNftTable(*text), remove);
    if (script.empty())
        return Ok{};
    return s.change({"nft", "-f", "/dev/stdin"}, script);
}

Result<std::vector<std::uint32_t>> readIpRules(Session& s, int family, const PolicyRouting& want)
{
    // -N: tables as numbers, whatever rt_tables names them.
    auto out = s.read({"ip", "-N", famFlag(family), "rule", "show"});
    if (!out)
        return fail(out.error().message);
    return matchingIpRules(*out, want);
}

Result<bool> readLocalRoute(Session& s, int family, const PolicyRouting& want)
{
    auto out = s.read({"ip", famFlag(family), "route", "show", "table", std::to_string(want.table)}, true);
    if (!out)
        return fail(out.error().message);
    return hasLocalRoute(*out);
}

Result<void> installRouting(Session& s, int family, const PolicyRouting& want)
{
    auto prefs = readIpRules(s, family, want);
    if (!prefs)
        return fail(prefs.error().message);
    if (prefs->empty()) {
        auto args = want.ruleAddArgs(family);
        args.insert(args.begin(), "ip");
        if (auto r = s.change(args); !r)
            return r;
    }
    // Duplicates: `ip rule add` without a preference takes one below the
    // lowest in use, so the highest (listed last) is the oldest; it stays.
    for (std::size_t i = 0; i + 1 < prefs->size(); ++i)
        if (auto r = s.change({"ip", famFlag(family), "rule", "del", "pref", std::to_string((*prefs)[i]), "fwmark",
                               want.fwmark(), "lookup", std::to_string(want.table)});
            !r)
            return r;
    auto route = readLocalRoute(s, family, want);
    if (!route)
        return fail(route.error().message);
    if (!*route) {
        auto args = want.routeAddArgs(family);
        args.insert(args.begin(), "ip");
        if (auto r = s.change(args); !r)
            return r;
    }
    return Ok{};
}

Result<void> removeRouting(Session& s, int family, const PolicyRouting& want)
{
    auto prefs = readIpRules(s, family, want);
    if (!prefs)
        return fail(prefs.error().message);
    for (auto pref : *prefs)
        if (auto r = s.change({"ip", famFlag(family), "rule", "del", "pref", std::to_string(pref), "fwmark",
                               want.fwmark(), "lookup", std::to_string(want.table)});
            !r)
            return r;
    auto route = readLocalRoute(s, family, want);
    if (!route)
        return fail(route.error().message);
    if (*route) {
        auto args = want.routeAddArgs(family);
        args.insert(args.begin(), "ip");
        args[3] = "del";
        if (auto r = s.change(args); !r)
            return r;
    }
    return Ok{};
}

void routingFindings(Session& s, int family, const PolicyRouting& want, std::vector<std::string>& out,
                     std::vector<std::string>& errors)
{
    auto prefs = readIpRules(s, family, want);
    if (!prefs) {
        errors.push_back(prefs.error().message);
        return;
    }
    if (prefs->empty())
        out.push_back(famName(family) + ": missing ip rule: " + want.ruleSelector());
    else if (prefs->size() > 1)
        out.push_back(famName(family) + ": duplicate ip rule (" + std::to_string(prefs->size()) +
                      " times): " + want.ruleSelector());
    auto route = readLocalRoute(s, family, want);
    if (!route)
        errors.push_back(route.error().message);
    else if (!*route)
        out.push_back(famName(family) + ": missing route: local " + (family == 4 ? "0.0.0.0/0" : "::/0") +
                      " dev lo table " + std::to_string(want.table));
}

// The name a set is rebuilt under before `ipset swap` puts it in place
// (fits ipset's 31 bytes: set names are at most 30).
std::string swapName(const std::string& setName)
{
    return setName + "_";
}

Result<void> installIpsets(Session& s, const FamilyPlan& f, const std::string& setName)
{
    if (f.ipsets.empty())
        return Ok{};
    auto sets = readIpsets(s);
    if (!sets)
        return fail(sets.error().message);
    if (findIpset(*sets, swapName(setName))) // left by a run that was stopped
        if (auto r = s.change({"ipset", "destroy", swapName(setName)}); !r)
            return r;
    for (const auto& want : f.ipsets) {
        const SavedIpSet* have = findIpset(*sets, want.name);
        // Built front to back: inserting "ipset" at begin() trips GCC 12's
        // -Wnull-dereference at -O3 (a false positive inside vector).
        std::vector<std::string> create{"ipset"};
        for (auto& a : want.createArgs())
            create.push_back(std::move(a));
        if (!have) {
            if (auto r = s.change(create); !r)
                return r;
        } else if (!ipsetMatches(want, *have)) {
            // Rules may reference it, so it cannot be destroyed: build the
            // right one under another name and swap them (atomic).
            create[2] = swapName(setName);
            if (auto r = s.change(create); !r)
                return r;
            if (auto r = s.change({"ipset", "swap", swapName(setName), want.name}); !r)
                return r;
            if (auto r = s.change({"ipset", "destroy", swapName(setName)}); !r)
                return r;
        }
    }
    return Ok{};
}

int report(const std::string& what)
{
    std::fprintf(stderr, "veil-iptables: %s\n", what.c_str());
    return kExitFailed;
}

std::string families(const Plan& p)
{
    std::string s;
    for (const auto& f : p.families)
        s += (s.empty() ? "" : " ") + famName(f.family);
    return s;
}

} // namespace

int install(const Target& t)
{
    Session s(t);
    const Plan& p = t.plan;
    for (const auto& f : p.families) {
        if (auto r = installIpsets(s, f, t.setName); !r)
            return report(r.error().message);
        if (f.routing)
            if (auto r = installRouting(s, f.family, *f.routing); !r)
                return report(r.error().message);
        if (!isXt(p.backend))
            continue;
        auto save = s.read({xtTool(p.backend, f.family, "save")});
        if (!save)
            return report(save.error().message);
        const auto saved = parseSave(*save);
        // One transaction per table: each is atomic, and a table that
        // already holds exactly the plan is not written at all.
        for (const char* name : kTables) {
            std::string input = repairTable(findTable(f, name), findSaved(saved, name));
            if (!input.empty())
                if (auto r = s.change(restoreArgs(p.backend, f.family), input); !r)
                    return report(r.error().message);
        }
    }
    if (!isXt(p.backend))
        if (auto r = repairNftTable(s, p, false); !r)
            return report(r.error().message);
    std::fprintf(stderr, "veil-iptables: installed (%s, backend %s, %d change%s)\n", families(p).c_str(),
                 std::string(backendName(p.backend)).c_str(), s.steps(), s.steps() == 1 ? "" : "s");
    return kExitOk;
}

int verify(const Target& t)
{
    Session s(t);
    const Plan& p = t.plan;
    std::vector<std::string> findings, errors;
    for (const auto& f : p.families) {
        if (!f.ipsets.empty()) {
            auto sets = readIpsets(s);
            if (!sets) {
                errors.push_back(sets.error().message);
            } else {
                for (const auto& want : f.ipsets) {
                    const SavedIpSet* have = findIpset(*sets, want.name);
                    if (!have)
                        findings.push_back(famName(f.family) + ": missing ipset " + want.name);
                    else if (!ipsetMatches(want, *have))
                        findings.push_back(famName(f.family) + ": ipset " + want.name + " is not 'hash:ip family " +
                                           (want.family == 4 ? "inet" : "inet6") + " timeout " +
                                           std::to_string(want.timeout) + "'");
                }
            }
        }
        if (f.routing)
            routingFindings(s, f.family, *f.routing, findings, errors);
        if (!isXt(p.backend))
            continue;
        auto save = s.read({xtTool(p.backend, f.family, "save")});
        if (!save) {
            errors.push_back(save.error().message);
            continue;
        }
        const auto saved = parseSave(*save);
        std::vector<std::string> names(std::begin(kTables), std::end(kTables));
        for (const auto& st : saved) // veil's rules in any other table are extra too
            if (std::find(names.begin(), names.end(), st.name) == names.end())
                names.push_back(st.name);
        for (const auto& name : names) {
            auto d = diffTable(findTable(f, name), findSaved(saved, name), famName(f.family) + " " + name);
            findings.insert(findings.end(), d.begin(), d.end());
        }
    }
    if (!isXt(p.backend)) {
        auto text = readNft(s);
        if (!text) {
            errors.push_back(text.error().message);
        } else {
            auto d = diffNft(p, parseNftTable(*text));
            findings.insert(findings.end(), d.begin(), d.end());
        }
    }
    for (const auto& f : findings)
        std::printf("%s\n", f.c_str());
    for (const auto& e : errors)
        std::fprintf(stderr, "veil-iptables: %s\n", e.c_str());
    if (!errors.empty())
        return kExitFailed;
    if (!findings.empty()) {
        std::fprintf(stderr, "veil-iptables: verify failed: %zu difference%s (%s, backend %s)\n", findings.size(),
                     findings.size() == 1 ? "" : "s", families(p).c_str(),
                     std::string(backendName(p.backend)).c_str());
        return kExitMismatch;
    }
    std::fprintf(stderr, "veil-iptables: verified (%s, backend %s)\n", families(p).c_str(),
                 std::string(backendName(p.backend)).c_str());
    return kExitOk;
}

int teardown(const Target& t)
{
    Session s(t);
    const Plan& p = t.plan;
    // The reverse of install: rules first (they reference the sets), then
    // routing, then the sets.
    for (const auto& f : p.families) {
        if (!isXt(p.backend))
            break;
        auto save = s.read({xtTool(p.backend, f.family, "save")});
        if (!save)
            return report(save.error().message);
        for (const auto& st : parseSave(*save)) {
            std::string input = repairTable(nullptr, &st);
            if (!input.empty())
                if (auto r = s.change(restoreArgs(p.backend, f.family), input); !r)
                    return report(r.error().message);
        }
    }
    if (!isXt(p.backend))
        if (auto r = repairNftTable(s, p, true); !r)
            return report(r.error().message);
    for (const auto& f : p.families) {
        if (t.routing)
            if (auto r = removeRouting(s, f.family, *t.routing); !r)
                return report(r.error().message);
        if (isXt(p.backend) && haveTool("ipset")) {
            auto sets = readIpsets(s);
            if (!sets)
                return report(sets.error().message);
            for (const auto& name : {t.setName + std::to_string(f.family), swapName(t.setName)})
                if (findIpset(*sets, name))
                    if (auto r = s.change({"ipset", "destroy", name}); !r)
                        return report(r.error().message);
        }
    }
    std::fprintf(stderr, "veil-iptables: removed (%s, backend %s, %d change%s)\n", families(p).c_str(),
                 std::string(backendName(p.backend)).c_str(), s.steps(), s.steps() == 1 ? "" : "s");
    return kExitOk;
}

} // namespace veil::iptables
