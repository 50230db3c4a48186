#include "loop/stream.h"

#include <cerrno>
#include <cstring>

namespace veil::loop {

namespace {
// When the kernel found no free provided buffer (-ENOBUFS), retry after a
// short pause: buffers come back as other streams consume their data.
constexpr auto kNoBufferRetry = std::chrono::milliseconds(2);
// Queued sends are merged up to this size (a copy; larger ones stay apart).
constexpr std::size_t kMergeLimit = 64 * 1024;
} // namespace

Stream::Stream(Ring& ring, BufferRing& buffers, StreamHandler& handler)
    : ring_(&ring), buffers_(&buffers), handler_(&handler), connectTimer_(ring, [this] {
          if (connecting_ && !closing_) {
              timedOut_ = true;
              ring_->cancelFd(fd_.get());
          }
      }),
      retryTimer_(ring, [this] {
          if (wantRecv_ && !closing_)
              armRecv();
      })
{
    recvOp_.s = this;
    sendOp_.s = this;
    connectOp_.s = this;
}

Stream::~Stream()
{
    // Destroying a Stream with operations in flight would let the kernel
    // write into freed memory; owners wait for idle() (see close()).
}

void Stream::connect(const sockaddr* addr, socklen_t len, Clock::duration timeout)
{
    std::memcpy(&peer_, addr, len);
    peerLen_ = len;
    connecting_ = true;
    ++inflight_;
    io_uring_prep_connect(ring_->prepare(&connectOp_), fd_.get(), reinterpret_cast<sockaddr*>(&peer_), peerLen_);
    connectTimer_.arm(timeout);
}

void Stream::onConnect(int res, unsigned)
{
    --inflight_;
    connecting_ = false;
    connectTimer_.cancel();
    if (closing_) {
        finishIfIdle();
        return;
    }
    if (res == -ECANCELED && timedOut_)
        res = -ETIMEDOUT;
    handler_->onConnected(res);
}

void Stream::resume()
{
    wantRecv_ = true;
    if (!recvArmed_ && !closing_ && fd_)
        armRecv();
}

void Stream::armRecv()
{
    recvArmed_ = true;
    ++inflight_;
    io_uring_sqe* sqe = ring_->prepare(&recvOp_);
    io_uring_prep_recv(sqe, fd_.get(), nullptr, buffers_->bufferSize(), 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = buffers_->groupId();
}

void Stream::onRecv(int res, unsigned flags)
{
    --inflight_;
    recvArmed_ = false;
    if (flags & IORING_CQE_F_BUFFER) {
        unsigned id = flags >> IORING_CQE_BUFFER_SHIFT;
        if (!closing_ && res > 0) {
            received_ += static_cast<std::uint64_t>(res);
            handler_->onData(std::string_view(buffers_->buffer(id), static_cast<std::size_t>(res)));
        }
        buffers_->recycle(id); // the handler has consumed (copied) the bytes
    }
    if (closing_) {
        finishIfIdle();
        return;
    }
    if (res > 0) {
        if (wantRecv_ && !closing_)
            armRecv();
        return;
    }
    if (res == 0) {
        wantRecv_ = false;
        handler_->onEof();
        return;
    }
    if (res == -ENOBUFS || res == -EINTR || res == -EAGAIN) {
        if (wantRecv_)
            retryTimer_.arm(kNoBufferRetry);
        return;
    }
    wantRecv_ = false;
    handler_->onError(res);
}

void Stream::send(std::string bytes)
{
    if (closing_ || bytes.empty())
        return;
    queued_ += bytes.size();
    // Behind the string in flight (the front, which the kernel reads), small
    // pieces join the last queued string: the next send carries them all.
    if (queue_.size() >= 2 && queue_.back().size() + bytes.size() <= kMergeLimit) {
        queue_.back().append(bytes);
        return;
    }
    queue_.push_back(std::move(bytes));
    if (!sendArmed_)
        armSend();
}

void Stream::armSend()
{
    const std::string& front = queue_.front();
    sendArmed_ = true;
    ++inflight_;
    io_uring_prep_send(ring_->prepare(&sendOp_), fd_.get(), front.data() + frontOffset_,
                       front.size() - frontOffset_, MSG_NOSIGNAL);
}

void Stream::onSend(int res, unsigned)
{
    --inflight_;
    sendArmed_ = false;
    if (closing_) {
        finishIfIdle();
        return;
    }
    if (res == -EINTR || res == -EAGAIN) {
        armSend();
        return;
    }
    if (res < 0) {
        handler_->onError(res);
        return;
    }
    auto n = static_cast<std::size_t>(res);
    sent_ += n;
    queued_ -= n;
    frontOffset_ += n;
    if (frontOffset_ == queue_.front().size()) {
        std::string& done = queue_.front();
        if (done.capacity() <= kMergeLimit && done.capacity() > spare_.capacity()) {
            spare_ = std::move(done);
            spare_.clear();
        }
        queue_.pop_front();
        frontOffset_ = 0;
    }
    if (!queue_.empty()) {
        armSend();
        return;
    }
    if (wantShutdown_)
        ::shutdown(fd_.get(), SHUT_WR);
    handler_->onDrained();
}

void Stream::shutdownWrite()
{
    if (closing_)
        return;
    if (queue_.empty())
        ::shutdown(fd_.get(), SHUT_WR);
    else
        wantShutdown_ = true;
}

void Stream::close()
{
    if (closing_)
        return;
    closing_ = true;
    wantRecv_ = false;
    connectTimer_.cancel();
    retryTimer_.cancel();
    queued_ = 0;
    if (!sendArmed_) // an in-flight send still reads the front string
        queue_.clear();
    if (inflight_ > 0 && fd_)
        ring_->cancelFd(fd_.get());
    finishIfIdle();
}

void Stream::finishIfIdle()
{
    if (closing_ && inflight_ == 0) {
        queue_.clear();
        fd_.reset();
    }
}

} // namespace veil::loop
