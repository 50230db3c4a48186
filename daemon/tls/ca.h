#pragma once

// The lab CA: created once by `veilctl ca init`, loaded by veild at start-up
// to sign forged leaves. The only file I/O of the tls module lives here and
// runs before the event loop starts.

#include <chrono>
#include <ctime>
#include <string>
#include <vector>

#include "base/result.h"
#include "tls/ossl.h"

namespace veil::tls {

struct CaOptions {
    std::string commonName = "veil lab CA";
    std::chrono::seconds validity = std::chrono::days(3652); // 10 years
    std::time_t now = 0;                                      // 0: the current time
};

class CertAuthority {
public:
    // Loads a CA from PEM files. Refuses a key file that group or others may
    // read, a key that does not match the certificate, a certificate that is
    // not a CA, and a CA outside its validity period.
    static Result<CertAuthority> load(const std::string& certPath, const std::string& keyPath);
    // The same checks minus the file mode, for keys already in memory.
    static Result<CertAuthority> fromPem(std::string_view certPem, std::string_view keyPem, std::time_t now = 0);

    X509* cert() const { return cert_.get(); }
    EVP_PKEY* key() const { return key_.get(); }
    std::time_t notBefore() const { return notBefore_; }
    std::time_t notAfter() const { return notAfter_; }
    // The CA's nameConstraints, or null when it has none.
    NAME_CONSTRAINTS* nameConstraints() const { return nameConstraints_.get(); }

    Result<std::string> certPem() const;
    // The private key as PEM, for writing the key file. Never log it.
    Result<SecretString> keyPem() const;

private:
    CertAuthority() = default;
    X509Ptr cert_;
    EvpPkeyPtr key_;
    NameConstraintsPtr nameConstraints_;
    std::time_t notBefore_ = 0;
    std::time_t notAfter_ = 0;
};

// A new self-signed lab CA in memory: P-256, CA:TRUE and keyCertSign+cRLSign
// (both critical), SKI/AKI, random serial, and — when `permittedDomains` is
// not empty — critical nameConstraints permitting only those DNS subtrees
// (each domain and its subdomains) and excluding every IP address.
Result<CertAuthority> generateCa(const std::vector<std::string>& permittedDomains, const CaOptions& options = {});

struct CaFiles {
    std::string certPath;          // DIR/ca.pem, mode 0644
    std::string keyPath;           // DIR/ca.key, mode 0600
    std::string sha256Fingerprint; // of the certificate, "AB:CD:..."
};

// `veilctl ca init --out DIR [--permit DOMAIN …]`: generates a CA and writes
// DIR/ca.pem and DIR/ca.key. Creates DIR (0700) if missing; refuses to
// replace an existing ca.pem or ca.key.
Result<CaFiles> createCa(const std::string& dir, const std::vector<std::string>& permittedDomains,
                         const CaOptions& options = {});

} // namespace veil::tls
