#include "iptables/state.h"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <set>

namespace veil::iptables {

namespace {

std::vector<std::string> lines(std::string_view text)
{
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start < text.size()) {
        std::size_t end = text.find('\n', start);
        if (end == std::string_view::npos)
            end = text.size();
        std::string_view l = text.substr(start, end - start);
        if (!l.empty() && l.back() == '\r')
            l.remove_suffix(1);
        out.emplace_back(l);
        start = end + 1;
    }
    return out;
}

std::string trim(std::string_view s)
{
    std::size_t b = s.find_first_not_of(" \t");
    if (b == std::string_view::npos)
        return "";
    std::size_t e = s.find_last_not_of(" \t");
    return std::string(s.substr(b, e - b + 1));
}

bool startsWith(std::string_view s, std::string_view prefix)
{
    return s.substr(0, prefix.size()) == prefix;
}

// Words of an iptables-save line: double-quoted words may hold spaces and
// backslash-escaped quotes.
std::vector<std::string> words(std::string_view s)
{
    std::vector<std::string> out;
    std::size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && (s[i] == ' ' || s[i] == '\t'))
            ++i;
        if (i >= s.size())
            break;
        std::string w;
        if (s[i] == '"') {
            ++i;
            while (i < s.size() && s[i] != '"') {
                if (s[i] == '\\' && i + 1 < s.size())
                    ++i;
                w += s[i++];
            }
            ++i; // the closing quote
        } else {
            while (i < s.size() && s[i] != ' ' && s[i] != '\t')
                w += s[i++];
        }
        out.push_back(std::move(w));
    }
    return out;
}

std::string quoteWord(const std::string& w)
{
    if (!w.empty() && w.find_first_of(" \t\"\\'") == std::string::npos)
        return w;
    std::string q = "\"";
    for (char ch : w) {
        if (ch == '"' || ch == '\\')
            q += '\\';
        q += ch;
    }
    return q + "\"";
}

std::string join(const std::vector<std::string>& ws)
{
    std::string s;
    for (const auto& w : ws)
        s += (s.empty() ? "" : " ") + quoteWord(w);
    return s;
}

bool isVeilChain(std::string_view name)
{
    return startsWith(name, kChainPrefix);
}

// Longest common subsequence diff of two rule lists: what `want` has that
// `have` lacks, and the reverse.
void diffLists(const std::vector<std::string>& want, const std::vector<std::string>& have,
               std::vector<std::size_t>& missing, std::vector<std::size_t>& extra)
{
    const std::size_t n = want.size(), m = have.size();
    std::vector<std::vector<std::size_t>> l(n + 1, std::vector<std::size_t>(m + 1, 0));
    for (std::size_t i = n; i-- > 0;)
        for (std::size_t j = m; j-- > 0;)
            l[i][j] = want[i] == have[j] ? l[i + 1][j + 1] + 1 : std::max(l[i + 1][j], l[i][j + 1]);
    std::size_t i = 0, j = 0;
    while (i < n && j < m) {
        if (want[i] == have[j]) {
            ++i;
            ++j;
        } else if (l[i + 1][j] >= l[i][j + 1]) {
            missing.push_back(i++);
        } else {
            extra.push_back(j++);
        }
    }
    for (; i < n; ++i)
        missing.push_back(i);
    for (; j < m; ++j)
        extra.push_back(j);
}

// The rules of a table's VEIL_ chains by chain, and veil's rules elsewhere.
struct Owned {
    std::vector<std::string> chains;
    std::map<std::string, std::vector<const XtRule*>> inChains;
    std::vector<const XtRule*> elsewhere;
};

Owned owned(const SavedTable* saved)
{
    Owned o;
    if (!saved)
        return o;
    for (const auto& c : saved->userChains)
        if (isVeilChain(c)) {
            o.chains.push_back(c);
            o.inChains[c];
        }
    for (const auto& r : saved->rules) {
        if (isVeilChain(r.chain))
            o.inChains[r.chain].push_back(&r);
        else if (ownedRule(r))
            o.elsewhere.push_back(&r);
    }
    return o;
}

