#pragma once

// Forged leaves (DESIGN.md step 4): a certificate for one validated SNI,
// signed by the lab CA, and the cache that makes a repeat name free.

#include <chrono>
#include <cstdint>
#include <ctime>
#include <functional>
#include <future>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"
#include "tls/ca.h"
#include "tls/ossl.h"

namespace veil::tls {

// A forged certificate and its private key, immutable once made and shared
// by every connection that presents it. The key is the forger's one leaf
// key; `cert` and `key` are handed to SSL_use_certificate/SSL_use_PrivateKey
// (DownstreamContext::accept), which take their own references.
struct Leaf {
    std::string name;
    X509Ptr cert;
    EvpPkeyPtr key;
    std::time_t notBefore = 0;
    std::time_t notAfter = 0;
};

struct ForgeOptions {
    std::chrono::seconds validity = std::chrono::days(30); // at most 365 days
    std::chrono::seconds backdate = std::chrono::minutes(5); // notBefore = now - backdate
};

inline constexpr std::chrono::seconds kMaxLeafValidity = std::chrono::days(365);

class LeafForger {
public:
    // Generates the leaf key (once: every leaf shares it, so a forge costs one
    // ECDSA signature, not a key generation).
    static Result<std::shared_ptr<LeafForger>> create(std::shared_ptr<const CertAuthority> ca,
                                                     const ForgeOptions& options = {});

    // A leaf for `name`, which must be a normalized DNS name permitted by the
    // CA's name constraints. Thread-safe.
    Result<std::shared_ptr<const Leaf>> forge(std::string_view name, std::time_t now) const;

    const CertAuthority& ca() const { return *ca_; }

private:
    LeafForger() = default;
    std::shared_ptr<const CertAuthority> ca_;
    EvpPkeyPtr leafKey_;
    ForgeOptions options_;
};

struct LeafCacheOptions {
    std::size_t capacity = 1024;
};

// A bounded LRU of forged leaves keyed by name, shared by all workers.
// A leaf is reforged once 3/4 of its lifetime has passed, so a client never
// gets one close to expiry. Concurrent misses for one name forge once: the
// first caller forges outside the lock, the others wait for its result.
class LeafCache {
public:
    using Clock = std::function<std::time_t()>;
    using ForgeFn = std::function<Result<std::shared_ptr<const Leaf>>(std::string_view name, std::time_t now)>;

    struct Stats {
        std::uint64_t hits = 0;      // served from the cache
        std::uint64_t misses = 0;    // not cached, or past its refresh point
        std::uint64_t forges = 0;    // forge calls made (misses that forged)
        std::uint64_t waits = 0;     // misses that waited for another caller's forge
        std::uint64_t evictions = 0; // dropped for capacity
        std::uint64_t failures = 0;  // forges that returned an error
    };

    LeafCache(std::shared_ptr<const LeafForger> forger, const LeafCacheOptions& options = {}, Clock clock = {});
    // Any forge function (tests inject slow or counting ones).
    LeafCache(ForgeFn forge, const LeafCacheOptions& options = {}, Clock clock = {});

    // The leaf for `name`, forged on a miss. Blocks for at most one forge
    // (one signature), its own or another caller's for the same name.
    Result<std::shared_ptr<const Leaf>> get(std::string_view name);

    Stats stats() const;
    std::size_t size() const;

private:
    using LeafResult = Result<std::shared_ptr<const Leaf>>;
    struct Entry {
        std::shared_ptr<const Leaf> leaf; // null until the first forge completes
        std::time_t refreshAt = 0;
        // Set while a forge for this name runs; other callers wait on it.
        std::optional<std::shared_future<LeafResult>> inflight;
        std::list<std::string>::iterator lruPos;
    };
    void touch(Entry& e);
    void evictOverCapacity();
    LeafResult forgeOutsideLock(std::string_view name, std::time_t now);

    ForgeFn forge_;
    Clock clock_;
    std::size_t capacity_;

    mutable std::mutex mutex_;
    // The LRU list holds names, most recently used first; each entry keeps
    // its list position so a hit moves it in O(1).
    std::list<std::string> lru_;
    std::map<std::string, Entry, std::less<>> entries_;
    Stats stats_;
};

} // namespace veil::tls
