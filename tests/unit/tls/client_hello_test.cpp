#include <catch2/catch.hpp>

#include <cstring>
#include <memory>
#include <random>

#include "pki.h"
#include "tls/client_hello.h"
#include "tls/context.h"
#include "tls/hostname.h"

using namespace veil::tls;
using namespace veil::tls::test;

namespace {

// --- real ClientHellos from OpenSSL client endpoints -----------------------

std::string firstFlight(TlsEndpoint& client)
{
    REQUIRE(client.handshake() == TlsStatus::WantRead);
    std::string out;
    client.takeCiphertext(out);
    REQUIRE(!out.empty());
    return out;
}

// The ClientHello veild's own upstream side sends (SNI + ALPN http/1.1).
std::string upstreamHello(const std::string& host)
{
    UpstreamOptions opt;
    opt.insecureSkipVerify = true;
    auto ctx = take(UpstreamContext::create(opt));
    auto ep = take(ctx.connect(host));
    return firstFlight(ep);
}

// A ClientHello from a hand-configured client: optional SNI (set verbatim),
// optional ALPN (wire format), optional TLS 1.2 cap.
std::string rawHello(const char* sni, std::string_view alpnWire, bool tls12Only = false)
{
    SslCtxPtr ctx = plainClientContext(alpnWire);
    SslPtr ssl(SSL_new(ctx.get()));
    REQUIRE(ssl);
    if (sni)
        REQUIRE(SSL_ctrl(ssl.get(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, const_cast<char*>(sni))
                == 1);
    if (tls12Only)
        REQUIRE(SSL_set_max_proto_version(ssl.get(), TLS1_2_VERSION) == 1);
    SSL_set_connect_state(ssl.get());
    auto ep = take(TlsEndpoint::wrap(std::move(ssl)));
    return firstFlight(ep);
}

// --- hand-built ClientHellos for malformed shapes ---------------------------

std::string u8(std::size_t v) { return std::string(1, static_cast<char>(v & 0xff)); }
std::string u16(std::size_t v) { return u8(v >> 8) + u8(v); }
std::string u24(std::size_t v) { return u8(v >> 16) + u16(v & 0xffff); }

struct Ext {
    std::uint16_t type;
    std::string data;
};

std::string ext(const Ext& e) { return u16(e.type) + u16(e.data.size()) + e.data; }

Ext sniExt(const std::string& name) { return {0, u16(3 + name.size()) + u8(0) + u16(name.size()) + name}; }

Ext alpnExt(const std::vector<std::string>& protos)
{
    std::string list;
    for (const auto& p : protos)
        list += u8(p.size()) + p;
    return {16, u16(list.size()) + list};
}

Ext versionsExt() { return {43, u8(4) + u16(0x0304) + u16(0x0303)}; }

struct BodyShape {
    std::string sessionId = std::string(32, 's');
    std::string suites = u16(0x1301) + u16(0xc02b);
    std::string compression = u8(0);
    bool withExtensions = true;
    std::string afterExtensions;
};

std::string helloBody(const std::vector<Ext>& exts, const BodyShape& shape = {})
{
    std::string body = u16(0x0303) + std::string(32, 'r');
    body += u8(shape.sessionId.size()) + shape.sessionId;
    body += u16(shape.suites.size()) + shape.suites;
    body += u8(shape.compression.size()) + shape.compression;
    if (shape.withExtensions) {
        std::string all;
        for (const auto& e : exts)
            all += ext(e);
        body += u16(all.size()) + all;
    }
    return body + shape.afterExtensions;
}

std::string handshake(const std::string& body, std::uint8_t type = 1) { return u8(type) + u24(body.size()) + body; }

// Wraps a handshake message in records of at most `chunk` bytes.
std::string records(const std::string& msg, std::size_t chunk = 16384)
{
    std::string out;
    for (std::size_t i = 0; i < msg.size(); i += chunk) {
        std::string frag = msg.substr(i, chunk);
        out += u8(22) + u16(0x0301) + u16(frag.size()) + frag;
    }
    return out;
}

std::string hello(const std::vector<Ext>& exts, const BodyShape& shape = {})
{
    return records(handshake(helloBody(exts, shape)));
}

// Re-fragments a real single-record hello into records of `chunk` bytes.
std::string refragment(const std::string& wire, std::size_t chunk)
{
    REQUIRE(wire.size() > 5);
    return records(wire.substr(5), chunk);
}

PeekResult peek(const std::string& s) { return peekClientHello(s); }

} // namespace

TEST_CASE("A ClientHello from veild's upstream side yields its SNI, ALPN and versions", "[tls][client_hello]")
{
    std::string wire = upstreamHello("api.anthropic.com");
    PeekResult r = peek(wire);
    REQUIRE(r.status == PeekStatus::Tls);
    CHECK(r.hello.sniStatus == SniStatus::Valid);
    CHECK(r.hello.sni == "api.anthropic.com");
    CHECK(r.hello.alpn == std::vector<std::string>{"http/1.1"});
    CHECK(r.hello.legacyVersion == 0x0303);
    CHECK(r.hello.offersTls13());
    CHECK(r.hello.wireBytes == wire.size());
    CHECK((r.hello.recordVersion == 0x0301 || r.hello.recordVersion == 0x0303));
}

TEST_CASE("A ClientHello without SNI is TLS with the SNI absent", "[tls][client_hello]")
{
    PeekResult r = peek(rawHello(nullptr, {}));
    REQUIRE(r.status == PeekStatus::Tls);
    CHECK(r.hello.sniStatus == SniStatus::Absent);
    CHECK_FALSE(r.hello.sni.has_value());
    CHECK(r.hello.alpn.empty());
}

TEST_CASE("The SNI is lowercased and the ALPN list keeps the client's order", "[tls][client_hello]")
{
    using namespace std::string_literals;
    PeekResult r = peek(rawHello("API.Example.COM", "\x02h2\x08http/1.1"s));
    REQUIRE(r.status == PeekStatus::Tls);
    CHECK(r.hello.sni == "api.example.com");
    CHECK(r.hello.alpn == std::vector<std::string>{"h2", "http/1.1"});
    CHECK(r.hello.offersAlpn("http/1.1"));
    CHECK_FALSE(r.hello.offersAlpn("h3"));
}

TEST_CASE("An IP literal in the SNI is flagged and gives no SNI", "[tls][client_hello]")
{
    PeekResult r = peek(rawHello("198.18.0.1", {}));
    REQUIRE(r.status == PeekStatus::Tls);
    CHECK(r.hello.sniStatus == SniStatus::IpLiteral);
    CHECK_FALSE(r.hello.sni.has_value());
}

TEST_CASE("A TLS 1.2-only ClientHello has no supported_versions", "[tls][client_hello]")
{
    PeekResult r = peek(rawHello("example.com", {}, true));
    REQUIRE(r.status == PeekStatus::Tls);
    CHECK(r.hello.supportedVersions.empty());
    CHECK_FALSE(r.hello.offersTls13());
    CHECK(r.hello.sni == "example.com");
}

TEST_CASE("Every proper prefix of a ClientHello needs more and the whole is TLS", "[tls][client_hello]")
{
    std::string wire = upstreamHello("api.anthropic.com");
    for (std::size_t k = 0; k < wire.size(); ++k) {
        PeekResult r = peekClientHello(std::string_view(wire).substr(0, k));
        INFO("prefix length " << k << ": " << r.reason);
        REQUIRE(r.status == PeekStatus::NeedMore);
    }
    CHECK(peek(wire).status == PeekStatus::Tls);
}

TEST_CASE("A ClientHello fragmented over several records is reassembled at every split", "[tls][client_hello]")
{
    std::string wire = refragment(upstreamHello("api.anthropic.com"), 100);
    REQUIRE(wire.size() > 5 * 5);
    for (std::size_t k = 0; k < wire.size(); ++k) {
        PeekResult r = peekClientHello(std::string_view(wire).substr(0, k));
        INFO("prefix length " << k << ": " << r.reason);
        REQUIRE(r.status == PeekStatus::NeedMore);
    }
    PeekResult r = peek(wire);
    REQUIRE(r.status == PeekStatus::Tls);
    CHECK(r.hello.sni == "api.anthropic.com");
    CHECK(r.hello.wireBytes == wire.size());
}

TEST_CASE("Bytes after the ClientHello's last record are not looked at", "[tls][client_hello]")
{
    std::string wire = upstreamHello("example.com");
    PeekResult r = peek(wire + "\x17\x03\x03garbage");
    REQUIRE(r.status == PeekStatus::Tls);
    CHECK(r.hello.wireBytes == wire.size());
}

TEST_CASE("Plain HTTP and other protocols are not TLS", "[tls][client_hello]")
{
    CHECK(peek("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n").status == PeekStatus::NotTls);
    CHECK(peek("G").status == PeekStatus::NotTls);
    CHECK(peek("SSH-2.0-OpenSSH_9.2\r\n").status == PeekStatus::NotTls);
    // SSLv2-format hello: first byte has the high bit set.
    CHECK(peek(std::string("\x80\x2e\x01\x03\x01", 5)).status == PeekStatus::NotTls);
    CHECK(peek(std::string("\x16\x02", 2)).status == PeekStatus::NotTls);
    CHECK(peek(std::string("\x16\x03\x05", 3)).status == PeekStatus::NotTls);
    CHECK(peek("").status == PeekStatus::NeedMore);
    CHECK(peek(std::string("\x16", 1)).status == PeekStatus::NeedMore);
    CHECK(peek(std::string("\x16\x03\x01", 3)).status == PeekStatus::NeedMore);
}

TEST_CASE("A hand-built ClientHello parses like a real one", "[tls][client_hello]")
{
    PeekResult r = peek(hello({sniExt("Example.org"), alpnExt({"http/1.1"}), versionsExt()}));
    REQUIRE(r.status == PeekStatus::Tls);
    CHECK(r.hello.sni == "example.org");
    CHECK(r.hello.supportedVersions == std::vector<std::uint16_t>{0x0304, 0x0303});
    BodyShape noExt;
    noExt.withExtensions = false;
    r = peek(hello({}, noExt));
    REQUIRE(r.status == PeekStatus::Tls);
    CHECK(r.hello.sniStatus == SniStatus::Absent);
}

TEST_CASE("Malformed ClientHellos are refused with a reason", "[tls][client_hello]")
{
    auto malformed = [](const std::string& wire) {
        PeekResult r = peekClientHello(wire);
        INFO("reason: " << r.reason);
        CHECK(r.status == PeekStatus::Malformed);
        CHECK_FALSE(r.reason.empty());
    };
    SECTION("a repeated extension") { malformed(hello({sniExt("a.example"), sniExt("b.example")})); }
    SECTION("a server_name list longer than its extension")
    {
        malformed(hello({{0, u16(40) + u8(0) + u16(9) + "a.example"}}));
    }
    SECTION("a host_name longer than its list")
    {
        malformed(hello({{0, u16(12) + u8(0) + u16(20) + "a.example"}}));
    }
    SECTION("two host_names")
    {
        malformed(hello({{0, u16(24) + u8(0) + u16(9) + "a.example" + u8(0) + u16(9) + "b.example"}}));
    }
    SECTION("an empty server_name list") { malformed(hello({{0, u16(0)}})); }
    SECTION("an empty ALPN list") { malformed(hello({{16, u16(0)}})); }
    SECTION("an empty ALPN protocol name") { malformed(hello({alpnExt({"http/1.1", ""})})); }
    SECTION("an odd supported_versions length") { malformed(hello({{43, u8(3) + "abc"}})); }
    SECTION("a session_id longer than 32 bytes")
    {
        BodyShape s;
        s.sessionId = std::string(33, 'x');
        malformed(hello({}, s));
    }
    SECTION("an odd cipher_suites length")
    {
        BodyShape s;
        s.suites = "abc";
        malformed(hello({}, s));
    }
    SECTION("no compression methods")
    {
        BodyShape s;
        s.compression.clear();
        malformed(hello({}, s));
    }
    SECTION("bytes after the extensions")
    {
        BodyShape s;
        s.afterExtensions = "xx";
        malformed(hello({sniExt("a.example")}, s));
    }
    SECTION("an extension running past the extensions block")
    {
        BodyShape s;
        s.withExtensions = false;
        s.afterExtensions = u16(8) + u16(0) + u16(30) + "abcd";
        malformed(hello({}, s));
    }
    SECTION("a body shorter than version and random") { malformed(records(handshake("\x03\x03short"))); }
    SECTION("a legacy_version that is not 3.x")
    {
        std::string body = helloBody({});
        body[0] = 2;
        malformed(records(handshake(body)));
    }
    SECTION("a first handshake message that is not a ClientHello")
    {
        malformed(records(handshake(helloBody({}), 2)));
        malformed(std::string("\x16\x03\x01\x00\x20\x02", 6)); // known from its first byte
    }
    SECTION("a declared ClientHello longer than 16 KiB, refused from its header alone")
    {
        malformed(u8(22) + u16(0x0301) + u16(100) + u8(1) + u24(kMaxClientHelloLength + 1));
    }
    SECTION("an empty record") { malformed(std::string("\x16\x03\x01\x00\x00", 5)); }
    SECTION("a record longer than 2^14") { malformed(u8(22) + u16(0x0301) + u16(16385)); }
    SECTION("a non-handshake record between fragments")
    {
        std::string wire = refragment(upstreamHello("a.example"), 100);
        wire[105] = 23; // second record's content type → application_data
        malformed(wire);
    }
    SECTION("data after the ClientHello inside its record")
    {
        std::string msg = handshake(helloBody({sniExt("a.example")})) + "\x01\x00";
        malformed(records(msg));
    }
    SECTION("more fragments than allowed")
    {
        malformed(refragment(upstreamHello("a.example"), 1));
    }
}

TEST_CASE("A ClientHello over 16 KiB is refused and one of exactly 16 KiB over two records is not",
          "[tls][client_hello]")
{
    // Body: 77 fixed bytes + 18 (server_name) + 4 + P (padding, type 21).
    constexpr std::size_t kPadding = kMaxClientHelloLength - 99;
    std::string body = helloBody({sniExt("a.example"), {21, std::string(kPadding, '\0')}});
    REQUIRE(body.size() == kMaxClientHelloLength);
    std::string wire = records(handshake(body));
    REQUIRE(wire.size() == kMaxClientHelloLength + 4 + 2 * 5);
    PeekResult r = peek(wire);
    REQUIRE(r.status == PeekStatus::Tls);
    CHECK(r.hello.sni == "a.example");
    CHECK(wire.size() <= kMaxPeekBytes);

    r = peek(hello({sniExt("a.example"), {21, std::string(kPadding + 1, '\0')}}));
    CHECK(r.status == PeekStatus::Malformed);
    r = peek(hello({sniExt("a.example"), {21, std::string(20000, '\0')}}));
    CHECK(r.status == PeekStatus::Malformed);
}

TEST_CASE("A record reaching past the ClientHello is refused from its header, within the peek bound",
          "[tls][client_hello]")
{
    // The hello needs 4 bytes more than the first full record holds; the
    // second record announces 16 KiB. Waiting for it would exceed kMaxPeekBytes.
    std::string msg = u8(1) + u24(kMaxClientHelloLength) + std::string(16380, 'x');
    std::string wire = u8(22) + u16(0x0301) + u16(msg.size()) + msg + u8(22) + u16(0x0301) + u16(16384);
    REQUIRE(wire.size() < kMaxPeekBytes);
    PeekResult r = peek(wire);
    CHECK(r.status == PeekStatus::Malformed);
    CHECK(r.reason.find("after the ClientHello") != std::string::npos);
}

TEST_CASE("Invalid host_names give a TLS result with an invalid SNI", "[tls][client_hello]")
{
    const std::vector<std::string> invalid = {
        "exa mple.com", "-a.example", "a-.example", "a..example", "a.example.", "a_b.example",
        std::string(64, 'a') + ".example", std::string("a\0b.example", 11), "caf\xc3\xa9.example",
    };
    for (const std::string& bad : invalid) {
        PeekResult r = peek(hello({sniExt(bad)}));
        INFO(bad);
        REQUIRE(r.status == PeekStatus::Tls);
        CHECK(r.hello.sniStatus == SniStatus::Invalid);
        CHECK_FALSE(r.hello.sni.has_value());
    }
    PeekResult r = peek(hello({sniExt("[2001:db8::1]")}));
    REQUIRE(r.status == PeekStatus::Tls);
    CHECK(r.hello.sniStatus == SniStatus::IpLiteral);
}

TEST_CASE("Host names are checked as LDH labels of bounded length", "[tls][hostname]")
{
    CHECK(normalizeHostName("Api.Anthropic.COM") == "api.anthropic.com");
    CHECK(normalizeHostName("xn--bcher-kva.example") == "xn--bcher-kva.example");
    CHECK(normalizeHostName("localhost") == "localhost");
    CHECK(normalizeHostName("a1-b2.c3") == "a1-b2.c3");
    std::string label63(63, 'a');
    CHECK(normalizeHostName(label63 + ".example").has_value());
    CHECK_FALSE(normalizeHostName(std::string(64, 'a') + ".example").has_value());
    // 253 bytes is the limit: four 63-byte labels minus one byte.
    std::string n253 = label63 + "." + label63 + "." + label63 + "." + std::string(61, 'a');
    REQUIRE(n253.size() == 253);
    CHECK(normalizeHostName(n253).has_value());
    CHECK_FALSE(normalizeHostName(n253 + "a").has_value());
    for (const char* bad :
         {"", ".", "a.", ".a", "a..b", "-a", "a-", "a-.b", "a b", "a,b", "a:b", "a*b", "*.example.com"})
        CHECK_FALSE(normalizeHostName(bad).has_value());
    for (const char* ip : {"10.0.0.1", "198.18.0.1", "::1", "2001:db8::1", "[::1]", "10.1", "1.2.3", "0x7f.1", "a.123"})
        CHECK(isIpLiteral(ip));
    for (const char* ip : {"10.0.0.1", "10.1", "a.123"})
        CHECK_FALSE(normalizeHostName(ip).has_value());
    for (const char* name : {"example.com", "ec2.internal", "1a.example", "a.1b"})
        CHECK_FALSE(isIpLiteral(name));
}

TEST_CASE("Random bytes and mutated ClientHellos never read past the buffer", "[tls][client_hello]")
{
    // Run under ASan this finds over-reads; plainly it checks for no crash
    // and that complete, in-bounds results are reported consistently.
    std::mt19937 rng(1234);
    std::string wire = upstreamHello("api.anthropic.com");
    for (std::size_t i = 0; i < wire.size(); ++i) {
        for (int v : {0x00, 0xff, 0x01, 0x80}) {
            std::string m = wire;
            m[i] = static_cast<char>(v);
            PeekResult r = peekClientHello(m);
            if (r.status == PeekStatus::Tls)
                CHECK(r.hello.wireBytes <= m.size());
            else if (r.status != PeekStatus::NeedMore)
                CHECK_FALSE(r.reason.empty());
        }
    }
    std::uniform_int_distribution<int> byte(0, 255), len(0, 600);
    for (int i = 0; i < 20000; ++i) {
        std::string s(static_cast<std::size_t>(len(rng)), '\0');
        for (char& c : s)
            c = static_cast<char>(byte(rng));
        if (i % 2 == 0 && s.size() >= 3) { // make half of them look like records
            s[0] = 22;
            s[1] = 3;
            s[2] = 1;
        }
        // Heap copy sized exactly, so ASan sees any over-read.
        std::unique_ptr<char[]> exact(new char[s.size()]);
        std::memcpy(exact.get(), s.data(), s.size());
        PeekResult r = peekClientHello(std::string_view(exact.get(), s.size()));
        (void)r;
    }
}