using Key = std::pair<std::string, std::string>; // chain, canonical spec

} // namespace

// ---------------------------------------------------------------- iptables

std::vector<SavedTable> parseSave(std::string_view text)
{
    std::vector<SavedTable> out;
    SavedTable* cur = nullptr;
    for (const auto& raw : lines(text)) {
        std::string l = trim(raw);
        if (l.empty() || l[0] == '#')
            continue;
        if (l[0] == '*') {
            out.push_back(SavedTable{l.substr(1), {}, {}, {}});
            cur = &out.back();
        } else if (!cur) {
            continue;
        } else if (l == "COMMIT") {
            cur = nullptr;
        } else if (l[0] == ':') {
            auto ws = words(l.substr(1));
            if (ws.size() < 2)
                continue;
            if (ws[1] == "-")
                cur->userChains.push_back(ws[0]);
            else
                cur->builtinChains.push_back(ws[0]);
        } else if (startsWith(l, "-A ")) {
            std::string rest = l.substr(3);
            std::size_t sp = rest.find(' ');
            if (sp == std::string::npos)
                cur->rules.push_back({rest, ""});
            else
                cur->rules.push_back({rest.substr(0, sp), trim(rest.substr(sp + 1))});
        }
    }
    return out;
}

std::string canonicalSpec(std::string_view spec)
{
    auto ws = words(spec);
    std::vector<std::string> out;
    for (std::size_t i = 0; i < ws.size(); ++i) {
        // iptables adds "-m tcp" for "-p tcp --dport"; legacy and nft agree
        // today, but whether a given version prints it is not ours to rely on.
        if (ws[i] == "-m" && i + 1 < ws.size() && (ws[i + 1] == "tcp" || ws[i + 1] == "udp")) {
            ++i;
            continue;
        }
        if (ws[i] == "--on-ip" && i + 1 < ws.size() && (ws[i + 1] == "0.0.0.0" || ws[i + 1] == "::")) {
            ++i;
            continue;
        }
        out.push_back(ws[i]);
    }
    return join(out);
}

bool ownedRule(const XtRule& rule)
{
    if (isVeilChain(rule.chain))
        return true;
    auto ws = words(rule.spec);
    for (std::size_t i = 0; i + 1 < ws.size(); ++i) {
        if ((ws[i] == "-j" || ws[i] == "-g") && isVeilChain(ws[i + 1]))
            return true;
        if (ws[i] == "--comment" && startsWith(ws[i + 1], kCommentPrefix))
            return true;
    }
    return false;
}

std::vector<std::string> diffTable(const XtTable* expected, const SavedTable* saved, const std::string& where)
{
    std::vector<std::string> out;
    const XtTable none;
    const XtTable& want = expected ? *expected : none;
    Owned have = owned(saved);

    for (const auto& c : want.chains)
        if (!have.inChains.count(c))
            out.push_back(where + ": missing chain " + c);
    for (const auto& c : have.chains)
        if (std::find(want.chains.begin(), want.chains.end(), c) == want.chains.end())
            out.push_back(where + ": extra chain " + c);

    std::set<std::string> chains(want.chains.begin(), want.chains.end());
    for (const auto& [c, rules] : have.inChains)
        chains.insert(c);
    for (const auto& c : chains) {
        std::vector<std::string> w, h, wl, hl;
        for (const auto& r : want.rules)
            if (r.chain == c) {
                w.push_back(canonicalSpec(r.spec));
                wl.push_back(r.line());
            }
        if (auto it = have.inChains.find(c); it != have.inChains.end())
            for (const auto* r : it->second) {
                h.push_back(canonicalSpec(r->spec));
                hl.push_back(r->line());
            }
        std::vector<std::size_t> missing, extra;
        diffLists(w, h, missing, extra);
        for (auto i : missing)
            out.push_back(where + ": missing rule: " + wl[i]);
        for (auto j : extra)
            out.push_back(where + ": extra rule: " + hl[j]);
    }

    std::map<Key, int> count;
    for (const auto* r : have.elsewhere)
        ++count[{r->chain, canonicalSpec(r->spec)}];
    std::set<Key> wanted;
    for (const auto& j : want.jumps) {
        Key k{j.chain, canonicalSpec(j.spec)};
        wanted.insert(k);
        int n = count.count(k) ? count[k] : 0;
        if (n == 0)
            out.push_back(where + ": missing jump: " + j.line());
        else if (n > 1)
            out.push_back(where + ": duplicate jump (" + std::to_string(n) + " times): " + j.line());
    }
    for (const auto* r : have.elsewhere)
        if (!wanted.count({r->chain, canonicalSpec(r->spec)}))
            out.push_back(where + ": extra rule: " + r->line());
    return out;
}

