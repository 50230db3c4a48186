#include "pki.h"

#include <stdlib.h>

#include <filesystem>

namespace veil::tls::test {

TempDir::TempDir()
{
    std::string tmpl = (std::filesystem::temp_directory_path() / "veil-tls-test-XXXXXX").string();
    if (!::mkdtemp(tmpl.data()))
        FAIL("mkdtemp failed");
    path_ = tmpl;
}

TempDir::~TempDir()
{
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

CertSpec caSpec(const std::string& cn, std::time_t notBefore, std::time_t notAfter)
{
    CertSpec s;
    s.commonName = cn;
    s.notBefore = notBefore;
    s.notAfter = notAfter;
    s.extensions = {
        {NID_basic_constraints, "critical,CA:TRUE"},
        {NID_key_usage, "critical,keyCertSign,cRLSign"},
        {NID_subject_key_identifier, "hash"},
        {NID_authority_key_identifier, "keyid:always"},
    };
    return s;
}

CertSpec leafSpec(const std::string& host, std::time_t notBefore, std::time_t notAfter)
{
    CertSpec s;
    s.commonName = host;
    s.notBefore = notBefore;
    s.notAfter = notAfter;
    s.extensions = {
        {NID_basic_constraints, "critical,CA:FALSE"},
        {NID_key_usage, "critical,digitalSignature"},
        {NID_ext_key_usage, "serverAuth"},
        {NID_subject_alt_name, "DNS:" + host},
        {NID_subject_key_identifier, "hash"},
        {NID_authority_key_identifier, "keyid:always"},
    };
    return s;
}

TestPki::TestPki(const std::string& name)
{
    std::time_t now = std::time(nullptr);
    rootKey = take(generateP256Key());
    interKey = take(generateP256Key());
    leafKey = take(generateP256Key());
    root = take(
        buildCertificate(caSpec(name + " root", now - kDay, now + 365 * kDay), rootKey.get(), nullptr, nullptr));
    inter = take(buildCertificate(caSpec(name + " intermediate", now - kDay, now + 300 * kDay), interKey.get(),
                                  root.get(), rootKey.get()));
}

X509Ptr TestPki::leaf(const std::string& host, std::time_t notBefore, std::time_t notAfter) const
{
    return take(buildCertificate(leafSpec(host, notBefore, notAfter), leafKey.get(), inter.get(), interKey.get()));
}

X509Ptr TestPki::leaf(const std::string& host) const
{
    std::time_t now = std::time(nullptr);
    return leaf(host, now - kDay, now + 30 * kDay);
}

std::string TestPki::rootPem() const { return take(certToPem(root.get())); }

TlsEndpoint testServer(X509* cert, EVP_PKEY* key, const std::vector<X509*>& chain)
{
    SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
    REQUIRE(ctx);
    REQUIRE(SSL_CTX_use_certificate(ctx.get(), cert) == 1);
    REQUIRE(SSL_CTX_use_PrivateKey(ctx.get(), key) == 1);
    for (X509* c : chain)
        REQUIRE(SSL_CTX_add1_chain_cert(ctx.get(), c) == 1);
    SslPtr ssl(SSL_new(ctx.get())); // holds its own reference to ctx
    REQUIRE(ssl);
    SSL_set_accept_state(ssl.get());
    return take(TlsEndpoint::wrap(std::move(ssl)));
}

SslCtxPtr plainClientContext(std::string_view alpnWire)
{
    SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
    REQUIRE(ctx);
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
    if (!alpnWire.empty())
        REQUIRE(SSL_CTX_set_alpn_protos(ctx.get(), reinterpret_cast<const unsigned char*>(alpnWire.data()),
                                        static_cast<unsigned>(alpnWire.size()))
                == 0);
    return ctx;
}

void pump(TlsEndpoint& a, TlsEndpoint& b)
{
    for (int i = 0; i < 64; ++i) {
        std::string ab, ba;
        a.takeCiphertext(ab);
        b.takeCiphertext(ba);
        if (ab.empty() && ba.empty())
            return;
        REQUIRE(b.feedCiphertext(ab).ok());
        REQUIRE(a.feedCiphertext(ba).ok());
    }
    FAIL("pump did not settle");
}

void pumpHandshake(TlsEndpoint& client, TlsEndpoint& server, TlsStatus& clientStatus, TlsStatus& serverStatus)
{
    for (int i = 0; i < 64; ++i) {
        clientStatus = client.handshake();
        serverStatus = server.handshake();
        std::string cs, sc;
        client.takeCiphertext(cs);
        server.takeCiphertext(sc);
        if (cs.empty() && sc.empty())
            return;
        REQUIRE(server.feedCiphertext(cs).ok());
        REQUIRE(client.feedCiphertext(sc).ok());
    }
    FAIL("handshake did not settle");
}

std::string readAvailable(TlsEndpoint& ep, TlsStatus* last)
{
    std::string out;
    char buf[4096];
    for (;;) {
        TlsIo io = ep.read(buf);
        if (io.status != TlsStatus::Ok) {
            if (last)
                *last = io.status;
            return out;
        }
        out.append(buf, io.bytes);
    }
}

} // namespace veil::tls::test
