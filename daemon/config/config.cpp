#include "config/config.h"

#include "mask/ruleset.h"

#include <yaml-cpp/yaml.h>

#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <initializer_list>
#include <set>
#include <sstream>

namespace veil::config {

namespace {

// Thrown inside this file only; parse()/load() turn it into an Error.
struct ConfigError {
    std::string message;
};

struct Reader {
    std::string file;

    [[noreturn]] void bad(const YAML::Node& n, const std::string& msg) const
    {
        YAML::Mark m = n.Mark();
        if (m.is_null())
            throw ConfigError{file + ": " + msg};
        throw ConfigError{file + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1) + ": " + msg};
    }

    void requireMap(const YAML::Node& n, const std::string& what) const
    {
        if (!n.IsMap())
            bad(n, what + " must be a mapping");
    }

    void requireSeq(const YAML::Node& n, const std::string& what) const
    {
        if (!n.IsSequence())
            bad(n, what + " must be a list");
    }

    // Every key of `n` must be one of `known`.
    void onlyKeys(const YAML::Node& n, const std::string& what, std::initializer_list<const char*> known) const
    {
        for (auto it = n.begin(); it != n.end(); ++it) {
            if (!it->first.IsScalar())
                bad(it->first, what + ": keys must be plain names");
            const std::string k = it->first.Scalar();
            bool ok = std::any_of(known.begin(), known.end(), [&](const char* c) { return k == c; });
            if (!ok) {
                std::string list;
                for (const char* c : known)
                    list += (list.empty() ? "" : ", ") + std::string(c);
                bad(it->first, "unknown key '" + k + "' in " + what + " (known: " + list + ")");
            }
        }
    }

    std::string str(const YAML::Node& n, const std::string& what) const
    {
        if (!n.IsScalar())
            bad(n, what + " must be a string");
        return n.Scalar();
    }

    std::string nonEmpty(const YAML::Node& n, const std::string& what) const
    {
        std::string s = str(n, what);
        if (s.empty())
            bad(n, what + " must not be empty");
        return s;
    }

    long integer(const YAML::Node& n, const std::string& what, long lo, long hi) const
    {
        if (!n.IsScalar())
            bad(n, what + " must be an integer");
        const std::string& s = n.Scalar();
        std::size_t used = 0;
        long v = 0;
        try {
            v = std::stol(s, &used, 10);
        } catch (const std::exception&) {
            used = 0;
        }
        if (used == 0 || used != s.size())
            bad(n, what + " must be an integer, not '" + s + "'");
        if (v < lo || v > hi)
            bad(n, what + " must be between " + std::to_string(lo) + " and " + std::to_string(hi));
        return v;
    }

    // A non-negative integer, decimal or 0x-prefixed hex (marks are written in hex).
    unsigned long unsignedInt(const YAML::Node& n, const std::string& what, unsigned long hi) const
    {
        if (!n.IsScalar())
            bad(n, what + " must be an integer");
        const std::string& s = n.Scalar();
        const bool hex = s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
        std::size_t used = 0;
        unsigned long v = 0;
        if (!s.empty() && s[0] != '-' && s[0] != '+') {
            try {
                v = std::stoul(hex ? s.substr(2) : s, &used, hex ? 16 : 10);
                if (hex)
                    used += 2;
            } catch (const std::exception&) {
                used = 0;
            }
        }
        if (used == 0 || used != s.size())
            bad(n, what + " must be an integer (decimal or 0x hex), not '" + s + "'");
        if (v > hi)
            bad(n, what + " must be at most " + std::to_string(hi));
        return v;
    }

