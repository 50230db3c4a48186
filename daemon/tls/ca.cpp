#include "tls/ca.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "base/io.h"
#include "tls/hostname.h"
#include "tls/x509.h"

namespace veil::tls {

namespace {

std::string utc(std::time_t t)
{
    struct tm tm {};
    char buf[32];
    if (!::gmtime_r(&t, &tm) || !std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm))
        return std::to_string(t);
    return buf;
}

std::string octal(unsigned mode)
{
    char buf[8];
    std::snprintf(buf, sizeof buf, "%04o", mode & 07777);
    return buf;
}

} // namespace

/**
 * Takes ownership of a parsed certificate and key and checks that together
 * they can sign leaves at `now` (0: the current time): the key is the
 * certificate's, the certificate is a CA (X509_check_ca: basicConstraints
 * CA:TRUE and, if keyUsage is present, keyCertSign), and `now` is inside its
 * validity — an expired CA would make every forged leaf fail on the client.
 */
Result<CertAuthority> CertAuthority::fromPem(std::string_view certPem, std::string_view keyPem, std::time_t now)
{
    auto cert = certFromPem(certPem);
    if (!cert)
        return fail("lab CA certificate: " + cert.error().message);
    auto key = keyFromPem(keyPem);
    if (!key)
        return fail("lab CA key: " + key.error().message);

    CertAuthority ca;
    ca.cert_ = std::move(*cert);
    ca.key_ = std::move(*key);
    if (X509_check_private_key(ca.cert_.get(), ca.key_.get()) != 1)
        return fail(takeSslErrors("the lab CA key does not belong to the lab CA certificate"));
    if (X509_check_ca(ca.cert_.get()) != 1)
        return fail("the lab CA certificate is not a CA (it needs basicConstraints CA:TRUE and keyUsage keyCertSign)");

    auto notBefore = asn1ToTime(X509_get0_notBefore(ca.cert_.get()));
    auto notAfter = asn1ToTime(X509_get0_notAfter(ca.cert_.get()));
    if (!notBefore || !notAfter)
        return fail("the lab CA certificate has an unreadable validity period");
    ca.notBefore_ = *notBefore;
    ca.notAfter_ = *notAfter;
    if (now == 0)
        now = std::time(nullptr);
    if (now < ca.notBefore_)
        return fail("the lab CA certificate is not valid before " + utc(ca.notBefore_) + " (check the clock)");
    if (now >= ca.notAfter_)
        return fail("the lab CA certificate expired at " + utc(ca.notAfter_)
                    + "; create a new one with veilctl ca init");

    int crit = 0;
    void* nc = X509_get_ext_d2i(ca.cert_.get(), NID_name_constraints, &crit, nullptr);
    ca.nameConstraints_.reset(static_cast<NAME_CONSTRAINTS*>(nc));
    if (!nc && crit != -1)
        return fail("the lab CA certificate has an unreadable nameConstraints extension");
    return ca;
}

/**
 * Reads the CA files (start-up only; blocking). The key file's mode is
 * checked before it is read: a lab CA key anyone on the host can read lets
 * them intercept every client that trusts it, so group/other access is an
 * error, not a warning.
 */
Result<CertAuthority> CertAuthority::load(const std::string& certPath, const std::string& keyPath)
{
    struct stat st {};
    if (::stat(keyPath.c_str(), &st) != 0)
        return fail(keyPath + ": " + std::strerror(errno));
    if (!S_ISREG(st.st_mode))
        return fail(keyPath + ": the lab CA key is not a regular file");
    if ((st.st_mode & 077) != 0)
        return fail(keyPath + ": the lab CA key is accessible by group or others (mode " + octal(st.st_mode)
                    + "); run chmod 600 " + keyPath);

    auto certPem = readAll(certPath);
    if (!certPem)
        return fail(certPem.error());
    auto keyText = readAll(keyPath);
    if (!keyText)
        return fail(keyText.error());
    SecretString keyPem(std::move(*keyText));

    auto ca = fromPem(*certPem, keyPem.view());
    if (!ca)
        return fail(certPath + ", " + keyPath + ": " + ca.error().message);
    return ca;
}

Result<std::string> CertAuthority::certPem() const { return certToPem(cert_.get()); }

Result<SecretString> CertAuthority::keyPem() const { return keyToPem(key_.get()); }

