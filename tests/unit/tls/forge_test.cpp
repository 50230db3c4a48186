#include <catch2/catch.hpp>

#include <atomic>
#include <thread>

#include "pki.h"
#include "tls/ca.h"
#include "tls/forge.h"

using namespace veil::tls;
using namespace veil::tls::test;

namespace {

std::shared_ptr<const CertAuthority> labCa(const std::vector<std::string>& permit = {}, CaOptions opt = {})
{
    return std::make_shared<const CertAuthority>(take(generateCa(permit, opt)));
}

// Verifies `leaf` against `ca` as a TLS server certificate for `host` at
// `when`, the way a client would. Returns the X509_V_* result.
int verifyLeaf(X509* leaf, X509* ca, const std::string& host, std::time_t when)
{
    X509StorePtr store(X509_STORE_new());
    X509_STORE_add_cert(store.get(), ca);
    X509StoreCtxPtr ctx(X509_STORE_CTX_new());
    REQUIRE(X509_STORE_CTX_init(ctx.get(), store.get(), leaf, nullptr) == 1);
    X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
    X509_VERIFY_PARAM_set_time(param, when);
    X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_SERVER);
    X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size());
    X509_verify_cert(ctx.get());
    return X509_STORE_CTX_get_error(ctx.get());
}

std::vector<std::string> sanDns(X509* cert, int* total)
{
    GeneralNamesPtr sans(static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
    REQUIRE(sans);
    std::vector<std::string> out;
    *total = sk_GENERAL_NAME_num(sans.get());
    for (int i = 0; i < *total; ++i) {
        GENERAL_NAME* gn = sk_GENERAL_NAME_value(sans.get(), i);
        if (gn->type == GEN_DNS)
            out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(gn->d.dNSName)),
                             static_cast<std::size_t>(ASN1_STRING_length(gn->d.dNSName)));
    }
    return out;
}

bool critical(X509* cert, int nid)
{
    int idx = X509_get_ext_by_NID(cert, nid, -1);
    REQUIRE(idx >= 0);
    return X509_EXTENSION_get_critical(X509_get_ext(cert, idx)) == 1;
}

std::string commonName(X509* cert)
{
    char buf[256] = {};
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf, sizeof buf);
    return buf;
}

} // namespace

TEST_CASE("A forged leaf names exactly its host and is a TLS server certificate", "[tls][forge]")
{
    auto ca = labCa({"example.com"});
    auto forger = take(LeafForger::create(ca));
    std::time_t now = std::time(nullptr);
    auto leaf = take(forger->forge("api.example.com", now));
    X509* cert = leaf->cert.get();

    CHECK(leaf->name == "api.example.com");
    CHECK(commonName(cert) == "api.example.com");
    int total = 0;
    CHECK(sanDns(cert, &total) == std::vector<std::string>{"api.example.com"});
    CHECK(total == 1);

    CHECK(X509_check_ca(cert) == 0);
    CHECK(critical(cert, NID_basic_constraints));
    BasicConstraintsPtr bc(
        static_cast<BASIC_CONSTRAINTS*>(X509_get_ext_d2i(cert, NID_basic_constraints, nullptr, nullptr)));
    REQUIRE(bc);
    CHECK_FALSE(bc->ca);
    CHECK(critical(cert, NID_key_usage));
    CHECK(X509_get_key_usage(cert) == KU_DIGITAL_SIGNATURE);
    CHECK(X509_get_extended_key_usage(cert) == XKU_SSL_SERVER);
    CHECK(X509_get0_subject_key_id(cert) != nullptr);
    REQUIRE(X509_get0_authority_key_id(cert) != nullptr);
    CHECK(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(cert), X509_get0_subject_key_id(ca->cert())) == 0);
    CHECK(X509_get_signature_nid(cert) == NID_ecdsa_with_SHA256);
    CHECK(EVP_PKEY_get_bits(X509_get0_pubkey(cert)) == 256);
    CHECK(X509_check_private_key(cert, leaf->key.get()) == 1);

    CHECK(verifyLeaf(cert, ca->cert(), "api.example.com", now) == X509_V_OK);
    CHECK(verifyLeaf(cert, ca->cert(), "www.example.com", now) == X509_V_ERR_HOSTNAME_MISMATCH);
}

