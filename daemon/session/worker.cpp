#include "session/worker.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "session/log.h"
#include "session/session.h"

namespace veil::session {

using namespace std::chrono_literals;

namespace {
// Provided receive buffers per worker: 16 KiB (one TLS record) each.
constexpr unsigned kBufferCount = 1024;
constexpr unsigned kBufferSize = 16384;
// After accept fails for lack of descriptors or memory, wait before retrying
// instead of spinning; the service recovers once descriptors free up.
constexpr auto kAcceptBackoff = 100ms;
// Sessions quiet for one to two of these give their TLS buffers back.
constexpr auto kBufferSweep = 1s;
} // namespace

Worker::Worker(Runtime& runtime, unsigned index) : runtime_(runtime), index_(index) { wakeOp_.w = this; }

Worker::~Worker()
{
    if (thread_.joinable())
        thread_.join();
    // Sessions own streams whose operations point into them: drop them while
    // the ring still exists (the ring's exit cancels what is left).
    sessions_.clear();
}

Result<void> Worker::init()
{
    auto ring = loop::Ring::create(1024);
    if (!ring)
        return fail(ring.error().message);
    ring_ = std::move(ring.value());
    auto bufs = loop::BufferRing::create(ring_->raw(), 1, kBufferCount, kBufferSize);
    if (!bufs)
        return fail(bufs.error().message);
    buffers_ = std::move(bufs.value());
    masker_ = std::make_unique<mask::Masker>(runtime_.rules);
    acceptRetry_ = std::make_unique<loop::Timer>(*ring_, [this] {
        for (auto& l : listeners_)
            if (!l->armed && !stopping_)
                armAccept(*l);
    });
    drainDeadline_ = std::make_unique<loop::Timer>(*ring_, [this] {
        for (auto& [p, s] : sessions_)
            if (!s->finished())
                s->abort("drain deadline");
    });
    bufferSweep_ = std::make_unique<loop::Timer>(*ring_, [this] {
        for (auto& [p, s] : sessions_)
            s->sweepBuffers();
        bufferSweep_->arm(kBufferSweep);
    });
    for (const auto& cfg : runtime_.config.listeners) {
        auto l = std::make_unique<Listening>();
        l->cfg = cfg;
        l->mode = cfg.mode == config::ListenerMode::Tproxy ? listener::Mode::Tproxy : listener::Mode::Redirect;
        auto at = listener::Address::parse(cfg.address);
        if (!at)
            return fail("listener " + cfg.name + ": " + at.error().message);
        l->at = at.value();
        auto fd = listener::openListener(l->at, l->mode);
        if (!fd)
            return fail("listener " + cfg.name + ": " + fd.error().message);
        l->fd = std::move(fd.value());
        l->op.w = this;
        l->op.l = l.get();
        listeners_.push_back(std::move(l));
    }
    wakeFd_.reset(::eventfd(0, EFD_CLOEXEC));
    if (!wakeFd_)
        return fail(std::string("eventfd: ") + std::strerror(errno));
    return Ok{};
}

void Worker::start()
{
    thread_ = std::thread([this] { run(); });
}

void Worker::join()
{
    if (thread_.joinable())
        thread_.join();
}

void Worker::requestStop()
{
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wakeFd_.get(), &one, sizeof one);
}

void Worker::run()
{
    LogBuffer log; // this thread's lines are written once per turn, before the wait
    for (auto& l : listeners_)
        armAccept(*l);
    armWake();
    bufferSweep_->arm(kBufferSweep);
    while (!ring_->stopping()) {
        ring_->runOnce(1s);
        reapSessions();
        LogBuffer::flush();
        // Not before every listening socket is closed: a loop that ended
        // with its accept's cancel unsubmitted would leave the kernel
        // accepting into a queue nobody reads until the process exits.
        if (stopping_ && sessions_.empty() &&
            std::none_of(listeners_.begin(), listeners_.end(), [](const auto& l) { return bool(l->fd); }))
            ring_->stop();
    }
}