    // "10.0.0.0/8", "fd00::/8", or a bare address (/32, /128). The address
    // must be the network's first one, so a typo'd prefix is not widened.
    Cidr cidr(const YAML::Node& n, const std::string& what) const
    {
        std::string s = nonEmpty(n, what);
        std::string addr = s;
        long prefix = -1;
        if (auto slash = s.find('/'); slash != std::string::npos) {
            addr = s.substr(0, slash);
            std::string p = s.substr(slash + 1);
            if (p.empty() || p.size() > 3 || p.find_first_not_of("0123456789") != std::string::npos)
                bad(n, what + ": '" + s + "' has a bad prefix length");
            prefix = std::stol(p);
        }
        unsigned char bytes[16] = {};
        Cidr c;
        std::size_t len = 0;
        if (::inet_pton(AF_INET, addr.c_str(), bytes) == 1) {
            c.family = AF_INET;
            len = 4;
        } else if (::inet_pton(AF_INET6, addr.c_str(), bytes) == 1) {
            c.family = AF_INET6;
            len = 16;
        } else {
            bad(n, what + ": '" + s + "' is not an IPv4 or IPv6 address or network");
        }
        if (prefix < 0)
            prefix = static_cast<long>(len * 8);
        if (prefix > static_cast<long>(len * 8))
            bad(n, what + ": '" + s + "' has a prefix longer than the address");
        for (std::size_t bit = static_cast<std::size_t>(prefix); bit < len * 8; ++bit)
            if (bytes[bit / 8] & (0x80 >> (bit % 8)))
                bad(n, what + ": '" + s + "' has host bits set (did you mean a /" + std::to_string(prefix) +
                           " network's first address?)");
        char buf[INET6_ADDRSTRLEN] = {};
        ::inet_ntop(c.family, bytes, buf, sizeof buf);
        c.text = std::string(buf) + "/" + std::to_string(prefix);
        return c;
    }

    bool boolean(const YAML::Node& n, const std::string& what) const
    {
        if (!n.IsScalar())
            bad(n, what + " must be true or false");
        const std::string& s = n.Scalar();
        if (s == "true" || s == "yes" || s == "on")
            return true;
        if (s == "false" || s == "no" || s == "off")
            return false;
        bad(n, what + " must be true or false, not '" + s + "'");
    }

    std::vector<std::string> strings(const YAML::Node& n, const std::string& what) const
    {
        requireSeq(n, what);
        std::vector<std::string> out;
        for (const auto& e : n)
            out.push_back(nonEmpty(e, what + " entry"));
        return out;
    }

    // Size with an optional KiB/MiB/GiB suffix.
    std::size_t size(const YAML::Node& n, const std::string& what) const
    {
        std::string s = str(n, what);
        std::size_t mult = 1;
        for (auto [suffix, m] : {std::pair{"KiB", 1ul << 10}, std::pair{"MiB", 1ul << 20}, std::pair{"GiB", 1ul << 30}}) {
            std::string_view sv(s);
            std::string_view suf(suffix);
            if (sv.size() > suf.size() && sv.substr(sv.size() - suf.size()) == suf) {
                s.resize(s.size() - suf.size());
                mult = m;
                break;
            }
        }
        std::size_t used = 0;
        unsigned long v = 0;
        try {
            v = std::stoul(s, &used, 10);
        } catch (const std::exception&) {
            used = 0;
        }
        if (used == 0 || used != s.size() || s[0] == '-')
            bad(n, what + " must be a size like 1048576, 512KiB or 32MiB");
        return v * mult;
    }

    // "500ms", "5s", "10m", "1h", "30d"; a bare number is seconds.
    Millis duration(const YAML::Node& n, const std::string& what) const
    {
        std::string s = str(n, what);
        std::size_t used = 0;
        long long v = -1;
        try {
            v = std::stoll(s, &used, 10);
        } catch (const std::exception&) {
            used = 0;
        }
        std::string unit = used ? s.substr(used) : "";
        long long ms = -1;
        if (used && v >= 0) {
            if (unit.empty() || unit == "s")
                ms = v * 1000;
            else if (unit == "ms")
                ms = v;
            else if (unit == "m")
                ms = v * 60000;
            else if (unit == "h")
                ms = v * 3600000;
            else if (unit == "d")
                ms = v * 86400000;
        }
        if (ms < 0)
            bad(n, what + " must be a duration like 500ms, 5s, 10m, 1h or 30d, not '" + s + "'");
        return Millis(ms);
    }

