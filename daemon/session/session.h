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

private:
    enum class Phase { Peek, Connect, UpstreamTls, DownstreamTls, Http, Splice, Closing };

    struct DownHandler : loop::StreamHandler {
        Session* s;
        void onData(std::string_view b) override { s->onDownData(b); }
        void onEof() override { s->onDownEof(); }
        void onError(int e) override { s->onStreamError(e, true); }
        void onDrained() override { s->onDownDrained(); }
    };
    struct UpHandler : loop::StreamHandler {
        Session* s;
        void onData(std::string_view b) override { s->onUpData(b); }
        void onEof() override { s->onUpEof(); }
        void onError(int e) override { s->onStreamError(e, false); }
        void onConnected(int r) override { s->onUpConnected(r); }
        void onDrained() override { s->onUpDrained(); }
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
    void sendDown(std::string_view plaintext); // through TLS when intercepting
    void sendUp(std::string_view plaintext);
    void flushDownTls();
    void flushUpTls();
    void applyBackpressure();
    void armTimer(std::chrono::milliseconds after);

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
    bool downEof_ = false;
    bool upEof_ = false;
    bool upConnected_ = false;
    bool draining_ = false;
    bool closeWhenDrained_ = false;
    bool counted_ = false;
    bool spliceDownEof_ = false;
    bool spliceUpEof_ = false;
    std::chrono::steady_clock::time_point started_;
};

} // namespace veil::session
