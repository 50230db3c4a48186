#pragma once

// One io_uring per worker thread. Every operation's user_data points at one
// Completion; the loop calls complete(res, flags) for each CQE and nothing
// else. Whoever owns a Completion keeps it (and every buffer the operation
// uses) alive until that CQE has arrived — also after a cancel, which only
// makes the CQE come sooner (with -ECANCELED).

#include <liburing.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <queue>
#include <unordered_map>
#include <vector>

#include "base/result.h"

namespace veil::loop {

using Clock = std::chrono::steady_clock;

class Completion {
public:
    // res: the CQE's result (>= 0 or -errno); flags: the CQE's flags
    // (IORING_CQE_F_MORE, IORING_CQE_F_BUFFER, ...).
    virtual void complete(int res, unsigned flags) = 0;

protected:
    virtual ~Completion() = default;
};

class Ring;

// A deadline on the ring's clock. Owned by its user; destroying it disarms it.
class Timer {
public:
    Timer(Ring& ring, std::function<void()> onExpiry) : ring_(&ring), onExpiry_(std::move(onExpiry)) {}
    ~Timer() { cancel(); }
    Timer(const Timer&) = delete;
    Timer& operator=(const Timer&) = delete;

    void arm(Clock::duration after);
    void cancel();
    bool armed() const { return id_ != 0; }

private:
    friend class Ring;
    Ring* ring_;
    std::function<void()> onExpiry_;
    std::uint64_t id_ = 0;
};

// Provided buffers (IORING_REGISTER_PBUF_RING): the kernel picks a buffer for
// a recv when data arrives, so idle connections hold no receive memory.
class BufferRing {
public:
    static Result<std::unique_ptr<BufferRing>> create(io_uring* ring, std::uint16_t groupId, unsigned count,
                                                      unsigned size);
    ~BufferRing();
    BufferRing(const BufferRing&) = delete;
    BufferRing& operator=(const BufferRing&) = delete;

    std::uint16_t groupId() const { return group_; }
    unsigned bufferSize() const { return size_; }
    // The buffer a recv completion names (flags >> IORING_CQE_BUFFER_SHIFT).
    char* buffer(unsigned id) { return storage_.get() + std::size_t{id} * size_; }
    // Gives a buffer back to the kernel once its bytes have been consumed.
    void recycle(unsigned id);

private:
    BufferRing() = default;
    io_uring* ring_ = nullptr;
    io_uring_buf_ring* br_ = nullptr;
    std::size_t brBytes_ = 0;
    std::unique_ptr<char[]> storage_;
    std::uint16_t group_ = 0;
    unsigned count_ = 0;
    unsigned size_ = 0;
};

class Ring {
public:
    static Result<std::unique_ptr<Ring>> create(unsigned entries = 1024);
    ~Ring();
    Ring(const Ring&) = delete;
    Ring& operator=(const Ring&) = delete;

    // An SQE whose completion goes to `c` (nullptr: completion ignored).
    // Submits queued SQEs first if the submission queue is full; never null.
    io_uring_sqe* prepare(Completion* c);

    // Asks the kernel to cancel every operation on `fd`; their CQEs still
    // arrive (with -ECANCELED) and must still be waited for.
    void cancelFd(int fd);

    // Runs `fn` after the current batch of completions (e.g. to free an object
    // whose last operation just completed, outside its own complete()).
    void defer(std::function<void()> fn) { deferred_.push_back(std::move(fn)); }

    // Dispatches completions, timers and deferred work until stop().
    void run();
    // One iteration: wait at most `maxWait` for completions, dispatch.
    void runOnce(Clock::duration maxWait);
    void stop() { stopping_ = true; }
    bool stopping() const { return stopping_; }

    // Cached at each loop iteration: cheap, monotonic.
    Clock::time_point now() const { return now_; }
    io_uring* raw() { return &ring_; }

    struct Cqe {
        std::uint64_t data;
        int res;
        unsigned flags;
    };

    // Counters for metrics and tests.
    std::uint64_t completions() const { return completions_; }
    std::uint64_t submitBusy() const { return submitBusy_; }

private:
    friend class Timer;
    Ring() = default;
    void submit();
    void fireTimers();
    std::uint64_t addTimer(Clock::time_point deadline, Timer* t);
    void removeTimer(std::uint64_t id) { timers_.erase(id); }

    io_uring ring_{};
    bool initialised_ = false;
    bool stopping_ = false;
    Clock::time_point now_ = Clock::now();
    std::vector<std::function<void()>> deferred_;
    std::vector<Cqe> backlog_;

    struct Due {
        Clock::time_point at;
        std::uint64_t id;
        bool operator>(const Due& o) const { return at > o.at || (at == o.at && id > o.id); }
    };
    std::priority_queue<Due, std::vector<Due>, std::greater<>> heap_;
    std::unordered_map<std::uint64_t, Timer*> timers_;
    std::uint64_t nextTimerId_ = 1;

    std::uint64_t completions_ = 0;
    std::uint64_t submitBusy_ = 0;
};

} // namespace veil::loop
