#pragma once

// What every worker shares, built once at start-up and read-only afterwards
// (apart from the thread-safe leaf cache and the atomic counters).

#include <atomic>
#include <memory>

#include "config/config.h"
#include "mask/ruleset.h"
#include "metrics/metrics.h"
#include "tls/context.h"
#include "tls/forge.h"

namespace veil::session {

struct Runtime {
    config::Config config;
    std::shared_ptr<const mask::RuleSet> rules;
    std::unique_ptr<tls::DownstreamContext> downstreamTls;
    std::unique_ptr<tls::UpstreamContext> upstreamTls;
    std::shared_ptr<tls::LeafCache> leaves;
    metrics::Metrics metrics;
    // SIGTERM: stop accepting, finish in-flight requests, exit.
    std::atomic<bool> draining{false};
};

} // namespace veil::session
