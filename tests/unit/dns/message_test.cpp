#include <catch2/catch.hpp>

#include <algorithm>
#include <random>

#include "build.h"
#include "config/config.h"
#include "dns/message.h"
#include "dns/targets.h"

using namespace veil::dns;
using namespace veil::dns::test;

namespace {

constexpr unsigned kQname = 12; // the question name follows the header

// Targets as veild matches them: config::Config::targetFor.
veil::config::Config withTargets(std::initializer_list<const char*> hosts)
{
    veil::config::Config c;
    for (const char* h : hosts)
        c.targets.push_back({h, {}});
    return c;
}

TargetMatcher matcher(const veil::config::Config& c)
{
    return [&c](std::string_view n) { return c.targetFor(n) != nullptr; };
}

std::span<const std::uint8_t> view(const Bytes& b) { return {b.data(), b.size()}; }

Message parsed(const Bytes& dns)
{
    auto m = parseMessage(view(dns));
    INFO("error: " << (m ? "none" : toString(m.error())));
    REQUIRE(m.ok());
    return m.value();
}

ParseError errorOf(const Bytes& dns)
{
    auto m = parseMessage(view(dns));
    REQUIRE_FALSE(m.ok());
    return m.error();
}

std::vector<std::string> texts(const std::vector<TargetAddress>& v)
{
    std::vector<std::string> out;
    for (const auto& t : v)
        out.push_back(t.address.text());
    std::sort(out.begin(), out.end());
    return out;
}

// api.anthropic.com A 198.18.5.10, the owner compressed to the question.
Bytes simpleAnswer(std::uint32_t ttl = 300)
{
    return cat({header(1, 1), question(name("api.anthropic.com")), a(ptr(kQname), ttl, "198.18.5.10")});
}

} // namespace

TEST_CASE("an A answer compressed against the question yields the target address and its TTL")
{
    auto cfg = withTargets({"api.anthropic.com"});
    Message m = parsed(simpleAnswer(300));
    REQUIRE(m.response());
    REQUIRE(m.questions == std::vector<std::string>{"api.anthropic.com"});
    REQUIRE(m.answers.size() == 1);
    REQUIRE(m.answers[0].name == "api.anthropic.com");
    auto t = targetAddresses(m, matcher(cfg));
    REQUIRE(t.size() == 1);
    CHECK(t[0].address.text() == "198.18.5.10");
    CHECK(t[0].address.family == AF_INET);
    CHECK(t[0].ttl == 300);
    CHECK(t[0].name == "api.anthropic.com");
}

TEST_CASE("AAAA answers yield IPv6 addresses")
{
    auto cfg = withTargets({"api.anthropic.com"});
    Bytes dns = cat({header(1, 2), question(name("api.anthropic.com"), 28), aaaa(ptr(kQname), 60, "fd00:5::10"),
                     aaaa(ptr(kQname), 60, "fd00:5::11")});
    auto t = targetAddresses(parsed(dns), matcher(cfg));
    CHECK(texts(t) == std::vector<std::string>{"fd00:5::10", "fd00:5::11"});
    CHECK(t[0].address.family == AF_INET6);
}

TEST_CASE("names are matched case-insensitively and with wildcard targets")
{
    auto cfg = withTargets({"*.anthropic.com"});
    Bytes dns = cat({header(1, 1), question(name("API.Anthropic.COM")), a(ptr(kQname), 30, "198.18.5.10")});
    Message m = parsed(dns);
    CHECK(m.questions[0] == "api.anthropic.com");
    CHECK(texts(targetAddresses(m, matcher(cfg))) == std::vector<std::string>{"198.18.5.10"});

    // The wildcard needs at least one label before the domain.
    Bytes apex = cat({header(1, 1), question(name("anthropic.com")), a(ptr(kQname), 30, "198.18.5.10")});
    CHECK(targetAddresses(parsed(apex), matcher(cfg)).empty());
}

