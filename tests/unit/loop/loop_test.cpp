#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "base/unique_fd.h"
#include "loop/ring.h"

using namespace veil;
using namespace veil::loop;
using namespace std::chrono_literals;

namespace {

std::unique_ptr<Ring> makeRing()
{
    auto r = Ring::create(64);
    if (!r)
        FAIL("ring: " << r.error().message);
    return std::move(r.value());
}

struct Recorder : Completion {
    std::vector<std::pair<int, unsigned>> seen;
    void complete(int res, unsigned flags) override { seen.push_back({res, flags}); }
};

void runUntil(Ring& ring, const std::function<bool()>& done, Clock::duration limit = 2s)
{
    auto end = Clock::now() + limit;
    while (!done() && Clock::now() < end)
        ring.runOnce(20ms);
}

std::pair<UniqueFd, UniqueFd> socketPair()
{
    int sv[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    return {UniqueFd(sv[0]), UniqueFd(sv[1])};
}

} // namespace

TEST_CASE("timers fire in deadline order and cancelled or destroyed ones never fire")
{
    auto ring = makeRing();
    std::vector<int> order;
    Timer a(*ring, [&] { order.push_back(1); });
    Timer b(*ring, [&] { order.push_back(2); });
    Timer c(*ring, [&] { order.push_back(3); });
    auto d = std::make_unique<Timer>(*ring, [&] { order.push_back(4); });
    b.arm(30ms);
    a.arm(10ms);
    c.arm(20ms);
    d->arm(5ms);
    d.reset();
    c.cancel();
    runUntil(*ring, [&] { return order.size() >= 2; });
    ring->runOnce(40ms);
    CHECK(order == std::vector<int>{1, 2});
    CHECK_FALSE(a.armed());
}

TEST_CASE("re-arming a timer moves its deadline")
{
    auto ring = makeRing();
    int fired = 0;
    Timer t(*ring, [&] { ++fired; });
    t.arm(10ms);
    t.arm(200ms);
    auto start = Clock::now();
    runUntil(*ring, [&] { return fired > 0; });
    CHECK(fired == 1);
    CHECK(Clock::now() - start >= 190ms);
}

TEST_CASE("re-arming a timer earlier fires it at the earlier deadline")
{
    auto ring = makeRing();
    int fired = 0;
    Timer t(*ring, [&] { ++fired; });
    Timer later(*ring, [] {});
    later.arm(5s);
    t.arm(5s);
    t.arm(20ms);
    auto start = Clock::now();
    runUntil(*ring, [&] { return fired > 0; });
    CHECK(fired == 1);
    CHECK(Clock::now() - start < 2s);
    CHECK(later.armed());
}

TEST_CASE("timers due together fire in the order they were armed")
{
    auto ring = makeRing();
    std::vector<int> order;
    Timer a(*ring, [&] { order.push_back(1); });
    Timer b(*ring, [&] { order.push_back(2); });
    Timer c(*ring, [&] { order.push_back(3); });
    ring->runOnce(0ms); // now() is fixed between turns: the three deadlines are equal
    a.arm(10ms);
    b.arm(10ms);
    c.arm(10ms);
    a.arm(10ms); // same deadline again: keeps its place
    runUntil(*ring, [&] { return order.size() == 3; });
    CHECK(order == std::vector<int>{1, 2, 3});
}

TEST_CASE("re-arming and cancelling many times leaves one entry per armed timer")
{
    auto ring = makeRing();
    int fired = 0;
    Timer t(*ring, [&] { ++fired; });
    std::vector<std::unique_ptr<Timer>> others;
    for (int i = 0; i < 8; ++i) {
        others.push_back(std::make_unique<Timer>(*ring, [] {}));
        others.back()->arm(std::chrono::seconds(10 + i));
    }
    for (int i = 0; i < 10000; ++i) {
        t.arm(std::chrono::milliseconds(1000 + i % 7)); // later and earlier, as a session does
        if (i % 3 == 0)
            others[static_cast<std::size_t>(i) % others.size()]->arm(std::chrono::seconds(20 - i % 5));
        if (i % 101 == 0)
            others[static_cast<std::size_t>(i) % others.size()]->cancel();
    }
    std::size_t armed = 1;
    for (auto& o : others)
        armed += o->armed() ? 1 : 0;
    CHECK(ring->armedTimers() == armed);
    t.cancel();
    others.clear();
    CHECK(ring->armedTimers() == 0);
    ring->runOnce(0ms);
    CHECK(fired == 0);
}

TEST_CASE("a timer may re-arm itself and destroy others from its callback")
{
    auto ring = makeRing();
    int fired = 0;
    auto victim = std::make_unique<Timer>(*ring, [] { FAIL("destroyed timer fired"); });
    Timer t(*ring, [&] {
        if (++fired < 3)
            t.arm(1ms);
        victim.reset();
    });
    t.arm(1ms);
    victim->arm(1ms);
    runUntil(*ring, [&] { return fired >= 3; });
    CHECK(fired == 3);
    CHECK(ring->armedTimers() == 0);
}

TEST_CASE("a recv with a provided buffer delivers the bytes and names the buffer")
{
    auto ring = makeRing();
    auto bufs = BufferRing::create(ring->raw(), 1, 4, 4096);
    REQUIRE(bufs.ok());
    auto [x, y] = socketPair();
    Recorder rec;
    io_uring_sqe* sqe = ring->prepare(&rec);
    io_uring_prep_recv(sqe, y.get(), nullptr, 4096, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = bufs.value()->groupId();
    REQUIRE(::write(x.get(), "hello", 5) == 5);
    runUntil(*ring, [&] { return !rec.seen.empty(); });
    REQUIRE(rec.seen.size() == 1);
    CHECK(rec.seen[0].first == 5);
    REQUIRE((rec.seen[0].second & IORING_CQE_F_BUFFER));
    unsigned id = rec.seen[0].second >> IORING_CQE_BUFFER_SHIFT;
    CHECK(std::string(bufs.value()->buffer(id), 5) == "hello");
    bufs.value()->recycle(id);
}

TEST_CASE("a recv finds no buffer until one is recycled")
{
    auto ring = makeRing();
    auto bufs = BufferRing::create(ring->raw(), 2, 1, 1024);
    REQUIRE(bufs.ok());
    auto [x, y] = socketPair();
    Recorder first, second, third;
    auto recv = [&](Recorder& r) {
        io_uring_sqe* sqe = ring->prepare(&r);
        io_uring_prep_recv(sqe, y.get(), nullptr, 1024, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = bufs.value()->groupId();
    };
    recv(first);
    REQUIRE(::write(x.get(), "a", 1) == 1);
    runUntil(*ring, [&] { return !first.seen.empty(); });
    REQUIRE(first.seen.size() == 1);
    REQUIRE(first.seen[0].first == 1);
    REQUIRE(::write(x.get(), "b", 1) == 1);
    recv(second);
    runUntil(*ring, [&] { return !second.seen.empty(); });
    REQUIRE(second.seen.size() == 1);
    CHECK(second.seen[0].first == -ENOBUFS);
    bufs.value()->recycle(first.seen[0].second >> IORING_CQE_BUFFER_SHIFT);
    recv(third);
    runUntil(*ring, [&] { return !third.seen.empty(); });
    REQUIRE(third.seen.size() == 1);
    CHECK(third.seen[0].first == 1);
}

TEST_CASE("cancelling a descriptor completes its pending operations with ECANCELED")
{
    auto ring = makeRing();
    auto [x, y] = socketPair();
    char buf[16];
    Recorder rec;
    io_uring_prep_recv(ring->prepare(&rec), y.get(), buf, sizeof buf, 0);
    ring->runOnce(10ms);
    CHECK(rec.seen.empty());
    ring->cancelFd(y.get());
    runUntil(*ring, [&] { return !rec.seen.empty(); });
    REQUIRE(rec.seen.size() == 1);
    CHECK(rec.seen[0].first == -ECANCELED);
}

TEST_CASE("multishot accept reports every connection and keeps going")
{
    auto ring = makeRing();
    UniqueFd lfd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(lfd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(lfd.get(), 16) == 0);
    socklen_t len = sizeof a;
    REQUIRE(::getsockname(lfd.get(), reinterpret_cast<sockaddr*>(&a), &len) == 0);
    Recorder rec;
    io_uring_prep_multishot_accept(ring->prepare(&rec), lfd.get(), nullptr, nullptr, SOCK_CLOEXEC);
    std::vector<UniqueFd> clients;
    for (int i = 0; i < 3; ++i) {
        clients.emplace_back(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        REQUIRE(::connect(clients.back().get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    }
    runUntil(*ring, [&] { return rec.seen.size() >= 3; });
    REQUIRE(rec.seen.size() == 3);
    for (auto [res, flags] : rec.seen) {
        CHECK(res >= 0);
        CHECK((flags & IORING_CQE_F_MORE));
        UniqueFd accepted(res);
    }
    ring->cancelFd(lfd.get());
    runUntil(*ring, [&] { return rec.seen.size() >= 4; });
    REQUIRE(rec.seen.size() == 4);
    CHECK(rec.seen[3].first == -ECANCELED);
}

TEST_CASE("deferred work runs after the batch that scheduled it")
{
    auto ring = makeRing();
    std::vector<int> order;
    ring->defer([&] {
        order.push_back(1);
        ring->defer([&] { order.push_back(3); });
    });
    order.push_back(0);
    ring->runOnce(0ms);
    order.push_back(2);
    ring->runOnce(0ms);
    CHECK(order == std::vector<int>{0, 1, 2, 3});
}

#include "loop/stream.h"

namespace {

struct Peer : StreamHandler {
    std::string got;
    bool eof = false;
    int error = 0;
    int connected = 1;
    int drained = 0;
    void onData(std::string_view b) override { got += b; }
    void onEof() override { eof = true; }
    void onError(int e) override { error = e; }
    void onConnected(int r) override { connected = r; }
    void onDrained() override { ++drained; }
};

} // namespace

TEST_CASE("a stream sends a queue larger than one buffer and the peer receives it in order")
{
    auto ring = makeRing();
    auto bufs = BufferRing::create(ring->raw(), 3, 8, 4096);
    REQUIRE(bufs.ok());
    auto [x, y] = socketPair();
    Peer a, b;
    Stream sa(*ring, *bufs.value(), a), sb(*ring, *bufs.value(), b);
    sa.attach(std::move(x));
    sb.attach(std::move(y));
    sb.resume();
    std::string big;
    for (int i = 0; i < 50000; ++i)
        big += std::to_string(i) + ",";
    sa.send(big.substr(0, 1000));
    sa.send(big.substr(1000));
    CHECK(sa.pending() == big.size());
    runUntil(*ring, [&] { return b.got.size() >= big.size(); }, 5s);
    CHECK(b.got == big);
    CHECK(sa.pending() == 0);
    CHECK(a.drained >= 1);
    sa.shutdownWrite();
    runUntil(*ring, [&] { return b.eof; });
    CHECK(b.eof);
    sa.close();
    sb.close();
    runUntil(*ring, [&] { return sa.idle() && sb.idle(); });
    CHECK(sa.idle());
    CHECK(sb.idle());
}

TEST_CASE("a paused stream reads nothing more until resumed")
{
    auto ring = makeRing();
    auto bufs = BufferRing::create(ring->raw(), 4, 8, 4096);
    REQUIRE(bufs.ok());
    auto [x, y] = socketPair();
    Peer b;
    Stream sb(*ring, *bufs.value(), b);
    sb.attach(std::move(y));
    sb.resume();
    REQUIRE(::write(x.get(), "one", 3) == 3);
    runUntil(*ring, [&] { return b.got == "one"; });
    sb.pause();
    // The recv re-armed after "one" may still deliver once; after that, nothing.
    REQUIRE(::write(x.get(), "two", 3) == 3);
    ring->runOnce(50ms);
    std::string seen = b.got;
    REQUIRE(::write(x.get(), "three", 5) == 5);
    ring->runOnce(50ms);
    ring->runOnce(50ms);
    CHECK(b.got == seen);
    sb.resume();
    runUntil(*ring, [&] { return b.got == "onetwothree"; });
    CHECK(b.got == "onetwothree");
    sb.close();
    runUntil(*ring, [&] { return sb.idle(); });
}

TEST_CASE("closing a stream with a recv in flight waits for its completion")
{
    auto ring = makeRing();
    auto bufs = BufferRing::create(ring->raw(), 5, 8, 4096);
    REQUIRE(bufs.ok());
    auto [x, y] = socketPair();
    Peer b;
    Stream sb(*ring, *bufs.value(), b);
    sb.attach(std::move(y));
    sb.resume();
    ring->runOnce(10ms);
    CHECK_FALSE(sb.idle());
    sb.close();
    CHECK(sb.fd() >= 0); // not closed while the kernel may still use it
    runUntil(*ring, [&] { return sb.idle(); });
    CHECK(sb.idle());
    CHECK(sb.fd() < 0);
    CHECK(b.error == 0); // no handler calls after close()
}

TEST_CASE("a connect that gets no answer times out")
{
    auto ring = makeRing();
    auto bufs = BufferRing::create(ring->raw(), 6, 8, 4096);
    REQUIRE(bufs.ok());
    // A listener whose accept queue is full drops further SYNs, so the
    // connect below hangs (all on loopback).
    UniqueFd lfd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(lfd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(lfd.get(), 0) == 0);
    socklen_t len = sizeof a;
    REQUIRE(::getsockname(lfd.get(), reinterpret_cast<sockaddr*>(&a), &len) == 0);
    std::vector<UniqueFd> fillers;
    for (int i = 0; i < 4; ++i) {
        fillers.emplace_back(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        ::connect(fillers.back().get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
    }
    ::usleep(50000);
    Peer p;
    Stream s(*ring, *bufs.value(), p);
    s.attach(UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)));
    s.connect(reinterpret_cast<sockaddr*>(&a), sizeof a, 200ms);
    runUntil(*ring, [&] { return p.connected != 1; }, 3s);
    CHECK(p.connected == -ETIMEDOUT);
    s.close();
    runUntil(*ring, [&] { return s.idle(); });
}
