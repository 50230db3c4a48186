#pragma once

// What veild does with one queued DNS answer: parse it, pick the addresses
// of target hosts, put them in the sets, count and log. The NFQUEUE reader
// (snooper.h) calls it and accepts the packet whatever it returns; there is
// no verdict here, and the packet is never changed.
//
// The never-shorten rule: an address put in a set stays there at least
// until the longest clamped TTL any answer gave it during this run expires.
// An entry's timeout is set to max(this answer's clamped TTL, what is left
// of the previous one veild set), so a client that cached an earlier answer
// with a longer TTL stays captured for as long as it may use it. veild is the
// only writer of these entries, so it remembers the expiries itself instead
// of reading them back (at most maxRemembered addresses; expired ones are
// forgotten first).

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <string_view>

#include "dns/message.h"
#include "dns/sets.h"
#include "dns/targets.h"
#include "metrics/metrics.h"

namespace veil::dns {

// A structured log line (logfmt: event, level, then the fields); veild
// writes them with session::LogLine. Fields carry counts, set names, reasons
// and addresses of target hosts — never anything else from a packet.
struct LogField {
    std::string_view key;
    std::string value;
};
using LogFn = std::function<void(std::string_view event, std::string_view level, std::span<const LogField> fields)>;

struct FollowerOptions {
    std::chrono::milliseconds ttlFloor{60000};
    std::chrono::milliseconds ttlCeiling{86400000};
    bool ipv6 = true;                       // false: AAAA answers are ignored (IPv6 is rejected, not captured)
    std::chrono::seconds logInterval{10};   // errors of one kind are logged at most once per interval
    std::size_t maxRemembered = 65536;
};

class Follower {
public:
    using Clock = std::chrono::steady_clock;

    Follower(TargetMatcher isTarget, SetUpdater& sets, metrics::Metrics& metrics, LogFn log, FollowerOptions o);

    // One packet as NFQUEUE delivered it (IP header first).
    void onPacket(std::span<const std::uint8_t> packet, Clock::time_point now);

    // Writes the error lines the once-per-interval rule held back, when their
    // interval is over. Returns when it next needs to be called
    // (Clock::time_point::max() when nothing is held back).
    Clock::time_point flush(Clock::time_point now);

    // Also counted: NFQUEUE messages the kernel could not deliver (ENOBUFS)
    // and other queue errors, logged with the same throttle.
    void queueError(std::string_view reason, Clock::time_point now);

private:
    // Logs the first event of a kind at once, then at most one line per
    // interval with the number of events since the last line.
    struct Throttle {
        explicit Throttle(const char* e) : event(e) {}
        const char* event;
        Clock::time_point last{};
        bool logged = false;
        std::uint64_t held = 0;
        std::string reason;
        std::string detail;
    };
    void report(Throttle& t, std::string reason, std::string detail, Clock::time_point now);
    void write(Throttle& t, std::uint64_t count);
    void put(const TargetAddress& t, Clock::time_point now);

    TargetMatcher isTarget_;
    SetUpdater& sets_;
    metrics::Metrics& metrics_;
    LogFn log_;
    FollowerOptions opt_;
    std::map<Address, Clock::time_point> expiry_; // what veild last set, per address
    Throttle malformed_{"dns_malformed"};
    Throttle setError_{"dns_set_error"};
    Throttle queueError_{"dns_queue_error"};
};

} // namespace veil::dns