TEST_CASE("A forged leaf is backdated five minutes and lives thirty days by default", "[tls][forge]")
{
    auto ca = labCa();
    auto forger = take(LeafForger::create(ca));
    std::time_t now = std::time(nullptr);
    auto leaf = take(forger->forge("example.org", now));
    CHECK(leaf->notBefore == now - 300);
    CHECK(leaf->notAfter == now + 30 * kDay);
    CHECK(take(asn1ToTime(X509_get0_notBefore(leaf->cert.get()))) == leaf->notBefore);
    CHECK(take(asn1ToTime(X509_get0_notAfter(leaf->cert.get()))) == leaf->notAfter);
    CHECK(leaf->notAfter - leaf->notBefore <= 365 * kDay);
    CHECK(leaf->notBefore >= ca->notBefore());
    CHECK(leaf->notAfter <= ca->notAfter());
}

TEST_CASE("Leaf validity is configurable up to a year and never outlives the CA", "[tls][forge]")
{
    std::time_t now = std::time(nullptr);
    SECTION("more than a year is refused")
    {
        ForgeOptions o;
        o.validity = std::chrono::days(366);
        CHECK_FALSE(LeafForger::create(labCa(), o).ok());
    }
    SECTION("a year is allowed")
    {
        ForgeOptions o;
        o.validity = std::chrono::days(365);
        auto leaf = take(take(LeafForger::create(labCa(), o))->forge("example.org", now));
        CHECK(leaf->notAfter == now + 365 * kDay);
    }
    SECTION("a CA expiring in ten days caps the leaf at its own notAfter")
    {
        CaOptions co;
        co.validity = std::chrono::days(10);
        auto ca = labCa({}, co);
        auto leaf = take(take(LeafForger::create(ca))->forge("example.org", now));
        CHECK(leaf->notAfter == ca->notAfter());
        CHECK(verifyLeaf(leaf->cert.get(), ca->cert(), "example.org", now) == X509_V_OK);
    }
    SECTION("notBefore is not earlier than the CA's")
    {
        auto ca = labCa();
        auto leaf = take(take(LeafForger::create(ca))->forge("example.org", ca->notBefore() + 60));
        CHECK(leaf->notBefore == ca->notBefore());
    }
    SECTION("an expired CA forges nothing")
    {
        auto ca = labCa();
        auto r = take(LeafForger::create(ca))->forge("example.org", ca->notAfter());
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().message.find("expired") != std::string::npos);
    }
}

TEST_CASE("Every leaf shares the forger's key but has its own random serial", "[tls][forge]")
{
    auto forger = take(LeafForger::create(labCa()));
    std::time_t now = std::time(nullptr);
    auto a = take(forger->forge("a.example", now));
    auto b = take(forger->forge("b.example", now));
    auto a2 = take(forger->forge("a.example", now));
    CHECK(EVP_PKEY_eq(a->key.get(), b->key.get()) == 1);
    CHECK(ASN1_INTEGER_cmp(X509_get0_serialNumber(a->cert.get()), X509_get0_serialNumber(a2->cert.get())) != 0);
    BignumPtr serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(a->cert.get()), nullptr));
    CHECK(BN_num_bits(serial.get()) >= 120);
    CHECK_FALSE(BN_is_negative(serial.get()));
}

