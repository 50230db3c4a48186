#include "loop/ring.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>

namespace veil::loop {

namespace {

// CQEs are taken off the ring before any is dispatched (see runOnce) and
// also when a submit must make room (-EBUSY: the kernel holds overflowed CQEs
// until they are reaped). Either way they wait in backlog_ and are dispatched
// from runOnce only, so no completion runs re-entrantly inside another.
void reapInto(io_uring* ring, std::vector<Ring::Cqe>& out)
{
    io_uring_cqe* cqe;
    unsigned head, n = 0;
    io_uring_for_each_cqe(ring, head, cqe)
    {
        out.push_back({cqe->user_data, cqe->res, cqe->flags});
        ++n;
    }
    io_uring_cq_advance(ring, n);
}

} // namespace

void Timer::arm(Clock::duration after)
{
    cancel();
    id_ = ring_->addTimer(ring_->now() + after, this);
}

void Timer::cancel()
{
    if (id_) {
        ring_->removeTimer(id_);
        id_ = 0;
    }
}

Result<std::unique_ptr<BufferRing>> BufferRing::create(io_uring* ring, std::uint16_t groupId, unsigned count,
                                                        unsigned size)
{
    if (count == 0 || (count & (count - 1)) != 0 || count > 32768)
        return fail("buffer ring size must be a power of two ≤ 32768");
    std::unique_ptr<BufferRing> b(new BufferRing());
    b->ring_ = ring;
    b->group_ = groupId;
    b->count_ = count;
    b->size_ = size;
    b->brBytes_ = count * sizeof(io_uring_buf);
    void* mem = ::mmap(nullptr, b->brBytes_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (mem == MAP_FAILED)
        return fail(std::string("mmap for the buffer ring: ") + std::strerror(errno));
    b->br_ = static_cast<io_uring_buf_ring*>(mem);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<std::uint64_t>(mem);
    reg.ring_entries = count;
    reg.bgid = groupId;
    if (int rc = io_uring_register_buf_ring(ring, &reg, 0); rc < 0) {
        ::munmap(mem, b->brBytes_);
        b->br_ = nullptr;
        return fail(std::string("registering provided buffers: ") + std::strerror(-rc));
    }
    b->storage_ = std::make_unique<char[]>(std::size_t{count} * size);
    io_uring_buf_ring_init(b->br_);
    int mask = io_uring_buf_ring_mask(count);
    for (unsigned i = 0; i < count; ++i)
        io_uring_buf_ring_add(b->br_, b->buffer(i), size, static_cast<unsigned short>(i), mask, static_cast<int>(i));
    io_uring_buf_ring_advance(b->br_, static_cast<int>(count));
    return b;
}

void BufferRing::recycle(unsigned id)
{
    io_uring_buf_ring_add(br_, buffer(id), size_, static_cast<unsigned short>(id), io_uring_buf_ring_mask(count_), 0);
    io_uring_buf_ring_advance(br_, 1);
}

BufferRing::~BufferRing()
{
    if (br_) {
        io_uring_unregister_buf_ring(ring_, group_);
        ::munmap(br_, brBytes_);
    }
}

Result<std::unique_ptr<Ring>> Ring::create(unsigned entries)
{
    std::unique_ptr<Ring> r(new Ring());
    io_uring_params p{};
    // A CQ four times the SQ: multishot accept and many connections finishing
    // at once must not overflow it in normal operation (overflow is still
    // handled: see reap()).
    // Not SINGLE_ISSUER: workers create their ring in the main thread (so
    // start-up errors surface before threads run) and submit from their own.
    p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN;
    p.cq_entries = entries * 4;
    int rc = io_uring_queue_init_params(entries, &r->ring_, &p);
    if (rc == -EINVAL) { // older kernel: drop the optional flags
        p = io_uring_params{};
        p.flags = IORING_SETUP_CQSIZE;
        p.cq_entries = entries * 4;
        rc = io_uring_queue_init_params(entries, &r->ring_, &p);
    }
    if (rc < 0)
        return fail(std::string("io_uring setup: ") + std::strerror(-rc));
    if (!(p.features & IORING_FEAT_NODROP) || !(p.features & IORING_FEAT_EXT_ARG)) {
        io_uring_queue_exit(&r->ring_);
        return fail("io_uring lacks NODROP/EXT_ARG (kernel 5.11 or later is needed)");
    }
    r->initialised_ = true;
    return r;
}

Ring::~Ring()
{
    if (initialised_)
        io_uring_queue_exit(&ring_);
}

void Ring::submit()
{
    for (;;) {
        int rc = io_uring_submit(&ring_);
        if (rc >= 0 || rc == -EINTR)
            return;
        if (rc == -EBUSY || rc == -EAGAIN) {
            ++submitBusy_;
            reapInto(&ring_, backlog_); // make room in the CQ, dispatch later
            continue;
        }
        return; // other errors surface on the SQEs themselves
    }
}

io_uring_sqe* Ring::prepare(Completion* c)
{
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    while (!sqe) {
        submit();
        sqe = io_uring_get_sqe(&ring_);
    }
    io_uring_sqe_set_data(sqe, c);
    return sqe;
}

void Ring::cancelFd(int fd)
{
    io_uring_sqe* sqe = prepare(nullptr);
    io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
}

std::uint64_t Ring::addTimer(Clock::time_point deadline, Timer* t)
{
    std::uint64_t id = nextTimerId_++;
    timers_.emplace(id, t);
    heap_.push({deadline, id});
    return id;
}

void Ring::fireTimers()
{
    while (!heap_.empty() && heap_.top().at <= now_) {
        Due d = heap_.top();
        heap_.pop();
        auto it = timers_.find(d.id);
        if (it == timers_.end())
            continue; // cancelled or re-armed
        Timer* t = it->second;
        timers_.erase(it);
        t->id_ = 0;
        t->onExpiry_();
    }
    // Drop cancelled entries from the top so the next wait is not cut short.
    while (!heap_.empty() && !timers_.count(heap_.top().id))
        heap_.pop();
}

void Ring::runOnce(Clock::duration maxWait)
{
    now_ = Clock::now();
    Clock::duration wait = maxWait;
    if (!heap_.empty())
        wait = std::min(wait, std::max(Clock::duration::zero(), heap_.top().at - now_));
    if (!backlog_.empty() || !deferred_.empty())
        wait = Clock::duration::zero();
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(wait).count();
    __kernel_timespec ts{};
    ts.tv_sec = ns / 1000000000;
    ts.tv_nsec = ns % 1000000000;
    io_uring_cqe* cqe = nullptr;
    int rc = io_uring_submit_and_wait_timeout(&ring_, &cqe, wait == Clock::duration::zero() ? 0 : 1, &ts, nullptr);
    if (rc == -EBUSY)
        ++submitBusy_;
    now_ = Clock::now();

    // Take every CQE off the ring before dispatching any, so completions that
    // submit (and may need to reap) never see a half-walked CQ.
    reapInto(&ring_, backlog_);
    std::vector<Cqe> batch;
    batch.swap(backlog_);
    for (const Cqe& c : batch) {
        ++completions_;
        if (c.data)
            reinterpret_cast<Completion*>(c.data)->complete(c.res, c.flags);
    }
    fireTimers();
    // Deferred work may defer more; run what exists now, the rest next turn.
    std::vector<std::function<void()>> todo;
    todo.swap(deferred_);
    for (auto& fn : todo)
        fn();
    io_uring_submit(&ring_);
}

void Ring::run()
{
    while (!stopping_)
        runOnce(std::chrono::seconds(1));
}

} // namespace veil::loop
