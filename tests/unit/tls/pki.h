#pragma once

// Test helpers for the tls unit tests: temporary directories, Result
// unwrapping, a throwaway PKI with deliberately bad certificates, and a
// pump that carries ciphertext between two in-memory endpoints.

#include <catch2/catch.hpp>

#include <ctime>
#include <string>
#include <vector>

#include "base/result.h"
#include "tls/endpoint.h"
#include "tls/ossl.h"
#include "tls/x509.h"

namespace veil::tls::test {

// Unwraps a Result or fails the test with its message.
template <typename T>
T take(Result<T> r)
{
    if (!r.ok())
        FAIL("unexpected error: " << r.error().message);
    return std::move(r).value();
}

class TempDir {
public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

constexpr std::time_t kDay = 86400;

// A CA certificate spec (CA:TRUE, keyCertSign, SKI/AKI).
CertSpec caSpec(const std::string& cn, std::time_t notBefore, std::time_t notAfter);
// A server leaf spec for `host` (CA:FALSE, serverAuth, SAN DNS:host).
CertSpec leafSpec(const std::string& host, std::time_t notBefore, std::time_t notAfter);

// root → intermediate → leaves, all valid around now unless asked otherwise.
struct TestPki {
    TestPki(const std::string& name = "test");
    X509Ptr leaf(const std::string& host, std::time_t notBefore, std::time_t notAfter) const;
    X509Ptr leaf(const std::string& host) const;
    std::string rootPem() const;

    EvpPkeyPtr rootKey, interKey, leafKey;
    X509Ptr root, inter;
};

// A server endpoint presenting `cert` (+ `chain`, sent after it) with `key`.
TlsEndpoint testServer(X509* cert, EVP_PKEY* key, const std::vector<X509*>& chain = {});

// A client SSL_CTX with no verification and the given ALPN list (wire format).
SslCtxPtr plainClientContext(std::string_view alpnWire = {});

// Moves ciphertext between the two endpoints, calling handshake() on each,
// until neither has anything left to send.
void pumpHandshake(TlsEndpoint& client, TlsEndpoint& server, TlsStatus& clientStatus, TlsStatus& serverStatus);
// Moves pending ciphertext both ways until quiet (no handshake calls).
void pump(TlsEndpoint& a, TlsEndpoint& b);
// Reads all plaintext available now.
std::string readAvailable(TlsEndpoint& ep, TlsStatus* last = nullptr);

} // namespace veil::tls::test
