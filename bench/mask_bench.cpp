// Masking microbenchmarks: veil's Masker::maskJson with the built-in aws pack
// against a baseline that does what the Kong aws-masker plan does (one regex
// after another over the whole body, each a gsub building the mapping), on
// realistic 10 KiB Messages API bodies from tests/support/bodygen. Also the
// response side (JSON restore, SSE unmask), per-call latency percentiles and
// peak heap per request. See README.md for what each figure means.

#include <benchmark/benchmark.h>
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <new>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "mask/masker.h"
#include "mask/restore.h"
#include "mask/sse.h"
#include "support/bodygen.h"

// ---- heap accounting ---------------------------------------------------------
//
// operator new/delete are replaced for the whole binary. Accounting is on only
// inside a measurement window (so the timed benchmarks pay one branch), and
// sizes come from malloc_usable_size, so a block allocated outside a window
// can be freed inside one. Vectorscan scratch and simdjson's buffers are
// per-Masker and allocated before any window; they are not per-request memory.

namespace {

struct HeapStats {
    bool on = false;
    long long live = 0;
    long long peak = 0;
    long long allocations = 0;
};
HeapStats g_heap; // the benchmark is single-threaded

void* counted(void* p)
{
    if (p && g_heap.on) {
        g_heap.live += static_cast<long long>(malloc_usable_size(p));
        g_heap.peak = std::max(g_heap.peak, g_heap.live);
        ++g_heap.allocations;
    }
    return p;
}

void uncount(void* p)
{
    if (p && g_heap.on)
        g_heap.live -= static_cast<long long>(malloc_usable_size(p));
}

void* allocate(std::size_t n)
{
    void* p = std::malloc(n ? n : 1);
    if (!p)
        throw std::bad_alloc();
    return counted(p);
}

void* allocateAligned(std::size_t n, std::align_val_t a)
{
    void* p = nullptr;
    const auto align = std::max(static_cast<std::size_t>(a), sizeof(void*));
    if (posix_memalign(&p, align, n ? n : 1) != 0)
        throw std::bad_alloc();
    return counted(p);
}

void release(void* p)
{
    uncount(p);
    std::free(p);
}

} // namespace