std::string repairTable(const XtTable* expected, const SavedTable* saved)
{
    if (diffTable(expected, saved, "").empty())
        return "";
    const XtTable none;
    const XtTable& want = expected ? *expected : none;
    Owned have = owned(saved);
    std::string name = expected ? expected->name : saved->name;

    std::string s = "*" + name + "\n";
    for (const auto& c : want.chains)
        s += ":" + c + " - [0:0]\n"; // creates, or flushes what is there
    std::vector<std::string> stale;
    for (const auto& c : have.chains)
        if (std::find(want.chains.begin(), want.chains.end(), c) == want.chains.end())
            stale.push_back(c);
    for (const auto& c : stale)
        s += "-F " + c + "\n";

    // Each chain outside VEIL_ as this transaction leaves it, to know the
    // rule numbers missing jumps are inserted at.
    std::map<std::string, std::vector<Key>> chainRules;
    if (saved)
        for (const auto& r : saved->rules)
            if (!isVeilChain(r.chain))
                chainRules[r.chain].push_back({r.chain, canonicalSpec(r.spec)});
    std::map<Key, int> keep;
    for (const auto& j : want.jumps)
        ++keep[{j.chain, canonicalSpec(j.spec)}];
    for (const auto* r : have.elsewhere) {
        Key k{r->chain, canonicalSpec(r->spec)};
        if (keep[k] > 0) {
            --keep[k]; // present: stays where it is
            continue;
        }
        s += "-D " + r->chain + " " + r->spec + "\n";
        auto& rules = chainRules[r->chain]; // -D deletes the first rule that matches
        rules.erase(std::find(rules.begin(), rules.end(), k));
    }
    for (const auto& c : stale)
        s += "-X " + c + "\n";
    for (const auto& r : want.rules)
        s += r.line() + "\n";
    // A missing jump goes just above the next planned jump that is there,
    // else just below the previous one, else to the top: the jumps keep the
    // plan's order, above rules that others add later.
    for (std::size_t i = 0; i < want.jumps.size(); ++i) {
        const XtRule& j = want.jumps[i];
        Key k{j.chain, canonicalSpec(j.spec)};
        if (keep[k] <= 0)
            continue;
        --keep[k];
        auto& rules = chainRules[j.chain];
        auto positionOf = [&](std::size_t planned) -> std::ptrdiff_t {
            Key pk{want.jumps[planned].chain, canonicalSpec(want.jumps[planned].spec)};
            if (pk.first != j.chain)
                return -1;
            auto it = std::find(rules.begin(), rules.end(), pk);
            return it == rules.end() ? -1 : it - rules.begin();
        };
        std::ptrdiff_t at = -1;
        for (std::size_t n = i + 1; n < want.jumps.size() && at < 0; ++n)
            at = positionOf(n);
        for (std::size_t n = i; n-- > 0 && at < 0;)
            if (auto p = positionOf(n); p >= 0)
                at = p + 1;
        if (at < 0)
            at = 0;
        rules.insert(rules.begin() + at, k);
        s += "-I " + j.chain + " " + std::to_string(at + 1) + " " + j.spec + "\n";
    }
    return s + "COMMIT\n";
}

// ---------------------------------------------------------------- nft

