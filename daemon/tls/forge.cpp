#include "tls/forge.h"

#include <algorithm>
#include <exception>

#include "tls/hostname.h"
#include "tls/x509.h"

namespace veil::tls {

/**
 * Checks the options and generates the one leaf key. Validity is capped at
 * one year: clients (Apple, Chrome) refuse longer server certificates, and a
 * short one bounds how long a copied leaf stays useful.
 */
Result<std::shared_ptr<LeafForger>> LeafForger::create(std::shared_ptr<const CertAuthority> ca,
                                                       const ForgeOptions& options)
{
    if (!ca)
        return fail("no lab CA to forge with");
    if (options.validity <= std::chrono::seconds(0) || options.validity > kMaxLeafValidity)
        return fail("leaf validity must be between 1 second and 365 days");
    if (options.backdate < std::chrono::seconds(0) || options.backdate > std::chrono::days(1))
        return fail("leaf backdating must be between 0 and 1 day");
    auto key = generateP256Key();
    if (!key)
        return fail(key.error());
    std::shared_ptr<LeafForger> f(new LeafForger());
    f->ca_ = std::move(ca);
    f->leafKey_ = std::move(*key);
    f->options_ = options;
    return f;
}

namespace {

// Whether the CA's name constraints allow a certificate for `name`, decided by
// OpenSSL's own NAME_CONSTRAINTS_check (the code clients run) on an unsigned
// stand-in certificate, so a refused name costs no signature.
Result<void> checkNameConstraints(NAME_CONSTRAINTS* nc, const std::string& name)
{
    if (!nc)
        return Ok{};
    X509Ptr probe(X509_new());
    GeneralNamesPtr sans(GENERAL_NAMES_new());
    GENERAL_NAME* gn = GENERAL_NAME_new();
    ASN1_IA5STRING* ia5 = ASN1_IA5STRING_new();
    if (!probe || !sans || !gn || !ia5) {
        GENERAL_NAME_free(gn);
        ASN1_IA5STRING_free(ia5);
        return fail(takeSslErrors("name constraints check"));
    }
    ASN1_STRING_set(ia5, name.data(), static_cast<int>(name.size()));
    GENERAL_NAME_set0_value(gn, GEN_DNS, ia5);
    sk_GENERAL_NAME_push(sans.get(), gn);
    if (X509_add1_ext_i2d(probe.get(), NID_subject_alt_name, sans.get(), 0, X509V3_ADD_DEFAULT) != 1)
        return fail(takeSslErrors("name constraints check"));
    // NAME_CONSTRAINTS_check reads the SANs from the extension cache, which
    // X509_check_purpose fills in (verification does the same).
    X509_check_purpose(probe.get(), -1, 0);
    int rc = NAME_CONSTRAINTS_check(probe.get(), nc);
    if (rc != X509_V_OK)
        return fail("\"" + name + "\" is outside the lab CA's name constraints ("
                    + X509_verify_cert_error_string(rc) + ")");
    return Ok{};
}

} // namespace

/**
 * Forges a leaf for `name` valid at `now`:
 *  - notBefore = now − backdate (clients with slow clocks), but not before the
 *    CA's notBefore; notAfter = min(now + validity, CA notAfter) — a leaf that
 *    outlives its issuer fails on the client anyway.
 *  - subject CN = name and SAN = exactly DNS:name; CA:FALSE and
 *    keyUsage digitalSignature (both critical); EKU serverAuth; SKI/AKI.
 *  - random serial, ECDSA-SHA256 by the CA key.
 * `name` must already be normalized (lowercase LDH): that is what makes it
 * safe inside the "DNS:" extension string.
 */
Result<std::shared_ptr<const Leaf>> LeafForger::forge(std::string_view name, std::time_t now) const
{
    auto normalized = normalizeHostName(name);
    if (!normalized || *normalized != name)
        return fail("cannot forge a certificate for a name that is not a normalized DNS name");
    if (auto nc = checkNameConstraints(ca_->nameConstraints(), *normalized); !nc)
        return fail(nc.error());

    CertSpec spec;
    spec.commonName = *normalized;
    spec.notBefore = std::max(now - static_cast<std::time_t>(options_.backdate.count()), ca_->notBefore());
    spec.notAfter = std::min(now + static_cast<std::time_t>(options_.validity.count()), ca_->notAfter());
    if (now >= ca_->notAfter() || spec.notAfter <= spec.notBefore)
        return fail("the lab CA has expired; cannot forge certificates");
    spec.extensions = {
        {NID_basic_constraints, "critical,CA:FALSE"},
        {NID_key_usage, "critical,digitalSignature"},
        {NID_ext_key_usage, "serverAuth"},
        {NID_subject_alt_name, "DNS:" + *normalized},
        {NID_subject_key_identifier, "hash"},
        {NID_authority_key_identifier, "keyid:always"},
    };
    auto cert = buildCertificate(spec, leafKey_.get(), ca_->cert(), ca_->key());
    if (!cert)
        return fail("forging a certificate: " + cert.error().message);

    auto leaf = std::make_shared<Leaf>();
    leaf->name = std::move(*normalized);
    leaf->cert = std::move(*cert);
    leaf->key = shareKey(leafKey_.get());
    leaf->notBefore = spec.notBefore;
    leaf->notAfter = spec.notAfter;
    return std::shared_ptr<const Leaf>(std::move(leaf));
}

LeafCache::LeafCache(std::shared_ptr<const LeafForger> forger, const LeafCacheOptions& options, Clock clock)
    : LeafCache(
        [forger = std::move(forger)](std::string_view name, std::time_t now) { return forger->forge(name, now); },
        options, std::move(clock))
{
}

LeafCache::LeafCache(ForgeFn forge, const LeafCacheOptions& options, Clock clock)
    : forge_(std::move(forge)), clock_(clock ? std::move(clock) : Clock([] { return std::time(nullptr); })),
      capacity_(std::max<std::size_t>(options.capacity, 1))
{
}

/**
 * The leaf for `name`.
 *
 * | cached state                           | action                         |
 * |----------------------------------------|--------------------------------|
 * | forge in flight                        | wait for it, share its result  |
 * | leaf with notBefore ≤ now < refreshAt  | hit                            |
 * | none, or stale, or clock went back     | forge (outside the lock)       |
 *
 * refreshAt is 3/4 into the leaf's lifetime. A failed forge leaves nothing
 * cached, so the next caller tries again; waiting callers get the same error.
 */
Result<std::shared_ptr<const Leaf>> LeafCache::get(std::string_view name)
{
    std::time_t now = clock_();
    std::promise<LeafResult> promise;
    {
        std::unique_lock lock(mutex_);
        auto it = entries_.find(name);
        if (it == entries_.end()) {
            it = entries_.emplace(std::string(name), Entry{}).first;
            lru_.push_front(it->first);
            it->second.lruPos = lru_.begin();
        }
        Entry& e = it->second;
        if (e.inflight) {
            ++stats_.misses;
            ++stats_.waits;
            auto fut = *e.inflight;
            lock.unlock();
            return fut.get();
        }
        if (e.leaf && now >= e.leaf->notBefore && now < e.refreshAt) {
            ++stats_.hits;
            touch(e);
            return e.leaf;
        }
        ++stats_.misses;
        ++stats_.forges;
        e.inflight = promise.get_future().share();
    }

    LeafResult result = forgeOutsideLock(name, now);
    {
        std::lock_guard lock(mutex_);
        // In-flight entries are never evicted, so it is still there.
        auto it = entries_.find(name);
        Entry& e = it->second;
        e.inflight.reset();
        if (result) {
            e.leaf = *result;
            e.refreshAt = e.leaf->notBefore + (e.leaf->notAfter - e.leaf->notBefore) * 3 / 4;
            touch(e);
            evictOverCapacity();
        } else {
            ++stats_.failures;
            lru_.erase(e.lruPos);
            entries_.erase(it);
        }
    }
    promise.set_value(result);
    return result;
}

// The forge function may throw (std::bad_alloc); waiters must still get an
// answer, so anything thrown becomes an error value here.
LeafCache::LeafResult LeafCache::forgeOutsideLock(std::string_view name, std::time_t now)
{
    try {
        return forge_(name, now);
    } catch (const std::exception& ex) {
        return fail(std::string("forging a certificate: ") + ex.what());
    }
}

void LeafCache::touch(Entry& e) { lru_.splice(lru_.begin(), lru_, e.lruPos); }

// Drops least recently used entries beyond capacity, skipping ones with a
// forge in flight (their forger will look them up again).
void LeafCache::evictOverCapacity()
{
    auto pos = lru_.end();
    while (entries_.size() > capacity_ && pos != lru_.begin()) {
        --pos;
        auto it = entries_.find(*pos);
        if (it->second.inflight)
            continue;
        pos = lru_.erase(pos);
        entries_.erase(it);
        ++stats_.evictions;
    }
}

LeafCache::Stats LeafCache::stats() const
{
    std::lock_guard lock(mutex_);
    return stats_;
}

std::size_t LeafCache::size() const
{
    std::lock_guard lock(mutex_);
    return entries_.size();
}

} // namespace veil::tls
