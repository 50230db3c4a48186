#include "dns/targets.h"

#include <algorithm>
#include <limits>
#include <map>

namespace veil::dns {

namespace {

// Where a chain passes: the smallest TTL of the CNAMEs leading here, and the
// first target name met so far ("" when none).
struct ChainPoint {
    std::uint32_t ttl = std::numeric_limits<std::uint32_t>::max();
    std::string matched;
};

} // namespace

std::vector<TargetAddress> targetAddresses(const Message& m, const TargetMatcher& isTarget)
{
    std::vector<TargetAddress> out;
    if (!m.response() || m.opcode() != 0 || m.rcode() != 0)
        return out;

    std::map<std::string_view, const Record*> cname; // owner → its CNAME (parse() refused conflicts)
    for (const auto& r : m.answers)
        if (r.type == kTypeCname)
            cname.emplace(r.name, &r);

    // Every name on a chain from a question, with what the chain brought to it.
    std::map<std::string_view, ChainPoint> chain;
    for (const auto& q : m.questions) {
        ChainPoint at;
        std::string_view name = q;
        if (isTarget(name))
            at.matched = std::string(name);
        for (unsigned links = 0;; ++links) {
            auto [it, fresh] = chain.try_emplace(name, at);
            if (!fresh) {
                // Another question (or a loop) came here before. Keep the
                // better of the two: a target match, then the longer TTL.
                ChainPoint& seen = it->second;
                bool better = (seen.matched.empty() && !at.matched.empty()) ||
                              (seen.matched.empty() == at.matched.empty() && at.ttl > seen.ttl);
                if (!better)
                    break;
                seen = at;
            }
            auto next = cname.find(name);
            if (next == cname.end() || links >= kMaxChain)
                break;
            at.ttl = std::min(at.ttl, next->second->ttl);
            name = next->second->target;
            if (at.matched.empty() && isTarget(name))
                at.matched = std::string(name);
        }
    }

    std::map<Address, std::size_t> index; // address → its place in `out`
    for (const auto& r : m.answers) {
        if (r.type != kTypeA && r.type != kTypeAaaa)
            continue;
        auto it = chain.find(r.name);
        if (it == chain.end() || it->second.matched.empty())
            continue;
        std::uint32_t ttl = std::min(it->second.ttl, r.ttl);
        auto [at, fresh] = index.try_emplace(r.address, out.size());
        if (!fresh) {
            out[at->second].ttl = std::max(out[at->second].ttl, ttl);
            continue;
        }
        out.push_back({r.address, ttl, it->second.matched});
    }
    return out;
}

std::chrono::seconds clampTtl(std::uint32_t ttl, std::chrono::milliseconds floor, std::chrono::milliseconds ceiling)
{
    using std::chrono::seconds;
    seconds lo{(floor.count() + 999) / 1000};
    seconds hi{ceiling.count() / 1000};
    hi = std::max(hi, lo);
    seconds t{ttl};
    t = std::clamp(t, lo, hi);
    return std::min(t, kMaxSetTimeout);
}

} // namespace veil::dns