TEST_CASE("The forger refuses names that are not normalized DNS names", "[tls][forge]")
{
    auto forger = take(LeafForger::create(labCa()));
    std::time_t now = std::time(nullptr);
    for (const char* bad : {"API.example.com", "198.18.0.1", "a,DNS:evil.org", "evil.org,IP:1.2.3.4", "", "a..b"})
        CHECK_FALSE(forger->forge(bad, now).ok());
}

TEST_CASE("A name-constrained CA forges only inside its domains, and clients enforce it", "[tls][forge]")
{
    auto ca = labCa({"example.com"});
    auto forger = take(LeafForger::create(ca));
    std::time_t now = std::time(nullptr);

    for (const char* ok : {"example.com", "api.example.com", "a.b.example.com"}) {
        auto leaf = take(forger->forge(ok, now));
        CHECK(verifyLeaf(leaf->cert.get(), ca->cert(), ok, now) == X509_V_OK);
    }
    for (const char* outside : {"evil.org", "notexample.com", "example.com.evil.org"}) {
        auto r = forger->forge(outside, now);
        INFO(outside);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().message.find("name constraints") != std::string::npos);
    }

    // A leaf signed by the CA key by other means is still refused by a client.
    EvpPkeyPtr key = take(generateP256Key());
    X509Ptr rogue =
        take(buildCertificate(leafSpec("evil.org", now - 60, now + kDay), key.get(), ca->cert(), ca->key()));
    CHECK(verifyLeaf(rogue.get(), ca->cert(), "evil.org", now) == X509_V_ERR_PERMITTED_VIOLATION);
    CertSpec ipSpec = leafSpec("api.example.com", now - 60, now + kDay);
    ipSpec.extensions[3].second = "DNS:api.example.com,IP:198.18.0.1";
    X509Ptr withIp = take(buildCertificate(ipSpec, key.get(), ca->cert(), ca->key()));
    CHECK(verifyLeaf(withIp.get(), ca->cert(), "api.example.com", now) == X509_V_ERR_EXCLUDED_VIOLATION);
}

// --- the cache ----------------------------------------------------------------

