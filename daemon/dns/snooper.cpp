#include "dns/snooper.h"

#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <libnetfilter_queue/libnetfilter_queue.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace veil::dns {

namespace {

// DNS over UDP is at most 64 KiB; NFQUEUE copies up to this much of each
// packet (IP header included).
constexpr unsigned kCopyRange = 0xFFFF;
// Room for one netlink message carrying a whole copied packet plus its
// attributes.
constexpr std::size_t kRecvBuffer = kCopyRange + 8192;
constexpr std::uint32_t kQueueLength = 4096; // packets the kernel holds for us (then: fail open)
constexpr int kSocketBuffer = 8 << 20;
constexpr unsigned kBatch = 256; // messages read per wake-up before stop is looked at again

std::string errnoText(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

} // namespace

Snooper::Snooper(std::unique_ptr<SetUpdater> sets, const config::Config& cfg, metrics::Metrics& metrics,
                 LogFn log)
    : sets_(std::move(sets)),
      follower_([&cfg](std::string_view name) { return cfg.targetFor(name) != nullptr; }, *sets_, metrics,
                std::move(log),
                FollowerOptions{cfg.capture.dnsTtlFloor, cfg.capture.dnsTtlCeiling, cfg.capture.ipv6}),
      buf_(kRecvBuffer)
{
}

Result<std::unique_ptr<Snooper>> Snooper::open(const config::Config& cfg, metrics::Metrics& metrics, LogFn log)
{
    const auto& c = cfg.capture;
    auto sets = c.backend == config::CaptureBackend::Nft ? openNftSets("veil", c.setName + "4", c.setName + "6")
                                                         : openIpsets(c.setName + "4", c.setName + "6");
    if (!sets)
        return fail(sets.error().message);
    auto s = std::make_unique<Snooper>(std::move(sets.value()), cfg, metrics, std::move(log));
    const std::string q = "NFQUEUE " + std::to_string(c.dnsQueue);
    s->stop_ = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!s->stop_)
        return fail(errnoText("eventfd"));
    s->handle_ = nfq_open();
    if (s->handle_ == nullptr)
        return fail(errnoText("NFQUEUE: cannot open a netlink socket"));
    s->queue_ = nfq_create_queue(s->handle_, c.dnsQueue, &Snooper::onQueued, s.get());
    if (s->queue_ == nullptr) {
        std::string why = errno == EPERM   ? " (binding a queue needs CAP_NET_ADMIN)"
                          : errno == EBUSY ? " (another process reads this queue)"
                                           : "";
        return fail(errnoText(("cannot bind " + q).c_str()) + why);
    }
    if (nfq_set_mode(s->queue_, NFQNL_COPY_PACKET, kCopyRange) < 0)
        return fail(errnoText((q + ": cannot set copy mode").c_str()));
    if (nfq_set_queue_flags(s->queue_, NFQA_CFG_F_FAIL_OPEN, NFQA_CFG_F_FAIL_OPEN) < 0)
        return fail(errnoText((q + ": kernel refuses fail-open (DNS could be dropped)").c_str()));
    if (nfq_set_queue_maxlen(s->queue_, kQueueLength) < 0)
        return fail(errnoText((q + ": cannot set the queue length").c_str()));
    int fd = nfq_fd(s->handle_);
    // A large receive buffer makes ENOBUFS (messages lost) rare; FORCE needs
    // CAP_NET_ADMIN, which we have, and the plain call is the fallback.
    if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &kSocketBuffer, sizeof kSocketBuffer) < 0)
        (void)::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &kSocketBuffer, sizeof kSocketBuffer);
    return s;
}

Snooper::~Snooper()
{
    stop();
    close();
}

void Snooper::start()
{
    if (!thread_.joinable())
        thread_ = std::thread([this] { run(); });
}

void Snooper::stop()
{
    if (!thread_.joinable())
        return;
    std::uint64_t one = 1;
    (void)!::write(stop_.get(), &one, sizeof one);
    thread_.join();
    close();
}

void Snooper::close()
{
    if (queue_)
        nfq_destroy_queue(queue_);
    queue_ = nullptr;
    if (handle_)
        nfq_close(handle_);
    handle_ = nullptr;
}

int Snooper::onQueued(nfq_q_handle* qh, nfgenmsg*, nfq_data* nfa, void* self)
{
    auto* s = static_cast<Snooper*>(self);
    auto* hdr = nfq_get_msg_packet_hdr(nfa);
    if (hdr == nullptr)
        return 0; // no packet id: nothing we could give a verdict for
    unsigned char* data = nullptr;
    int len = nfq_get_payload(nfa, &data);
    // The set update happens before the verdict (the contract of this class).
    s->follower_.onPacket(len > 0 ? std::span<const std::uint8_t>(data, static_cast<std::size_t>(len))
                                  : std::span<const std::uint8_t>(),
                          Follower::Clock::now());
    if (nfq_set_verdict(qh, ntohl(hdr->packet_id), NF_ACCEPT, 0, nullptr) < 0)
        s->follower_.queueError("verdict failed", Follower::Clock::now());
    return 0;
}

// Reads what is queued (non-blocking), at most kBatch messages.
void Snooper::receive()
{
    int fd = nfq_fd(handle_);
    for (unsigned i = 0; i < kBatch; ++i) {
        ssize_t n = ::recv(fd, buf_.data(), buf_.size(), MSG_DONTWAIT);
        if (n > 0) {
            nfq_handle_packet(handle_, buf_.data(), static_cast<int>(n));
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == ENOBUFS) {
            // The kernel could not deliver some messages; with fail-open it
            // accepted those packets itself. Nothing is stuck: go on.
            follower_.queueError("ENOBUFS: queue messages lost (accepted by the kernel)", Follower::Clock::now());
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        follower_.queueError(n == 0 ? "netlink socket closed" : std::strerror(errno), Follower::Clock::now());
        return;
    }
}

void Snooper::run()
{
    int fd = nfq_fd(handle_);
    for (;;) {
        auto now = Follower::Clock::now();
        auto next = follower_.flush(now);
        int timeout = -1;
        if (next != Follower::Clock::time_point::max()) // a held-back error line is due then
            timeout = static_cast<int>(
                std::max<long long>(0, std::chrono::ceil<std::chrono::milliseconds>(next - now).count() + 1));
        pollfd p[2] = {{fd, POLLIN, 0}, {stop_.get(), POLLIN, 0}};
        int r = ::poll(p, 2, timeout);
        if (r < 0 && errno != EINTR) {
            follower_.queueError(errnoText("poll"), Follower::Clock::now());
            continue;
        }
        if (p[1].revents)
            break;
        if (p[0].revents) // POLLIN, or POLLERR for ENOBUFS: recv reports it
            receive();
    }
    // Packets already queued get their verdict before the queue is unbound
    // (unbinding drops what is still pending). One that arrives between this
    // drain and the unbind is lost; its client retries.
    receive();
    follower_.flush(Follower::Clock::time_point::max());
}

} // namespace veil::dns
