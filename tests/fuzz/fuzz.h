#pragma once

// Shared bits of veil's fuzz targets. Each target is one .cpp with
// LLVMFuzzerTestOneInput; built with -Dfuzz=true (clang) it links libFuzzer,
// otherwise driver.cpp runs it over its seed corpus as a regression test.
//
// A target reports a broken property with VEIL_FUZZ_CHECK, which aborts (so
// libFuzzer keeps the input and the regression run fails) and says which.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#define VEIL_FUZZ_CHECK(cond)                                                                                  \
    do {                                                                                                       \
        if (!(cond)) {                                                                                         \
            std::fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, #cond);                  \
            std::abort();                                                                                      \
        }                                                                                                      \
    } while (0)

namespace veil::fuzz {

// Cut points derived from the input itself (so a crash reproduces from the
// saved input alone): a splitmix64 stream seeded by an FNV-1a hash of it.
inline std::vector<std::size_t> splits(std::string_view data, std::size_t maxPiece = 64)
{
    std::uint64_t h = 1469598103934665603ull;
    for (unsigned char c : data)
        h = (h ^ c) * 1099511628211ull;
    std::vector<std::size_t> out;
    std::size_t pos = 0;
    while (pos < data.size()) {
        h += 0x9e3779b97f4a7c15ull;
        std::uint64_t z = h;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        pos += 1 + static_cast<std::size_t>(z % maxPiece);
        out.push_back(pos < data.size() ? pos : data.size());
    }
    return out;
}

} // namespace veil::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);