void Worker::armAccept(Listening& l)
{
    l.armed = true;
    io_uring_prep_multishot_accept(ring_->prepare(&l.op), l.fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

void Worker::onAccept(Listening& l, int res, unsigned flags)
{
    if (!(flags & IORING_CQE_F_MORE))
        l.armed = false;
    auto& m = runtime_.metrics;
    if (stopping_ && !l.armed)
        l.fd.reset(); // the accept is over: no operation refers to the socket any more (see onWake)
    if (res < 0) {
        if (res == -ECANCELED || stopping_)
            return;
        m.acceptErrors.add();
        LogLine("accept_failed", "warn").kv("listener", l.cfg.name).kv("error", std::strerror(-res)).write();
        if (!l.armed)
            acceptRetry_->arm(kAcceptBackoff);
        return;
    }
    if (!l.armed && !stopping_)
        armAccept(l);
    UniqueFd fd(res);
    if (stopping_)
        return;
    m.accepted.add();

    sockaddr_storage peer{};
    socklen_t plen = sizeof peer;
    ::getpeername(fd.get(), reinterpret_cast<sockaddr*>(&peer), &plen);
    listener::Address client = listener::Address::fromSockaddr(reinterpret_cast<sockaddr*>(&peer), plen).unmapped();

    if (static_cast<std::size_t>(m.active.get()) >= runtime_.config.limits.maxConnections) {
        m.refusedLimit.add();
        return; // closed by fd's destructor: the client sees the refusal at once
    }
    auto dst = listener::originalDestination(fd.get(), l.mode);
    if (!dst || listener::pointsAtListener(dst.value(), l.at, fd.get(), l.mode)) {
        m.refusedSelf.add();
        LogLine("connection_refused", "warn")
            .kv("client", client.toString())
            .kv("listener", l.cfg.name)
            .kv("reason", dst ? "destination is veild itself (not redirected, or a loop)" : dst.error().message)
            .write();
        return;
    }
    auto session = std::make_unique<Session>(*this, std::move(fd), client, dst.value());
    Session* raw = session.get();
    sessions_.emplace(raw, std::move(session));
    raw->start();
}

void Worker::armWake()
{
    io_uring_prep_read(ring_->prepare(&wakeOp_), wakeFd_.get(), &wakeValue_, sizeof wakeValue_, 0);
}

void Worker::onWake(int, unsigned)
{
    if (stopping_)
        return;
    stopping_ = true;
    // Stop listening; finish what is in flight; force the rest at the
    // deadline. The listening sockets close, not only their accepts: a
    // socket left open would still complete handshakes into its queue
    // (SO_REUSEPORT hashes new connections to it even while another veild
    // listens on the port), and those clients would wait for the drain and
    // then be reset. Closed, new connections go to the other instance, or
    // are refused. A socket with an accept in flight closes when that
    // accept's last completion arrives (onAccept); one without (backing off
    // after EMFILE) closes now — cancelling by descriptor there could hit
    // a socket that reuses the number before the cancel is submitted.
    for (auto& l : listeners_) {
        if (l->armed)
            ring_->cancelFd(l->fd.get());
        else
            l->fd.reset();
    }
    for (auto& [p, s] : sessions_)
        s->drain();
    drainDeadline_->arm(runtime_.config.timeouts.drain);
}

/**
 * Masking is a pure function of the text, and clients send the same few
 * paths over and over, so the masked forms of recent paths are kept: a
 * request then costs a comparison instead of a scan with the whole rule
 * set. Bounded: kPathCacheEntries paths of at most kPathCacheMaxBytes each,
 * replaced round-robin; longer paths are masked every time. The original
 * paths stay in this worker's memory only — never in a log line.
 */
const std::string& Worker::logPath(std::string_view path)
{
    for (const PathEntry& e : pathCache_)
        if (!e.masked.empty() && e.path == path)
            return e.masked;
    auto m = masker_->maskText(path);
    if (!m || m->body.empty() || path.size() > kPathCacheMaxBytes) { // failures are not cached
        uncachedPath_ = m ? std::move(m->body) : std::string("<unmaskable>");
        return uncachedPath_;
    }
    PathEntry& e = pathCache_[pathCacheNext_];
    pathCacheNext_ = (pathCacheNext_ + 1) % kPathCacheEntries;
    e.path.assign(path);
    e.masked = std::move(m->body);
    return e.masked;
}

void Worker::sessionClosing(Session* s)
{
    closing_.push_back(s);
}

void Worker::reapSessions()
{
    if (closing_.empty())
        return;
    std::vector<Session*> still;
    for (Session* s : closing_) {
        auto it = sessions_.find(s); // a session may report closing twice
        if (it == sessions_.end())
            continue;
        if (!s->finished()) {
            still.push_back(s);
            continue;
        }
        sessions_.erase(it);
    }
    closing_.swap(still);
}

} // namespace veil::session
