// The upstream response parser on untrusted server bytes (the first input
// byte says whether the request was HEAD): never crashes, and the result does
// not depend on how the bytes arrive.
#include "http_parser_fuzz.h"

namespace {
// A response to HEAD has no body whatever its fields say; the parser must be
// told before the first byte.
struct HeadResponseParser : veil::http::ResponseParser {
    explicit HeadResponseParser(veil::http::Limits limits) : ResponseParser(limits) { setHeadRequest(true); }
};
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    if (size == 0)
        return 0;
    const bool headRequest = data[0] & 1;
    std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
    auto head = [](veil::http::ResponseParser& p) {
        const auto& h = p.head();
        return std::to_string(h.status) + " " + std::to_string(h.version) + " " +
               std::to_string(static_cast<int>(h.framing)) + " " + std::to_string(h.headers.size());
    };
    auto run = [&](const std::vector<std::size_t>& cuts) {
        return headRequest ? veil::fuzz::transcript<HeadResponseParser>(in, cuts, head)
                           : veil::fuzz::transcript<veil::http::ResponseParser>(in, cuts, head);
    };
    std::string whole = run({in.size()});
    std::string pieces = run(veil::fuzz::splits(in));
    VEIL_FUZZ_CHECK(whole == pieces);
    return 0;
}
