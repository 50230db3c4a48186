#pragma once

// A TCP socket driven by a Ring: connect with a deadline, receive into
// provided buffers one recv at a time (so pausing is just not re-arming —
// backpressure), and a bounded send queue with one send in flight.
// The owner must keep the Stream alive until idle() after close(): the kernel
// may still be writing into memory the operations point at.

#include <sys/socket.h>

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <utility>

#include "base/unique_fd.h"
#include "loop/ring.h"

namespace veil::loop {

class StreamHandler {
public:
    // Bytes arrived. They are only valid during the call.
    virtual void onData(std::string_view bytes) = 0;
    // The peer closed its side (recv returned 0).
    virtual void onEof() = 0;
    // A socket error (-errno); the stream is unusable; close() it.
    virtual void onError(int err) = 0;
    // connect() finished: 0 or -errno (-ETIMEDOUT after the deadline).
    virtual void onConnected(int) {}
    // Everything queued with send() has been written.
    virtual void onDrained() {}

protected:
    virtual ~StreamHandler() = default;
};

class Stream {
public:
    Stream(Ring& ring, BufferRing& buffers, StreamHandler& handler);
    ~Stream();
    Stream(const Stream&) = delete;
    Stream& operator=(const Stream&) = delete;

    // Takes over an accepted or created socket.
    void attach(UniqueFd fd) { fd_ = std::move(fd); }
    int fd() const { return fd_.get(); }

    // Starts a non-blocking connect to `addr` (the socket must be attached).
    void connect(const sockaddr* addr, socklen_t len, Clock::duration timeout);

    // Keep receiving (arms a recv if none is in flight) / stop after the
    // current one.
    void resume();
    void pause() { wantRecv_ = false; }
    bool receiving() const { return wantRecv_; }

    // Queues bytes to send. Callers bound the queue with pending().
    void send(std::string bytes);
    // An empty string with the capacity of one that was sent already (or
    // none), for the caller to fill and send(): buffers go round instead of
    // being allocated per send. Only strings up to 64 KiB are kept.
    std::string takeBuffer() { return std::exchange(spare_, std::string()); }
    std::size_t pending() const { return queued_; }
    // Half-close once the queue has drained (SHUT_WR).
    void shutdownWrite();

    // Cancels every operation; the descriptor is closed when the last
    // completion has arrived. Handlers are not called after close().
    void close();
    bool closed() const { return closing_; }
    // No operation in flight: the Stream may be destroyed.
    bool idle() const { return inflight_ == 0; }

    std::uint64_t bytesReceived() const { return received_; }
    std::uint64_t bytesSent() const { return sent_; }

private:
    struct RecvOp : Completion {
        Stream* s;
        void complete(int res, unsigned flags) override { s->onRecv(res, flags); }
    };
    struct SendOp : Completion {
        Stream* s;
        void complete(int res, unsigned flags) override { s->onSend(res, flags); }
    };
    struct ConnectOp : Completion {
        Stream* s;
        void complete(int res, unsigned flags) override { s->onConnect(res, flags); }
    };

    void armRecv();
    void armSend();
    void onRecv(int res, unsigned flags);
    void onSend(int res, unsigned flags);
    void onConnect(int res, unsigned flags);
    void finishIfIdle();

    Ring* ring_;
    BufferRing* buffers_;
    StreamHandler* handler_;
    UniqueFd fd_;
    RecvOp recvOp_;
    SendOp sendOp_;
    ConnectOp connectOp_;
    Timer connectTimer_;
    Timer retryTimer_;
    sockaddr_storage peer_{};
    socklen_t peerLen_ = 0;

    std::deque<std::string> queue_;
    std::string spare_; // see takeBuffer()
    std::size_t frontOffset_ = 0;
    std::size_t queued_ = 0;
    bool recvArmed_ = false;
    bool sendArmed_ = false;
    bool connecting_ = false;
    bool timedOut_ = false;
    bool wantRecv_ = false;
    bool wantShutdown_ = false;
    bool closing_ = false;
    int inflight_ = 0;
    std::uint64_t received_ = 0;
    std::uint64_t sent_ = 0;
};

} // namespace veil::loop
