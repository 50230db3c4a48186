// The ClientHello peek on the first bytes of any connection: never crashes,
// never claims more bytes than it was given, and is monotone — a prefix of an
// input that parses as a complete hello is NeedMore (or already decided the
// same way), and once decided, more bytes do not change the decision.
#include "fuzz.h"
#include "tls/client_hello.h"

using veil::tls::PeekStatus;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    std::string_view in(reinterpret_cast<const char*>(data), size);
    veil::tls::PeekResult full = veil::tls::peekClientHello(in);
    if (full.status == PeekStatus::Tls) {
        VEIL_FUZZ_CHECK(full.hello.wireBytes > 0 && full.hello.wireBytes <= size);
        VEIL_FUZZ_CHECK(full.hello.wireBytes <= veil::tls::kMaxPeekBytes);
        VEIL_FUZZ_CHECK(full.hello.sni.has_value() == (full.hello.sniStatus == veil::tls::SniStatus::Valid));
        if (full.hello.sni) {
            VEIL_FUZZ_CHECK(!full.hello.sni->empty() && full.hello.sni->size() <= 253);
            for (char c : *full.hello.sni)
                VEIL_FUZZ_CHECK(!(c >= 'A' && c <= 'Z'));
        }
    }
    if (full.status == PeekStatus::NeedMore)
        VEIL_FUZZ_CHECK(size < veil::tls::kMaxPeekBytes);
    // Every prefix at the cut points: undecided, or decided as the whole is.
    for (std::size_t cut : veil::fuzz::splits(in, 257)) {
        veil::tls::PeekResult part = veil::tls::peekClientHello(in.substr(0, cut));
        if (part.status == PeekStatus::NeedMore)
            continue;
        VEIL_FUZZ_CHECK(part.status == full.status);
        if (part.status == PeekStatus::Tls) {
            VEIL_FUZZ_CHECK(part.hello.wireBytes == full.hello.wireBytes);
            VEIL_FUZZ_CHECK(part.hello.sni == full.hello.sni);
            VEIL_FUZZ_CHECK(part.hello.alpn == full.hello.alpn);
        }
    }
    return 0;
}
