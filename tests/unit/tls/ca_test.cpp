#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "base/io.h"
#include "pki.h"
#include "tls/ca.h"

using namespace veil::tls;
using namespace veil::tls::test;

namespace {

unsigned fileMode(const std::string& path)
{
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    return st.st_mode & 07777;
}

std::string slurp(const std::string& path) { return take(veil::readAll(path)); }

bool extensionCritical(X509* cert, int nid)
{
    int idx = X509_get_ext_by_NID(cert, nid, -1);
    REQUIRE(idx >= 0);
    return X509_EXTENSION_get_critical(X509_get_ext(cert, idx)) == 1;
}

std::vector<std::string> permittedDns(X509* cert)
{
    NameConstraintsPtr nc(
        static_cast<NAME_CONSTRAINTS*>(X509_get_ext_d2i(cert, NID_name_constraints, nullptr, nullptr)));
    REQUIRE(nc);
    std::vector<std::string> out;
    for (int i = 0; i < sk_GENERAL_SUBTREE_num(nc->permittedSubtrees); ++i) {
        GENERAL_SUBTREE* t = sk_GENERAL_SUBTREE_value(nc->permittedSubtrees, i);
        if (t->base->type == GEN_DNS)
            out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(t->base->d.dNSName)),
                             static_cast<std::size_t>(ASN1_STRING_length(t->base->d.dNSName)));
    }
    return out;
}

} // namespace

TEST_CASE("ca init writes a P-256 CA certificate and a 0600 key", "[tls][ca]")
{
    TempDir dir;
    std::string out = dir.path() + "/ca";
    CaFiles files = take(createCa(out, {"example.com", "Anthropic.com"}));
    CHECK(files.certPath == out + "/ca.pem");
    CHECK(files.keyPath == out + "/ca.key");
    CHECK(fileMode(files.keyPath) == 0600);
    CHECK(fileMode(files.certPath) == 0644);
    CHECK(fileMode(out) == 0700);
    CHECK(files.sha256Fingerprint.size() == 32 * 3 - 1);

    X509Ptr cert = take(certFromPem(slurp(files.certPath)));
    EvpPkeyPtr key = take(keyFromPem(slurp(files.keyPath)));
    CHECK(X509_check_private_key(cert.get(), key.get()) == 1);
    CHECK(EVP_PKEY_is_a(key.get(), "EC"));
    CHECK(EVP_PKEY_get_bits(key.get()) == 256);
    char curve[64] = {};
    REQUIRE(EVP_PKEY_get_group_name(key.get(), curve, sizeof curve, nullptr) == 1);
    CHECK(std::string(curve) == "prime256v1");
    CHECK(slurp(files.keyPath).find("BEGIN PRIVATE KEY") != std::string::npos);
    CHECK(slurp(files.certPath).find("PRIVATE") == std::string::npos);
}

TEST_CASE("The lab CA is CA:TRUE and keyCertSign, both critical, self-signed with SKI and AKI", "[tls][ca]")
{
    CertAuthority ca = take(generateCa({"example.com"}));
    X509* cert = ca.cert();
    CHECK(X509_check_ca(cert) == 1);
    CHECK(extensionCritical(cert, NID_basic_constraints));
    BasicConstraintsPtr bc(
        static_cast<BASIC_CONSTRAINTS*>(X509_get_ext_d2i(cert, NID_basic_constraints, nullptr, nullptr)));
    REQUIRE(bc);
    CHECK(bc->ca);
    CHECK(extensionCritical(cert, NID_key_usage));
    CHECK(X509_get_key_usage(cert) == (KU_KEY_CERT_SIGN | KU_CRL_SIGN));
    CHECK(X509_get0_subject_key_id(cert) != nullptr);
    CHECK(X509_get0_authority_key_id(cert) != nullptr);
    CHECK(ASN1_OCTET_STRING_cmp(X509_get0_subject_key_id(cert), X509_get0_authority_key_id(cert)) == 0);
    CHECK(X509_check_issued(cert, cert) == X509_V_OK);
    CHECK(X509_verify(cert, X509_get0_pubkey(cert)) == 1);
    CHECK(X509_get_signature_nid(cert) == NID_ecdsa_with_SHA256);

    // Ten years, give or take the backdated hour.
    int days = 0;
    int secs = 0;
    REQUIRE(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(cert), X509_get0_notAfter(cert)) == 1);
    CHECK(days == 3652);

    // A random serial of at least 64 bits; two CAs differ.
    BignumPtr serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr));
    CHECK(BN_num_bits(serial.get()) >= 120);
    CertAuthority other = take(generateCa({}));
    CHECK(ASN1_INTEGER_cmp(X509_get0_serialNumber(cert), X509_get0_serialNumber(other.cert())) != 0);
}

