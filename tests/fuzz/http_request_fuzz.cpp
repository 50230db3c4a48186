// The downstream request parser on untrusted client bytes: never crashes,
// and the result does not depend on how the bytes arrive.
#include "http_parser_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    std::string_view in(reinterpret_cast<const char*>(data), size);
    auto head = [](veil::http::RequestParser& p) {
        const auto& h = p.head();
        std::string d = h.method + " " + h.target + " " + std::to_string(h.version) + " " +
                        std::to_string(static_cast<int>(h.framing)) + " " + std::to_string(h.contentLength) + " " +
                        std::string(h.host()) + " " + std::to_string(h.headers.size());
        // Masked routes buffer with a limit; a declared length over it is refused at once.
        if (!p.setBodyLimit(4096))
            d += " over-limit";
        return d;
    };
    std::string whole = veil::fuzz::transcript<veil::http::RequestParser>(in, {size}, head);
    std::string pieces = veil::fuzz::transcript<veil::http::RequestParser>(in, veil::fuzz::splits(in), head);
    VEIL_FUZZ_CHECK(whole == pieces);
    return 0;
}