/**
 * Generates the lab CA. Choices, each for a reason:
 *  - notBefore one hour back: clients with a slightly slow clock still accept it.
 *  - basicConstraints pathlen:0: the CA signs leaves only, never another CA.
 *  - nameConstraints (critical, RFC 5280 §4.2.1.10): a DNS base "example.com"
 *    permits example.com and every name below it. Excluding all IPv4/IPv6
 *    addresses closes the gap a DNS-only constraint leaves open (IP SANs are
 *    not DNS names, so a DNS permitted subtree does not constrain them).
 * Permitted domains must be DNS names (normalizeHostName); duplicates are dropped.
 */
Result<CertAuthority> generateCa(const std::vector<std::string>& permittedDomains, const CaOptions& options)
{
    std::vector<std::string> domains;
    for (const auto& d : permittedDomains) {
        auto n = normalizeHostName(d);
        if (!n)
            return fail("permitted domain \"" + d + "\" is not a DNS name (letters, digits, '-' and '.')");
        if (std::find(domains.begin(), domains.end(), *n) == domains.end())
            domains.push_back(std::move(*n));
    }
    if (options.validity <= std::chrono::seconds(0))
        return fail("lab CA validity must be positive");

    std::time_t now = options.now ? options.now : std::time(nullptr);
    CertSpec spec;
    spec.commonName = options.commonName;
    spec.organization = "veil";
    spec.notBefore = now - 3600;
    spec.notAfter = now + static_cast<std::time_t>(options.validity.count());
    spec.extensions = {
        {NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
        {NID_key_usage, "critical,keyCertSign,cRLSign"},
        {NID_subject_key_identifier, "hash"},
        {NID_authority_key_identifier, "keyid:always"},
    };
    if (!domains.empty()) {
        std::string nc = "critical";
        for (const auto& d : domains)
            nc += ",permitted;DNS:" + d;
        nc += ",excluded;IP:0.0.0.0/0.0.0.0,excluded;IP:::/::";
        spec.extensions.emplace_back(NID_name_constraints, nc);
    }

    auto key = generateP256Key();
    if (!key)
        return fail(key.error());
    auto cert = buildCertificate(spec, key->get(), nullptr, nullptr);
    if (!cert)
        return fail(cert.error());
    auto certPem = certToPem(cert->get());
    auto keyPem = keyToPem(key->get());
    if (!certPem || !keyPem)
        return fail("encoding the lab CA failed");
    return CertAuthority::fromPem(*certPem, keyPem->view(), now);
}

/**
 * Writes a new CA into `dir`. The key is written first, created 0600 by
 * writeFileAtomic (exact mode, umask ignored; temporary file + rename), so
 * there is no moment where it exists with a wider mode. Existing files are
 * never replaced: clients may already trust that CA.
 */
Result<CaFiles> createCa(const std::string& dir, const std::vector<std::string>& permittedDomains,
                         const CaOptions& options)
{
    if (dir.empty())
        return fail("no output directory given");
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0) {
        if (errno != ENOENT || ::mkdir(dir.c_str(), 0700) != 0)
            return fail(dir + ": " + std::strerror(errno));
    } else if (!S_ISDIR(st.st_mode)) {
        return fail(dir + ": not a directory");
    }

    CaFiles files;
    files.certPath = dir + "/ca.pem";
    files.keyPath = dir + "/ca.key";
    for (const auto& p : {files.certPath, files.keyPath})
        if (::lstat(p.c_str(), &st) == 0 || errno != ENOENT)
            return fail(p + ": already exists; refusing to replace a lab CA (remove it first)");

    auto ca = generateCa(permittedDomains, options);
    if (!ca)
        return fail(ca.error());
    auto certPem = ca->certPem();
    auto keyPem = ca->keyPem();
    if (!certPem || !keyPem)
        return fail("encoding the lab CA failed");

    if (auto w = writeFileAtomic(files.keyPath, keyPem->view(), 0600); !w)
        return fail(w.error());
    if (auto w = writeFileAtomic(files.certPath, *certPem, 0644); !w) {
        ::unlink(files.keyPath.c_str());
        return fail(w.error());
    }
    files.sha256Fingerprint = sha256Fingerprint(ca->cert());
    return files;
}

} // namespace veil::tls
