#pragma once

// One worker thread: its own io_uring ring, provided buffers, SO_REUSEPORT
// listeners (one per configured listener), the sessions it accepted and a
// Masker (Vectorscan scratch is per thread). Nothing here is shared with
// other workers except the Runtime.

#include <array>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <thread>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "listener/listener.h"
#include "loop/ring.h"
#include "mask/masker.h"
#include "session/runtime.h"

namespace veil::session {

class Session;

class Worker {
public:
    Worker(Runtime& runtime, unsigned index);
    ~Worker();
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;

    // Creates the ring, buffers and listening sockets (in the calling thread,
    // so start-up errors surface before any thread runs).
    Result<void> init();
    void start(); // runs the loop in a new thread
    void join();
    // Thread-safe: begin draining (SIGTERM).
    void requestStop();

    loop::Ring& ring() { return *ring_; }
    loop::BufferRing& buffers() { return *buffers_; }
    mask::Masker& masker() { return *masker_; }
    Runtime& runtime() { return runtime_; }
    unsigned index() const { return index_; }
    // A session closed itself: destroy it once its streams are idle.
    void sessionClosing(Session* s);
    // A request path as the log shows it: masked (a path or query may hold
    // an identifier), or "<unmaskable>". Cached: see worker.cpp.
    const std::string& logPath(std::string_view path);

private:
    struct Listening;
    struct AcceptOp : loop::Completion {
        Worker* w;
        Listening* l;
        void complete(int res, unsigned flags) override { w->onAccept(*l, res, flags); }
    };
    struct Listening {
        config::Listener cfg;
        listener::Mode mode;
        listener::Address at;
        UniqueFd fd;
        AcceptOp op;
        bool armed = false;
    };
    struct WakeOp : loop::Completion {
        Worker* w;
        void complete(int res, unsigned flags) override { w->onWake(res, flags); }
    };

    void run();
    void armAccept(Listening& l);
    void onAccept(Listening& l, int res, unsigned flags);
    void onWake(int res, unsigned flags);
    void armWake();
    void reapSessions();

    // logPath()'s cache: a few recent paths and their masked forms.
    struct PathEntry {
        std::string path;
        std::string masked;
    };
    static constexpr std::size_t kPathCacheEntries = 16;
    static constexpr std::size_t kPathCacheMaxBytes = 512;

    Runtime& runtime_;
    unsigned index_;
    std::array<PathEntry, kPathCacheEntries> pathCache_;
    std::size_t pathCacheNext_ = 0;
    std::string uncachedPath_;
    std::unique_ptr<loop::Ring> ring_;
    std::unique_ptr<loop::BufferRing> buffers_;
    std::unique_ptr<mask::Masker> masker_;
    std::vector<std::unique_ptr<Listening>> listeners_;
    std::unordered_map<Session*, std::unique_ptr<Session>> sessions_;
    std::vector<Session*> closing_;
    std::unique_ptr<loop::Timer> acceptRetry_;
    std::unique_ptr<loop::Timer> drainDeadline_;
    std::unique_ptr<loop::Timer> bufferSweep_; // Session::sweepBuffers, every kBufferSweep
    UniqueFd wakeFd_;
    std::uint64_t wakeValue_ = 0;
    WakeOp wakeOp_;
    bool stopping_ = false;
    std::thread thread_;
};

} // namespace veil::session
