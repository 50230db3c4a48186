#include <catch2/catch.hpp>

#include "pki.h"
#include "tls/ca.h"
#include "tls/client_hello.h"
#include "tls/context.h"
#include "tls/forge.h"

using namespace veil::tls;
using namespace veil::tls::test;

namespace {

// The lab CA, a forger and both contexts, with the "application" client
// trusting the lab CA only (as the intercepted application does).
struct Lab {
    Lab()
    {
        ca = std::make_shared<const CertAuthority>(take(generateCa({"example.com"})));
        forger = take(LeafForger::create(ca));
        downstream = std::make_unique<DownstreamContext>(take(DownstreamContext::create()));
        UpstreamOptions o;
        o.caPem = take(ca->certPem());
        appClient = std::make_unique<UpstreamContext>(take(UpstreamContext::create(o)));
    }
    std::shared_ptr<const CertAuthority> ca;
    std::shared_ptr<LeafForger> forger;
    std::unique_ptr<DownstreamContext> downstream;
    std::unique_ptr<UpstreamContext> appClient;
};

void exchangeData(TlsEndpoint& client, TlsEndpoint& server)
{
    const std::string request = "POST /v1/messages HTTP/1.1\r\nHost: api.example.com\r\n\r\n";
    REQUIRE(client.write(request).bytes == request.size());
    pump(client, server);
    CHECK(readAvailable(server) == request);

    std::string response = "HTTP/1.1 200 OK\r\nContent-Length: 70000\r\n\r\n" + std::string(70000, 'x');
    TlsIo w = server.write(response);
    REQUIRE(w.status == TlsStatus::Ok);
    REQUIRE(w.bytes == response.size());
    pump(client, server);
    CHECK(readAvailable(client) == response);
}

} // namespace

TEST_CASE("A client trusting the lab CA completes TLS 1.3 with a forged leaf, and data flows both ways",
          "[tls][endpoint]")
{
    Lab lab;
    auto leaf = take(lab.forger->forge("api.example.com", std::time(nullptr)));
    TlsEndpoint server = take(lab.downstream->accept(*leaf));
    TlsEndpoint client = take(lab.appClient->connect("api.example.com"));

    // The session peeks before it creates the server endpoint.
    REQUIRE(client.handshake() == TlsStatus::WantRead);
    std::string hello;
    client.takeCiphertext(hello);
    PeekResult peek = peekClientHello(hello);
    REQUIRE(peek.status == PeekStatus::Tls);
    CHECK(peek.hello.sni == "api.example.com");
    REQUIRE(server.feedCiphertext(hello).ok());

    TlsStatus cs, ss;
    pumpHandshake(client, server, cs, ss);
    REQUIRE(cs == TlsStatus::Ok);
    REQUIRE(ss == TlsStatus::Ok);
    CHECK(client.handshakeDone());
    CHECK(server.handshakeDone());
    CHECK(client.protocol() == "TLSv1.3");
    CHECK(server.alpn() == "http/1.1");
    CHECK(client.alpn() == "http/1.1");
    CHECK(client.verifyFailure() == VerifyFailure::None);
    exchangeData(client, server);
}

TEST_CASE("A TLS 1.2 client completes the handshake with an ECDHE-ECDSA suite", "[tls][endpoint]")
{
    Lab lab;
    auto leaf = take(lab.forger->forge("api.example.com", std::time(nullptr)));
    TlsEndpoint server = take(lab.downstream->accept(*leaf));
    TlsEndpoint client = take(lab.appClient->connect("api.example.com"));
    REQUIRE(SSL_set_max_proto_version(client.native(), TLS1_2_VERSION) == 1);
    TlsStatus cs, ss;
    pumpHandshake(client, server, cs, ss);
    REQUIRE(cs == TlsStatus::Ok);
    REQUIRE(ss == TlsStatus::Ok);
    CHECK(server.protocol() == "TLSv1.2");
    CHECK(server.cipher().substr(0, 11) == "ECDHE-ECDSA");
    CHECK(server.alpn() == "http/1.1");
    exchangeData(client, server);
}

TEST_CASE("The downstream side refuses TLS 1.1 and older", "[tls][endpoint]")
{
    Lab lab;
    auto leaf = take(lab.forger->forge("api.example.com", std::time(nullptr)));
    TlsEndpoint server = take(lab.downstream->accept(*leaf));
    SslCtxPtr ctx = plainClientContext();
    SSL_CTX_set_security_level(ctx.get(), 0);
    SslPtr ssl(SSL_new(ctx.get()));
    SSL_set_min_proto_version(ssl.get(), TLS1_VERSION);
    SSL_set_max_proto_version(ssl.get(), TLS1_1_VERSION);
    SSL_set_connect_state(ssl.get());
    TlsEndpoint client = take(TlsEndpoint::wrap(std::move(ssl)));
    TlsStatus cs, ss;
    pumpHandshake(client, server, cs, ss);
    CHECK(ss == TlsStatus::Error);
    CHECK(cs == TlsStatus::Error);
    CHECK(server.error().find("downstream") == 0);
}

