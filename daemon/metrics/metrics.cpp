#include "metrics/metrics.h"

namespace veil::metrics {

std::string Metrics::summary() const
{
    std::string s;
    auto put = [&](const char* k, std::uint64_t v) {
        s += s.empty() ? "" : " ";
        s += k;
        s += '=';
        s += std::to_string(v);
    };
    put("accepted", accepted.get());
    put("active", static_cast<std::uint64_t>(active.get() < 0 ? 0 : active.get()));
    put("intercepted", intercepted.get());
    put("passthrough", passthrough.get());
    put("rejected", rejected.get());
    put("refused_self", refusedSelf.get());
    put("refused_limit", refusedLimit.get());
    put("accept_errors", acceptErrors.get());
    put("upstream_connect_fail", upstreamConnectFail.get());
    put("upstream_verify_fail", upstreamVerifyFail.get());
    put("downstream_tls_fail", downstreamTlsFail.get());
    put("requests", requests.get());
    put("masked", masked.get());
    put("tokens", tokens.get());
    put("restored", restored.get());
    put("blocked", blocked.get());
    put("passed_unmaskable", passedUnmaskable.get());
    put("bad_requests", badRequests.get());
    put("upstream_errors", upstreamErrors.get());
    put("timeouts", timeouts.get());
    put("dns_answers", dnsAnswers.get());
    put("dns_malformed", dnsMalformed.get());
    put("dns_added", dnsAdded.get());
    put("dns_refreshed", dnsRefreshed.get());
    put("dns_set_errors", dnsSetErrors.get());
    put("dns_queue_errors", dnsQueueErrors.get());
    return s;
}

} // namespace veil::metrics
