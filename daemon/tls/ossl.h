#pragma once

// Owners for OpenSSL handles (STYLE.md habit 3): every handle the tls module
// holds is one of these, so no SSL_free()/X509_free() is written by hand.
// Also the one way errors leave OpenSSL's per-thread error queue: as text.

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>
#include <string_view>

namespace veil::tls {

// Calls `Free` on destruction; works for OpenSSL's void and int returning
// free functions alike.
template <auto Free>
struct Deleter {
    template <typename T>
    void operator()(T* p) const noexcept
    {
        Free(p);
    }
};

using SslPtr = std::unique_ptr<SSL, Deleter<SSL_free>>;
using SslCtxPtr = std::unique_ptr<SSL_CTX, Deleter<SSL_CTX_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509_free>>;
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using EvpPkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, Deleter<EVP_PKEY_CTX_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO_free_all>>;
using X509StorePtr = std::unique_ptr<X509_STORE, Deleter<X509_STORE_free>>;
using X509StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, Deleter<X509_STORE_CTX_free>>;
using X509ExtensionPtr = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION_free>>;
using BignumPtr = std::unique_ptr<BIGNUM, Deleter<BN_free>>;
using NameConstraintsPtr = std::unique_ptr<NAME_CONSTRAINTS, Deleter<NAME_CONSTRAINTS_free>>;
using GeneralNamesPtr = std::unique_ptr<GENERAL_NAMES, Deleter<GENERAL_NAMES_free>>;
using BasicConstraintsPtr = std::unique_ptr<BASIC_CONSTRAINTS, Deleter<BASIC_CONSTRAINTS_free>>;
using ExtendedKeyUsagePtr = std::unique_ptr<EXTENDED_KEY_USAGE, Deleter<EXTENDED_KEY_USAGE_free>>;
using Asn1BitStringPtr = std::unique_ptr<ASN1_BIT_STRING, Deleter<ASN1_BIT_STRING_free>>;
using Asn1OctetStringPtr = std::unique_ptr<ASN1_OCTET_STRING, Deleter<ASN1_OCTET_STRING_free>>;
using AuthorityKeyIdPtr = std::unique_ptr<AUTHORITY_KEYID, Deleter<AUTHORITY_KEYID_free>>;

// A new owning reference to a shared handle.
inline X509Ptr shareCert(X509* cert)
{
    X509_up_ref(cert);
    return X509Ptr(cert);
}

inline EvpPkeyPtr shareKey(EVP_PKEY* key)
{
    EVP_PKEY_up_ref(key);
    return EvpPkeyPtr(key);
}

// Drains this thread's OpenSSL error queue into "what: reason; reason".
// OpenSSL's reason strings name operations, never key material.
std::string takeSslErrors(std::string_view what);

// A string that is wiped when it dies: holds PEM-encoded private keys on
// their way to or from a file, so key bytes do not linger in freed memory.
class SecretString {
public:
    SecretString() = default;
    explicit SecretString(std::string s) : s_(std::move(s)) {}
    ~SecretString() { wipe(); }
    SecretString(SecretString&& o) noexcept : s_(std::move(o.s_)) {}
    SecretString& operator=(SecretString&& o) noexcept
    {
        if (this != &o) {
            wipe();
            s_ = std::move(o.s_);
        }
        return *this;
    }
    SecretString(const SecretString&) = delete;
    SecretString& operator=(const SecretString&) = delete;

    std::string_view view() const { return s_; }

private:
    void wipe()
    {
        if (!s_.empty())
            OPENSSL_cleanse(s_.data(), s_.size());
        s_.clear();
    }
    std::string s_;
};

} // namespace veil::tls