TEST_CASE("Permitted domains become critical name constraints that also exclude IP addresses", "[tls][ca]")
{
    CertAuthority ca = take(generateCa({"Example.com", "anthropic.com", "example.com"}));
    CHECK(extensionCritical(ca.cert(), NID_name_constraints));
    CHECK(permittedDns(ca.cert()) == std::vector<std::string>{"example.com", "anthropic.com"});
    REQUIRE(ca.nameConstraints() != nullptr);
    CHECK(sk_GENERAL_SUBTREE_num(ca.nameConstraints()->excludedSubtrees) == 2);

    CertAuthority open = take(generateCa({}));
    CHECK(X509_get_ext_by_NID(open.cert(), NID_name_constraints, -1) < 0);
    CHECK(open.nameConstraints() == nullptr);
}

TEST_CASE("ca init refuses permitted domains that are not DNS names", "[tls][ca]")
{
    for (const char* bad : {"10.0.0.1", "exa mple.com", "a,DNS:evil.org", "*.example.com", ""}) {
        auto r = generateCa({bad});
        INFO(bad);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().message.find("not a DNS name") != std::string::npos);
    }
}

TEST_CASE("ca init never replaces an existing CA", "[tls][ca]")
{
    TempDir dir;
    CaFiles first = take(createCa(dir.path(), {}));
    std::string before = slurp(first.keyPath);
    auto again = createCa(dir.path(), {});
    REQUIRE_FALSE(again.ok());
    CHECK(again.error().message.find("already exists") != std::string::npos);
    CHECK(slurp(first.keyPath) == before);
}

TEST_CASE("Loading the CA checks the key, the CA flag and the file mode", "[tls][ca]")
{
    TempDir dir;
    CaFiles files = take(createCa(dir.path(), {"example.com"}));

    SECTION("a 0600 key loads")
    {
        CertAuthority ca = take(CertAuthority::load(files.certPath, files.keyPath));
        CHECK(ca.notAfter() > ca.notBefore());
        CHECK(ca.nameConstraints() != nullptr);
    }
    SECTION("a 0644 key is refused with the fix in the message")
    {
        REQUIRE(::chmod(files.keyPath.c_str(), 0644) == 0);
        auto r = CertAuthority::load(files.certPath, files.keyPath);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().message.find("group or others") != std::string::npos);
        CHECK(r.error().message.find("0644") != std::string::npos);
        CHECK(r.error().message.find("chmod 600") != std::string::npos);
        CHECK(r.error().message.find("PRIVATE") == std::string::npos);
    }
    SECTION("a 0640 key is refused too")
    {
        REQUIRE(::chmod(files.keyPath.c_str(), 0640) == 0);
        CHECK_FALSE(CertAuthority::load(files.certPath, files.keyPath).ok());
    }
    SECTION("a key of another CA is refused")
    {
        TempDir other;
        CaFiles otherFiles = take(createCa(other.path(), {}));
        auto r = CertAuthority::load(files.certPath, otherFiles.keyPath);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().message.find("does not belong") != std::string::npos);
    }
    SECTION("a missing key file is refused")
    {
        CHECK_FALSE(CertAuthority::load(files.certPath, dir.path() + "/nope.key").ok());
    }
}

TEST_CASE("A certificate that is not a CA cannot be loaded as the lab CA", "[tls][ca]")
{
    TestPki pki;
    X509Ptr leaf = pki.leaf("api.example.com");
    auto r = CertAuthority::fromPem(take(certToPem(leaf.get())), take(keyToPem(pki.leafKey.get())).view());
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("not a CA") != std::string::npos);
}

TEST_CASE("An expired or not yet valid lab CA is refused at load", "[tls][ca]")
{
    CertAuthority ca = take(generateCa({}));
    std::string certPem = take(ca.certPem());
    SecretString keyPem = take(ca.keyPem());
    CHECK(CertAuthority::fromPem(certPem, keyPem.view()).ok());
    auto late = CertAuthority::fromPem(certPem, keyPem.view(), ca.notAfter() + 1);
    REQUIRE_FALSE(late.ok());
    CHECK(late.error().message.find("expired") != std::string::npos);
    auto early = CertAuthority::fromPem(certPem, keyPem.view(), ca.notBefore() - 1);
    REQUIRE_FALSE(early.ok());
    CHECK(early.error().message.find("not valid before") != std::string::npos);
}