TEST_CASE("non-target names are ignored")
{
    auto cfg = withTargets({"api.anthropic.com"});
    Bytes dns = cat({header(1, 1), question(name("other.example.com")), a(ptr(kQname), 300, "198.18.5.20")});
    Message m = parsed(dns);
    REQUIRE(m.answers.size() == 1);
    CHECK(targetAddresses(m, matcher(cfg)).empty());
}

TEST_CASE("address records not reachable from the question are ignored, even for target names")
{
    auto cfg = withTargets({"api.anthropic.com"});
    Bytes dns = cat({header(1, 2), question(name("other.example.com")), a(ptr(kQname), 300, "198.18.5.20"),
                     a(name("api.anthropic.com"), 300, "198.18.5.66")});
    CHECK(targetAddresses(parsed(dns), matcher(cfg)).empty());
}

TEST_CASE("CNAME chains are followed in any record order; the TTL is the minimum along the chain")
{
    auto cfg = withTargets({"api.anthropic.com"});
    // api.anthropic.com → edge.cdn.example (ttl 600) → e1.cdn.example (ttl 40) → A (ttl 300)
    std::vector<Bytes> records = {
        cname(name("api.anthropic.com"), 600, name("edge.cdn.example")),
        cname(name("edge.cdn.example"), 40, name("e1.cdn.example")),
        a(name("e1.cdn.example"), 300, "198.18.5.10"),
        a(name("e1.cdn.example"), 20, "198.18.5.11"),
    };
    std::vector<int> order = {0, 1, 2, 3};
    int permutations = 0;
    do {
        Bytes dns = cat({header(1, 4), question(name("api.anthropic.com"))});
        for (int i : order)
            dns = cat({dns, records[static_cast<std::size_t>(i)]});
        auto t = targetAddresses(parsed(dns), matcher(cfg));
        INFO("order " << order[0] << order[1] << order[2] << order[3]);
        REQUIRE(t.size() == 2);
        for (const auto& x : t) {
            CHECK(x.name == "api.anthropic.com");
            CHECK(x.ttl == (x.address.text() == "198.18.5.10" ? 40u : 20u));
        }
        ++permutations;
    } while (std::next_permutation(order.begin(), order.end()));
    CHECK(permutations == 24);
}

TEST_CASE("a target anywhere on the chain makes its addresses targets")
{
    auto cfg = withTargets({"*.anthropic.com"});
    // www.example.org → api.anthropic.com → edge.cdn.example → A
    Bytes dns = cat({header(1, 3), question(name("www.example.org")),
                     cname(ptr(kQname), 100, name("api.anthropic.com")),
                     cname(name("api.anthropic.com"), 100, name("edge.cdn.example")),
                     a(name("edge.cdn.example"), 100, "198.18.5.12")});
    auto t = targetAddresses(parsed(dns), matcher(cfg));
    REQUIRE(t.size() == 1);
    CHECK(t[0].name == "api.anthropic.com");
    CHECK(t[0].address.text() == "198.18.5.12");
}

TEST_CASE("compressed CNAME targets and owners decompress through several pointers")
{
    auto cfg = withTargets({"api.anthropic.com"});
    // Question api.anthropic.com at 12; "anthropic.com" starts at 16.
    // CNAME rdata: "edge" + pointer to anthropic.com → edge.anthropic.com.
    Bytes q = cat({header(1, 2), question(name("api.anthropic.com"))});
    std::size_t cnameAt = q.size();
    Bytes rdata = cat({labels("edge", false), ptr(16)});
    Bytes dns = cat({q, cname(ptr(kQname), 50, rdata)});
    // Owner of the A record: a pointer to the CNAME's rdata (itself compressed).
    std::size_t rdataAt = cnameAt + 2 + 10;
    dns = cat({dns, a(ptr(static_cast<unsigned>(rdataAt)), 70, "198.18.5.13")});
    Message m = parsed(dns);
    REQUIRE(m.answers.size() == 2);
    CHECK(m.answers[0].target == "edge.anthropic.com");
    CHECK(m.answers[1].name == "edge.anthropic.com");
    auto t = targetAddresses(m, matcher(cfg));
    REQUIRE(t.size() == 1);
    CHECK(t[0].ttl == 50);
}

