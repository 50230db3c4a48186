#include "tls/context.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "tls/hostname.h"
#include "tls/x509.h"

namespace veil::tls {

namespace {

// Mozilla "intermediate" TLS 1.2 suites (forward secret AEAD only). The
// downstream leaf is always ECDSA, so the server list has ECDSA suites only.
constexpr const char* kDownstreamCiphers12 =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305";
constexpr const char* kUpstreamCiphers12 =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr const char* kGroups = "X25519:P-256:P-384";
// ALPN wire format: length-prefixed protocol names.
constexpr unsigned char kAlpnHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

Result<SslCtxPtr> baseContext(const SSL_METHOD* method, const char* ciphers12)
{
    SslCtxPtr ctx(SSL_CTX_new(method));
    if (!ctx)
        return fail(takeSslErrors("SSL_CTX_new"));
    if (SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION) != 1
        || SSL_CTX_set_max_proto_version(ctx.get(), TLS1_3_VERSION) != 1
        || SSL_CTX_set_cipher_list(ctx.get(), ciphers12) != 1 || SSL_CTX_set1_groups_list(ctx.get(), kGroups) != 1)
        return fail(takeSslErrors("TLS context settings"));
    // No renegotiation (a DoS lever and never needed), no compression (CRIME).
    SSL_CTX_set_options(ctx.get(), SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    // No SSL_MODE_RELEASE_BUFFERS: it frees and reallocates the ~17 KiB
    // read and write buffers around every record, several times per request
    // on a busy keep-alive connection. Idle connections still give their
    // buffers back: the session calls TlsEndpoint::releaseBuffers() once
    // it has been quiet for a while.
    return ctx;
}

/**
 * Selects http/1.1 if the client offers it. If it does not (an h2-only
 * client), no protocol is selected (SSL_TLSEXT_ERR_NOACK) and the handshake
 * goes on without ALPN, rather than failing with no_application_protocol:
 * curl and browsers then fall back to HTTP/1.1, which is all veild speaks;
 * a client that insists on h2 sends its preface and gets a 400 from the
 * HTTP/1.1 parser, which names the problem more clearly than an alert.
 */
int selectAlpn(SSL*, const unsigned char** out, unsigned char* outLen, const unsigned char* in, unsigned int inLen,
               void*)
{
    unsigned int i = 0;
    while (i < inLen) {
        unsigned int len = in[i];
        if (len == 0 || len > inLen - i - 1)
            return SSL_TLSEXT_ERR_NOACK; // malformed list: OpenSSL checks it too
        if (len == kAlpnHttp11[0] && std::memcmp(in + i + 1, kAlpnHttp11 + 1, len) == 0) {
            *out = in + i + 1;
            *outLen = static_cast<unsigned char>(len);
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + len;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

Result<void> loadTrustPem(SSL_CTX* ctx, std::string_view pem)
{
    auto certs = certsFromPem(pem);
    if (!certs)
        return fail("upstream trust store: " + certs.error().message);
    X509_STORE* store = SSL_CTX_get_cert_store(ctx);
    for (auto& c : *certs)
        if (X509_STORE_add_cert(store, c.get()) != 1)
            return fail(takeSslErrors("upstream trust store"));
    return Ok{};
}

} // namespace

Result<DownstreamContext> DownstreamContext::create()
{
    auto ctx = baseContext(TLS_server_method(), kDownstreamCiphers12);
    if (!ctx)
        return fail(ctx.error());
    SSL_CTX_set_alpn_select_cb(ctx->get(), selectAlpn, nullptr);
    // The server's suite order, not the client's: every suite offered is
    // forward secret AEAD, but a client that lists CBC or weaker first
    // (testssl.sh rates a missing server order HIGH) still gets the
    // strongest in kDownstreamCiphers12 / OpenSSL's TLS 1.3 order.
    SSL_CTX_set_options(ctx->get(), SSL_OP_CIPHER_SERVER_PREFERENCE);
    // Session resumption across connections to one leaf works through the
    // shared context's ticket key; the id context ties sessions to veild.
    static const unsigned char kSessionContext[] = "veil-downstream";
    SSL_CTX_set_session_id_context(ctx->get(), kSessionContext, sizeof kSessionContext - 1);
    DownstreamContext dc;
    dc.ctx_ = std::move(*ctx);
    return dc;
}

/**
 * A server endpoint for one client. The leaf is set on the SSL object, not
 * on a per-leaf SSL_CTX: the shared context keeps one configuration and one
 * ticket key, and per connection this costs two reference-count increments
 * (SSL_use_certificate/SSL_use_PrivateKey take their own references, so the
 * Leaf may leave the cache while the connection lives).
 */
Result<TlsEndpoint> DownstreamContext::accept(const Leaf& leaf) const
{
    SslPtr ssl(SSL_new(ctx_.get()));
    if (!ssl)
        return fail(takeSslErrors("downstream SSL_new"));
    if (SSL_use_certificate(ssl.get(), leaf.cert.get()) != 1 || SSL_use_PrivateKey(ssl.get(), leaf.key.get()) != 1)
        return fail(takeSslErrors("downstream certificate"));
    SSL_set_accept_state(ssl.get());
    return TlsEndpoint::wrap(std::move(ssl));
}

/**
 * The upstream context. The trust store is read here, at start-up: a file of
 * PEM certificates, or a directory of hashed ones. A store that yields no
 * certificate is an error, since every upstream would then fail.
 */
Result<UpstreamContext> UpstreamContext::create(const UpstreamOptions& options)
{
    auto ctx = baseContext(TLS_client_method(), kUpstreamCiphers12);
    if (!ctx)
        return fail(ctx.error());
    if (SSL_CTX_set_alpn_protos(ctx->get(), kAlpnHttp11, sizeof kAlpnHttp11) != 0)
        return fail(takeSslErrors("upstream ALPN"));

    UpstreamContext uc;
    uc.verify_ = !options.insecureSkipVerify;
    if (!options.caPem.empty()) {
        if (auto r = loadTrustPem(ctx->get(), options.caPem); !r)
            return fail(r.error());
    } else if (uc.verify_) {
        struct stat st {};
        if (::stat(options.caFile.c_str(), &st) != 0)
            return fail("upstream trust store " + options.caFile + ": " + std::strerror(errno));
        bool dir = S_ISDIR(st.st_mode);
        if (SSL_CTX_load_verify_locations(ctx->get(), dir ? nullptr : options.caFile.c_str(),
                                          dir ? options.caFile.c_str() : nullptr)
            != 1)
            return fail(takeSslErrors("upstream trust store " + options.caFile));
    }
    SSL_CTX_set_verify(ctx->get(), uc.verify_ ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
    // Partial wildcards ("a*.example.com") are refused, as browsers do.
    X509_VERIFY_PARAM_set_hostflags(SSL_CTX_get0_param(ctx->get()), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    uc.ctx_ = std::move(*ctx);
    return uc;
}

Result<TlsEndpoint> UpstreamContext::connect(std::string_view host) const
{
    std::string name(host);
    SslPtr ssl(SSL_new(ctx_.get()));
    if (!ssl)
        return fail(takeSslErrors("upstream SSL_new"));
    if (isIpLiteral(name)) {
        // RFC 6066: no IP addresses in SNI. Verify the IP SAN instead.
        if (verify_ && X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl.get()), name.c_str()) != 1)
            return fail("upstream host is not a usable IP address");
    } else {
        auto dns = normalizeHostName(name);
        if (!dns)
            return fail("upstream host is not a DNS name");
        // SSL_set_tlsext_host_name is a macro with a C cast; this is its expansion.
        if (SSL_ctrl(ssl.get(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, dns->data()) != 1)
            return fail(takeSslErrors("upstream SNI"));
        if (verify_ && SSL_set1_host(ssl.get(), dns->c_str()) != 1)
            return fail(takeSslErrors("upstream hostname check"));
    }
    SSL_set_connect_state(ssl.get());
    return TlsEndpoint::wrap(std::move(ssl));
}

} // namespace veil::tls
