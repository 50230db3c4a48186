#include "dns/follower.h"

#include <algorithm>
#include <sys/socket.h>

namespace veil::dns {

Follower::Follower(TargetMatcher isTarget, SetUpdater& sets, metrics::Metrics& metrics, LogFn log, FollowerOptions o)
    : isTarget_(std::move(isTarget)), sets_(sets), metrics_(metrics), log_(std::move(log)), opt_(o)
{
}

void Follower::onPacket(std::span<const std::uint8_t> packet, Clock::time_point now)
{
    auto msg = parse(packet);
    if (!msg) {
        metrics_.dnsMalformed.add();
        report(malformed_, toString(msg.error()), "", now);
        return;
    }
    if (!msg->response())
        return; // a query from port 53 (a server forwarding): nothing to learn
    metrics_.dnsAnswers.add();
    for (const auto& t : targetAddresses(msg.value(), isTarget_)) {
        if (t.address.family == AF_INET6 && !opt_.ipv6)
            continue;
        put(t, now);
    }
}

void Follower::put(const TargetAddress& t, Clock::time_point now)
{
    const std::chrono::seconds ttl = clampTtl(t.ttl, opt_.ttlFloor, opt_.ttlCeiling);
    std::chrono::seconds timeout = ttl;
    auto known = expiry_.find(t.address);
    const bool fresh = known == expiry_.end() || known->second <= now;
    if (!fresh) {
        // Never shorten: keep what is left of the earlier answer when longer.
        auto left = std::chrono::ceil<std::chrono::seconds>(known->second - now);
        timeout = std::max(timeout, left);
    }
    auto r = sets_.add(t.address, timeout);
    if (!r) {
        metrics_.dnsSetErrors.add();
        report(setError_, r.error().kind == SetErrorKind::Missing ? "set does not exist" : "set update failed",
               r.error().message, now);
        return;
    }
    const auto until = now + timeout;
    if (known != expiry_.end()) {
        known->second = std::max(known->second, until);
    } else {
        if (expiry_.size() >= opt_.maxRemembered)
            std::erase_if(expiry_, [&](const auto& e) { return e.second <= now; });
        if (expiry_.size() < opt_.maxRemembered)
            expiry_.emplace(t.address, until);
    }
    if (fresh) {
        metrics_.dnsAdded.add();
        LogField f[] = {{"name", t.name},
                        {"address", t.address.text()},
                        {"ttl", std::to_string(t.ttl)},
                        {"timeout", std::to_string(timeout.count())},
                        {"set", sets_.setFor(t.address.family)}};
        log_("dns_target", "info", f);
    } else {
        metrics_.dnsRefreshed.add();
    }
}

void Follower::queueError(std::string_view reason, Clock::time_point now)
{
    metrics_.dnsQueueErrors.add();
    report(queueError_, std::string(reason), "", now);
}

void Follower::report(Throttle& t, std::string reason, std::string detail, Clock::time_point now)
{
    t.reason = std::move(reason);
    t.detail = std::move(detail);
    ++t.held;
    if (!t.logged || now - t.last >= opt_.logInterval) {
        write(t, t.held);
        t.last = now;
        t.logged = true;
        t.held = 0;
    }
}

void Follower::write(Throttle& t, std::uint64_t count)
{
    LogField f[] = {{"reason", t.reason}, {"count", std::to_string(count)}, {"detail", t.detail}};
    log_(t.event, "warn", std::span<const LogField>(f, t.detail.empty() ? 2 : 3));
}

Follower::Clock::time_point Follower::flush(Clock::time_point now)
{
    auto next = Clock::time_point::max();
    for (Throttle* t : {&malformed_, &setError_, &queueError_}) {
        if (t->held == 0)
            continue;
        if (now - t->last >= opt_.logInterval) {
            write(*t, t->held);
            t->last = now;
            t->held = 0;
        } else {
            next = std::min(next, t->last + opt_.logInterval);
        }
    }
    return next;
}

} // namespace veil::dns
