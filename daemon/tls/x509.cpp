#include "tls/x509.h"

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include <climits>
#include <cstdio>

namespace veil::tls {

namespace {

Result<BioPtr> memBio(std::string_view data)
{
    if (data.size() > static_cast<std::size_t>(INT_MAX))
        return fail("PEM input too large");
    BioPtr bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
    if (!bio)
        return fail(takeSslErrors("BIO_new_mem_buf"));
    return bio;
}

std::string drain(BIO* bio)
{
    char* data = nullptr;
    long n = BIO_get_mem_data(bio, &data);
    return n > 0 ? std::string(data, static_cast<std::size_t>(n)) : std::string();
}

// RFC 5280 §4.1.2.2: positive, at most 20 bytes; CA/B Forum asks for at
// least 64 random bits. 16 random bytes with the top bit cleared (positive)
// and the next one set (always 16 bytes long).
Result<void> setRandomSerial(X509* cert)
{
    unsigned char buf[16];
    if (RAND_bytes(buf, sizeof buf) != 1)
        return fail(takeSslErrors("RAND_bytes"));
    buf[0] = static_cast<unsigned char>((buf[0] & 0x7f) | 0x40);
    BignumPtr bn(BN_bin2bn(buf, sizeof buf, nullptr));
    if (!bn || !BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert)))
        return fail(takeSslErrors("serial number"));
    return Ok{};
}

bool addName(X509_NAME* name, const char* field, const std::string& value)
{
    return X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(value.c_str()),
                                      static_cast<int>(value.size()), -1, 0)
        == 1;
}

} // namespace

/** A P-256 (prime256v1) key: ECDSA signatures are cheap, so a leaf forge costs ~0.1 ms. */
Result<EvpPkeyPtr> generateP256Key()
{
    EvpPkeyPtr key(EVP_EC_gen("P-256"));
    if (!key)
        return fail(takeSslErrors("P-256 key generation"));
    return key;
}

/**
 * Builds and signs a certificate. Extensions are created with the issuer
 * certificate in the X509V3 context so "keyid:always" AKIs find the issuer's
 * SKI; a self-signed certificate is its own issuer. Names in `spec` must be
 * checked by the caller: they go into extension strings verbatim.
 */
Result<X509Ptr> buildCertificate(const CertSpec& spec, EVP_PKEY* subjectKey, X509* issuer, EVP_PKEY* issuerKey)
{
    X509Ptr cert(X509_new());
    if (!cert || X509_set_version(cert.get(), X509_VERSION_3) != 1)
        return fail(takeSslErrors("X509_new"));
    if (auto s = setRandomSerial(cert.get()); !s)
        return fail(s.error());

    X509_NAME* subject = X509_get_subject_name(cert.get());
    if (!spec.organization.empty() && !addName(subject, "O", spec.organization))
        return fail(takeSslErrors("subject O"));
    if (!addName(subject, "CN", spec.commonName))
        return fail(takeSslErrors("subject CN"));
    X509_NAME* issuerName = issuer ? X509_get_subject_name(issuer) : subject;
    if (X509_set_issuer_name(cert.get(), issuerName) != 1)
        return fail(takeSslErrors("issuer name"));

    if (!ASN1_TIME_set(X509_getm_notBefore(cert.get()), spec.notBefore)
        || !ASN1_TIME_set(X509_getm_notAfter(cert.get()), spec.notAfter))
        return fail(takeSslErrors("validity"));
    if (X509_set_pubkey(cert.get(), subjectKey) != 1)
        return fail(takeSslErrors("public key"));

    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer ? issuer : cert.get(), cert.get(), nullptr, nullptr, 0);
    for (const auto& [nid, value] : spec.extensions) {
        X509ExtensionPtr ext(X509V3_EXT_nconf_nid(nullptr, &ctx, nid, value.c_str()));
        if (!ext || X509_add_ext(cert.get(), ext.get(), -1) != 1)
            return fail(takeSslErrors(std::string("extension ") + OBJ_nid2sn(nid)));
    }

    if (X509_sign(cert.get(), issuer ? issuerKey : subjectKey, EVP_sha256()) <= 0)
        return fail(takeSslErrors("signing the certificate"));
    return cert;
}

Result<std::string> certToPem(X509* cert)
{
    BioPtr bio(BIO_new(BIO_s_mem()));
    if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1)
        return fail(takeSslErrors("PEM_write_bio_X509"));
    return drain(bio.get());
}

/** Unencrypted PKCS#8 PEM. The memory BIO's buffer is wiped when freed (BUF_MEM_free). */
Result<SecretString> keyToPem(EVP_PKEY* key)
{
    BioPtr bio(BIO_new(BIO_s_mem()));
    if (!bio || PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1)
        return fail(takeSslErrors("PEM_write_bio_PrivateKey"));
    return SecretString(drain(bio.get()));
}

Result<X509Ptr> certFromPem(std::string_view pem)
{
    auto bio = memBio(pem);
    if (!bio)
        return fail(bio.error());
    X509Ptr cert(PEM_read_bio_X509(bio->get(), nullptr, nullptr, nullptr));
    if (!cert)
        return fail(takeSslErrors("no PEM certificate"));
    return cert;
}

/** Every certificate in a PEM bundle, in file order; at least one. */
Result<std::vector<X509Ptr>> certsFromPem(std::string_view pem)
{
    auto bio = memBio(pem);
    if (!bio)
        return fail(bio.error());
    std::vector<X509Ptr> out;
    while (X509* c = PEM_read_bio_X509(bio->get(), nullptr, nullptr, nullptr))
        out.emplace_back(c);
    // The loop ends on "no start line" at end of input; that is not an error.
    ERR_clear_error();
    if (out.empty())
        return fail("no PEM certificate");
    return out;
}

/** A private key from PEM; a passphrase-protected key is refused (no prompt at start-up). */
Result<EvpPkeyPtr> keyFromPem(std::string_view pem)
{
    auto bio = memBio(pem);
    if (!bio)
        return fail(bio.error());
    auto noPassword = [](char*, int, int, void*) { return 0; };
    EvpPkeyPtr key(PEM_read_bio_PrivateKey(bio->get(), nullptr, noPassword, nullptr));
    if (!key)
        return fail(takeSslErrors("no usable PEM private key"));
    return key;
}

Result<std::time_t> asn1ToTime(const ASN1_TIME* t)
{
    struct tm tm {};
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
        return fail(takeSslErrors("unparsable certificate time"));
    return ::timegm(&tm);
}

std::string sha256Fingerprint(X509* cert)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (X509_digest(cert, EVP_sha256(), md, &n) != 1)
        return {};
    std::string out;
    for (unsigned int i = 0; i < n; ++i) {
        char hex[4];
        std::snprintf(hex, sizeof hex, i ? ":%02X" : "%02X", md[i]);
        out += hex;
    }
    return out;
}

} // namespace veil::tls
