#pragma once

// Process-wide counters, shared by all workers (relaxed atomics: each is an
// independent count). Never holds an original value — only counts.

#include <atomic>
#include <cstdint>
#include <string>

namespace veil::metrics {

struct Counter {
    std::atomic<std::uint64_t> v{0};
    void add(std::uint64_t n = 1) { v.fetch_add(n, std::memory_order_relaxed); }
    std::uint64_t get() const { return v.load(std::memory_order_relaxed); }
};

struct Gauge {
    std::atomic<std::int64_t> v{0};
    void add(std::int64_t n) { v.fetch_add(n, std::memory_order_relaxed); }
    std::int64_t get() const { return v.load(std::memory_order_relaxed); }
};

struct Metrics {
    Counter accepted;            // connections accepted
    Counter refusedSelf;         // original destination was veild itself (not redirected, or a loop)
    Counter refusedLimit;        // over the connection limit
    Counter acceptErrors;        // accept failures (EMFILE, ENFILE, ...)
    Counter passthrough;         // spliced untouched (SNI not a target)
    Counter rejected;            // refused by policy (passthrough: reject, no_sni: reject)
    Counter intercepted;         // client TLS terminated
    Counter upstreamConnectFail; // connect refused / timed out
    Counter upstreamVerifyFail;  // certificate or hostname verification failed
    Counter downstreamTlsFail;   // client handshake failed
    Counter requests;            // HTTP requests relayed or answered
    Counter masked;              // requests whose body was masked
    Counter tokens;              // values masked (occurrences)
    Counter blocked;             // unmaskable bodies not forwarded
    Counter passedUnmaskable;    // unmaskable bodies forwarded (on_unmaskable: pass)
    Counter badRequests;         // 4xx answered by veild
    Counter upstreamErrors;      // 502/504 answered by veild
    Counter restored;            // tokens restored in responses
    Counter timeouts;            // connections closed by a timeout
    Gauge active;                // open sessions
    // DNS-following destinations (dns/)
    Counter dnsAnswers;          // DNS responses read from the queue
    Counter dnsMalformed;        // queued packets that were not a readable DNS message (accepted untouched)
    Counter dnsAdded;            // target addresses put in a set (new to veild, or expired before)
    Counter dnsRefreshed;        // target addresses whose set entry was renewed
    Counter dnsSetErrors;        // set updates that failed (set missing, kernel refused)
    Counter dnsQueueErrors;      // NFQUEUE messages lost (ENOBUFS) or verdicts that failed

    // One line, logfmt, for the periodic/exit summary.
    std::string summary() const;
};

} // namespace veil::metrics
