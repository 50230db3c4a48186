#pragma once

// The NFQUEUE reader of DNS-following destinations (capture.destinations:
// dns). The rules veil-iptables installs queue every UDP answer from port 53
// to queue capture.dns.queue with --queue-bypass; this reader, on a thread of
// its own (never a worker loop: set updates are blocking netlink round
// trips), hands each packet to a Follower — which puts the target addresses
// in the sets — and only then accepts it, so the application's connect
// right after its lookup is already captured. Every packet is accepted,
// unchanged: the queue is bound with NFQA_CFG_F_FAIL_OPEN (a full queue or a
// failed delivery lets packets through instead of dropping them), and when
// veild is not running the bypass flag does the same.

#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "config/config.h"
#include "dns/follower.h"
#include "dns/sets.h"
#include "metrics/metrics.h"

struct nfq_handle;
struct nfq_q_handle;
struct nfq_data;
struct nfgenmsg;

namespace veil::dns {

class Snooper {
public:
    // Opens the sets of cfg.capture.backend and binds the queue. An error is
    // for a fatal start-up message (binding needs CAP_NET_ADMIN, and a queue
    // number has one reader). `cfg` and `metrics` must outlive the Snooper.
    static Result<std::unique_ptr<Snooper>> open(const config::Config& cfg, metrics::Metrics& metrics, LogFn log);

    ~Snooper();
    Snooper(const Snooper&) = delete;
    Snooper& operator=(const Snooper&) = delete;

    void start();
    // Reads and accepts what is already queued, then unbinds the queue and
    // joins the thread. Idempotent.
    void stop();

    Snooper(std::unique_ptr<SetUpdater> sets, const config::Config& cfg, metrics::Metrics& metrics,
            LogFn log); // use open()

private:
    static int onQueued(nfq_q_handle* qh, nfgenmsg* msg, nfq_data* nfa, void* self);
    void run();
    void receive();
    void close();

    std::unique_ptr<SetUpdater> sets_;
    Follower follower_;
    nfq_handle* handle_ = nullptr;
    nfq_q_handle* queue_ = nullptr;
    UniqueFd stop_; // eventfd: stop() → the thread
    std::vector<char> buf_;
    std::thread thread_;
};

} // namespace veil::dns
