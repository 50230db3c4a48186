#include "loop/ring.h"

#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

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

void Timer::arm(Clock::duration after) { ring_->armTimer(this, ring_->now() + after); }

void Timer::cancel()
{
    if (armed())
        ring_->removeTimer(this);
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
    // DEFER_TASKRUN: the kernel runs completion work (a recv whose data
    // arrived, a send's completion) only when this thread enters to wait,
    // in one batch per turn, instead of interrupting it whenever it returns
    // to user space. It requires SINGLE_ISSUER, and the issuer is the thread
    // that creates an enabled ring — workers create theirs in the main
    // thread (so start-up errors surface before threads run) — so the ring
    // starts disabled and the first thread that submits enables it and
    // becomes its issuer (see enable()).
    p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_SINGLE_ISSUER |
              IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED;
    p.cq_entries = entries * 4;
    int rc = io_uring_queue_init_params(entries, &r->ring_, &p);
    if (rc == -EINVAL) { // before 6.1: no DEFER_TASKRUN
        p = io_uring_params{};
        p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN;
        p.cq_entries = entries * 4;
        rc = io_uring_queue_init_params(entries, &r->ring_, &p);
        r->enabled_ = true;
    }
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

void Ring::enable()
{
    // The ring was created disabled (see create()): this thread becomes its
    // only issuer. Failure leaves it disabled; submits then fail on their
    // SQEs and the worker reports the errors.
    // liburing 2.3 declares io_uring_enable_rings but does not export it.
    if (::syscall(__NR_io_uring_register, ring_.ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0) == 0)
        enabled_ = true;
}

void Ring::submit()
{
    if (!enabled_)
        enable();
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

bool Ring::before(const Timer* a, const Timer* b)
{
    return a->key_ < b->key_ || (a->key_ == b->key_ && a->seq_ < b->seq_);
}

void Ring::armTimer(Timer* t, Clock::time_point deadline)
{
    if (t->armed() && deadline >= t->key_) {
        t->deadline_ = deadline; // later: re-placed when its key comes due
        return;
    }
    t->deadline_ = t->key_ = deadline;
    t->seq_ = nextTimerSeq_++;
    if (!t->armed()) {
        heap_.push_back(t);
        t->slot_ = heap_.size() - 1;
    }
    siftUp(t->slot_);
}

void Ring::removeTimer(Timer* t)
{
    std::size_t slot = t->slot_;
    t->slot_ = Timer::kUnarmed;
    Timer* last = heap_.back();
    heap_.pop_back();
    if (last == t)
        return;
    placeTimer(slot, last);
    siftUp(slot);
    siftDown(last->slot_);
}

void Ring::placeTimer(std::size_t slot, Timer* t)
{
    heap_[slot] = t;
    t->slot_ = slot;
}

void Ring::siftUp(std::size_t slot)
{
    Timer* t = heap_[slot];
    while (slot > 0) {
        std::size_t parent = (slot - 1) / 2;
        if (!before(t, heap_[parent]))
            break;
        placeTimer(slot, heap_[parent]);
        slot = parent;
    }
    placeTimer(slot, t);
}

void Ring::siftDown(std::size_t slot)
{
    Timer* t = heap_[slot];
    std::size_t n = heap_.size();
    for (;;) {
        std::size_t child = 2 * slot + 1;
        if (child >= n)
            break;
        if (child + 1 < n && before(heap_[child + 1], heap_[child]))
            ++child;
        if (!before(heap_[child], t))
            break;
        placeTimer(slot, heap_[child]);
        slot = child;
    }
    placeTimer(slot, t);
}

void Ring::fireTimers()
{
    while (!heap_.empty() && heap_.front()->key_ <= now_) {
        Timer* t = heap_.front();
        if (t->deadline_ > now_) { // moved later since it was placed
            t->key_ = t->deadline_;
            t->seq_ = nextTimerSeq_++;
            siftDown(0);
            continue;
        }
        removeTimer(t);
        // May arm, cancel or destroy timers (this one too): the loop looks
        // at the heap afresh each time.
        t->onExpiry_();
    }
}

void Ring::runOnce(Clock::duration maxWait)
{
    now_ = Clock::now();
    Clock::duration wait = maxWait;
    if (!heap_.empty())
        wait = std::min(wait, std::max(Clock::duration::zero(), heap_.front()->key_ - now_));
    if (!backlog_.empty() || !deferred_.empty())
        wait = Clock::duration::zero();
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(wait).count();
    __kernel_timespec ts{};
    ts.tv_sec = ns / 1000000000;
    ts.tv_nsec = ns % 1000000000;
    io_uring_cqe* cqe = nullptr;
    if (!enabled_)
        enable();
    // One io_uring_enter per turn: it submits what the previous turn
    // prepared (completions, timers and deferred work queue SQEs but do not
    // submit them) and waits.
    int rc = io_uring_submit_and_wait_timeout(&ring_, &cqe, wait == Clock::duration::zero() ? 0 : 1, &ts, nullptr);
    if (rc == -EBUSY)
        ++submitBusy_;
    now_ = Clock::now();

    // Take every CQE off the ring before dispatching any, so completions that
    // submit (and may need to reap) never see a half-walked CQ.
    // batch_ and running_ keep their capacity from turn to turn; what
    // dispatch reaps or defers meanwhile goes to backlog_ / deferred_.
    reapInto(&ring_, backlog_);
    batch_.swap(backlog_);
    for (const Cqe& c : batch_) {
        ++completions_;
        if (c.data)
            reinterpret_cast<Completion*>(c.data)->complete(c.res, c.flags);
    }
    batch_.clear();
    fireTimers();
    // Deferred work may defer more; run what exists now, the rest next turn.
    running_.swap(deferred_);
    for (auto& fn : running_)
        fn();
    running_.clear();
}

void Ring::run()
{
    while (!stopping_)
        runOnce(std::chrono::seconds(1));
    submit(); // what the last turn prepared
}

} // namespace veil::loop
