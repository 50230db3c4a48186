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
// Timers with the same deadline fire in the order they were armed.
//
// The ring keeps armed timers in an intrusive binary heap (each Timer knows
// its slot), so arming and cancelling allocate nothing and leave nothing
// behind. Moving an armed timer's deadline later — what a session does on
// every request, body piece and response — only records the new deadline:
// the heap still orders it by the earlier one, and when that earlier moment
// comes the timer is re-placed instead of fired. Only an earlier deadline
// moves it in the heap at once.
class Timer {
public:
    Timer(Ring& ring, std::function<void()> onExpiry) : ring_(&ring), onExpiry_(std::move(onExpiry)) {}
    ~Timer() { cancel(); }
    Timer(const Timer&) = delete;
    Timer& operator=(const Timer&) = delete;

    void arm(Clock::duration after);
    void cancel();
    bool armed() const { return slot_ != kUnarmed; }

private:
    friend class Ring;
    static constexpr std::size_t kUnarmed = static_cast<std::size_t>(-1);
    Ring* ring_;
    std::function<void()> onExpiry_;
    Clock::time_point deadline_{}; // when it fires
    Clock::time_point key_{};      // its order in the heap: <= deadline_
    std::uint64_t seq_ = 0;        // arm order, for equal keys
    std::size_t slot_ = kUnarmed;  // index in Ring::heap_
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

// A Ring may be created in one thread and run in another, but only one
// thread submits to it: the first to call runOnce() (or to fill the SQ in
// prepare()). Buffer rings may be registered before that, from the creating
// thread.
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
    // One iteration: submit what was prepared since the last one, wait at
    // most `maxWait` for completions, dispatch. SQEs prepared while
    // dispatching are submitted by the next call (one io_uring_enter per
    // turn), so a caller that stops calling runOnce must not expect them to
    // have reached the kernel.
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
    std::size_t armedTimers() const { return heap_.size(); }

private:
    friend class Timer;
    Ring() = default;
    void submit();
    void fireTimers();
    // The timer heap (min-heap on (key_, seq_)).
    void armTimer(Timer* t, Clock::time_point deadline);
    void removeTimer(Timer* t);
    void placeTimer(std::size_t slot, Timer* t);
    void siftUp(std::size_t slot);
    void siftDown(std::size_t slot);
    static bool before(const Timer* a, const Timer* b);

    io_uring ring_{};
    void enable();
    bool initialised_ = false;
    bool enabled_ = false; // created disabled; enabled by the first thread that submits
    bool stopping_ = false;
    Clock::time_point now_ = Clock::now();
    std::vector<std::function<void()>> deferred_;
    std::vector<std::function<void()>> running_; // deferred work of this turn (capacity kept)
    std::vector<Cqe> backlog_;
    std::vector<Cqe> batch_; // the completions being dispatched (capacity kept)

    std::vector<Timer*> heap_;
    std::uint64_t nextTimerSeq_ = 1;

    std::uint64_t completions_ = 0;
    std::uint64_t submitBusy_ = 0;
};

} // namespace veil::loop
