#pragma once

// The masking engine: bytes in, bytes out, no I/O. One Masker per thread
// (it owns the Vectorscan scratch and the JSON parser); the RuleSet it reads
// is immutable and shared.

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "mask/mapping.h"
#include "mask/ruleset.h"

namespace veil::mask {

// Why a body could not be masked. The daemon blocks such bodies (fail closed)
// unless on_unmaskable: pass.
enum class Unmaskable {
    InvalidJson,   // not JSON (or not UTF-8, or too deep) on a JSON route
    Residual,      // a rule still matches after masking
    TooLarge,      // over the configured size limit (set by the caller)
    Internal,      // the scanner failed (out of memory, Vectorscan error)
};

const char* unmaskableName(Unmaskable r);

struct MaskError {
    Unmaskable reason;
    // For people and logs: names rules, offsets and sizes, never an original value.
    std::string detail;
};

struct MaskStats {
    // Replacements made per token type (occurrences, not distinct values).
    std::map<std::string, unsigned> perType;
    unsigned total = 0;
};

struct Masked {
    std::string body;
    Mapping mapping;
    MaskStats stats;
};

struct MaskOptions {
    // JSON strings whose decoded text is itself JSON (e.g. a tool_result holding
    // a JSON document) are masked as JSON down to this many levels.
    unsigned nestedJsonDepth = 3;
    // Run the residual check (a second scan of the output).
    bool residualCheck = true;
    // Look for originals elsewhere in the body with AVX2 where the CPU has
    // it; false: the portable search (the same result; for tests).
    bool vectorSearch = true;
};

class Masker {
public:
    explicit Masker(std::shared_ptr<const RuleSet> rules, MaskOptions options = {});
    ~Masker();
    Masker(const Masker&) = delete;
    Masker& operator=(const Masker&) = delete;

    // Masks every string (keys and values, after unescaping) of a JSON body.
    // The output is valid JSON of the same structure.
    Result<Masked, MaskError> maskJson(std::string_view body);

    // Masks a body that is plain text (no JSON awareness).
    Result<Masked, MaskError> maskText(std::string_view body);

    const RuleSet& rules() const { return *rules_; }

private:
    struct Impl;
    std::shared_ptr<const RuleSet> rules_;
    std::unique_ptr<Impl> impl_;
};

} // namespace veil::mask
