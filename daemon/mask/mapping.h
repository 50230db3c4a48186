#pragma once

// The mapping of one request: token → original value, in order of first
// occurrence. It belongs to one request/response exchange and is never shared
// between clients.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace veil::mask {

class Mapping {
public:
    struct Entry {
        std::string token;
        std::string original;
    };

    // Adds a token; the token must not be present yet.
    void add(std::string token, std::string original);
    // Room for n entries (the masker knows an upper bound).
    void reserve(std::size_t n);

    // The original for a whole token, or nullptr.
    const std::string* find(std::string_view token) const;
    // True if some token starts with `prefix` (the prefix may be a whole token).
    bool isTokenPrefix(std::string_view prefix) const;

    const std::vector<Entry>& entries() const { return entries_; }
    std::size_t size() const { return entries_.size(); }
    bool empty() const { return entries_.empty(); }

    // The mapping file of veilctl: a JSON object {token: original}.
    std::string toJson() const;
    static Result<Mapping> fromJson(std::string_view json);

private:
    // Indices into entries_ in token order: lookups by binary search, and
    // no allocation per token beyond its strings.
    std::uint32_t lowerBound(std::string_view token) const;
    std::vector<Entry> entries_;
    std::vector<std::uint32_t> byToken_;
};

} // namespace veil::mask
