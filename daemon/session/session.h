#pragma once

// One client connection and its upstream connection: the only module that
// knows all the others. Its phases, in order (Pingora-style names):
//
//   peek        read the ClientHello, decide from the SNI: intercept, splice
//               or reject
//   connect     TCP to the original destination (both intercept and splice)
//   upstreamTls TLS with the client's SNI, certificate and hostname verified;
//               a failure ends here: the client gets a TLS alert, never a
//               certificate from the lab CA, and no request byte goes out
//   downstreamTls
//               forge (or reuse) the leaf for the SNI, finish the client's
//               handshake with the peeked ClientHello
//   http        request_filter: parse, route, buffer + mask masked bodies
//               (fail closed), relay; response_filter: unmask JSON and SSE
//               with that request's mapping; logging: one line per request;
//               fail_to_proxy: JSON errors that say their side
//   splice      bytes relayed untouched both ways (non-target SNI)
//
// Lifetime: owned by its Worker; closes its streams and is destroyed (via
// Ring::defer) only once no io_uring operation of either stream is in flight.

#include <memory>
#include <optional>
#include <string>

#include "http/error.h"
#include "http/parser.h"
#include "listener/address.h"
#include "loop/stream.h"
#include "mask/mapping.h"
#include "mask/masker.h"
#include "mask/restore.h"
#include "mask/sse.h"
#include "tls/endpoint.h"

namespace veil::session {

class Worker;

class Session {
public:
    Session(Worker& worker, UniqueFd downstream, listener::Address client, listener::Address destination);
    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    void start();
    // SIGTERM: close now if idle, else after the exchange in flight.
    void drain();
    // Closed, and no operation of either stream in flight.
    bool finished() const;
    // Closes at once (drain deadline, worker shutdown).
    void abort(const char* why);
    // Called by the worker every kBufferSweep: a session with no event
    // during a whole interval gives its TLS record buffers back (they are
    // kept while it is busy: freeing them per record costs more than it
    // saves).
    void sweepBuffers();

private:
    enum class Phase { Peek, Connect, UpstreamTls, DownstreamTls, Http, Splice, Closing };

    // Every entry into the session from the loop (stream events, the timer,
    // the worker's drain/abort) holds a Batch: plaintext that sendDown() and
    // sendUp() queue while it is held is encrypted and handed to the stream
    // when the outermost Batch ends, so the pieces one event produces (a
    // head, its body, a chunk terminator) leave as one TLS record and one
    // send instead of one each.
    class Batch {
    public:
        explicit Batch(Session& s) : s_(s)
        {
            ++s_.batchDepth_;
            s_.quietSweeps_ = 0;
        }
        ~Batch()
        {
            if (--s_.batchDepth_ == 0)
                s_.flushPlaintext();
        }
        Batch(const Batch&) = delete;
        Batch& operator=(const Batch&) = delete;

    private:
        Session& s_;
    };

    struct DownHandler : loop::StreamHandler {
        Session* s;
        void onData(std::string_view b) override
        {
            Batch batch(*s);
            s->onDownData(b);
        }
        void onEof() override
        {
            Batch batch(*s);
            s->onDownEof();
        }
        void onError(int e) override
        {
            Batch batch(*s);
            s->onStreamError(e, true);
        }
        void onDrained() override
        {
            Batch batch(*s);
            s->onDownDrained();
        }
    };
    struct UpHandler : loop::StreamHandler {
        Session* s;
        void onData(std::string_view b) override
        {
            Batch batch(*s);
            s->onUpData(b);
        }
        void onEof() override
        {
            Batch batch(*s);
            s->onUpEof();
        }
        void onError(int e) override
        {
            Batch batch(*s);
            s->onStreamError(e, false);
        }
        void onConnected(int r) override
        {
            Batch batch(*s);
            s->onUpConnected(r);
        }
        void onDrained() override
        {
            Batch batch(*s);
            s->onUpDrained();
        }
    };

    // One request/response exchange.
    struct Exchange;

