#include "tls/endpoint.h"

#include <openssl/err.h>

#include <algorithm>
#include <climits>

namespace veil::tls {

namespace {
constexpr std::size_t kMaxBioChunk = INT_MAX; // BIO_read/BIO_write take int lengths

// SSL_get_error reads the thread's error queue, so it must hold nothing
// from an earlier call. ERR_clear_error always resets all of its slots
// (dozens of stores and frees); peeking first makes the usual empty case
// cheap.
void clearErrors()
{
    if (ERR_peek_error() != 0)
        ERR_clear_error();
}
} // namespace

namespace {

// The write side: a BIO that appends every record to a std::string (its
// data pointer) and never blocks. It answers the controls OpenSSL sends a
// write BIO: FLUSH (done), PENDING/WPENDING (the bytes held); every other
// control, such as the kTLS queries, is unsupported (0).
int sinkWrite(BIO* b, const char* data, int len)
{
    if (len <= 0)
        return 0;
    static_cast<std::string*>(BIO_get_data(b))->append(data, static_cast<std::size_t>(len));
    return len;
}

long sinkCtrl(BIO* b, int cmd, long, void*)
{
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1;
    case BIO_CTRL_PENDING:
    case BIO_CTRL_WPENDING:
        return static_cast<long>(static_cast<std::string*>(BIO_get_data(b))->size());
    default:
        return 0;
    }
}

int sinkCreate(BIO* b)
{
    BIO_set_init(b, 1);
    return 1;
}

const BIO_METHOD* sinkMethod()
{
    // Built once, thread-safely (static initialization), never freed.
    static BIO_METHOD* method = [] {
        BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "veil ciphertext sink");
        if (m && (BIO_meth_set_write(m, sinkWrite) != 1 || BIO_meth_set_ctrl(m, sinkCtrl) != 1
                  || BIO_meth_set_create(m, sinkCreate) != 1)) {
            BIO_meth_free(m);
            m = nullptr;
        }
        return m;
    }();
    return method;
}

} // namespace

/**
 * Gives `ssl` its BIOs. An empty read BIO (memory) reports "retry" (not EOF)
 * until feedEof(), which is what turns a missing record into WantRead.
 */
Result<TlsEndpoint> TlsEndpoint::wrap(SslPtr ssl)
{
    if (!ssl)
        return fail("no SSL object to wrap");
    const BIO_METHOD* sink = sinkMethod();
    BIO* rbio = BIO_new(BIO_s_mem());
    BIO* wbio = sink ? BIO_new(sink) : nullptr;
    if (!rbio || !wbio) {
        BIO_free(rbio);
        BIO_free(wbio);
        return fail(takeSslErrors("TLS BIOs"));
    }
    TlsEndpoint ep;
    ep.out_ = std::make_unique<std::string>();
    BIO_set_data(wbio, ep.out_.get());
    SSL_set_bio(ssl.get(), rbio, wbio); // the SSL now owns both
    ep.ssl_ = std::move(ssl);
    ep.rbio_ = rbio;
    return ep;
}