TEST_CASE("compression pointers that do not point strictly backwards are refused (no loops)")
{
    SECTION("a pointer to itself")
    {
        Bytes dns = cat({header(1, 0), ptr(kQname), u16(1), u16(1)});
        CHECK(errorOf(dns) == ParseError::BadPointer);
    }
    SECTION("a forward pointer")
    {
        Bytes dns = cat({header(1, 0), ptr(kQname + 6), u16(1), u16(1), name("x")});
        CHECK(errorOf(dns) == ParseError::BadPointer);
    }
    SECTION("two names pointing at each other")
    {
        // Question: "a" then a pointer to the answer owner (offset 20);
        // answer owner: a pointer back to the question. Following either
        // loops; any loop needs one pointer that is not strictly backwards.
        Bytes dns = cat({header(1, 1), labels("a", false), ptr(kQname + 2 + 2 + 4), u16(1), u16(1),
                         a(ptr(kQname), 1, "198.18.5.10")});
        CHECK(errorOf(dns) == ParseError::BadPointer);
    }
    SECTION("a pointer into the middle of its own labels")
    {
        // "aa" "bb" then a pointer to the "bb" label: bb.bb.bb...
        Bytes dns = cat({header(1, 0), labels("aa.bb", false), ptr(kQname + 3), u16(1), u16(1)});
        CHECK(errorOf(dns) == ParseError::BadPointer);
    }
}

TEST_CASE("names over 255 bytes are refused, also when compression makes them long")
{
    std::string longName;
    for (int i = 0; i < 5; ++i)
        longName += std::string(60, static_cast<char>('a' + i)) + ".";
    longName.pop_back(); // 5 labels of 60: 306 bytes
    CHECK(errorOf(cat({header(1, 0), question(name(longName))})) == ParseError::NameTooLong);

    // 200 bytes of labels, then a second name of 100 bytes pointing at it.
    std::string part = std::string(50, 'x') + "." + std::string(50, 'y') + "." + std::string(50, 'z') + "." +
                       std::string(45, 'w');
    Bytes first = name(part);
    REQUIRE(first.size() < 256);
    Bytes second = cat({labels(std::string(60, 'q') + "." + std::string(30, 'r'), false), ptr(kQname)});
    CHECK(errorOf(cat({header(2, 0), question(first), question(second)})) == ParseError::NameTooLong);

    // A 63-byte label is fine, a 64-byte one is a different label type.
    CHECK(parseMessage(view(cat({header(1, 0), question(name(std::string(63, 'l')))}))).ok());
    Bytes bad = cat({header(1, 0), Bytes{0x40}, Bytes(64, 'l'), Bytes{0}, u16(1), u16(1)});
    CHECK(errorOf(bad) == ParseError::BadLabel);
}

TEST_CASE("every truncation of a valid message is an error, never a crash")
{
    Bytes dns = cat({header(1, 3, 0, 1), question(name("api.anthropic.com")),
                     cname(ptr(kQname), 60, name("edge.cdn.example")), a(name("edge.cdn.example"), 60, "198.18.5.10"),
                     aaaa(name("edge.cdn.example"), 60, "fd00:5::10"), rr(Bytes{0}, 41, 0, Bytes{})});
    REQUIRE(parseMessage(view(dns)).ok());
    for (std::size_t n = 0; n < dns.size(); ++n) {
        INFO("prefix of " << n << " bytes");
        Bytes prefix(dns.begin(), dns.begin() + static_cast<std::ptrdiff_t>(n));
        CHECK_FALSE(parseMessage(view(prefix)).ok());
        // The same prefix in an IP packet whose lengths match it.
        CHECK_FALSE(parse(view(ipv4(udp(prefix)))).ok());
    }
    CHECK(errorOf(Bytes(dns.begin(), dns.begin() + 11)) == ParseError::HeaderTruncated);
}

