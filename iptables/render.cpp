#include "iptables/render.h"

#include <sys/socket.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>

namespace veil::iptables {

namespace {

using config::Capture;
using config::CaptureDestinations;
using config::CaptureStyle;

std::string hex(std::uint32_t v)
{
    char b[16];
    std::snprintf(b, sizeof b, "0x%x", v);
    return b;
}

// nft prints marks zero-padded to 8 digits.
std::string hex8(std::uint32_t v)
{
    char b[16];
    std::snprintf(b, sizeof b, "0x%08x", v);
    return b;
}

// One rule, independent of the backend. The emitters below write it in the
// exact order iptables-save and `nft list` print, so that what install
// writes reads back byte for byte.
enum class Proto { Any, Tcp, Udp };
enum class Verdict { Return, Jump, Accept, Drop, SetMark, Redirect, Tproxy, RejectTcpReset, RejectPort, Queue };

struct Rule {
    std::string inIface, outIface;
    std::string dst;    // a CIDR
    std::string dstSet; // a set name
    std::optional<std::uint32_t> uid, gid;
    std::uint32_t mark = 0; // matches packets with all these bits set
    Proto proto = Proto::Any;
    std::uint16_t dport = 0, sport = 0;
    bool socketTransparent = false;
    bool ctInvalid = false;
    Verdict verdict = Verdict::Return;
    std::string target;          // Jump: chain name without family suffix
    std::uint32_t value = 0;     // Redirect/Tproxy port, Queue number, SetMark mark
    std::uint32_t tproxyMark = 0;
    std::string comment;         // without the "veil: " prefix
};

// A VEIL_ chain (name without the family suffix nft adds).
struct Chain {
    std::string table;
    std::string name;
    std::vector<Rule> rules;
};

// A jump from a built-in chain (iptables) or hook (nft) into a VEIL_ chain.
struct Jump {
    std::string table;
    std::string builtin; // OUTPUT, PREROUTING, FORWARD
    Rule rule;
};

struct FamilyRules {
    std::vector<Chain> chains;
    std::vector<Jump> jumps;
};

const char* protoName(Proto p)
{
    return p == Proto::Tcp ? "tcp" : "udp";
}

std::string quoted(const std::string& comment)
{
    return "\"" + std::string(kCommentPrefix) + " " + comment + "\"";
}

// iptables-save order: addresses and interfaces, protocol, then matches in
// the order given, then the target.
std::string xtSpec(const Rule& r, int family)
{
    std::string s;
    auto add = [&](const std::string& part) {
        if (!s.empty())
            s += ' ';
        s += part;
    };
    if (!r.dst.empty())
        add("-d " + r.dst);
    if (!r.inIface.empty())
        add("-i " + r.inIface);
    if (!r.outIface.empty())
        add("-o " + r.outIface);
    if (r.proto != Proto::Any)
        add(std::string("-p ") + protoName(r.proto));
    if (r.uid)
        add("-m owner --uid-owner " + std::to_string(*r.uid));
    if (r.gid)
        add("-m owner --gid-owner " + std::to_string(*r.gid));
    if (r.mark)
        add("-m mark --mark " + hex(r.mark) + "/" + hex(r.mark));
    if (!r.dstSet.empty())
        add("-m set --match-set " + r.dstSet + " dst");
    if (r.dport)
        add(std::string("-m ") + protoName(r.proto) + " --dport " + std::to_string(r.dport));
    if (r.sport)
        add(std::string("-m ") + protoName(r.proto) + " --sport " + std::to_string(r.sport));
    if (r.socketTransparent)
        add("-m socket --transparent");
    if (r.ctInvalid)
        add("-m conntrack --ctstate INVALID");
    add("-m comment --comment " + quoted(r.comment));
    switch (r.verdict) {
    case Verdict::Return: add("-j RETURN"); break;
    case Verdict::Jump: add("-j " + r.target); break;
    case Verdict::Accept: add("-j ACCEPT"); break;
    case Verdict::Drop: add("-j DROP"); break;
    case Verdict::SetMark: add("-j MARK --set-xmark " + hex(r.value) + "/" + hex(r.value)); break;
    case Verdict::Redirect: add("-j REDIRECT --to-ports " + std::to_string(r.value)); break;
    case Verdict::Tproxy:
        add("-j TPROXY --on-port " + std::to_string(r.value) + " --on-ip " + (family == 4 ? "0.0.0.0" : "::") +
            " --tproxy-mark " + hex(r.tproxyMark) + "/" + hex(r.tproxyMark));
        break;
    case Verdict::RejectTcpReset: add("-j REJECT --reject-with tcp-reset"); break;
    case Verdict::RejectPort:
        add(family == 4 ? "-j REJECT --reject-with icmp-port-unreachable"
                        : "-j REJECT --reject-with icmp6-port-unreachable");
        break;
    case Verdict::Queue: add("-j NFQUEUE --queue-num " + std::to_string(r.value) + " --queue-bypass"); break;
    }
    return s;
}

// iptables' "eth+" prefix is nft's "eth*".
std::string nftIface(const std::string& name)
{
    if (!name.empty() && name.back() == '+')
        return "\"" + name.substr(0, name.size() - 1) + "*\"";
    return "\"" + name + "\"";
}

// nft prints a single address without its prefix length.
std::string nftAddress(const std::string& cidr, int family)
{
    const std::string host = family == 4 ? "/32" : "/128";
    if (cidr.size() > host.size() && cidr.compare(cidr.size() - host.size(), host.size(), host) == 0)
        return cidr.substr(0, cidr.size() - host.size());
    return cidr;
}

std::string nftRule(const Rule& r, int family)
{
    const std::string sfx = std::to_string(family);
    const char* ip = family == 4 ? "ip" : "ip6";
    std::string s;
    auto add = [&](const std::string& part) {
        if (!s.empty())
            s += ' ';
        s += part;
    };
    if (!r.inIface.empty())
        add("iifname " + nftIface(r.inIface));
    if (!r.outIface.empty())
        add("oifname " + nftIface(r.outIface));
    if (r.uid)
        add("meta skuid " + std::to_string(*r.uid));
    if (r.gid)
        add("meta skgid " + std::to_string(*r.gid));
    if (r.mark)
        add("meta mark & " + hex8(r.mark) + " == " + hex8(r.mark));
    if (!r.dst.empty())
        add(std::string(ip) + " daddr " + nftAddress(r.dst, family));
    if (!r.dstSet.empty())
        add(std::string(ip) + " daddr @" + r.dstSet);
    if (r.dport)
        add(std::string(protoName(r.proto)) + " dport " + std::to_string(r.dport));
    if (r.sport)
        add(std::string(protoName(r.proto)) + " sport " + std::to_string(r.sport));
    if (r.proto != Proto::Any && !r.dport && !r.sport)
        add(std::string("meta l4proto ") + protoName(r.proto));
    if (r.socketTransparent)
        add("socket transparent 1");
    if (r.ctInvalid)
        add("ct state invalid");
    switch (r.verdict) {
    case Verdict::Return: add("return"); break;
    case Verdict::Jump: add("jump " + r.target + sfx); break;
    case Verdict::Accept: add("accept"); break;
    case Verdict::Drop: add("drop"); break;
    case Verdict::SetMark: add("meta mark set meta mark | " + hex8(r.value)); break;
    case Verdict::Redirect: add("redirect to :" + std::to_string(r.value)); break;
    case Verdict::Tproxy:
        // nft's tproxy only picks the socket; the mark and the verdict are
        // separate statements (iptables' TPROXY target does all three).
        add(std::string("tproxy ") + ip + " to :" + std::to_string(r.value) + " meta mark set meta mark | " +
            hex8(r.tproxyMark) + " accept");
        break;
    case Verdict::RejectTcpReset: add("reject with tcp reset"); break;
    case Verdict::RejectPort:
        add(family == 4 ? "reject with icmp port-unreachable" : "reject with icmpv6 port-unreachable");
        break;
    case Verdict::Queue: add("queue flags bypass to " + std::to_string(r.value)); break;
    }
    add("comment " + quoted(r.comment));
    return s;
}

// The destinations one family captures: (CIDR or any) × (set or any).
struct Destination {
    std::string cidr;
    std::string set;
};

std::vector<Destination> destinations(const Capture& c, int family)
{
    const int af = family == 4 ? AF_INET : AF_INET6;
    std::string set = c.destinations == CaptureDestinations::Dns ? c.setName + std::to_string(family) : "";
    std::vector<Destination> out;
    if (c.includeCidrs.empty()) {
        out.push_back({"", set});
        return out;
    }
    for (const auto& cidr : c.includeCidrs)
        if (cidr.family == af)
            out.push_back({cidr.text, set});
    return out; // empty: include_cidrs name none of this family, nothing is captured
}

// The RETURNs every chain of a style starts with: what is never captured.
std::vector<Rule> exclusions(const Capture& c, std::uint32_t excludeMark, int family)
{
    const int af = family == 4 ? AF_INET : AF_INET6;
    std::vector<Rule> out;
    if (c.style == CaptureStyle::Sidecar) {
        for (auto uid : c.excludeUids) {
            Rule r;
            r.uid = uid;
            r.comment = "exclude uid " + std::to_string(uid);
            out.push_back(r);
        }
        for (auto gid : c.excludeGids) {
            Rule r;
            r.gid = gid;
            r.comment = "exclude gid " + std::to_string(gid);
            out.push_back(r);
        }
    }
    if (excludeMark) {
        Rule r;
        r.mark = excludeMark;
        r.comment = "exclude mark " + hex(excludeMark);
        out.push_back(r);
    }
    if (c.style == CaptureStyle::Sidecar) {
        Rule lo;
        lo.outIface = "lo";
        lo.comment = "loopback";
        out.push_back(lo);
        Rule dst;
        dst.dst = family == 4 ? "127.0.0.0/8" : "::1/128";
        dst.comment = "loopback";
        out.push_back(dst);
    }
    for (const auto& cidr : c.skipCidrs) {
        if (cidr.family != af)
            continue;
        Rule r;
        r.dst = cidr.text;
        r.comment = "skip " + cidr.text;
        out.push_back(r);
    }
    return out;
}

Rule portRule(const Destination& d, Proto proto, std::uint16_t port, Verdict v, std::string comment)
{
    Rule r;
    r.dst = d.cidr;
    r.dstSet = d.set;
    r.proto = proto;
    r.dport = port;
    r.verdict = v;
    r.comment = std::move(comment);
    return r;
}

std::string portName(Proto p, std::uint16_t port)
{
    return std::string(protoName(p)) + "/" + std::to_string(port);
}

Jump jumpTo(std::string table, std::string builtin, std::string chain, std::string comment, std::string iface = "")
{
    Jump j{std::move(table), std::move(builtin), {}};
    j.rule.inIface = std::move(iface);
    j.rule.verdict = Verdict::Jump;
    j.rule.target = std::move(chain);
    j.rule.comment = std::move(comment);
    return j;
}

// Jumps from a built-in chain, one per captured interface (or one).
void jumps(FamilyRules& out, const Capture& c, const std::string& table, const std::string& builtin,
           const std::string& chain, const std::string& comment)
{
    if (c.style == CaptureStyle::Gateway && !c.interfaces.empty()) {
        for (const auto& iface : c.interfaces)
            out.jumps.push_back(jumpTo(table, builtin, chain, comment, iface));
    } else {
        out.jumps.push_back(jumpTo(table, builtin, chain, comment));
    }
}

bool hasAction(const Chain& ch)
{
    for (const auto& r : ch.rules)
        if (r.verdict != Verdict::Return)
            return true;
    return false;
}

FamilyRules familyRules(const Capture& c, std::uint32_t excludeMark, int family)
{
    FamilyRules out;
    const bool captured = family == 4 || c.ipv6; // else: rejected
    const auto dests = destinations(c, family);
    const auto prelude = exclusions(c, excludeMark, family);
    const bool sidecar = c.style == CaptureStyle::Sidecar;

    if (c.destinations == CaptureDestinations::Dns) {
        Chain dns{"mangle", "VEIL_DNS", {}};
        Rule q;
        q.proto = Proto::Udp;
        q.sport = 53;
        q.verdict = Verdict::Queue;
        q.value = c.dnsQueue;
        q.comment = "dns answers to queue " + std::to_string(c.dnsQueue);
        dns.rules.push_back(q);
        out.chains.push_back(dns);
        out.jumps.push_back(jumpTo("mangle", "PREROUTING", "VEIL_DNS", "dns answers to veild"));
    }

    if (captured) {
        if (sidecar) {
            Chain nat{"nat", "VEIL_OUTPUT", prelude};
            for (const auto& d : dests)
                for (auto port : c.ports) {
                    Rule r = portRule(d, Proto::Tcp, port, Verdict::Redirect, "capture " + portName(Proto::Tcp, port));
                    r.value = c.listenerPort;
                    nat.rules.push_back(r);
                }
            if (hasAction(nat)) {
                out.chains.push_back(nat);
                jumps(out, c, "nat", "OUTPUT", "VEIL_OUTPUT", "sidecar capture");
            }
        } else {
            Chain pre{"mangle", "VEIL_PREROUTING", prelude};
            Rule est;
            est.proto = Proto::Tcp;
            est.socketTransparent = true;
            est.verdict = Verdict::Jump;
            est.target = "VEIL_DIVERT";
            est.comment = "established transparent connection";
            pre.rules.push_back(est);
            bool any = false;
            for (const auto& d : dests)
                for (auto port : c.ports) {
                    Rule inv = portRule(d, Proto::Tcp, port, Verdict::Drop, "drop invalid " + portName(Proto::Tcp, port));
                    inv.ctInvalid = true;
                    pre.rules.push_back(inv);
                    Rule t = portRule(d, Proto::Tcp, port, Verdict::Tproxy, "capture " + portName(Proto::Tcp, port));
                    t.value = c.listenerPort;
                    t.tproxyMark = c.tproxyMark;
                    pre.rules.push_back(t);
                    any = true;
                }
            if (any) {
                Chain divert{"mangle", "VEIL_DIVERT", {}};
                Rule mark;
                mark.verdict = Verdict::SetMark;
                mark.value = c.tproxyMark;
                mark.comment = "divert mark";
                Rule accept;
                accept.verdict = Verdict::Accept;
                accept.comment = "divert accept";
                divert.rules = {mark, accept};
                out.chains.push_back(pre);
                out.chains.push_back(divert);
                jumps(out, c, "mangle", "PREROUTING", "VEIL_PREROUTING", "gateway capture");
            }
        }
    }

    // filter: what cannot be captured is rejected so it never goes around
    // veild: QUIC (clients fall back to TCP), all of IPv6 when it is off,
    // and (sidecar) INVALID TCP, which nat never sees.
    Chain filter{"filter", "VEIL_FILTER", prelude};
    for (const auto& d : dests)
        for (auto port : c.ports) {
            if (captured) {
                if (sidecar) {
                    Rule inv = portRule(d, Proto::Tcp, port, Verdict::Drop, "drop invalid " + portName(Proto::Tcp, port));
                    inv.ctInvalid = true;
                    filter.rules.push_back(inv);
                }
                if (c.rejectQuic)
                    filter.rules.push_back(
                        portRule(d, Proto::Udp, port, Verdict::RejectPort, "reject quic " + portName(Proto::Udp, port)));
            } else {
                filter.rules.push_back(portRule(d, Proto::Tcp, port, Verdict::RejectTcpReset,
                                                "ipv6 off, reject " + portName(Proto::Tcp, port)));
                filter.rules.push_back(portRule(d, Proto::Udp, port, Verdict::RejectPort,
                                                "ipv6 off, reject " + portName(Proto::Udp, port)));
            }
        }
    if (hasAction(filter)) {
        out.chains.push_back(filter);
        jumps(out, c, "filter", sidecar ? "OUTPUT" : "FORWARD", "VEIL_FILTER", "reject what is not captured");
    }
    return out;
}

bool capturesAnything(const FamilyRules& fr)
{
    for (const auto& ch : fr.chains)
        if (ch.name == "VEIL_OUTPUT" || ch.name == "VEIL_PREROUTING")
            return true;
    return false;
}

// nft base chains: one per family and hook, holding only the jumps.
struct Hook {
    const char* table;
    const char* builtin;
    const char* chain;  // base chain name without the family suffix
    const char* header;
};

constexpr Hook kHooks[] = {
    {"mangle", "PREROUTING", "mangle_prerouting", "type filter hook prerouting priority mangle; policy accept;"},
    {"nat", "OUTPUT", "nat_output", "type nat hook output priority -100; policy accept;"},
    {"filter", "OUTPUT", "filter_output", "type filter hook output priority filter; policy accept;"},
    {"filter", "FORWARD", "filter_forward", "type filter hook forward priority filter; policy accept;"},
};

FamilyPlan familyPlan(const Capture& c, std::uint32_t excludeMark, int family, Backend backend)
{
    FamilyRules fr = familyRules(c, excludeMark, family);
    FamilyPlan fp;
    fp.family = family;
    const bool dns = c.destinations == CaptureDestinations::Dns;
    const std::string setName = c.setName + std::to_string(family);
    if (c.style == CaptureStyle::Gateway && capturesAnything(fr))
        fp.routing = PolicyRouting{c.tproxyMark, c.routeTable};

    if (backend == Backend::Nft) {
        if (dns)
            fp.nftSets.push_back({setName, family == 4 ? "ipv4_addr" : "ipv6_addr"});
        const std::string sfx = std::to_string(family);
        for (const auto& h : kHooks) {
            NftChain base{std::string(h.chain) + sfx, h.header, {}};
            for (const auto& j : fr.jumps)
                if (j.table == h.table && j.builtin == h.builtin)
                    base.rules.push_back("meta nfproto " + std::string(family == 4 ? "ipv4 " : "ipv6 ") +
                                         nftRule(j.rule, family));
            if (base.rules.empty())
                continue;
            fp.nftChains.push_back(base);
            // Then the chains this hook reaches (directly or through
            // another VEIL_ chain), in the order iptables declares them.
            std::set<std::string> reached;
            for (const auto& j : fr.jumps)
                if (j.table == h.table && j.builtin == h.builtin)
                    reached.insert(j.rule.target);
            for (bool grew = true; grew;) {
                grew = false;
                for (const auto& ch : fr.chains)
                    if (reached.count(ch.name))
                        for (const auto& r : ch.rules)
                            if (r.verdict == Verdict::Jump && reached.insert(r.target).second)
                                grew = true;
            }
            for (const auto& ch : fr.chains) {
                if (ch.table != h.table || !reached.count(ch.name))
                    continue;
                NftChain n{ch.name + sfx, "", {}};
                for (const auto& r : ch.rules)
                    n.rules.push_back(nftRule(r, family));
                fp.nftChains.push_back(n);
            }
        }
        return fp;
    }

    if (dns)
        fp.ipsets.push_back({setName, family,
                             static_cast<std::uint64_t>(c.dnsTtlCeiling.count() / 1000)});
    // iptables-save lists user chains by name; so do we, so that what is
    // rendered and what is saved read the same.
    std::vector<const Chain*> byName;
    for (const auto& ch : fr.chains)
        byName.push_back(&ch);
    std::sort(byName.begin(), byName.end(), [](const Chain* a, const Chain* b) { return a->name < b->name; });
    for (const char* t : kTables) {
        XtTable xt{t, {}, {}, {}};
        for (const Chain* ch : byName) {
            if (ch->table != t)
                continue;
            xt.chains.push_back(ch->name);
            for (const auto& r : ch->rules)
                xt.rules.push_back({ch->name, xtSpec(r, family)});
        }
        for (const auto& j : fr.jumps)
            if (j.table == t)
                xt.jumps.push_back({j.builtin, xtSpec(j.rule, family)});
        if (!xt.chains.empty())
            fp.tables.push_back(xt);
    }
    return fp;
}

const char* styleName(CaptureStyle s)
{
    return s == CaptureStyle::Sidecar ? "sidecar" : "gateway";
}

std::string joinArgs(const char* tool, const std::vector<std::string>& args)
{
    std::string s = tool;
    for (const auto& a : args)
        s += " " + a;
    return s;
}

} // namespace

std::string_view backendName(Backend b)
{
    switch (b) {
    case Backend::Iptables: return "iptables";
    case Backend::IptablesLegacy: return "iptables-legacy";
    case Backend::IptablesNft: return "iptables-nft";
    case Backend::Nft: return "nft";
    }
    return "?";
}

std::optional<Backend> parseBackend(std::string_view name)
{
    for (Backend b : {Backend::Iptables, Backend::IptablesLegacy, Backend::IptablesNft, Backend::Nft})
        if (backendName(b) == name)
            return b;
    return std::nullopt;
}

std::string xtTool(Backend b, int family, std::string_view what)
{
    std::string base = family == 4 ? "iptables" : "ip6tables";
    if (b == Backend::IptablesLegacy)
        base += "-legacy";
    else if (b == Backend::IptablesNft)
        base += "-nft";
    return base + "-" + std::string(what);
}

std::vector<std::string> IpSet::createArgs() const
{
    return {"create", name, "hash:ip", "family", family == 4 ? "inet" : "inet6", "timeout", std::to_string(timeout)};
}

std::string PolicyRouting::fwmark() const
{
    return hex(mark) + "/" + hex(mark);
}

std::string PolicyRouting::ruleSelector() const
{
    return "fwmark " + fwmark() + " lookup " + std::to_string(table);
}

std::vector<std::string> PolicyRouting::ruleAddArgs(int family) const
{
    return {family == 4 ? "-4" : "-6", "rule", "add", "fwmark", fwmark(), "lookup",
            std::to_string(table)};
}

std::vector<std::string> PolicyRouting::routeAddArgs(int family) const
{
    return {family == 4 ? "-4" : "-6", "route", "add", "local", family == 4 ? "0.0.0.0/0" : "::/0", "dev", "lo",
            "table", std::to_string(table)};
}

Plan plan(const config::Capture& capture, std::uint32_t excludeMark, const Options& options)
{
    Plan p;
    p.backend = options.backend;
    p.style = capture.style;
    p.listener = capture.listener;
    p.listenerPort = capture.listenerPort;
    if (options.v4)
        p.families.push_back(familyPlan(capture, excludeMark, 4, options.backend));
    if (options.v6)
        p.families.push_back(familyPlan(capture, excludeMark, 6, options.backend));
    return p;
}

std::string nftTableText(const Plan& plan)
{
    std::string s = "table inet " + std::string(kNftTable) + " {\n";
    bool first = true;
    auto block = [&](const std::string& head, const std::vector<std::string>& lines) {
        if (!first)
            s += "\n";
        first = false;
        s += "\t" + head + " {\n";
        for (const auto& l : lines)
            s += "\t\t" + l + "\n";
        s += "\t}\n";
    };
    for (const auto& f : plan.families)
        for (const auto& set : f.nftSets)
            block("set " + set.name, {"type " + set.type, "flags timeout"});
    for (const auto& f : plan.families)
        for (const auto& ch : f.nftChains) {
            std::vector<std::string> lines;
            if (!ch.hook.empty())
                lines.push_back(ch.hook);
            lines.insert(lines.end(), ch.rules.begin(), ch.rules.end());
            block("chain " + ch.name, lines);
        }
    s += "}\n";
    return s;
}

std::string render(const Plan& plan)
{
    std::string s = "# veil-iptables render: style " + std::string(styleName(plan.style)) + ", backend " +
                     std::string(backendName(plan.backend)) + ", listener " + plan.listener + " (port " +
                     std::to_string(plan.listenerPort) + ")\n";
    auto routing = [&](const FamilyPlan& f) {
        if (!f.routing)
            return;
        s += "# ip" + std::to_string(f.family) + " policy routing\n";
        s += joinArgs("ip", f.routing->ruleAddArgs(f.family)) + "\n";
        s += joinArgs("ip", f.routing->routeAddArgs(f.family)) + "\n";
    };
    if (plan.backend == Backend::Nft) {
        std::string fams;
        for (const auto& f : plan.families)
            fams += "ip" + std::to_string(f.family) + " ";
        s += "# " + fams + "nft -f\n";
        s += nftTableText(plan);
        for (const auto& f : plan.families)
            routing(f);
        return s;
    }
    for (const auto& f : plan.families) {
        const std::string fam = "# ip" + std::to_string(f.family) + " ";
        if (f.ipsets.empty() && f.tables.empty() && !f.routing) {
            s += fam + "nothing to install (include_cidrs name no network of this family)\n";
            continue;
        }
        if (!f.ipsets.empty()) {
            s += fam + "ipset\n";
            for (const auto& set : f.ipsets)
                s += joinArgs("ipset", set.createArgs()) + "\n";
        }
        routing(f);
        s += fam + xtTool(plan.backend, f.family, "restore") + " --noflush\n";
        for (const auto& t : f.tables) {
            s += "*" + t.name + "\n";
            for (const auto& ch : t.chains)
                s += ":" + ch + " - [0:0]\n";
            for (const auto& r : t.rules)
                s += r.line() + "\n";
            // Jumps go to the top of the built-in chains, so rules that
            // others add later cannot let captured traffic around veild.
            std::map<std::string, int> at;
            for (const auto& j : t.jumps)
                s += "-I " + j.chain + " " + std::to_string(++at[j.chain]) + " " + j.spec + "\n";
            s += "COMMIT\n";
        }
    }
    return s;
}

} // namespace veil::iptables
