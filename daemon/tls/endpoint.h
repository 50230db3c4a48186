#pragma once

// One TLS connection end over two in-memory BIOs: the network side moves
// ciphertext in and out as bytes, the application side reads and writes
// plaintext. Incoming ciphertext waits in a memory BIO; outgoing records are
// appended by a sink BIO straight to a string the endpoint owns, which
// takeCiphertext(std::string&) hands over without a copy. No sockets: the event loop owns the fd, tests and fuzzers pass
// bytes. Made by DownstreamContext::accept (server, faces the client) and
// UpstreamContext::connect (client, faces the real server).

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "base/result.h"
#include "tls/ossl.h"

namespace veil::tls {

enum class TlsStatus {
    Ok,        // the call did what it was asked (bytes > 0 for read/write)
    WantRead,  // needs ciphertext from the peer: feedCiphertext, then retry
    WantWrite, // not produced by memory BIOs; kept for completeness
    Closed,    // the peer closed: see closeKind()
    Error,     // fatal; see error(). The endpoint stays in this state.
};

enum class CloseKind {
    None,
    CloseNotify, // the peer sent close_notify: a clean end of data
    Abrupt,      // the transport ended without close_notify: data may be truncated
};

// Why upstream certificate verification failed, for logs and metrics.
enum class VerifyFailure {
    None,
    Expired,
    NotYetValid,
    HostnameMismatch,
    SelfSigned,    // the server's own certificate is self-signed
    UntrustedRoot, // the chain ends in a self-signed root not in the trust store
    UnknownIssuer, // an issuer is neither sent nor trusted (incomplete chain or unknown CA)
    Other,
};

struct TlsIo {
    TlsStatus status = TlsStatus::Ok;
    std::size_t bytes = 0;
};

class TlsEndpoint {
public:
    // Attaches fresh memory BIOs to `ssl` (client or server state already
    // set). The contexts call this; tests use it for hand-made SSL objects.
    static Result<TlsEndpoint> wrap(SslPtr ssl);

    TlsEndpoint(TlsEndpoint&&) noexcept = default;
    TlsEndpoint& operator=(TlsEndpoint&&) noexcept = default;

    // --- network side ---------------------------------------------------
    // Ciphertext received from the peer. The endpoint buffers it until the
    // next handshake/read; callers bound how much they feed.
    Result<void> feedCiphertext(std::string_view bytes);
    // The peer's transport ended (read returned 0): no more ciphertext.
    void feedEof();
    // Ciphertext waiting to be sent to the peer.
    std::size_t pendingCiphertext() const { return out_->size(); }
    std::size_t takeCiphertext(std::span<char> out);
    // Appends all pending bytes to `out`. An empty `out` trades places with
    // the pending string (no copy); its capacity is reused for the next
    // records, so a caller that passes back a spent buffer allocates nothing.
    void takeCiphertext(std::string& out);

    // --- application side -----------------------------------------------
    TlsStatus handshake();
    TlsIo read(std::span<char> out);
    TlsIo write(std::string_view plaintext);
    // Queues our close_notify (once). Ok when queued.
    TlsStatus shutdown();

    // Frees the record buffers (~34 KiB) of a quiet connection; the next
    // record allocates them again. Does nothing (false) while a record is
    // partly read or written or plaintext is unread, or before the handshake
    // has finished.
    bool releaseBuffers();

    // --- state ------------------------------------------------------------
    bool isServer() const;
    bool handshakeDone() const;
    CloseKind closeKind() const { return closeKind_; }
    const std::string& error() const { return error_; }
    VerifyFailure verifyFailure() const { return verifyFailure_; }
    std::string_view alpn() const;     // negotiated protocol, empty if none
    std::string_view protocol() const; // "TLSv1.3", ...
    std::string_view cipher() const;
    // The SSL object, borrowed, for queries the wrapper does not cover.
    SSL* native() const { return ssl_.get(); }

private:
    TlsEndpoint() = default;
    TlsStatus settle(int ret, const char* what);

    SslPtr ssl_;
    BIO* rbio_ = nullptr; // owned by ssl_: ciphertext from the peer
    // Ciphertext for the peer: the sink BIO (owned by ssl_) appends to it.
    // On the heap so the BIO's pointer survives moves of the endpoint.
    std::unique_ptr<std::string> out_;
    bool eof_ = false;
    bool failed_ = false;
    CloseKind closeKind_ = CloseKind::None;
    VerifyFailure verifyFailure_ = VerifyFailure::None;
    std::string error_;
};

const char* toString(TlsStatus status);
const char* toString(VerifyFailure failure);
// The failure category of an X509_V_ERR_* code.
VerifyFailure classifyVerifyError(long code);

} // namespace veil::tls