namespace {

struct FakeClock {
    std::atomic<std::time_t> now{1'800'000'000};
    LeafCache::Clock fn()
    {
        return [this] { return now.load(); };
    }
};

// A forge function over a real forger that counts calls per name.
struct CountingForge {
    explicit CountingForge(std::shared_ptr<LeafForger> f) : forger(std::move(f)) {}
    std::shared_ptr<LeafForger> forger;
    std::atomic<int> calls{0};
    std::chrono::milliseconds delay{0};
    std::atomic<int> failNext{0};
    LeafCache::ForgeFn fn()
    {
        return [this](std::string_view name, std::time_t now) -> veil::Result<std::shared_ptr<const Leaf>> {
            ++calls;
            if (delay.count())
                std::this_thread::sleep_for(delay);
            if (failNext > 0) {
                --failNext;
                return veil::fail("injected failure");
            }
            return forger->forge(name, now);
        };
    }
};

std::shared_ptr<LeafForger> forgerAt(std::time_t when)
{
    CaOptions co;
    co.now = when - kDay;
    return take(LeafForger::create(labCa({}, co)));
}

} // namespace

TEST_CASE("The leaf cache forges on a miss and returns the same leaf on a hit", "[tls][cache]")
{
    FakeClock clock;
    CountingForge forge(forgerAt(clock.now));
    LeafCache cache(forge.fn(), {}, clock.fn());
    auto a = take(cache.get("api.example.com"));
    auto b = take(cache.get("api.example.com"));
    CHECK(a == b);
    CHECK(forge.calls == 1);
    auto s = cache.stats();
    CHECK(s.misses == 1);
    CHECK(s.hits == 1);
    CHECK(s.forges == 1);
    CHECK(cache.size() == 1);
}

TEST_CASE("The leaf cache evicts the least recently used name beyond its capacity", "[tls][cache]")
{
    FakeClock clock;
    CountingForge forge(forgerAt(clock.now));
    LeafCache cache(forge.fn(), LeafCacheOptions{2}, clock.fn());
    auto a = take(cache.get("a.example"));
    take(cache.get("b.example"));
    CHECK(take(cache.get("a.example")) == a); // a is now the most recent
    take(cache.get("c.example"));             // evicts b
    CHECK(cache.size() == 2);
    CHECK(cache.stats().evictions == 1);
    CHECK(forge.calls == 3);
    CHECK(take(cache.get("a.example")) == a);
    CHECK(forge.calls == 3);
    take(cache.get("b.example")); // forged again
    CHECK(forge.calls == 4);
}

TEST_CASE("The leaf cache reforges a leaf past three quarters of its lifetime", "[tls][cache]")
{
    FakeClock clock;
    std::time_t t0 = clock.now;
    CountingForge forge(forgerAt(t0));
    LeafCache cache(forge.fn(), {}, clock.fn());
    auto first = take(cache.get("a.example"));
    std::time_t life = first->notAfter - first->notBefore;
    std::time_t refreshAt = first->notBefore + life * 3 / 4;

    clock.now = refreshAt - 1;
    CHECK(take(cache.get("a.example")) == first);
    CHECK(forge.calls == 1);

    clock.now = refreshAt;
    auto second = take(cache.get("a.example"));
    CHECK(second != first);
    CHECK(forge.calls == 2);
    CHECK(second->notBefore == refreshAt - 300);
    CHECK(second->notAfter > clock.now);

    // A clock that steps back before the leaf's notBefore gets a new leaf.
    clock.now = second->notBefore - 1;
    CHECK(take(cache.get("a.example")) != second);
    CHECK(forge.calls == 3);
}

TEST_CASE("A failed forge is not cached", "[tls][cache]")
{
    FakeClock clock;
    CountingForge forge(forgerAt(clock.now));
    forge.failNext = 1;
    LeafCache cache(forge.fn(), {}, clock.fn());
    auto r = cache.get("a.example");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message == "injected failure");
    CHECK(cache.size() == 0);
    CHECK(take(cache.get("a.example")) != nullptr);
    CHECK(forge.calls == 2);
    CHECK(cache.stats().failures == 1);
}

TEST_CASE("Concurrent misses for one name forge once", "[tls][cache]")
{
    FakeClock clock;
    CountingForge forge(forgerAt(clock.now));
    forge.delay = std::chrono::milliseconds(100);
    LeafCache cache(forge.fn(), {}, clock.fn());

    constexpr int kThreads = 8;
    std::vector<std::shared_ptr<const Leaf>> got(kThreads);
    std::atomic<int> ready{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i)
        threads.emplace_back([&, i] {
            ++ready;
            while (ready < kThreads) {
            }
            auto r = cache.get("api.example.com");
            if (r.ok())
                got[static_cast<std::size_t>(i)] = *r;
        });
    for (auto& t : threads)
        t.join();
    CHECK(forge.calls == 1);
    for (const auto& leaf : got) {
        REQUIRE(leaf);
        CHECK(leaf == got[0]);
    }
    auto s = cache.stats();
    CHECK(s.forges == 1);
    CHECK(s.waits + s.hits == kThreads - 1);
    CHECK(s.waits >= 1);
}

TEST_CASE("The leaf cache stays consistent under many threads and names", "[tls][cache]")
{
    auto forger = take(LeafForger::create(labCa()));
    LeafCache cache(forger, LeafCacheOptions{8});
    std::atomic<int> errors{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < 200; ++i) {
                std::string name = "h" + std::to_string((i * 7 + t) % 20) + ".example";
                auto r = cache.get(name);
                if (!r.ok() || (*r)->name != name)
                    ++errors;
            }
        });
    for (auto& t : threads)
        t.join();
    CHECK(errors == 0);
    CHECK(cache.size() <= 8);
    auto s = cache.stats();
    CHECK(s.hits + s.misses == 800);
}
