#pragma once

// veil.yaml: the configuration contract of DESIGN.md. yaml-cpp throws; this
// module is the boundary where exceptions become errors that name
// file:line:column (STYLE.md habit 4). Unknown keys are errors, so a typo is
// never silently ignored.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "mask/rule.h"

namespace veil::config {

struct MaskRoute {
    std::string method; // upper case, or "*" for any
    std::string path;   // exact, or a prefix ending in '*'
};

struct Target {
    std::string host;
    std::vector<MaskRoute> mask;
};

enum class ListenerMode { Tproxy, Redirect };

struct Listener {
    std::string name;
    ListenerMode mode = ListenerMode::Redirect;
    std::string address; // "0.0.0.0:15002", "[::]:15002"
};

struct Masking {
    std::vector<std::string> packs{"aws"};
    bool blockUnmaskable = true;      // on_unmaskable: block | pass
    std::vector<std::string> enable;  // rule names switched on (heuristics)
    std::vector<std::string> disable; // rule names switched off
    std::vector<mask::RuleSpec> rules; // custom rules, inline and from rule_files
    std::size_t maxBodyBytes = 32u << 20;
};

using Millis = std::chrono::milliseconds;

// Every timeout has a default (STYLE.md habit 7).
struct Timeouts {
    Millis connect{5000};          // upstream TCP connect
    Millis tlsHandshake{10000};    // ClientHello peek + both handshakes
    Millis requestHeaders{10000};  // first byte of a request → its complete head (slowloris)
    Millis idle{60000};            // keep-alive connection with no request
    Millis bodyIdle{30000};        // no request body bytes for this long (slow POST)
    Millis requestBody{300000};    // end of the head → end of its body, however it trickles (slow POST)
    Millis response{600000};       // request sent → first response byte (non-streaming LLM calls are slow)
    Millis streamIdle{300000};     // between two response body reads (SSE keep-alive pings are ~15 s)
    Millis drain{30000};           // SIGTERM → in-flight requests get this long
};

struct Limits {
    std::size_t maxConnections = 10000; // per process; more are refused
    std::size_t maxRequestLine = 8 << 10;
    std::size_t maxHeaderBytes = 64 << 10;
    std::size_t maxHeaders = 100;
    std::size_t maxDecodedBytes = 64u << 20; // decompressed request body (bomb guard)
    unsigned maxDecodeRatio = 200;           // decompressed/compressed
};

// What happens to connections that are not intercepted.
enum class Passthrough {
    Splice, // relay the bytes untouched to the original destination
    Reject, // close the connection
};

// The `capture:` section: the rules veil-iptables installs to feed veild,
// and (destinations: dns) the DNS snooping veild does to keep them current.
enum class CaptureStyle {
    Sidecar, // nat OUTPUT REDIRECT in the application's own namespace
    Gateway, // mangle PREROUTING TPROXY + policy routing on a router
};

// What the rules are written for: iptables/ip6tables (legacy or nft
// flavour; DNS sets are ipsets) or a native nftables table (nft sets).
enum class CaptureBackend { Iptables, Nft };

enum class CaptureDestinations {
    All, // every address on the captured ports
    Dns, // only addresses DNS answers gave for target hosts (sets veild fills)
};

struct Cidr {
    int family = 0;                      // AF_INET or AF_INET6
    std::string text;                    // normalized: "10.0.0.0/8", "fd00::/8"
};

struct Capture {
    bool present = false;                // the section was given
    CaptureStyle style = CaptureStyle::Sidecar;
    CaptureBackend backend = CaptureBackend::Iptables; // veil-iptables --backend overrides
    std::vector<std::uint16_t> ports{443};
    std::string listener;                // listener fed; default: the first of the style's mode
    std::uint16_t listenerPort = 0;      // resolved from that listener's address
    std::vector<std::uint32_t> excludeUids; // sidecar: the daemon's own uid is never redirected
    std::vector<std::uint32_t> excludeGids;
    std::uint32_t excludeMark = 0;       // packets carrying this mark return (0: upstream.mark if set)
    std::uint32_t tproxyMark = 0x1;      // gateway: fwmark of diverted packets
    std::uint32_t routeTable = 100;      // gateway: policy routing table for tproxyMark
    std::vector<std::string> interfaces; // gateway: incoming interfaces captured (empty: all)
    std::vector<Cidr> includeCidrs;      // only these destinations (empty: all)
    std::vector<Cidr> skipCidrs;         // never captured
    CaptureDestinations destinations = CaptureDestinations::All;
    bool ipv6 = true;                    // false: IPv6 to captured ports is rejected, never leaks
    bool rejectQuic = true;              // UDP to captured ports rejected so clients fall back to TCP
    // destinations: dns
    std::uint16_t dnsQueue = 53;         // NFQUEUE number DNS answers are queued to
    Millis dnsTtlFloor{60000};           // an address stays in the set at least this long
    Millis dnsTtlCeiling{86400000};      // and at most this long per answer
    std::string setName = "veil_targets"; // sets <name>4 and <name>6

    // The mark that exempts veild's own traffic: excludeMark, or upstream.mark.
    std::uint32_t effectiveExcludeMark(std::uint32_t upstreamMark) const
    {
        return excludeMark ? excludeMark : upstreamMark;
    }
};

struct Config {
    std::string file;
    unsigned workers = 0; // 0: one per core
    std::vector<Listener> listeners;
    std::string caCert;
    std::string caKey;
    Millis leafValidity{30LL * 24 * 3600 * 1000};
    std::size_t leafCacheSize = 1024;
    std::string upstreamCaFile = "/etc/ssl/certs/ca-certificates.crt";
    bool upstreamInsecureSkipVerify = false; // explicit, logged opt-out
    std::uint32_t upstreamMark = 0;          // SO_MARK on upstream sockets (0: none)
    std::vector<Target> targets;
    Passthrough passthrough = Passthrough::Splice; // SNI present but not a target
    Passthrough noSni = Passthrough::Splice;       // no (valid) SNI, or not TLS at all
    Timeouts timeouts;
    Limits limits;
    Masking masking;
    Capture capture;

    // The target for a TLS server name (exact, case-insensitive, or a
    // "*.example.com" wildcard entry), or nullptr.
    const Target* targetFor(std::string_view sni) const;
};

// Parses a whole veil.yaml. `file` is used in messages and to resolve
// relative rule_files.
Result<Config> parse(const std::string& text, const std::string& file);
Result<Config> load(const std::string& path);

// A file holding only custom rules: `rules: [{name, regex, type, priority, enabled}]`.
Result<std::vector<mask::RuleSpec>> loadRuleFile(const std::string& path);

// The rules a Masker compiles: the packs, with enable/disable applied, then
// the custom rules. Errors name an unknown pack or rule.
Result<std::vector<mask::RuleSpec>> effectiveRules(const Masking& masking);

} // namespace veil::config