TEST_CASE("counts that disagree with the records are errors")
{
    Bytes body = cat({question(name("api.anthropic.com")), a(ptr(kQname), 60, "198.18.5.10")});
    CHECK(errorOf(cat({header(1, 2), body})) == ParseError::NameTruncated);
    CHECK(errorOf(cat({header(1, 0), body})) == ParseError::TrailingBytes);
    CHECK(errorOf(cat({header(65535, 65535, 65535, 65535), body})) != ParseError::TrailingBytes);
    // An answer whose rdlength runs past the end.
    Bytes longRdata = cat({header(1, 1), question(name("api.anthropic.com")), ptr(kQname), u16(1), u16(1), u32(60),
                           u16(400), ip4("198.18.5.10")});
    CHECK(errorOf(longRdata) == ParseError::RecordTruncated);
}

TEST_CASE("rdata of the wrong size is an error")
{
    Bytes q = cat({header(1, 1), question(name("api.anthropic.com"))});
    CHECK(errorOf(cat({q, rr(ptr(kQname), 1, 60, Bytes{1, 2, 3})})) == ParseError::BadRdata);
    CHECK(errorOf(cat({q, rr(ptr(kQname), 28, 60, ip4("198.18.5.10"))})) == ParseError::BadRdata);
    // A CNAME whose name ends before its rdata does, or runs past it.
    CHECK(errorOf(cat({q, rr(ptr(kQname), 5, 60, cat({name("x"), Bytes{0}}))})) == ParseError::BadRdata);
    CHECK(errorOf(cat({q, rr(ptr(kQname), 5, 60, labels("x", false)), Bytes{0}})) == ParseError::BadRdata);
}

TEST_CASE("other types and classes are skipped; conflicting CNAMEs are an error")
{
    Bytes q = cat({header(1, 3), question(name("api.anthropic.com"))});
    Bytes dns = cat({q, rr(ptr(kQname), 16, 60, Bytes{3, 'a', 'b', 'c'}), a(ptr(kQname), 60, "198.18.5.10"),
                     rr(ptr(kQname), 1, 60, ip4("198.18.5.99"), 3 /* CHAOS */)});
    Message m = parsed(dns);
    REQUIRE(m.answers.size() == 1);
    CHECK(m.answers[0].address.text() == "198.18.5.10");

    Bytes conflict = cat({header(1, 2), question(name("api.anthropic.com")), cname(ptr(kQname), 60, name("a.example")),
                          cname(ptr(kQname), 60, name("b.example"))});
    CHECK(errorOf(conflict) == ParseError::ConflictingCname);
    Bytes duplicate = cat({header(1, 2), question(name("api.anthropic.com")),
                           cname(ptr(kQname), 60, name("a.example")), cname(ptr(kQname), 30, name("a.example"))});
    CHECK(parseMessage(view(duplicate)).ok());
}

TEST_CASE("a CNAME loop ends the chain without addresses and without hanging")
{
    auto cfg = withTargets({"api.anthropic.com"});
    Bytes dns = cat({header(1, 3), question(name("api.anthropic.com")), cname(ptr(kQname), 60, name("b.example")),
                     cname(name("b.example"), 60, name("api.anthropic.com")), a(name("c.example"), 60, "198.18.5.10")});
    CHECK(targetAddresses(parsed(dns), matcher(cfg)).empty());
}

TEST_CASE("chains longer than kMaxChain links are cut")
{
    auto cfg = withTargets({"api.anthropic.com"});
    auto hop = [](unsigned i) { return "h" + std::to_string(i) + ".example"; };
    auto build = [&](unsigned links) {
        Bytes dns = cat({header(1, links + 1), question(name("api.anthropic.com")),
                         cname(ptr(kQname), 60, name(hop(1)))});
        for (unsigned i = 1; i < links; ++i)
            dns = cat({dns, cname(name(hop(i)), 60, name(hop(i + 1)))});
        return cat({dns, a(name(hop(links)), 60, "198.18.5.10")});
    };
    CHECK(targetAddresses(parsed(build(kMaxChain)), matcher(cfg)).size() == 1);
    CHECK(targetAddresses(parsed(build(kMaxChain + 1)), matcher(cfg)).empty());
}

