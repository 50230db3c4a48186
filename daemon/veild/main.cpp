// veild: the interception daemon. See veild(8).
//
// Start-up (all errors are fatal with a clear message, before any thread
// runs): config → rules → lab CA → TLS contexts → one worker per core, each
// with its own ring and SO_REUSEPORT listeners; with capture.destinations:
// dns, the NFQUEUE reader that keeps the target sets current (its own
// thread). Then the main thread only waits for signals: SIGTERM/SIGINT
// drain (stop accepting, finish in-flight requests, exit).

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "config/config.h"
#include "dns/snooper.h"
#include "session/log.h"
#include "session/runtime.h"
#include "session/worker.h"
#include "tls/ca.h"
#include "tls/context.h"
#include "tls/forge.h"

namespace {

using namespace veil;

constexpr const char* kUsage = "usage: veild --config FILE [--workers N]\n"
                               "       veild --check-config FILE\n";

int fatal(const std::string& msg)
{
    std::fprintf(stderr, "veild: %s\n", msg.c_str());
    return 1;
}

// Everything that depends on the configuration, checked in the same order
// for --check-config and for a real start.
Result<std::unique_ptr<session::Runtime>> buildRuntime(config::Config cfg)
{
    auto rt = std::make_unique<session::Runtime>();
    auto specs = config::effectiveRules(cfg.masking);
    if (!specs)
        return fail(cfg.file + ": " + specs.error().message);
    auto rules = mask::RuleSet::compile(std::move(specs.value()));
    if (!rules)
        return fail(cfg.file + ": " + rules.error().message);
    rt->rules = rules.value();

    if (cfg.listeners.empty())
        return fail(cfg.file + ": no listeners configured");
    if (cfg.targets.empty())
        return fail(cfg.file + ": no targets configured (nothing would be intercepted)");
    if (cfg.caCert.empty() || cfg.caKey.empty())
        return fail(cfg.file + ": ca.cert and ca.key are required");
    auto ca = tls::CertAuthority::load(cfg.caCert, cfg.caKey);
    if (!ca)
        return fail("lab CA: " + ca.error().message);
    tls::ForgeOptions fo;
    fo.validity = std::chrono::duration_cast<std::chrono::seconds>(cfg.leafValidity);
    auto forger = tls::LeafForger::create(std::make_shared<const tls::CertAuthority>(std::move(ca.value())), fo);
    if (!forger)
        return fail("leaf forger: " + forger.error().message);
    tls::LeafCacheOptions lo;
    lo.capacity = cfg.leafCacheSize;
    rt->leaves = std::make_shared<tls::LeafCache>(forger.value(), lo);

    auto down = tls::DownstreamContext::create();
    if (!down)
        return fail("downstream TLS: " + down.error().message);
    rt->downstreamTls = std::make_unique<tls::DownstreamContext>(std::move(down.value()));
    tls::UpstreamOptions uo;
    uo.caFile = cfg.upstreamCaFile;
    uo.insecureSkipVerify = cfg.upstreamInsecureSkipVerify;
    auto up = tls::UpstreamContext::create(uo);
    if (!up)
        return fail("upstream TLS (" + cfg.upstreamCaFile + "): " + up.error().message);
    rt->upstreamTls = std::make_unique<tls::UpstreamContext>(std::move(up.value()));
    rt->config = std::move(cfg);
    return rt;
}

} // namespace

int main(int argc, char** argv)
{
    std::string configPath;
    bool check = false;
    long workersOverride = -1;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&](const char* name) -> const char* {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "veild: %s needs a value\n%s", name, kUsage);
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--config")
            configPath = value("--config");
        else if (a == "--check-config") {
            configPath = value("--check-config");
            check = true;
        } else if (a == "--workers")
            workersOverride = std::strtol(value("--workers"), nullptr, 10);
        else if (a == "--help" || a == "-h") {
            std::fputs(kUsage, stdout);
            return 0;
        } else {
            std::fprintf(stderr, "veild: unknown argument '%s'\n%s", a.c_str(), kUsage);
            return 2;
        }
    }
    if (configPath.empty()) {
        std::fputs(kUsage, stderr);
        return 2;
    }

    auto cfg = config::load(configPath);
    if (!cfg)
        return fatal(cfg.error().message);
    auto built = buildRuntime(std::move(cfg.value()));
    if (!built)
        return fatal(built.error().message);
    session::Runtime& rt = *built.value();
    if (check) {
        std::printf("%s: ok (%zu listener(s), %zu target(s), %zu rule(s))\n", configPath.c_str(),
                    rt.config.listeners.size(), rt.config.targets.size(), rt.rules->rules().size());
        return 0;
    }
    if (rt.config.upstreamInsecureSkipVerify)
        session::LogLine("startup", "warn").kv("warning", "upstream certificate verification is OFF").write();

    // Signals are taken by sigwait in this thread only; workers never see them.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    ::signal(SIGPIPE, SIG_IGN);

    // DNS-following: bound before any worker starts, so a missing
    // CAP_NET_ADMIN or a queue taken by another process is a clear fatal
    // error at start (the rules' --queue-bypass keeps DNS working meanwhile).
    std::unique_ptr<dns::Snooper> snooper;
    const auto& cap = rt.config.capture;
    if (cap.present && cap.destinations == config::CaptureDestinations::Dns) {
        auto log = [](std::string_view event, std::string_view level, std::span<const dns::LogField> fields) {
            session::LogLine line(event, level);
            for (const auto& f : fields)
                line.kv(f.key, std::string_view(f.value));
            line.write();
        };
        auto s = dns::Snooper::open(rt.config, rt.metrics, log);
        if (!s)
            return fatal("DNS-following destinations: " + s.error().message);
        snooper = std::move(s.value());
    }

    unsigned n = workersOverride > 0 ? static_cast<unsigned>(workersOverride) : rt.config.workers;
    if (n == 0)
        n = std::max(1u, std::thread::hardware_concurrency());
    std::vector<std::unique_ptr<session::Worker>> workers;
    for (unsigned i = 0; i < n; ++i) {
        workers.push_back(std::make_unique<session::Worker>(rt, i));
        if (auto r = workers.back()->init(); !r)
            return fatal(r.error().message);
    }
    for (auto& w : workers)
        w->start();
    if (snooper) {
        snooper->start();
        session::LogLine("dns_following")
            .kv("queue", static_cast<unsigned>(cap.dnsQueue))
            .kv("backend", cap.backend == config::CaptureBackend::Nft ? "nft" : "ipset")
            .kv("set4", cap.setName + "4")
            .kv("set6", cap.setName + "6")
            .write();
    }
    {
        session::LogLine line("started");
        line.kv("workers", n).kv("rules", static_cast<unsigned long>(rt.rules->rules().size()));
        for (const auto& l : rt.config.listeners)
            line.kv(l.name, l.address);
        line.write();
    }

    for (;;) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            session::LogLine("metrics").kv("summary", rt.metrics.summary()).write();
            continue;
        }
        break;
    }
    rt.draining = true;
    session::LogLine("draining").write();
    if (snooper)
        snooper->stop(); // queued answers get their verdict; then the rules' bypass takes over
    for (auto& w : workers)
        w->requestStop();
    for (auto& w : workers)
        w->join();
    session::LogLine("stopped").kv("summary", rt.metrics.summary()).write();
    return 0;
}