std::string canonicalNftRule(std::string_view rule)
{
    auto ws = words(rule);
    std::vector<std::string> out;
    for (std::size_t i = 0; i < ws.size(); ++i) {
        // nft before 1.0 printed "queue num N bypass".
        if (ws[i] == "queue" && i + 3 < ws.size() && ws[i + 1] == "num" && ws[i + 3] == "bypass") {
            out.insert(out.end(), {"queue", "flags", "bypass", "to", ws[i + 2]});
            i += 3;
            continue;
        }
        out.push_back(ws[i]);
    }
    // Only comments are quoted in what we write; keep them quoted.
    std::string s;
    for (std::size_t i = 0; i < out.size(); ++i) {
        bool quote = i > 0 && (out[i - 1] == "comment" || out[i - 1] == "iifname" || out[i - 1] == "oifname");
        s += (s.empty() ? "" : " ") + (quote ? "\"" + out[i] + "\"" : out[i]);
    }
    return s;
}

std::string canonicalNftHook(std::string_view hook)
{
    std::string spaced;
    for (char ch : hook) {
        if (ch == ';')
            spaced += " ; ";
        else
            spaced += ch;
    }
    static const std::map<std::string, std::string> prio = {
        {"raw", "-300"}, {"mangle", "-150"}, {"dstnat", "-100"}, {"filter", "0"}, {"security", "50"}, {"srcnat", "100"}};
    auto ws = words(spaced);
    for (std::size_t i = 1; i < ws.size(); ++i)
        if (ws[i - 1] == "priority" && prio.count(ws[i]))
            ws[i] = prio.at(ws[i]);
    std::string s;
    for (const auto& w : ws)
        s += (s.empty() ? "" : " ") + w;
    return s;
}

int nftFamilyOf(const std::string& name)
{
    if (name.empty())
        return 0;
    if (name.back() == '4')
        return 4;
    if (name.back() == '6')
        return 6;
    return 0;
}

NftTableState parseNftTable(std::string_view text)
{
    NftTableState st;
    enum { Outside, Table, Set, Elements, Chain } where = Outside;
    for (const auto& raw : lines(text)) {
        std::string l = trim(raw);
        if (l.empty() || l[0] == '#')
            continue;
        switch (where) {
        case Outside:
            if (startsWith(l, "table ")) {
                st.present = true;
                where = Table;
            }
            break;
        case Table:
            if (startsWith(l, "set ") || startsWith(l, "map ")) {
                auto ws = words(l);
                st.sets.push_back({ws.size() > 1 ? ws[1] : "", {}});
                if (ws[0] == "map")
                    st.sets.back().attributes.push_back("map");
                where = Set;
            } else if (startsWith(l, "chain ")) {
                auto ws = words(l);
                st.chains.push_back({ws.size() > 1 ? ws[1] : "", "", {}});
                where = Chain;
            } else if (l == "}") {
                where = Outside;
            } else if (l.back() == '{') {
                // flowtables, objects: not ours to understand; seen as a set
                // with an unknown attribute, so they count as extra.
                auto ws = words(l);
                st.sets.push_back({ws.size() > 1 ? ws[1] : "", {ws[0]}});
                where = Set;
            }
            break;
        case Set:
            if (l == "}")
                where = Table;
            else if (startsWith(l, "elements = "))
                where = l.back() == '}' ? Set : Elements;
            else
                st.sets.back().attributes.push_back(canonicalNftRule(l));
            break;
        case Elements:
            if (l.back() == '}')
                where = Set;
            break;
        case Chain:
            if (l == "}")
                where = Table;
            else if (startsWith(l, "type ") && st.chains.back().hook.empty() && st.chains.back().rules.empty())
                st.chains.back().hook = canonicalNftHook(l);
            else
                st.chains.back().rules.push_back(canonicalNftRule(l));
            break;
        }
    }
    return st;
}

namespace {

std::vector<std::string> setAttributes(const NftSet& s)
{
    return {"type " + s.type, "flags timeout"};
}

bool inFamilies(const Plan& plan, const std::string& name)
{
    int f = nftFamilyOf(name);
    bool v4 = false, v6 = false;
    for (const auto& fp : plan.families)
        (fp.family == 4 ? v4 : v6) = true;
    if (f == 0)
        return v4 && v6; // unknown objects are veil's to remove only when acting on the whole table
    return f == 4 ? v4 : v6;
}

bool allFamilies(const Plan& plan)
{
    return plan.families.size() == 2;
}

} // namespace