TEST_CASE("A client offering only h2 gets no ALPN and an HTTP/1.1 connection", "[tls][endpoint]")
{
    using namespace std::string_literals;
    Lab lab;
    auto leaf = take(lab.forger->forge("api.example.com", std::time(nullptr)));
    TlsEndpoint server = take(lab.downstream->accept(*leaf));
    SslCtxPtr ctx = plainClientContext("\x02h2"s);
    SslPtr ssl(SSL_new(ctx.get()));
    SSL_set_connect_state(ssl.get());
    TlsEndpoint client = take(TlsEndpoint::wrap(std::move(ssl)));
    TlsStatus cs, ss;
    pumpHandshake(client, server, cs, ss);
    REQUIRE(cs == TlsStatus::Ok);
    REQUIRE(ss == TlsStatus::Ok);
    CHECK(server.alpn().empty());
    CHECK(client.alpn().empty());

    // Offering h2 and http/1.1 selects http/1.1.
    TlsEndpoint server2 = take(lab.downstream->accept(*leaf));
    SslCtxPtr ctx2 = plainClientContext("\x02h2\x08http/1.1"s);
    SslPtr ssl2(SSL_new(ctx2.get()));
    SSL_set_connect_state(ssl2.get());
    TlsEndpoint client2 = take(TlsEndpoint::wrap(std::move(ssl2)));
    pumpHandshake(client2, server2, cs, ss);
    REQUIRE(cs == TlsStatus::Ok);
    CHECK(client2.alpn() == "http/1.1");
}

TEST_CASE("A client that does not trust the lab CA fails and the server reports the alert", "[tls][endpoint]")
{
    Lab lab;
    auto leaf = take(lab.forger->forge("api.example.com", std::time(nullptr)));
    TlsEndpoint server = take(lab.downstream->accept(*leaf));
    UpstreamOptions o;
    o.caPem = TestPki("other").rootPem();
    auto stranger = take(UpstreamContext::create(o));
    TlsEndpoint client = take(stranger.connect("api.example.com"));
    TlsStatus cs, ss;
    pumpHandshake(client, server, cs, ss);
    CHECK(cs == TlsStatus::Error);
    CHECK(client.verifyFailure() == VerifyFailure::UnknownIssuer);
    CHECK(ss == TlsStatus::Error);
    CHECK(server.error().find("unknown ca") != std::string::npos);
}

TEST_CASE("close_notify and an abrupt end are told apart", "[tls][endpoint]")
{
    Lab lab;
    auto leaf = take(lab.forger->forge("api.example.com", std::time(nullptr)));
    TlsEndpoint server = take(lab.downstream->accept(*leaf));
    TlsEndpoint client = take(lab.appClient->connect("api.example.com"));
    TlsStatus cs, ss;
    pumpHandshake(client, server, cs, ss);
    REQUIRE(cs == TlsStatus::Ok);
    REQUIRE(ss == TlsStatus::Ok);
    pump(client, server);
    readAvailable(client);
    readAvailable(server);

    SECTION("close_notify")
    {
        REQUIRE(server.write("last words").status == TlsStatus::Ok);
        REQUIRE(server.shutdown() == TlsStatus::Ok);
        pump(client, server);
        TlsStatus last = TlsStatus::Ok;
        CHECK(readAvailable(client, &last) == "last words");
        CHECK(last == TlsStatus::Closed);
        CHECK(client.closeKind() == CloseKind::CloseNotify);
        CHECK(client.read(std::span<char>()).status == TlsStatus::Closed);
    }
    SECTION("abrupt end")
    {
        REQUIRE(server.write("partial").status == TlsStatus::Ok);
        pump(client, server);
        client.feedEof();
        TlsStatus last = TlsStatus::Ok;
        CHECK(readAvailable(client, &last) == "partial");
        CHECK(last == TlsStatus::Closed);
        CHECK(client.closeKind() == CloseKind::Abrupt);
        CHECK_FALSE(client.error().empty());
        CHECK_FALSE(client.feedCiphertext("x").ok());
    }
    SECTION("an end during the handshake is abrupt")
    {
        TlsEndpoint fresh = take(lab.appClient->connect("api.example.com"));
        REQUIRE(fresh.handshake() == TlsStatus::WantRead);
        fresh.feedEof();
        CHECK(fresh.handshake() == TlsStatus::Closed);
        CHECK(fresh.closeKind() == CloseKind::Abrupt);
        CHECK(fresh.error().find("handshake") != std::string::npos);
    }
}