void* operator new(std::size_t n) { return allocate(n); }
void* operator new[](std::size_t n) { return allocate(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return counted(std::malloc(n ? n : 1)); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return counted(std::malloc(n ? n : 1)); }
void* operator new(std::size_t n, std::align_val_t a) { return allocateAligned(n, a); }
void* operator new[](std::size_t n, std::align_val_t a) { return allocateAligned(n, a); }
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept
{
    try {
        return allocateAligned(n, a);
    } catch (...) {
        return nullptr;
    }
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t& t) noexcept
{
    return operator new(n, a, t);
}
void operator delete(void* p) noexcept { release(p); }
void operator delete[](void* p) noexcept { release(p); }
void operator delete(void* p, std::size_t) noexcept { release(p); }
void operator delete[](void* p, std::size_t) noexcept { release(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { release(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { release(p); }
void operator delete(void* p, std::align_val_t) noexcept { release(p); }
void operator delete[](void* p, std::align_val_t) noexcept { release(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { release(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { release(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { release(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { release(p); }

namespace {

using namespace veil::mask;
namespace bodygen = veil::bodygen;

// ---- the baseline: Kong's gsub loop with std::regex ----------------------------
//
// ECMAScript rewrites of the most common aws pack families (see README.md).
// std::regex has no possessive or atomic groups and no look-behind either;
// like the Lua plan, each pattern runs over the whole text in priority order
// and the next one sees the previous one's output.

struct BaselineRule {
    const char* type;
    const char* regex;
    bool icase;
};

constexpr BaselineRule kBaselineRules[] = {
    {"SECRET_KEY", R"((?:aws_?)?secret_?(?:access_?)?key["']?\s*[:=]\s*["']?([A-Za-z0-9/+]{40}))", true},
    {"SESSION_TOKEN", R"((?:session_?token|security_?token)["']?\s*[:=]\s*["']?([A-Za-z0-9/+=%]{40,}))", true},
    {"ACCESS_KEY", R"(\b(?:AKIA|ASIA)[A-Z0-9]{16}\b)", false},
    {"IAM_ID", R"(\b(?:AIDA|AROA|AIPA|ANPA|AGPA)[A-Z0-9]{16,28}\b)", false},
    {"BUCKET", R"(\barn:aws[a-z-]*:s3:::([a-z0-9][a-z0-9._-]*[a-z0-9]))", false},
    {"IAM_ARN", R"(\barn:aws[a-z-]*:(?:iam|sts)::[0-9]{12}:[A-Za-z0-9_+=.@/-]*[A-Za-z0-9_+=@/-])", false},
    {"ARN", R"(\barn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:[0-9]{12}:[A-Za-z0-9_+=.@:/*$#{}-]*[A-Za-z0-9_+=@/*$#}-])", false},
    {"BUCKET", R"(\bs3a?://([a-z0-9][a-z0-9._-]*[a-z0-9]))", false},
    {"BUCKET", R"(\b([a-z0-9][a-z0-9.-]*[a-z0-9])\.s3(?:[.-][a-z0-9-]+)*\.amazonaws\.com)", false},
    {"RDS_HOST", R"(\b[a-z0-9-]+\.(?:cluster-(?:ro-)?|proxy-)?[a-z0-9]{12}\.[a-z0-9-]+\.(?:rds|docdb)\.amazonaws\.com)", false},
    {"ELB_HOST", R"(\b(?:dualstack\.)?[A-Za-z0-9-]+\.(?:[a-z0-9-]+\.)?elb(?:\.[a-z0-9-]+)?\.amazonaws\.com)", false},
    {"EKS_HOST", R"(\b[0-9A-F]{32}\.[a-z]{2}[0-9]\.[a-z0-9-]+\.eks\.amazonaws\.com)", false},
    {"SQS_QUEUE", R"(\bsqs\.[a-z0-9-]+\.amazonaws\.com/([0-9]{12}/[A-Za-z0-9_.-]+))", false},
    {"ACCOUNT", R"(\b([0-9]{12})\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com)", false},
    {"CLOUDFRONT_HOST", R"(\bd[a-z0-9]{12,13}\.cloudfront\.net\b)", false},
    {"EC2_HOST", R"(\bip-[0-9]{1,3}-[0-9]{1,3}-[0-9]{1,3}-[0-9]{1,3}(?:\.[a-z0-9-]+\.compute\.internal|\.ec2\.internal)?\b)", false},
    {"EC2_HOST", R"(\bec2-[0-9-]+\.(?:[a-z0-9-]+\.)?compute(?:-1)?\.amazonaws\.com)", false},
    {"EC2", R"(\bi-(?:[0-9a-f]{17}|[0-9a-f]{8})\b)", false},
    {"AMI", R"(\bami-(?:[0-9a-f]{17}|[0-9a-f]{8})\b)", false},
    {"EBS_VOL", R"(\bvol-(?:[0-9a-f]{17}|[0-9a-f]{8})\b)", false},
    {"EBS_SNAP", R"(\bsnap-(?:[0-9a-f]{17}|[0-9a-f]{8})\b)", false},
    {"SG", R"(\bsg-(?:[0-9a-f]{17}|[0-9a-f]{8})\b)", false},
    {"SUBNET", R"(\bsubnet-(?:[0-9a-f]{17}|[0-9a-f]{8})\b)", false},
    {"VPC", R"(\bvpc-(?:[0-9a-f]{17}|[0-9a-f]{8})\b)", false},
    {"IGW", R"(\bigw-(?:[0-9a-f]{17}|[0-9a-f]{8})\b)", false},
    {"NAT_GW", R"(\bnat-(?:[0-9a-f]{17}|[0-9a-f]{8})\b)", false},
    {"ENI", R"(\beni-(?:[0-9a-f]{17}|[0-9a-f]{8})\b)", false},
    {"RTB", R"(\brtb-(?:[0-9a-f]{17}|[0-9a-f]{8})\b)", false},
    {"VPCE", R"(\bvpce-(?:[0-9a-f]{17}|[0-9a-f]{8})\b)", false},
    {"TGW", R"(\btgw-(?:[0-9a-f]{17}|[0-9a-f]{8})\b)", false},
    {"ACCOUNT", R"((?:account(?:[ _-]?id)?|owner[ _-]?id)["']?\s*[:=]\s*["']?([0-9]{12}))", true},
    {"KMS_KEY", R"((?:key[ _-]?id|kms[ _-]?key(?:[ _-]?id)?)["']?\s*[:=]\s*["']?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}))", true},
    {"HOSTED_ZONE", R"(hostedzone/(Z[A-Z0-9]{8,32}))", false},
    {"PRIVATE_IP", R"(\b(?:10\.[0-9]{1,3}|172\.(?:1[6-9]|2[0-9]|3[01])|192\.168)\.[0-9]{1,3}\.[0-9]{1,3}\b)", false},
};

class Baseline {
public:
    Baseline()
    {
        for (const auto& r : kBaselineRules) {
            auto flags = std::regex::ECMAScript | std::regex::optimize;
            if (r.icase)
                flags |= std::regex::icase;
            rules_.push_back({r.type, std::regex(r.regex, flags)});
        }
    }

    struct Result {
        std::string text;
        std::map<std::string, std::string> forward; // original → token
    };

    Result mask(std::string_view body) const
    {
        Result res;
        res.text.assign(body);
        std::map<std::string, unsigned> counters;
        std::string next;
        for (const auto& rule : rules_) {
            next.clear();
            auto last = res.text.cbegin();
            for (std::sregex_iterator it(res.text.cbegin(), res.text.cend(), rule.re), end; it != end; ++it) {
                const std::smatch& m = *it;
                const bool group = m.size() > 1 && m[1].matched;
                const auto vBegin = group ? m[1].first : m[0].first;
                const auto vEnd = group ? m[1].second : m[0].second;
                std::string value(vBegin, vEnd);
                auto f = res.forward.find(value);
                if (f == res.forward.end()) {
                    char num[16];
                    std::snprintf(num, sizeof num, "_%03u", ++counters[rule.type]);
                    f = res.forward.emplace(value, rule.type + num).first;
                }
                next.append(last, vBegin);
                next += f->second;
                last = vEnd;
            }
            next.append(last, res.text.cend());
            res.text.swap(next);
        }
        return res;
    }

private:
    struct Rule {
        std::string type;
        std::regex re;
    };
    std::vector<Rule> rules_;
};

// ---- inputs ------------------------------------------------------------------------

struct Corpus {
    std::vector<std::string> bodies;
    double averageBytes = 0;
    double identifiersPer10k = 0;
};

Corpus makeCorpus(bool dense, std::size_t count)
{
    Corpus c;
    std::size_t bytes = 0;
    std::size_t planted = 0;
    for (std::size_t i = 0; i < count; ++i) {
        const std::uint64_t seed = 9000 + i;
        bodygen::Body b = bodygen::generateBody(dense ? bodygen::dense(seed) : bodygen::sparse(seed));
        bytes += b.json.size();
        planted += b.planted.size();
        c.bodies.push_back(std::move(b.json));
    }
    c.averageBytes = static_cast<double>(bytes) / static_cast<double>(count);
    c.identifiersPer10k = static_cast<double>(planted) * 10240.0 / static_cast<double>(bytes);
    return c;
}

std::shared_ptr<const RuleSet> awsRules()
{
    static const std::shared_ptr<const RuleSet> rules = [] {
        auto rs = RuleSet::compile(builtinPack("aws"));
        if (!rs.ok()) {
            std::fprintf(stderr, "aws pack does not compile: %s\n", rs.error().message.c_str());
            std::exit(1);
        }
        return rs.value();
    }();
    return rules;
}

const Corpus& corpus(bool dense)
{
    static const Corpus sparseCorpus = makeCorpus(false, 64);
    static const Corpus denseCorpus = makeCorpus(true, 64);
    return dense ? denseCorpus : sparseCorpus;
}

// A masked dense body's mapping, and a response and a stream echoing it.
struct ResponseSide {
    Mapping mapping;
    std::string json;
    bodygen::Stream stream;
};

const ResponseSide& responseSide()
{
    static const ResponseSide side = [] {
        ResponseSide s;
        Masker m(awsRules());
        auto r = m.maskJson(corpus(true).bodies[0]);
        if (!r.ok()) {
            std::fprintf(stderr, "maskJson failed: %s\n", r.error().detail.c_str());
            std::exit(1);
        }
        s.mapping = r->mapping;
        std::vector<bodygen::TokenPair> tokens;
        for (const auto& e : s.mapping.entries())
            tokens.push_back({e.token, e.original});
        s.json = bodygen::generateResponse(tokens, 1, 10 * 1024).masked;
        s.stream = bodygen::generateStream(tokens, 1, 4 * 1024);
        return s;
    }();
    return side;
}

// Bytes handled per iteration, by benchmark name, for the summary.
std::map<std::string, double> g_bytesPerIteration;

// ---- benchmarks ------------------------------------------------------------------

void maskJsonBench(benchmark::State& state, bool dense)
{
    const Corpus& c = corpus(dense);
    Masker masker(awsRules());
    std::size_t i = 0;
    std::size_t bytes = 0;
    for (auto _ : state) {
        const std::string& body = c.bodies[i++ % c.bodies.size()];
        auto r = masker.maskJson(body);
        if (!r.ok()) {
            state.SkipWithError(r.error().detail.c_str());
            break;
        }
        benchmark::DoNotOptimize(r->body.data());
        bytes += body.size();
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
    state.counters["ids/10KiB"] = c.identifiersPer10k;
    g_bytesPerIteration[dense ? "mask_json/dense" : "mask_json/sparse"] = c.averageBytes;
}

void baselineBench(benchmark::State& state, bool dense)
{
    const Corpus& c = corpus(dense);
    static const Baseline baseline;
    std::size_t i = 0;
    std::size_t bytes = 0;
    for (auto _ : state) {
        const std::string& body = c.bodies[i++ % c.bodies.size()];
        auto r = baseline.mask(body);
        benchmark::DoNotOptimize(r.text.data());
        bytes += body.size();
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
    g_bytesPerIteration[dense ? "baseline_regex/dense" : "baseline_regex/sparse"] = c.averageBytes;
}

void restoreJsonBench(benchmark::State& state)
{
    const ResponseSide& s = responseSide();
    for (auto _ : state) {
        std::string out = TokenRestorer::restoreAll(s.mapping, s.json, Escape::Json);
        benchmark::DoNotOptimize(out.data());
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(s.json.size()));
    g_bytesPerIteration["restore_json"] = static_cast<double>(s.json.size());
}

// The stream arrives in 1 KiB reads; a fresh unmasker per stream.
void sseUnmaskBench(benchmark::State& state)
{
    const ResponseSide& s = responseSide();
    const std::string_view bytes = s.stream.masked;
    std::string out;
    for (auto _ : state) {
        SseUnmasker u(s.mapping);
        out.clear();
        for (std::size_t pos = 0; pos < bytes.size(); pos += 1024)
            if (!u.feed(bytes.substr(pos, 1024), out).ok()) {
                state.SkipWithError("SseUnmasker::feed failed");
                return;
            }
        u.finish(out);
        benchmark::DoNotOptimize(out.data());
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(s.stream.events));
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * static_cast<std::int64_t>(bytes.size()));
    state.counters["events"] = static_cast<double>(s.stream.events);
    g_bytesPerIteration["sse_unmask"] = static_cast<double>(bytes.size());
}

// ---- summary ----------------------------------------------------------------------

// Keeps the CPU time per iteration of every run for the summary (as Google
// Benchmark's own bytes_per_second does: single-threaded CPU seconds, so a
// busy machine distorts the figures less than wall time would).
class CaptureReporter : public benchmark::ConsoleReporter {
public:
    std::map<std::string, double> secondsPerIteration;

    void ReportRuns(const std::vector<Run>& runs) override
    {
        for (const Run& r : runs)
            if (r.run_type == Run::RT_Iteration && !r.error_occurred)
                secondsPerIteration[r.benchmark_name()] =
                    r.GetAdjustedCPUTime() / benchmark::GetTimeUnitMultiplier(r.time_unit);
        ConsoleReporter::ReportRuns(runs);
    }
};

struct Latency {
    double p50 = 0;
    double p99 = 0;
    double max = 0;
};

// steady_clock around each of `calls` maskJson calls, cycling the corpus.
Latency latency(bool dense, std::size_t calls)
{
    const Corpus& c = corpus(dense);
    Masker masker(awsRules());
    for (const auto& b : c.bodies) // warm up: scratch, parser buffers, caches
        (void)masker.maskJson(b);
    std::vector<double> us;
    us.reserve(calls);
    for (std::size_t i = 0; i < calls; ++i) {
        const std::string& body = c.bodies[i % c.bodies.size()];
        const auto t0 = std::chrono::steady_clock::now();
        auto r = masker.maskJson(body);
        const auto t1 = std::chrono::steady_clock::now();
        benchmark::DoNotOptimize(r);
        us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
    }
    std::sort(us.begin(), us.end());
    return {us[us.size() / 2], us[us.size() * 99 / 100], us.back()};
}

struct Heap {
    double peakBytes = 0; // the largest over the corpus
    double allocations = 0; // average per call
};

// Peak live heap during one maskJson call (result included), over the corpus.
Heap heapPerRequest(bool dense)
{
    const Corpus& c = corpus(dense);
    Masker masker(awsRules());
    for (const auto& b : c.bodies)
        (void)masker.maskJson(b);
    Heap h;
    long long allocations = 0;
    for (const auto& b : c.bodies) {
        g_heap = HeapStats{true, 0, 0, 0};
        {
            auto r = masker.maskJson(b);
            benchmark::DoNotOptimize(r);
        }
        g_heap.on = false;
        h.peakBytes = std::max(h.peakBytes, static_cast<double>(g_heap.peak));
        allocations += g_heap.allocations;
    }
    h.allocations = static_cast<double>(allocations) / static_cast<double>(c.bodies.size());
    return h;
}

const char* verdict(bool ok)
{
    return ok ? "ok" : "MISSED";
}

void summary(const CaptureReporter& rep)
{
    const auto mbps = [&](const std::string& name) {
        auto t = rep.secondsPerIteration.find(name);
        auto b = g_bytesPerIteration.find(name);
        if (t == rep.secondsPerIteration.end() || b == g_bytesPerIteration.end() || t->second <= 0)
            return 0.0;
        return b->second / t->second / 1e6;
    };
    const auto usPer = [&](const std::string& name) {
        auto t = rep.secondsPerIteration.find(name);
        return t == rep.secondsPerIteration.end() ? 0.0 : t->second * 1e6;
    };

    std::printf("\n==== summary (MB = 10^6 bytes) ====\n");
    for (const bool dense : {false, true}) {
        const char* mode = dense ? "dense" : "sparse";
        const Corpus& c = corpus(dense);
        const std::string ours = std::string("mask_json/") + mode;
        const std::string base = std::string("baseline_regex/") + mode;
        const double goal = dense ? 200 : 1000;
        const double ourMbps = mbps(ours);
        std::printf("%-6s bodies: %.1f KiB average, %.1f identifiers per 10 KiB\n", mode, c.averageBytes / 1024,
                    c.identifiersPer10k);
        std::printf("  maskJson          %8.1f MB/s  %7.1f us/body   goal >= %.0f MB/s: %s\n", ourMbps, usPer(ours),
                    goal, verdict(ourMbps >= goal));
        if (rep.secondsPerIteration.count(base)) {
            std::printf("  baseline (regex)  %8.2f MB/s  %7.1f us/body   maskJson is %.0fx faster\n", mbps(base),
                        usPer(base), usPer(base) / std::max(usPer(ours), 1e-9));
        }
        const Latency l = latency(dense, 10000);
        std::printf("  latency over 10000 calls: p50 %.1f us, p99 %.1f us, max %.1f us   goal p99 <= 100 us: %s\n",
                    l.p50, l.p99, l.max, verdict(l.p99 <= 100));
        const Heap h = heapPerRequest(dense);
        std::printf("  peak heap per request: %.1f KiB (%.0f allocations per call)   goal <= 1 MiB: %s\n",
                    h.peakBytes / 1024, h.allocations, verdict(h.peakBytes <= 1024 * 1024));
    }
    const ResponseSide& s = responseSide();
    if (rep.secondsPerIteration.count("sse_unmask")) {
        const double perEvent = usPer("sse_unmask") / static_cast<double>(s.stream.events);
        std::printf("SSE unmask: %.2f us per event (%zu events, %zu bytes per stream, %.1f MB/s)   goal <= 20 us: %s\n",
                    perEvent, s.stream.events, s.stream.masked.size(), mbps("sse_unmask"), verdict(perEvent <= 20));
    }
    if (rep.secondsPerIteration.count("restore_json"))
        std::printf("JSON response unmask: %.1f MB/s (%zu bytes, %zu tokens in the mapping)\n", mbps("restore_json"),
                    s.json.size(), s.mapping.size());
}

} // namespace

int main(int argc, char** argv)
{
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv))
        return 1;
    // Build inputs (and compile the pack) before any timing.
    awsRules();
    corpus(false);
    corpus(true);
    responseSide();

    benchmark::RegisterBenchmark("mask_json/sparse", maskJsonBench, false);
    benchmark::RegisterBenchmark("mask_json/dense", maskJsonBench, true);
    benchmark::RegisterBenchmark("baseline_regex/sparse", baselineBench, false);
    benchmark::RegisterBenchmark("baseline_regex/dense", baselineBench, true);
    benchmark::RegisterBenchmark("restore_json", restoreJsonBench);
    benchmark::RegisterBenchmark("sse_unmask", sseUnmaskBench);

    CaptureReporter rep;
    benchmark::RunSpecifiedBenchmarks(&rep);
    summary(rep);
    benchmark::Shutdown();
    return 0;
}
