#pragma once

// The two SSL_CTX configurations of veild, made once at start-up and shared
// by all workers (SSL_new on a shared SSL_CTX is thread-safe):
//  - DownstreamContext: veild as the server the client talks to.
//  - UpstreamContext: veild as the client of the real server, verifying it.

#include <string>
#include <string_view>

#include "base/result.h"
#include "tls/endpoint.h"
#include "tls/forge.h"
#include "tls/ossl.h"

namespace veil::tls {

inline constexpr const char* kSystemCaFile = "/etc/ssl/certs/ca-certificates.crt";

class DownstreamContext {
public:
    // TLS 1.2 and 1.3, ECDHE + AEAD suites for an ECDSA leaf, no
    // renegotiation, ALPN selecting http/1.1 only.
    static Result<DownstreamContext> create();

    // A server endpoint that presents `leaf` (chosen by the session from the
    // peeked SNI before the handshake starts).
    Result<TlsEndpoint> accept(const Leaf& leaf) const;

    SSL_CTX* native() const { return ctx_.get(); }

private:
    DownstreamContext() = default;
    SslCtxPtr ctx_;
};

struct UpstreamOptions {
    // Trust store: a PEM bundle file or a hashed directory (c_rehash).
    std::string caFile = kSystemCaFile;
    // PEM certificates to trust instead of caFile when not empty (tests,
    // embedded configurations).
    std::string caPem;
    // Turns certificate and hostname verification off. Defaults off; only
    // for labs whose upstream has no usable certificate. Never the default.
    bool insecureSkipVerify = false;
};

class UpstreamContext {
public:
    // TLS 1.2+, SSL_VERIFY_PEER against the trust store, ALPN http/1.1.
    static Result<UpstreamContext> create(const UpstreamOptions& options = {});

    // A client endpoint for `host`: SNI = host and the certificate must name
    // it (SSL_set1_host, no partial wildcards). An IP literal host is
    // checked against the certificate's IP SANs and sends no SNI.
    Result<TlsEndpoint> connect(std::string_view host) const;

    SSL_CTX* native() const { return ctx_.get(); }

private:
    UpstreamContext() = default;
    SslCtxPtr ctx_;
    bool verify_ = true;
};

} // namespace veil::tls