/** Appends to the read BIO; refused after feedEof() or a fatal error. */
Result<void> TlsEndpoint::feedCiphertext(std::string_view bytes)
{
    if (eof_)
        return fail("ciphertext after the end of the stream");
    while (!bytes.empty()) {
        int n = static_cast<int>(std::min(bytes.size(), kMaxBioChunk));
        if (BIO_write(rbio_, bytes.data(), n) != n)
            return fail(takeSslErrors("buffering ciphertext"));
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return Ok{};
}

void TlsEndpoint::feedEof()
{
    eof_ = true;
    BIO_set_mem_eof_return(rbio_, 0);
}

std::size_t TlsEndpoint::takeCiphertext(std::span<char> out)
{
    std::size_t n = std::min(out.size(), out_->size());
    std::copy_n(out_->data(), n, out.data());
    out_->erase(0, n);
    return n;
}

void TlsEndpoint::takeCiphertext(std::string& out)
{
    if (out.empty()) {
        out.swap(*out_); // out_ keeps the caller's capacity for the next records
        return;
    }
    out.append(*out_);
    out_->clear();
}

TlsStatus TlsEndpoint::handshake()
{
    if (failed_)
        return TlsStatus::Error;
    if (closeKind_ != CloseKind::None)
        return TlsStatus::Closed;
    clearErrors();
    int ret = SSL_do_handshake(ssl_.get());
    return ret == 1 ? TlsStatus::Ok : settle(ret, "handshake");
}

/**
 * Reads plaintext (driving the handshake first if needed).
 * Ok with bytes > 0; WantRead when no whole record is buffered; Closed once
 * the peer has closed (and on every later call); Error after a fatal alert.
 */
TlsIo TlsEndpoint::read(std::span<char> out)
{
    if (failed_)
        return {TlsStatus::Error, 0};
    if (closeKind_ != CloseKind::None)
        return {TlsStatus::Closed, 0};
    if (out.empty())
        return {TlsStatus::Ok, 0};
    // After the handshake, with no ciphertext buffered in the BIO or the
    // record layer and no end of stream to report, SSL_read could only say
    // WantRead: say it without the call (the session's read loop ends with
    // one such call per batch of records).
    if (!eof_ && BIO_ctrl_pending(rbio_) == 0 && SSL_has_pending(ssl_.get()) == 0 && SSL_is_init_finished(ssl_.get()))
        return {TlsStatus::WantRead, 0};
    clearErrors();
    std::size_t n = 0;
    if (SSL_read_ex(ssl_.get(), out.data(), out.size(), &n) == 1)
        return {TlsStatus::Ok, n};
    return {settle(0, "read"), 0};
}

/**
 * Encrypts plaintext into pending ciphertext. Memory BIOs never block, so an
 * Ok write takes all of `plaintext`; callers apply backpressure by checking
 * pendingCiphertext() before writing more. Before the handshake completes
 * the result is WantRead and nothing is taken.
 */
TlsIo TlsEndpoint::write(std::string_view plaintext)
{
    if (failed_)
        return {TlsStatus::Error, 0};
    if (plaintext.empty())
        return {TlsStatus::Ok, 0};
    clearErrors();
    std::size_t n = 0;
    if (SSL_write_ex(ssl_.get(), plaintext.data(), plaintext.size(), &n) == 1)
        return {TlsStatus::Ok, n};
    return {settle(0, "write"), 0};
}

/**
 * Queues close_notify. Before the handshake has finished there is no
 * session to close cleanly, so nothing is queued and the result is Ok: the
 * caller just closes the transport.
 */
TlsStatus TlsEndpoint::shutdown()
{
    if (failed_)
        return TlsStatus::Error;
    if (!SSL_is_init_finished(ssl_.get()) || (SSL_get_shutdown(ssl_.get()) & SSL_SENT_SHUTDOWN))
        return TlsStatus::Ok;
    clearErrors();
    int ret = SSL_shutdown(ssl_.get());
    return ret >= 0 ? TlsStatus::Ok : settle(ret, "shutdown");
}

/**
 * SSL_free_buffers refuses itself while the record layer holds unread or
 * unsent bytes (since OpenSSL 3.0.14 also processed but undelivered records,
 * CVE-2024-4741); SSL_has_pending is checked too so a buffered plaintext
 * record is never at stake. Memory BIOs hold the ciphertext outside these
 * buffers, so nothing queued is lost.
 */
bool TlsEndpoint::releaseBuffers()
{
    if (failed_ || !SSL_is_init_finished(ssl_.get()) || SSL_has_pending(ssl_.get()))
        return false;
    return SSL_free_buffers(ssl_.get()) == 1;
}

/**
 * Turns a failed SSL_* call into a status. The thread's error queue was
 * cleared before the call, so SSL_get_error and the queue describe this
 * call only. An unexpected EOF is a close (Abrupt), not an error: whether it
 * truncated something is the caller's protocol question (HTTP framing).
 * A failed certificate check of the upstream names its reason.
 */
TlsStatus TlsEndpoint::settle(int ret, const char* what)
{
    switch (SSL_get_error(ssl_.get(), ret)) {
    case SSL_ERROR_WANT_READ:
        return TlsStatus::WantRead;
    case SSL_ERROR_WANT_WRITE:
        return TlsStatus::WantWrite;
    case SSL_ERROR_ZERO_RETURN:
        closeKind_ = CloseKind::CloseNotify;
        return TlsStatus::Closed;
    case SSL_ERROR_SYSCALL:
        if (eof_ && ERR_peek_error() == 0) {
            closeKind_ = CloseKind::Abrupt;
            error_ = SSL_is_init_finished(ssl_.get()) ? "peer closed without close_notify"
                                                      : "peer closed during the TLS handshake";
            return TlsStatus::Closed;
        }
        break;
    case SSL_ERROR_SSL: {
        unsigned long e = ERR_peek_error();
        if (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
            ERR_clear_error();
            closeKind_ = CloseKind::Abrupt;
            error_ = SSL_is_init_finished(ssl_.get()) ? "peer closed without close_notify"
                                                      : "peer closed during the TLS handshake";
            return TlsStatus::Closed;
        }
        long verify = SSL_get_verify_result(ssl_.get());
        if (!isServer() && verify != X509_V_OK && (SSL_get_verify_mode(ssl_.get()) & SSL_VERIFY_PEER)) {
            ERR_clear_error();
            verifyFailure_ = classifyVerifyError(verify);
            error_ = std::string("upstream certificate verification failed: ") + X509_verify_cert_error_string(verify)
                + " [" + toString(verifyFailure_) + "]";
            failed_ = true;
            return TlsStatus::Error;
        }
        break;
    }
    default:
        break;
    }
    error_ = takeSslErrors(std::string(isServer() ? "downstream" : "upstream") + " TLS " + what + " failed");
    failed_ = true;
    return TlsStatus::Error;
}

bool TlsEndpoint::isServer() const { return SSL_is_server(ssl_.get()) == 1; }

bool TlsEndpoint::handshakeDone() const { return SSL_is_init_finished(ssl_.get()) == 1; }

std::string_view TlsEndpoint::alpn() const
{
    const unsigned char* data = nullptr;
    unsigned int len = 0;
    SSL_get0_alpn_selected(ssl_.get(), &data, &len);
    return data ? std::string_view(reinterpret_cast<const char*>(data), len) : std::string_view();
}

std::string_view TlsEndpoint::protocol() const { return SSL_get_version(ssl_.get()); }

std::string_view TlsEndpoint::cipher() const
{
    const SSL_CIPHER* c = SSL_get_current_cipher(ssl_.get());
    return c ? SSL_CIPHER_get_name(c) : "";
}

VerifyFailure classifyVerifyError(long code)
{
    switch (code) {
    case X509_V_OK: return VerifyFailure::None;
    case X509_V_ERR_CERT_HAS_EXPIRED: return VerifyFailure::Expired;
    case X509_V_ERR_CERT_NOT_YET_VALID: return VerifyFailure::NotYetValid;
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH: return VerifyFailure::HostnameMismatch;
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT: return VerifyFailure::SelfSigned;
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN: return VerifyFailure::UntrustedRoot;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE: return VerifyFailure::UnknownIssuer;
    default: return VerifyFailure::Other;
    }
}

const char* toString(TlsStatus status)
{
    switch (status) {
    case TlsStatus::Ok: return "ok";
    case TlsStatus::WantRead: return "want read";
    case TlsStatus::WantWrite: return "want write";
    case TlsStatus::Closed: return "closed";
    case TlsStatus::Error: return "error";
    }
    return "?";
}

const char* toString(VerifyFailure failure)
{
    switch (failure) {
    case VerifyFailure::None: return "none";
    case VerifyFailure::Expired: return "expired";
    case VerifyFailure::NotYetValid: return "not yet valid";
    case VerifyFailure::HostnameMismatch: return "hostname mismatch";
    case VerifyFailure::SelfSigned: return "self-signed";
    case VerifyFailure::UntrustedRoot: return "untrusted root";
    case VerifyFailure::UnknownIssuer: return "unknown issuer or incomplete chain";
    case VerifyFailure::Other: return "other";
    }
    return "?";
}

} // namespace veil::tls