TEST_CASE("only NOERROR responses to standard queries give addresses")
{
    auto cfg = withTargets({"api.anthropic.com"});
    auto with = [](unsigned flags) {
        return cat({header(1, 1, 0, 0, flags), question(name("api.anthropic.com")), a(ptr(kQname), 60, "198.18.5.10")});
    };
    CHECK(targetAddresses(parsed(with(0x8180)), matcher(cfg)).size() == 1);
    CHECK(targetAddresses(parsed(with(0x0100)), matcher(cfg)).empty()); // a query
    CHECK(targetAddresses(parsed(with(0x8183)), matcher(cfg)).empty()); // NXDOMAIN
    CHECK(targetAddresses(parsed(with(0x9180)), matcher(cfg)).empty()); // opcode 2 (STATUS)
    CHECK(parsed(with(0x8380)).truncated());
}

TEST_CASE("labels with dots or other bytes are escaped and never match a target")
{
    auto cfg = withTargets({"api.anthropic.com", "*.anthropic.com"});
    // One label "api.anthropic" then "com": not the three-label target.
    Bytes owner = cat({Bytes{13}, Bytes{'a', 'p', 'i', '.', 'a', 'n', 't', 'h', 'r', 'o', 'p', 'i', 'c'}, labels("com")});
    Bytes dns = cat({header(1, 1), question(owner), a(ptr(kQname), 60, "198.18.5.10")});
    Message m = parsed(dns);
    CHECK(m.questions[0] == "api\\046anthropic.com");
    CHECK(targetAddresses(m, matcher(cfg)).empty());
    // A literal "*" label is not a wildcard.
    Bytes star = cat({header(1, 1), question(name("*.anthropic.com")), a(ptr(kQname), 60, "198.18.5.10")});
    CHECK(parsed(star).questions[0] == "\\042.anthropic.com");
}

TEST_CASE("TTLs with the top bit set read as 0")
{
    Message m = parsed(simpleAnswer(0x80000000u));
    CHECK(m.answers[0].ttl == 0);
}

TEST_CASE("answer TTLs are clamped to [floor, ceiling]")
{
    using std::chrono::milliseconds;
    using std::chrono::seconds;
    CHECK(clampTtl(0, milliseconds(60000), milliseconds(86400000)) == seconds(60));
    CHECK(clampTtl(300, milliseconds(60000), milliseconds(86400000)) == seconds(300));
    CHECK(clampTtl(100000, milliseconds(60000), milliseconds(86400000)) == seconds(86400));
    CHECK(clampTtl(10, milliseconds(1500), milliseconds(2500)) == seconds(2)); // floor up, ceiling down
    CHECK(clampTtl(0, milliseconds(1500), milliseconds(1700)) == seconds(2));  // never under the floor
    CHECK(clampTtl(0xFFFFFFFFu, milliseconds(1000), milliseconds(365LL * 86400000)) == kMaxSetTimeout);
}

