// The DNS snooper's parser on any packet the queue hands veild (byte 0
// chooses: a whole IP packet, or a bare DNS message). Properties: never
// crashes or reads out of bounds; every name it returns is in the
// presentation form target matching relies on (lower case, no final dot, no
// empty label); every target address it derives has a family and comes from
// an A/AAAA record of the answer.
#include <algorithm>
#include <span>

#include "dns/message.h"
#include "dns/targets.h"
#include "fuzz.h"

namespace {

void checkName(const std::string& n)
{
    VEIL_FUZZ_CHECK(n.size() <= 4 * 255); // \DDD escapes at most quadruple a byte
    VEIL_FUZZ_CHECK(n.empty() || (n.front() != '.' && n.back() != '.'));
    VEIL_FUZZ_CHECK(n.find("..") == std::string::npos);
    for (char c : n)
        VEIL_FUZZ_CHECK(!(c >= 'A' && c <= 'Z'));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    if (size == 0)
        return 0;
    std::span<const std::uint8_t> in(data + 1, size - 1);
    auto m = (data[0] & 1) ? veil::dns::parse(in) : veil::dns::parseMessage(in);
    if (!m) {
        VEIL_FUZZ_CHECK(veil::dns::toString(m.error()) != nullptr);
        return 0;
    }
    for (const auto& q : m->questions)
        checkName(q);
    for (const auto& r : m->answers) {
        checkName(r.name);
        if (r.type == veil::dns::kTypeCname)
            checkName(r.target);
    }
    // Everything is a target, and nothing is: bounds on what comes out.
    auto all = veil::dns::targetAddresses(*m, [](std::string_view) { return true; });
    auto none = veil::dns::targetAddresses(*m, [](std::string_view) { return false; });
    VEIL_FUZZ_CHECK(none.empty());
    VEIL_FUZZ_CHECK(all.size() <= m->answers.size());
    for (const auto& t : all) {
        VEIL_FUZZ_CHECK(t.address.family != 0);
        bool fromRecord = std::any_of(m->answers.begin(), m->answers.end(), [&](const veil::dns::Record& r) {
            return (r.type == veil::dns::kTypeA || r.type == veil::dns::kTypeAaaa) && r.address == t.address;
        });
        VEIL_FUZZ_CHECK(fromRecord);
    }
    return 0;
}