std::vector<std::string> diffNft(const Plan& plan, const NftTableState& state)
{
    std::vector<std::string> out;
    const std::string where = "nft table inet " + std::string(kNftTable);
    std::map<std::string, const NftChain*> wantChains;
    std::map<std::string, const NftSet*> wantSets;
    for (const auto& f : plan.families) {
        for (const auto& c : f.nftChains)
            wantChains[c.name] = &c;
        for (const auto& s : f.nftSets)
            wantSets[s.name] = &s;
    }
    if (!state.present) {
        if (!wantChains.empty() || !wantSets.empty())
            out.push_back(where + ": missing table");
        return out;
    }
    std::map<std::string, const NftChain*> haveChains;
    std::map<std::string, const NftSetState*> haveSets;
    for (const auto& c : state.chains)
        if (inFamilies(plan, c.name))
            haveChains[c.name] = &c;
    for (const auto& s : state.sets)
        if (inFamilies(plan, s.name))
            haveSets[s.name] = &s;

    for (const auto& [name, set] : wantSets) {
        auto it = haveSets.find(name);
        if (it == haveSets.end())
            out.push_back(where + ": missing set " + name);
        else if (it->second->attributes != setAttributes(*set))
            out.push_back(where + ": set " + name + " is not 'type " + set->type + "; flags timeout'");
    }
    for (const auto& [name, set] : haveSets)
        if (!wantSets.count(name))
            out.push_back(where + ": extra set " + name);

    // Plan order, so the report reads like the rendered table.
    for (const auto& f : plan.families)
        for (const auto& want : f.nftChains) {
            auto it = haveChains.find(want.name);
            if (it == haveChains.end()) {
                out.push_back(where + ": missing chain " + want.name);
                continue;
            }
            const NftChain& have = *it->second;
            if (canonicalNftHook(want.hook) != have.hook)
                out.push_back(where + ": chain " + want.name + " is hooked as '" + have.hook + "', want '" +
                              want.hook + "'");
            std::vector<std::string> w;
            for (const auto& r : want.rules)
                w.push_back(canonicalNftRule(r));
            std::vector<std::size_t> missing, extra;
            diffLists(w, have.rules, missing, extra);
            for (auto i : missing)
                out.push_back(where + ": chain " + want.name + ": missing rule: " + want.rules[i]);
            for (auto j : extra)
                out.push_back(where + ": chain " + want.name + ": extra rule: " + have.rules[j]);
        }
    for (const auto& [name, chain] : haveChains)
        if (!wantChains.count(name))
            out.push_back(where + ": extra chain " + name + " (" + std::to_string(chain->rules.size()) + " rules)");
    return out;
}