TEST_CASE("IPv4 and IPv6 packets carry the message; their headers are bounds-checked")
{
    auto cfg = withTargets({"api.anthropic.com"});
    Bytes dns = simpleAnswer();
    SECTION("IPv4")
    {
        auto m = parse(view(ipv4(udp(dns))));
        REQUIRE(m.ok());
        CHECK(texts(targetAddresses(m.value(), matcher(cfg))) == std::vector<std::string>{"198.18.5.10"});
        // Link-layer padding after the datagram is ignored.
        Bytes padded = cat({ipv4(udp(dns)), Bytes(6, 0)});
        CHECK(parse(view(padded)).ok());
        // IPv4 options (IHL 6).
        Bytes opt = ipv4(udp(dns));
        opt[0] = 0x46;
        opt.insert(opt.begin() + 20, {1, 1, 1, 0});
        opt[3] = static_cast<std::uint8_t>(opt[3] + 4);
        CHECK(parse(view(opt)).ok());
    }
    SECTION("IPv6, also behind extension headers")
    {
        CHECK(parse(view(ipv6(udp(dns)))).ok());
        Bytes hopByHop = {60, 0, 1, 4, 0, 0, 0, 0}; // next: destination options
        Bytes destOpts = {17, 0, 1, 4, 0, 0, 0, 0}; // next: UDP
        auto m = parse(view(ipv6(udp(dns), 0, cat({hopByHop, destOpts}))));
        REQUIRE(m.ok());
        CHECK(m->answers.size() == 1);
        Bytes overlong = {17, 9, 0, 0, 0, 0, 0, 0}; // claims 80 bytes
        CHECK(parse(view(ipv6(udp(dns), 0, overlong))).error() == ParseError::Truncated);
        CHECK(parse(view(ipv6(udp(dns), 44, Bytes{17, 0, 0, 1, 0, 0, 0, 0}))).error() == ParseError::Fragment);
        CHECK(parse(view(ipv6(udp(dns), 6))).error() == ParseError::NotUdp);
    }
    SECTION("bad IP headers")
    {
        CHECK(parse(view(Bytes{})).error() == ParseError::Truncated);
        CHECK(parse(view(Bytes{0x45, 0, 0})).error() == ParseError::Truncated);
        Bytes p = ipv4(udp(dns));
        Bytes v = p;
        v[0] = 0x55;
        CHECK(parse(view(v)).error() == ParseError::NotIp);
        Bytes ihl = p;
        ihl[0] = 0x44;
        CHECK(parse(view(ihl)).error() == ParseError::BadIpHeader);
        Bytes big = p;
        big[0] = 0x4F; // 60-byte header
        CHECK(parse(view(Bytes(big.begin(), big.begin() + 40))).error() == ParseError::Truncated);
        Bytes total = p;
        total[2] = 0xFF; // total length over the packet
        CHECK(parse(view(total)).error() == ParseError::Truncated);
        CHECK(parse(view(ipv4(udp(dns), 6))).error() == ParseError::NotUdp);
        CHECK(parse(view(ipv4(udp(dns), 17, 0x2000))).error() == ParseError::Fragment); // MF
        CHECK(parse(view(ipv4(udp(dns), 17, 0x0010))).error() == ParseError::Fragment); // offset
    }
    SECTION("bad UDP lengths")
    {
        Bytes u = udp(dns);
        u[4] = 0xFF;
        CHECK(parse(view(ipv4(u))).error() == ParseError::BadUdpLength);
        u[4] = 0;
        u[5] = 7;
        CHECK(parse(view(ipv4(u))).error() == ParseError::BadUdpLength);
        CHECK(parse(view(ipv4(Bytes{0, 53, 0}))).error() == ParseError::Truncated);
    }
}

TEST_CASE("randomly mutated answers never crash the parser")
{
    // Seeded, so a failure reproduces; ASan/UBSan catch out-of-bounds reads.
    std::mt19937 rng(4);
    auto cfg = withTargets({"api.anthropic.com", "*.cdn.example"});
    Bytes base = cat({header(1, 3, 0, 1), question(name("api.anthropic.com")),
                      cname(ptr(kQname), 60, cat({labels("edge", false), ptr(16)})), a(ptr(kQname), 60, "198.18.5.10"),
                      aaaa(name("edge.cdn.example"), 60, "fd00:5::10"), rr(Bytes{0}, 41, 0, Bytes{})});
    REQUIRE(parseMessage(view(base)).ok());
    unsigned ok = 0;
    for (int i = 0; i < 50000; ++i) {
        Bytes b = base;
        int edits = 1 + static_cast<int>(rng() % 4);
        for (int e = 0; e < edits; ++e) {
            switch (rng() % 3) {
            case 0: b[rng() % b.size()] = static_cast<std::uint8_t>(rng()); break;
            case 1: b.resize(rng() % (b.size() + 1)); break;
            default: b.insert(b.begin() + static_cast<std::ptrdiff_t>(rng() % (b.size() + 1)), static_cast<std::uint8_t>(rng()));
            }
            if (b.empty())
                b.push_back(0);
        }
        auto m = parseMessage(view(b));
        if (m) {
            ++ok;
            (void)targetAddresses(m.value(), matcher(cfg));
        }
        (void)parse(view(ipv4(udp(b))));
        (void)parse(view(b));
    }
    CHECK(ok > 0); // some mutations stay valid, so the success path ran too
}