    // --- phases
    void onDownData(std::string_view bytes);
    void onDownEof();
    void onUpData(std::string_view bytes);
    void onUpEof();
    void onStreamError(int err, bool downstream);
    void onUpConnected(int res);
    void onDownDrained();
    void onUpDrained();
    void onTimeout();

    void peek();
    void connectUpstream();
    void startUpstreamTls();
    void pumpUpstreamHandshake();
    void startDownstreamTls();
    void pumpDownstreamHandshake();
    void enterHttp();

    // --- http
    void readDownstreamTls();
    // The client ended its side: close, or answer a request it cut mid-body.
    void afterClientEnd();
    void readUpstreamTls();
    void processRequests();
    bool onRequestHead();
    void onRequestBody(std::string_view body);
    void onRequestEnd();
    void maskAndSend();
    void processResponses();
    void onResponseHead();
    void onResponseBody(std::string_view body);
    void onResponseEnd();
    void sendResponseBytes(std::string_view plaintext);
    void finishExchange();
    void answerError(const http::HttpError& e, bool close);
    void upstreamFailed(const std::string& why, int status);
    void logExchange();

    // --- I/O helpers
    // Plaintext toward the client / upstream (Http phase): queued, and
    // encrypted and sent when the current Batch ends (at once outside one).
    void sendDown(std::string_view plaintext);
    void sendUp(std::string_view plaintext);
    // Encrypts what sendDown/sendUp queued and hands it to the streams
    // (dropped once the session is Closing: nothing more may go out then).
    void flushPlaintext();
    const std::string& clientText(); // client_.toString(), formatted once
    // Bytes on their way to one side: in the stream's send queue, or still
    // gathered in this batch as plaintext or as ciphertext not yet handed to
    // the stream (counted by its plaintext size) — for backpressure.
    std::size_t downQueued() const;
    std::size_t upQueued() const;
    void flushDownTls();
    void flushUpTls();
    void applyBackpressure();
    void armTimer(std::chrono::milliseconds after);
    void armBodyTimer();

    void closeGracefully();
    void closeNow(bool resetDownstream = false);
    void maybeFinishClose();

    Worker& worker_;
    DownHandler downHandler_;
    UpHandler upHandler_;
    loop::Stream down_;
    loop::Stream up_;
    loop::Timer timer_;
    listener::Address client_;
    listener::Address destination_;
    Phase phase_ = Phase::Peek;
    std::string sni_;
    std::string peek_;
    std::optional<tls::TlsEndpoint> downTls_;
    std::optional<tls::TlsEndpoint> upTls_;
    http::RequestParser requests_;
    http::ResponseParser responses_;
    std::string downIn_; // client plaintext not yet parsed
    std::size_t downOff_ = 0;
    std::string upIn_;   // upstream plaintext not yet parsed
    std::size_t upOff_ = 0;
    std::unique_ptr<Exchange> ex_;
    std::string downPlain_; // plaintext for the client, not yet encrypted (see Batch)
    std::string upPlain_;   // plaintext for upstream, not yet encrypted
    std::size_t downEncrypted_ = 0; // plaintext bytes encrypted but not yet handed to down_
    std::size_t upEncrypted_ = 0;
    int batchDepth_ = 0;
    unsigned char quietSweeps_ = 0; // sweeps since the last event (see sweepBuffers)
    std::string clientText_;
    bool downEof_ = false;
    bool upEof_ = false;
    bool upConnected_ = false;
    bool draining_ = false;
    bool closeWhenDrained_ = false;
    bool counted_ = false;
    bool spliceDownEof_ = false;
    // Closing after an answer sent before the request was read to its end
    // (an early error): the client may still be sending. Closing the socket
    // with unread input would send an RST that destroys the answer in
    // flight, so the downstream half-closes and reads (discarding) until
    // the client's FIN or the close timer — a lingering close.
    bool headTimerArmed_ = false; // request_headers runs for the head being read
    bool lingerDown_ = false;
    bool lingering_ = false;
    bool spliceUpEof_ = false;
    std::chrono::steady_clock::time_point started_;
};

} // namespace veil::session