std::string repairNft(const Plan& plan, const NftTableState& state, bool remove)
{
    const std::string t = "inet " + std::string(kNftTable);
    if (remove) {
        if (!state.present)
            return "";
        if (allFamilies(plan))
            return "delete table " + t + "\n";
    } else if (diffNft(plan, state).empty()) {
        return "";
    }
    std::vector<const NftChain*> wantChains;
    std::vector<const NftSet*> wantSets;
    if (!remove)
        for (const auto& f : plan.families) {
            for (const auto& c : f.nftChains)
                wantChains.push_back(&c);
            for (const auto& s : f.nftSets)
                wantSets.push_back(&s);
        }
    auto wantChain = [&](const std::string& name) -> const NftChain* {
        for (const auto* c : wantChains)
            if (c->name == name)
                return c;
        return nullptr;
    };
    auto wantSet = [&](const std::string& name) -> const NftSet* {
        for (const auto* s : wantSets)
            if (s->name == name)
                return s;
        return nullptr;
    };

    std::string s = "add table " + t + "\n";
    std::set<std::string> keptChains, keptSets;
    bool othersRemain = false;
    // Flushing every chain of these families first drops every jump between
    // them, so any of them can then be deleted in the same transaction.
    for (const auto& c : state.chains)
        if (inFamilies(plan, c.name))
            s += "flush chain " + t + " " + c.name + "\n";
        else
            othersRemain = true;
    for (const auto& c : state.chains) {
        if (!inFamilies(plan, c.name))
            continue;
        const NftChain* w = wantChain(c.name);
        if (w && canonicalNftHook(w->hook) == c.hook)
            keptChains.insert(c.name);
        else
            s += "delete chain " + t + " " + c.name + "\n";
    }
    for (const auto& set : state.sets) {
        if (!inFamilies(plan, set.name)) {
            othersRemain = true;
            continue;
        }
        const NftSet* w = wantSet(set.name);
        if (w && setAttributes(*w) == set.attributes)
            keptSets.insert(set.name); // elements veild added stay
        else
            s += "delete set " + t + " " + set.name + "\n";
    }
    for (const auto* w : wantSets)
        if (!keptSets.count(w->name))
            s += "add set " + t + " " + w->name + " { type " + w->type + "; flags timeout; }\n";
    for (const auto* w : wantChains)
        if (!keptChains.count(w->name))
            s += "add chain " + t + " " + w->name + (w->hook.empty() ? "" : " { " + w->hook + " }") + "\n";
    for (const auto* w : wantChains)
        for (const auto& r : w->rules)
            s += "add rule " + t + " " + w->name + " " + r + "\n";
    if (remove) {
        if (!othersRemain)
            return "delete table " + t + "\n"; // nothing else in it: the table goes too
        if (s == "add table " + t + "\n")
            return ""; // none of these families' objects were there
    }
    return s;
}

// ---------------------------------------------------------------- ipset

std::vector<SavedIpSet> parseIpsetSave(std::string_view text)
{
    std::vector<SavedIpSet> out;
    for (const auto& l : lines(text)) {
        auto ws = words(l);
        if (ws.size() < 3 || ws[0] != "create")
            continue;
        out.push_back({ws[1], std::vector<std::string>(ws.begin() + 2, ws.end())});
    }
    return out;
}

bool ipsetMatches(const IpSet& want, const SavedIpSet& have)
{
    const auto& h = have.header;
    if (h.empty() || h[0] != "hash:ip")
        return false;
    auto value = [&](const char* key) -> std::string {
        for (std::size_t i = 1; i + 1 < h.size(); ++i)
            if (h[i] == key)
                return h[i + 1];
        return "";
    };
    return value("family") == (want.family == 4 ? "inet" : "inet6") && value("timeout") == std::to_string(want.timeout);
}

// ---------------------------------------------------------------- policy routing

std::vector<std::uint32_t> matchingIpRules(std::string_view ipRuleShow, const PolicyRouting& want)
{
    std::vector<std::uint32_t> prefs;
    for (const auto& l : lines(ipRuleShow)) {
        std::size_t colon = l.find(':');
        if (colon == std::string::npos)
            continue;
        auto ws = words(l.substr(colon + 1));
        if (ws.size() != 6 || ws[0] != "from" || ws[1] != "all" || ws[2] != "fwmark" || ws[4] != "lookup" ||
            ws[5] != std::to_string(want.table))
            continue;
        std::string mark = ws[3];
        std::string value = mark, mask = "0xffffffff";
        if (auto slash = mark.find('/'); slash != std::string::npos) {
            value = mark.substr(0, slash);
            mask = mark.substr(slash + 1);
        }
        char* end = nullptr;
        unsigned long v = std::strtoul(value.c_str(), &end, 16);
        unsigned long m = std::strtoul(mask.c_str(), &end, 16);
        if (v != want.mark || m != want.mark)
            continue;
        prefs.push_back(static_cast<std::uint32_t>(std::strtoul(l.substr(0, colon).c_str(), &end, 10)));
    }
    return prefs;
}

bool hasLocalRoute(std::string_view ipRouteShow)
{
    for (const auto& l : lines(ipRouteShow)) {
        auto ws = words(l);
        if (ws.size() >= 4 && ws[0] == "local" && ws[1] == "default" && ws[2] == "dev" && ws[3] == "lo")
            return true;
    }
    return false;
}

} // namespace veil::iptables
