// The SSE unmasker on any stream an upstream can send. Properties: it never
// crashes or grows without bound, and its output does not depend on how the
// stream is cut into reads (it buffers only the current event).
#include "fuzz.h"
#include "mask/mapping.h"
#include "mask/sse.h"

namespace {

const veil::mask::Mapping& mapping()
{
    static veil::mask::Mapping m = [] {
        veil::mask::Mapping x;
        x.add("EC2_001", "i-0123456789abcdef0");
        x.add("EC2_002", "i-0fedcba9876543210");
        x.add("ACCOUNT_001", "123456789012");
        x.add("IAM_ARN_001", "arn:aws:iam::123456789012:role/Admin");
        x.add("PATH_001", "C:\\dir \"quoted\"\n"); // needs escaping in JSON and JSON-in-JSON
        return x;
    }();
    return m;
}

std::string run(std::string_view in, const std::vector<std::size_t>& cuts, bool& failed)
{
    veil::mask::SseUnmasker u(mapping(), 4096);
    std::string out;
    std::size_t from = 0;
    failed = false;
    for (std::size_t cut : cuts) {
        if (!u.feed(in.substr(from, cut - from), out)) {
            failed = true;
            return out;
        }
        from = cut;
        // Only the current event is held: bounded by the event limit plus
        // what one read added.
    }
    u.finish(out);
    return out;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    std::string_view in(reinterpret_cast<const char*>(data), size);
    bool failWhole = false, failPieces = false;
    std::string whole = run(in, {size}, failWhole);
    std::string pieces = run(in, veil::fuzz::splits(in, 97), failPieces);
    VEIL_FUZZ_CHECK(failWhole == failPieces);
    if (!failWhole)
        VEIL_FUZZ_CHECK(whole == pieces);
    return 0;
}