TEST_CASE("A quiet endpoint gives its record buffers back and keeps working", "[tls][endpoint]")
{
    Lab lab;
    auto leaf = take(lab.forger->forge("api.example.com", std::time(nullptr)));
    TlsEndpoint server = take(lab.downstream->accept(*leaf));
    TlsEndpoint client = take(lab.appClient->connect("api.example.com"));
    CHECK_FALSE(client.releaseBuffers()); // no handshake yet
    TlsStatus cs, ss;
    pumpHandshake(client, server, cs, ss);
    REQUIRE(cs == TlsStatus::Ok);
    REQUIRE(ss == TlsStatus::Ok);
    exchangeData(client, server);

    // A record only partly read holds plaintext: the buffers stay.
    REQUIRE(server.write("partial").status == TlsStatus::Ok);
    pump(client, server);
    char first[1];
    TlsIo r = client.read(first);
    REQUIRE(r.status == TlsStatus::Ok);
    REQUIRE(r.bytes == 1);
    CHECK_FALSE(client.releaseBuffers());
    CHECK(readAvailable(client) == "artial");

    CHECK(client.releaseBuffers());
    CHECK(server.releaseBuffers());
    exchangeData(client, server); // allocated again on the next record
    CHECK(client.releaseBuffers());
    CHECK(server.releaseBuffers());
}

TEST_CASE("Writing before the handshake completes takes nothing", "[tls][endpoint]")
{
    Lab lab;
    TlsEndpoint client = take(lab.appClient->connect("api.example.com"));
    TlsIo w = client.write("too early");
    CHECK(w.status == TlsStatus::WantRead);
    CHECK(w.bytes == 0);
}

TEST_CASE("Garbage ciphertext is a downstream error, not a crash", "[tls][endpoint]")
{
    Lab lab;
    auto leaf = take(lab.forger->forge("api.example.com", std::time(nullptr)));
    TlsEndpoint server = take(lab.downstream->accept(*leaf));
    REQUIRE(server.feedCiphertext("GET / HTTP/1.1\r\nHost: x\r\n\r\n").ok());
    CHECK(server.handshake() == TlsStatus::Error);
    CHECK(server.error().find("downstream TLS handshake failed") == 0);
    CHECK(server.handshake() == TlsStatus::Error); // sticky
}

// --- upstream verification ------------------------------------------------------

namespace {

struct UpstreamCase {
    TlsStatus clientStatus;
    TlsStatus serverStatus;
    TlsEndpoint client;
    TlsEndpoint server;
};

// veild's upstream side (trusting `trustPem`) against a test server with
// `cert` + `chain`; then tries to send a request.
UpstreamCase connectUpstream(const std::string& trustPem, const std::string& host, X509* cert, EVP_PKEY* key,
                             const std::vector<X509*>& chain)
{
    UpstreamOptions o;
    o.caPem = trustPem;
    auto ctx = take(UpstreamContext::create(o));
    UpstreamCase c{TlsStatus::Ok, TlsStatus::Ok, take(ctx.connect(host)), testServer(cert, key, chain)};
    pumpHandshake(c.client, c.server, c.clientStatus, c.serverStatus);
    return c;
}

// A refused upstream: the client failed with `want`, cannot send, and the
// server received no application data.
void requireRefused(UpstreamCase& c, VerifyFailure want, const std::string& reasonPart)
{
    INFO("client error: " << c.client.error());
    REQUIRE(c.clientStatus == TlsStatus::Error);
    CHECK(c.client.verifyFailure() == want);
    CHECK(c.client.error().find("upstream certificate verification failed") == 0);
    CHECK(c.client.error().find(reasonPart) != std::string::npos);
    CHECK(c.client.write("POST /v1/messages HTTP/1.1\r\n\r\n").status == TlsStatus::Error);
    std::string rest;
    c.client.takeCiphertext(rest);
    REQUIRE(c.server.feedCiphertext(rest).ok());
    TlsStatus last = TlsStatus::Ok;
    CHECK(readAvailable(c.server, &last).empty());
    CHECK(last != TlsStatus::Ok);
}

} // namespace

