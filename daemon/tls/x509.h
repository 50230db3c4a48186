#pragma once

// Certificate building blocks shared by the lab CA, the leaf forger and the
// tests that need deliberately bad certificates (expired, wrong host, ...).

#include <ctime>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"
#include "tls/ossl.h"

namespace veil::tls {

// A fresh P-256 key pair.
Result<EvpPkeyPtr> generateP256Key();

struct CertSpec {
    std::string commonName;
    std::string organization; // left out when empty
    std::time_t notBefore = 0;
    std::time_t notAfter = 0;
    // Extensions in OpenSSL's config syntax, added in order, e.g.
    // {NID_basic_constraints, "critical,CA:TRUE"}. SKI must come before AKI
    // for a self-signed certificate.
    std::vector<std::pair<int, std::string>> extensions;
};

// Builds a v3 certificate for `subjectKey` with a random positive 127-bit
// serial and signs it with SHA-256: by `issuerKey` as `issuer`, or
// self-signed when `issuer` is null.
Result<X509Ptr> buildCertificate(const CertSpec& spec, EVP_PKEY* subjectKey, X509* issuer, EVP_PKEY* issuerKey);

Result<std::string> certToPem(X509* cert);
Result<SecretString> keyToPem(EVP_PKEY* key);
Result<X509Ptr> certFromPem(std::string_view pem);
Result<std::vector<X509Ptr>> certsFromPem(std::string_view pem);
Result<EvpPkeyPtr> keyFromPem(std::string_view pem);

// Seconds since the epoch; an error for an unparsable time.
Result<std::time_t> asn1ToTime(const ASN1_TIME* t);

// "AB:CD:..." SHA-256 of the DER certificate, as browsers show it.
std::string sha256Fingerprint(X509* cert);

} // namespace veil::tls