    mask::RuleSpec rule(const YAML::Node& n) const
    {
        requireMap(n, "a rule");
        onlyKeys(n, "a rule", {"name", "regex", "type", "priority", "enabled"});
        mask::RuleSpec r;
        if (!n["name"])
            bad(n, "a rule needs a name");
        if (!n["regex"])
            bad(n, "rule needs a regex");
        if (!n["type"])
            bad(n, "rule needs a type (the token prefix, e.g. PROJECT)");
        r.name = nonEmpty(n["name"], "rule name");
        r.regex = nonEmpty(n["regex"], "rule regex");
        r.tokenType = nonEmpty(n["type"], "rule type");
        if (n["priority"])
            r.priority = static_cast<int>(integer(n["priority"], "rule priority", 0, 1000000));
        if (n["enabled"])
            r.enabled = boolean(n["enabled"], "rule enabled");
        // Compile errors (bad regex, bad type) point at the rule.
        std::vector<mask::RuleSpec> one{r};
        one[0].enabled = true;
        if (auto c = mask::RuleSet::compile(one); !c)
            bad(n, c.error().message);
        return r;
    }

    std::vector<mask::RuleSpec> rules(const YAML::Node& n) const
    {
        requireSeq(n, "rules");
        std::vector<mask::RuleSpec> out;
        for (const auto& e : n)
            out.push_back(rule(e));
        return out;
    }
};

std::string dirOf(const std::string& path)
{
    auto slash = path.rfind('/');
    return slash == std::string::npos ? std::string(".") : path.substr(0, slash);
}

Result<std::string> readFile(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return fail(path + ": cannot open");
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

YAML::Node loadYaml(const std::string& text, const std::string& file)
{
    try {
        return YAML::Load(text);
    } catch (const YAML::ParserException& e) {
        throw ConfigError{file + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                          ": " + e.msg};
    }
}

std::vector<mask::RuleSpec> ruleFile(const std::string& path)
{
    auto text = readFile(path);
    if (!text)
        throw ConfigError{text.error().message};
    Reader r{path};
    YAML::Node root = loadYaml(*text, path);
    r.requireMap(root, "a rule file");
    r.onlyKeys(root, "a rule file", {"rules"});
    if (!root["rules"])
        r.bad(root, "a rule file needs a 'rules' list");
    return r.rules(root["rules"]);
}

std::uint16_t portOf(const std::string& address)
{
    auto colon = address.rfind(':');
    long p = 0;
    try {
        p = std::stol(address.substr(colon + 1));
    } catch (const std::exception&) {
        p = 0;
    }
    return p > 0 && p < 65536 ? static_cast<std::uint16_t>(p) : 0;
}

void capture(const Reader& r, const YAML::Node& n, Config& c)
{
    r.requireMap(n, "capture");
    r.onlyKeys(n, "capture",
               {"style", "backend", "listener", "ports", "exclude_uids", "exclude_gids", "exclude_mark", "tproxy_mark",
                "route_table", "interfaces", "include_cidrs", "skip_cidrs", "destinations", "ipv6", "reject_quic",
                "dns"});
    Capture& x = c.capture;
    x.present = true;
    if (n["style"]) {
        std::string v = r.str(n["style"], "capture.style");
        if (v == "sidecar")
            x.style = CaptureStyle::Sidecar;
        else if (v == "gateway")
            x.style = CaptureStyle::Gateway;
        else
            r.bad(n["style"], "capture.style must be sidecar or gateway, not '" + v + "'");
    }
    if (n["backend"]) {
        std::string v = r.str(n["backend"], "capture.backend");
        if (v == "iptables")
            x.backend = CaptureBackend::Iptables;
        else if (v == "nft")
            x.backend = CaptureBackend::Nft;
        else
            r.bad(n["backend"], "capture.backend must be iptables or nft, not '" + v + "'");
    }
    const ListenerMode want = x.style == CaptureStyle::Sidecar ? ListenerMode::Redirect : ListenerMode::Tproxy;
    const char* wantName = want == ListenerMode::Redirect ? "redirect" : "tproxy";
    const Listener* fed = nullptr;
    if (n["listener"]) {
        x.listener = r.nonEmpty(n["listener"], "capture.listener");
        for (const auto& l : c.listeners)
            if (l.name == x.listener)
                fed = &l;
        if (!fed)
            r.bad(n["listener"], "capture.listener: no listener named '" + x.listener + "'");
        if (fed->mode != want)
            r.bad(n["listener"], "capture.listener '" + x.listener + "' must have mode " + wantName + " for style " +
                                     (want == ListenerMode::Redirect ? "sidecar" : "gateway"));
    } else {
        for (const auto& l : c.listeners)
            if (!fed && l.mode == want)
                fed = &l;
        if (!fed)
            r.bad(n, std::string("capture needs a listener with mode ") + wantName + " to feed");
        x.listener = fed->name;
    }
    x.listenerPort = portOf(fed->address);
    if (x.listenerPort == 0)
        r.bad(n, "capture: listener '" + fed->name + "' has no valid port in its address");

    if (n["ports"]) {
        r.requireSeq(n["ports"], "capture.ports");
        x.ports.clear();
        for (const auto& p : n["ports"]) {
            auto port = static_cast<std::uint16_t>(r.integer(p, "capture.ports entry", 1, 65535));
            if (std::find(x.ports.begin(), x.ports.end(), port) != x.ports.end())
                r.bad(p, "capture.ports: " + std::to_string(port) + " listed twice");
            x.ports.push_back(port);
        }
        if (x.ports.empty())
            r.bad(n["ports"], "capture.ports must name at least one port");
    }
    auto ids = [&](const char* key, std::vector<std::uint32_t>& out) {
        if (!n[key])
            return;
        r.requireSeq(n[key], std::string("capture.") + key);
        for (const auto& e : n[key])
            out.push_back(static_cast<std::uint32_t>(r.unsignedInt(e, std::string("capture.") + key + " entry",
                                                                   0xfffffffeul)));
    };
    ids("exclude_uids", x.excludeUids);
    ids("exclude_gids", x.excludeGids);
    if (n["exclude_mark"])
        x.excludeMark = static_cast<std::uint32_t>(r.unsignedInt(n["exclude_mark"], "capture.exclude_mark", 0xffffffffu));
    if (n["tproxy_mark"]) {
        x.tproxyMark = static_cast<std::uint32_t>(r.unsignedInt(n["tproxy_mark"], "capture.tproxy_mark", 0xffffffffu));
        if (x.tproxyMark == 0)
            r.bad(n["tproxy_mark"], "capture.tproxy_mark must not be 0");
    }
    if (n["route_table"]) {
        x.routeTable = static_cast<std::uint32_t>(r.unsignedInt(n["route_table"], "capture.route_table", 0xfffffffeu));
        // 0 (unspec), 253 (default), 254 (main) and 255 (local) belong to the system.
        if (x.routeTable == 0 || (x.routeTable >= 253 && x.routeTable <= 255))
            r.bad(n["route_table"], "capture.route_table must not be a system table (0, 253, 254, 255)");
    }
    if (x.style == CaptureStyle::Gateway && x.tproxyMark == x.effectiveExcludeMark(c.upstreamMark))
        r.bad(n, "capture: tproxy_mark and the exclude mark (exclude_mark or upstream.mark) must differ");
    if (n["interfaces"]) {
        x.interfaces = r.strings(n["interfaces"], "capture.interfaces");
        std::size_t i = 0;
        for (const auto& name : x.interfaces) {
            // IFNAMSIZ - 1; a '+' suffix is iptables' and nft's wildcard.
            bool ok = name.size() < 16 && name != "." && name != ".." &&
                      name.find_first_of("/ \t\"'") == std::string::npos;
            if (!ok)
                r.bad(n["interfaces"][i], "capture.interfaces: '" + name + "' is not an interface name");
            ++i;
        }
    }
    auto cidrs = [&](const char* key, std::vector<Cidr>& out) {
        if (!n[key])
            return;
        r.requireSeq(n[key], std::string("capture.") + key);
        for (const auto& e : n[key])
            out.push_back(r.cidr(e, std::string("capture.") + key + " entry"));
    };
    cidrs("include_cidrs", x.includeCidrs);
    cidrs("skip_cidrs", x.skipCidrs);
    if (n["destinations"]) {
        std::string v = r.str(n["destinations"], "capture.destinations");
        if (v == "all")
            x.destinations = CaptureDestinations::All;
        else if (v == "dns")
            x.destinations = CaptureDestinations::Dns;
        else
            r.bad(n["destinations"], "capture.destinations must be all or dns, not '" + v + "'");
    }
    if (n["ipv6"])
        x.ipv6 = r.boolean(n["ipv6"], "capture.ipv6");
    if (n["reject_quic"])
        x.rejectQuic = r.boolean(n["reject_quic"], "capture.reject_quic");
    if (auto d = n["dns"]) {
        r.requireMap(d, "capture.dns");
        r.onlyKeys(d, "capture.dns", {"queue", "ttl_floor", "ttl_ceiling", "set"});
        if (d["queue"])
            x.dnsQueue = static_cast<std::uint16_t>(r.integer(d["queue"], "capture.dns.queue", 0, 65535));
        if (d["ttl_floor"])
            x.dnsTtlFloor = r.duration(d["ttl_floor"], "capture.dns.ttl_floor");
        if (d["ttl_ceiling"])
            x.dnsTtlCeiling = r.duration(d["ttl_ceiling"], "capture.dns.ttl_ceiling");
        if (x.dnsTtlFloor.count() == 0 || x.dnsTtlCeiling < x.dnsTtlFloor)
            r.bad(d, "capture.dns: ttl_floor must be more than 0 and at most ttl_ceiling");
        if (d["set"]) {
            x.setName = r.nonEmpty(d["set"], "capture.dns.set");
            // nft and ipset names; <name>4 / <name>6 must fit ipset's 31 bytes.
            bool ok = x.setName.size() <= 30 && std::isalpha(static_cast<unsigned char>(x.setName[0]));
            for (char ch : x.setName)
                ok = ok && (std::isalnum(static_cast<unsigned char>(ch)) || ch == '_');
            if (!ok)
                r.bad(d["set"], "capture.dns.set must be a name of letters, digits and _ (at most 30)");
        }
    }
    if (x.destinations == CaptureDestinations::Dns && c.targets.empty())
        r.bad(n["destinations"], "capture.destinations: dns needs at least one target host");
}

Config parseOrThrow(const std::string& text, const std::string& file)
{
    Reader r{file};
    YAML::Node root = loadYaml(text, file);
    Config c;
    c.file = file;
    if (root.IsNull())
        r.bad(root, "the configuration is empty");
    r.requireMap(root, "the configuration");
    r.onlyKeys(root, "the configuration",
               {"workers", "listeners", "ca", "upstream", "targets", "passthrough", "no_sni", "timeouts", "limits",
                "masking", "capture"});

    if (root["workers"])
        c.workers = static_cast<unsigned>(r.integer(root["workers"], "workers", 0, 256));
    auto policy = [&](const char* key, Passthrough& out) {
        if (!root[key])
            return;
        std::string v = r.str(root[key], key);
        if (v == "splice" || v == "passthrough")
            out = Passthrough::Splice;
        else if (v == "reject")
            out = Passthrough::Reject;
        else
            r.bad(root[key], std::string(key) + " must be splice or reject, not '" + v + "'");
    };
    policy("passthrough", c.passthrough);
    policy("no_sni", c.noSni);
    if (auto t = root["timeouts"]) {
        r.requireMap(t, "timeouts");
        r.onlyKeys(t, "timeouts",
                   {"connect", "tls_handshake", "request_headers", "idle", "body_idle", "request_body", "response",
                    "stream_idle", "drain"});
        auto d = [&](const char* key, Millis& out) {
            if (t[key]) {
                out = r.duration(t[key], std::string("timeouts.") + key);
                if (out.count() == 0)
                    r.bad(t[key], std::string("timeouts.") + key + " must be more than 0");
            }
        };
        d("connect", c.timeouts.connect);
        d("tls_handshake", c.timeouts.tlsHandshake);
        d("request_headers", c.timeouts.requestHeaders);
        d("idle", c.timeouts.idle);
        d("body_idle", c.timeouts.bodyIdle);
        d("request_body", c.timeouts.requestBody);
        d("response", c.timeouts.response);
        d("stream_idle", c.timeouts.streamIdle);
        d("drain", c.timeouts.drain);
    }
    if (auto l = root["limits"]) {
        r.requireMap(l, "limits");
        r.onlyKeys(l, "limits",
                   {"max_connections", "max_request_line", "max_header_bytes", "max_headers", "max_decoded_bytes",
                    "max_decode_ratio"});
        if (l["max_connections"])
            c.limits.maxConnections = static_cast<std::size_t>(r.integer(l["max_connections"], "limits.max_connections", 1, 1000000));
        if (l["max_request_line"])
            c.limits.maxRequestLine = r.size(l["max_request_line"], "limits.max_request_line");
        if (l["max_header_bytes"])
            c.limits.maxHeaderBytes = r.size(l["max_header_bytes"], "limits.max_header_bytes");
        if (l["max_headers"])
            c.limits.maxHeaders = static_cast<std::size_t>(r.integer(l["max_headers"], "limits.max_headers", 1, 10000));
        if (l["max_decoded_bytes"])
            c.limits.maxDecodedBytes = r.size(l["max_decoded_bytes"], "limits.max_decoded_bytes");
        if (l["max_decode_ratio"])
            c.limits.maxDecodeRatio = static_cast<unsigned>(r.integer(l["max_decode_ratio"], "limits.max_decode_ratio", 1, 100000));
    }

    if (auto ls = root["listeners"]) {
        r.requireSeq(ls, "listeners");
        std::set<std::string> names;
        for (const auto& l : ls) {
            r.requireMap(l, "a listener");
            r.onlyKeys(l, "a listener", {"name", "mode", "address"});
            Listener x;
            if (!l["name"] || !l["mode"] || !l["address"])
                r.bad(l, "a listener needs name, mode and address");
            x.name = r.nonEmpty(l["name"], "listener name");
            if (!names.insert(x.name).second)
                r.bad(l["name"], "listener name '" + x.name + "' used twice");
            std::string mode = r.str(l["mode"], "listener mode");
            if (mode == "tproxy")
                x.mode = ListenerMode::Tproxy;
            else if (mode == "redirect")
                x.mode = ListenerMode::Redirect;
            else
                r.bad(l["mode"], "listener mode must be tproxy or redirect, not '" + mode + "'");
            x.address = r.nonEmpty(l["address"], "listener address");
            if (x.address.rfind(':') == std::string::npos)
                r.bad(l["address"], "listener address must be host:port");
            c.listeners.push_back(std::move(x));
        }
    }
    if (auto ca = root["ca"]) {
        r.requireMap(ca, "ca");
        r.onlyKeys(ca, "ca", {"cert", "key", "leaf_validity", "cache_size"});
        if (ca["cert"])
            c.caCert = r.nonEmpty(ca["cert"], "ca.cert");
        if (ca["key"])
            c.caKey = r.nonEmpty(ca["key"], "ca.key");
        if (ca["leaf_validity"]) {
            c.leafValidity = r.duration(ca["leaf_validity"], "ca.leaf_validity");
            if (c.leafValidity < std::chrono::hours(1) || c.leafValidity > std::chrono::hours(24 * 365))
                r.bad(ca["leaf_validity"], "ca.leaf_validity must be between 1h and 365d");
        }
        if (ca["cache_size"])
            c.leafCacheSize = static_cast<std::size_t>(r.integer(ca["cache_size"], "ca.cache_size", 1, 1000000));
    }
    if (auto up = root["upstream"]) {
        r.requireMap(up, "upstream");
        r.onlyKeys(up, "upstream", {"ca_file", "insecure_skip_verify", "mark"});
        if (up["ca_file"])
            c.upstreamCaFile = r.nonEmpty(up["ca_file"], "upstream.ca_file");
        if (up["insecure_skip_verify"])
            c.upstreamInsecureSkipVerify = r.boolean(up["insecure_skip_verify"], "upstream.insecure_skip_verify");
        if (up["mark"])
            c.upstreamMark = static_cast<std::uint32_t>(r.unsignedInt(up["mark"], "upstream.mark", 0xffffffffu));
    }
    if (auto ts = root["targets"]) {
        r.requireSeq(ts, "targets");
        for (const auto& t : ts) {
            r.requireMap(t, "a target");
            r.onlyKeys(t, "a target", {"host", "mask"});
            Target x;
            if (!t["host"])
                r.bad(t, "a target needs a host");
            x.host = r.nonEmpty(t["host"], "target host");
            std::transform(x.host.begin(), x.host.end(), x.host.begin(),
                           [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
            if (auto ms = t["mask"]) {
                r.requireSeq(ms, "target mask");
                for (const auto& m : ms) {
                    r.requireMap(m, "a mask route");
                    r.onlyKeys(m, "a mask route", {"method", "path"});
                    MaskRoute route;
                    route.method = m["method"] ? r.nonEmpty(m["method"], "mask route method") : "*";
                    std::transform(route.method.begin(), route.method.end(), route.method.begin(),
                                   [](unsigned char ch) { return static_cast<char>(std::toupper(ch)); });
                    if (!m["path"])
                        r.bad(m, "a mask route needs a path");
                    route.path = r.nonEmpty(m["path"], "mask route path");
                    if (route.path[0] != '/')
                        r.bad(m["path"], "mask route path must start with /");
                    x.mask.push_back(std::move(route));
                }
            }
            c.targets.push_back(std::move(x));
        }
    }
    if (auto m = root["masking"]) {
        r.requireMap(m, "masking");
        r.onlyKeys(m, "masking",
                   {"packs", "on_unmaskable", "enable", "disable", "rules", "rule_files", "max_body_bytes"});
        if (m["packs"]) {
            c.masking.packs = r.strings(m["packs"], "masking.packs");
            auto known = mask::builtinPackNames();
            std::size_t i = 0;
            for (const auto& p : c.masking.packs) {
                if (std::find(known.begin(), known.end(), p) == known.end())
                    r.bad(m["packs"][i], "unknown pack '" + p + "'");
                ++i;
            }
        }
        if (m["on_unmaskable"]) {
            std::string v = r.str(m["on_unmaskable"], "masking.on_unmaskable");
            if (v == "block")
                c.masking.blockUnmaskable = true;
            else if (v == "pass")
                c.masking.blockUnmaskable = false;
            else
                r.bad(m["on_unmaskable"], "masking.on_unmaskable must be block or pass, not '" + v + "'");
        }
        if (m["rules"])
            c.masking.rules = r.rules(m["rules"]);
        if (m["rule_files"]) {
            auto files = r.strings(m["rule_files"], "masking.rule_files");
            for (auto f : files) {
                if (f[0] != '/')
                    f = dirOf(file) + "/" + f;
                auto more = ruleFile(f);
                c.masking.rules.insert(c.masking.rules.end(), more.begin(), more.end());
            }
        }
        // enable/disable name rules of the packs or custom rules above.
        std::set<std::string> names;
        for (const auto& p : c.masking.packs)
            for (const auto& rule : mask::builtinPack(p))
                names.insert(rule.name);
        for (const auto& rule : c.masking.rules)
            names.insert(rule.name);
        for (auto [key, list] : {std::pair{"enable", &c.masking.enable}, std::pair{"disable", &c.masking.disable}}) {
            if (!m[key])
                continue;
            *list = r.strings(m[key], std::string("masking.") + key);
            for (std::size_t i = 0; i < list->size(); ++i)
                if (!names.count((*list)[i]))
                    r.bad(m[key][i], "no rule named '" + (*list)[i] + "'");
        }
        if (m["max_body_bytes"])
            c.masking.maxBodyBytes = r.size(m["max_body_bytes"], "masking.max_body_bytes");
        // Names must resolve now, not at first request.
        if (auto eff = effectiveRules(c.masking); !eff)
            r.bad(m, eff.error().message);
        else if (auto rs = mask::RuleSet::compile(std::move(eff.value())); !rs)
            r.bad(m, rs.error().message);
    }
    if (auto cap = root["capture"])
        capture(r, cap, c);
    return c;
}

} // namespace

const Target* Config::targetFor(std::string_view sni) const
{
    std::string name(sni);
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    for (const auto& t : targets) {
        if (t.host == name)
            return &t;
        // "*.example.com" matches one or more labels before example.com.
        if (t.host.size() > 2 && t.host.compare(0, 2, "*.") == 0) {
            std::string_view suffix = std::string_view(t.host).substr(1);
            if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
                return &t;
        }
    }
    return nullptr;
}

Result<Config> parse(const std::string& text, const std::string& file)
{
    try {
        return parseOrThrow(text, file);
    } catch (const ConfigError& e) {
        return fail(e.message);
    } catch (const YAML::Exception& e) {
        return fail(file + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) + ": " +
                    e.msg);
    }
}

Result<Config> load(const std::string& path)
{
    auto text = readFile(path);
    if (!text)
        return fail(text.error().message);
    return parse(*text, path);
}

Result<std::vector<mask::RuleSpec>> loadRuleFile(const std::string& path)
{
    try {
        return ruleFile(path);
    } catch (const ConfigError& e) {
        return fail(e.message);
    } catch (const YAML::Exception& e) {
        return fail(path + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) + ": " +
                    e.msg);
    }
}

Result<std::vector<mask::RuleSpec>> effectiveRules(const Masking& masking)
{
    std::vector<mask::RuleSpec> out;
    for (const auto& p : masking.packs) {
        auto pack = mask::builtinPack(p);
        if (pack.empty())
            return fail("unknown pack '" + p + "'");
        out.insert(out.end(), pack.begin(), pack.end());
    }
    for (const auto& r : masking.rules)
        out.push_back(r);
    auto apply = [&](const std::vector<std::string>& names, bool on) -> Result<void> {
        for (const auto& n : names) {
            auto it = std::find_if(out.begin(), out.end(), [&](const mask::RuleSpec& r) { return r.name == n; });
            if (it == out.end())
                return fail(std::string(on ? "masking.enable" : "masking.disable") + " names unknown rule '" + n +
                            "'");
            it->enabled = on;
        }
        return Ok{};
    };
    if (auto r = apply(masking.enable, true); !r)
        return fail(r.error().message);
    if (auto r = apply(masking.disable, false); !r)
        return fail(r.error().message);
    return out;
}

} // namespace veil::config