TEST_CASE("A verified upstream with a full chain is accepted", "[tls][upstream]")
{
    TestPki pki;
    X509Ptr leaf = pki.leaf("api.example.com");
    auto c = connectUpstream(pki.rootPem(), "api.example.com", leaf.get(), pki.leafKey.get(), {pki.inter.get()});
    REQUIRE(c.clientStatus == TlsStatus::Ok);
    REQUIRE(c.serverStatus == TlsStatus::Ok);
    CHECK(SSL_get_verify_result(c.client.native()) == X509_V_OK);
    REQUIRE(c.client.write("ping").status == TlsStatus::Ok);
    pump(c.client, c.server);
    CHECK(readAvailable(c.server) == "ping");
}

TEST_CASE("An upstream with an expired certificate is refused", "[tls][upstream]")
{
    TestPki pki;
    std::time_t now = std::time(nullptr);
    X509Ptr leaf = pki.leaf("api.example.com", now - 60 * kDay, now - kDay);
    auto c = connectUpstream(pki.rootPem(), "api.example.com", leaf.get(), pki.leafKey.get(), {pki.inter.get()});
    requireRefused(c, VerifyFailure::Expired, "certificate has expired");
}

TEST_CASE("An upstream with a not yet valid certificate is refused", "[tls][upstream]")
{
    TestPki pki;
    std::time_t now = std::time(nullptr);
    X509Ptr leaf = pki.leaf("api.example.com", now + kDay, now + 60 * kDay);
    auto c = connectUpstream(pki.rootPem(), "api.example.com", leaf.get(), pki.leafKey.get(), {pki.inter.get()});
    requireRefused(c, VerifyFailure::NotYetValid, "not yet valid");
}

TEST_CASE("An upstream with a certificate for another host is refused", "[tls][upstream]")
{
    TestPki pki;
    X509Ptr leaf = pki.leaf("other.example.com");
    auto c = connectUpstream(pki.rootPem(), "api.example.com", leaf.get(), pki.leafKey.get(), {pki.inter.get()});
    requireRefused(c, VerifyFailure::HostnameMismatch, "hostname mismatch");
}

TEST_CASE("An upstream with a self-signed certificate is refused", "[tls][upstream]")
{
    TestPki pki;
    std::time_t now = std::time(nullptr);
    EvpPkeyPtr key = take(generateP256Key());
    X509Ptr self =
        take(buildCertificate(leafSpec("api.example.com", now - kDay, now + kDay), key.get(), nullptr, nullptr));
    auto c = connectUpstream(pki.rootPem(), "api.example.com", self.get(), key.get(), {});
    requireRefused(c, VerifyFailure::SelfSigned, "self-signed");
}

TEST_CASE("An upstream chaining to an untrusted root is refused", "[tls][upstream]")
{
    TestPki trusted("trusted");
    TestPki rogue("rogue");
    X509Ptr leaf = rogue.leaf("api.example.com");
    auto c = connectUpstream(trusted.rootPem(), "api.example.com", leaf.get(), rogue.leafKey.get(),
                             {rogue.inter.get(), rogue.root.get()});
    requireRefused(c, VerifyFailure::UntrustedRoot, "self-signed certificate in certificate chain");
}

TEST_CASE("An upstream that leaves out its intermediate is refused", "[tls][upstream]")
{
    TestPki pki;
    X509Ptr leaf = pki.leaf("api.example.com");
    auto c = connectUpstream(pki.rootPem(), "api.example.com", leaf.get(), pki.leafKey.get(), {});
    requireRefused(c, VerifyFailure::UnknownIssuer, "issuer");
}

TEST_CASE("Skipping verification is explicit and off by default", "[tls][upstream]")
{
    CHECK_FALSE(UpstreamOptions{}.insecureSkipVerify);
    TestPki pki;
    std::time_t now = std::time(nullptr);
    X509Ptr leaf = pki.leaf("other.example.com", now - 60 * kDay, now - kDay);
    UpstreamOptions o;
    o.insecureSkipVerify = true;
    auto ctx = take(UpstreamContext::create(o));
    TlsEndpoint client = take(ctx.connect("api.example.com"));
    TlsEndpoint server = testServer(leaf.get(), pki.leafKey.get(), {});
    TlsStatus cs, ss;
    pumpHandshake(client, server, cs, ss);
    CHECK(cs == TlsStatus::Ok);
}

TEST_CASE("The upstream context loads the system trust store by default and refuses a missing one",
          "[tls][upstream]")
{
    if (access(kSystemCaFile, R_OK) == 0)
        CHECK(UpstreamContext::create().ok());
    UpstreamOptions o;
    o.caFile = "/nonexistent/ca.pem";
    auto r = UpstreamContext::create(o);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("/nonexistent/ca.pem") != std::string::npos);
    CHECK_FALSE(take(UpstreamContext::create(UpstreamOptions{"", "", true})).connect("bad host").ok());
}
