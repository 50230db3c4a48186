#include "tls/client_hello.h"

#include <algorithm>
#include <bitset>

#include "tls/hostname.h"

namespace veil::tls {

namespace {

constexpr std::uint8_t kContentHandshake = 22;
constexpr std::uint8_t kHandshakeClientHello = 1;
constexpr std::size_t kRecordHeader = 5;
constexpr std::size_t kHandshakeHeader = 4;
constexpr std::size_t kMaxRecordPayload = 16384; // 2^14, RFC 8446 §5.1

constexpr std::uint16_t kExtServerName = 0;
constexpr std::uint16_t kExtAlpn = 16;
constexpr std::uint16_t kExtSupportedVersions = 43;

// Bounds-checked big-endian reader over a view. Every read either succeeds
// completely or returns false and leaves the reader unchanged.
class Reader {
public:
    explicit Reader(std::string_view d) : d_(d) {}

    bool empty() const { return d_.empty(); }
    std::size_t left() const { return d_.size(); }

    bool u8(std::uint8_t& v)
    {
        if (d_.size() < 1)
            return false;
        v = byte(0);
        d_.remove_prefix(1);
        return true;
    }
    bool u16(std::uint16_t& v)
    {
        if (d_.size() < 2)
            return false;
        v = static_cast<std::uint16_t>(byte(0) << 8 | byte(1));
        d_.remove_prefix(2);
        return true;
    }
    bool bytes(std::size_t n, std::string_view& out)
    {
        if (d_.size() < n)
            return false;
        out = d_.substr(0, n);
        d_.remove_prefix(n);
        return true;
    }
    // A vector with a one-byte length prefix (TLS `opaque x<0..2^8-1>`).
    bool vec8(std::string_view& out)
    {
        Reader save = *this;
        std::uint8_t n;
        if (u8(n) && bytes(n, out))
            return true;
        *this = save;
        return false;
    }
    // A vector with a two-byte length prefix.
    bool vec16(std::string_view& out)
    {
        Reader save = *this;
        std::uint16_t n;
        if (u16(n) && bytes(n, out))
            return true;
        *this = save;
        return false;
    }

private:
    std::uint8_t byte(std::size_t i) const { return static_cast<std::uint8_t>(d_[i]); }
    std::string_view d_;
};

std::uint8_t at(std::string_view s, std::size_t i) { return static_cast<std::uint8_t>(s[i]); }

PeekResult verdict(PeekStatus status, std::string reason)
{
    PeekResult r;
    r.status = status;
    r.reason = std::move(reason);
    return r;
}

PeekResult malformed(std::string reason) { return verdict(PeekStatus::Malformed, std::move(reason)); }

// server_name (RFC 6066 §3): a non-empty list of (type, name); at most one
// host_name (type 0). Unknown name types are skipped, as the RFC allows.
bool parseServerName(std::string_view data, ClientHello& hello, std::string& why)
{
    Reader ext(data);
    std::string_view list;
    if (!ext.vec16(list) || !ext.empty() || list.empty()) {
        why = "server_name extension has a bad length";
        return false;
    }
    Reader r(list);
    bool sawHostName = false;
    while (!r.empty()) {
        std::uint8_t type;
        std::string_view name;
        if (!r.u8(type) || !r.vec16(name) || name.empty()) {
            why = "server_name entry has a bad length";
            return false;
        }
        if (type != 0)
            continue;
        if (sawHostName) {
            why = "server_name lists two host_names";
            return false;
        }
        sawHostName = true;
        if (auto n = normalizeHostName(name)) {
            hello.sniStatus = SniStatus::Valid;
            hello.sni = std::move(*n);
        } else {
            hello.sniStatus = isIpLiteral(name) ? SniStatus::IpLiteral : SniStatus::Invalid;
        }
    }
    return true;
}

// application_layer_protocol_negotiation (RFC 7301 §3.1): a non-empty list of
// non-empty protocol names.
bool parseAlpn(std::string_view data, ClientHello& hello, std::string& why)
{
    Reader ext(data);
    std::string_view list;
    if (!ext.vec16(list) || !ext.empty() || list.empty()) {
        why = "ALPN extension has a bad length";
        return false;
    }
    Reader r(list);
    while (!r.empty()) {
        std::string_view proto;
        if (!r.vec8(proto) || proto.empty()) {
            why = "ALPN protocol name has a bad length";
            return false;
        }
        hello.alpn.emplace_back(proto);
    }
    return true;
}

// supported_versions in a ClientHello (RFC 8446 §4.2.1): 2..254 bytes of
// two-byte versions.
bool parseSupportedVersions(std::string_view data, ClientHello& hello, std::string& why)
{
    Reader ext(data);
    std::string_view list;
    if (!ext.vec8(list) || !ext.empty() || list.size() < 2 || list.size() % 2 != 0) {
        why = "supported_versions extension has a bad length";
        return false;
    }
    Reader r(list);
    std::uint16_t v;
    while (r.u16(v))
        hello.supportedVersions.push_back(v);
    return true;
}

// The ClientHello body (RFC 8446 §4.1.2, RFC 5246 §7.4.1.2). Every length is
// checked against what contains it, and the body must be consumed exactly.
PeekResult parseBody(std::string_view body, ClientHello hello)
{
    Reader r(body);
    std::string_view random, sessionId, suites, compression;
    if (!r.u16(hello.legacyVersion) || !r.bytes(32, random))
        return malformed("ClientHello is shorter than version + random");
    if (hello.legacyVersion >> 8 != 3)
        return malformed("ClientHello legacy_version is not 3.x");
    if (!r.vec8(sessionId) || sessionId.size() > 32)
        return malformed("ClientHello session_id has a bad length");
    if (!r.vec16(suites) || suites.empty() || suites.size() % 2 != 0)
        return malformed("ClientHello cipher_suites has a bad length");
    if (!r.vec8(compression) || compression.empty())
        return malformed("ClientHello compression_methods has a bad length");

    PeekResult out;
    out.status = PeekStatus::Tls;
    if (r.empty()) { // TLS 1.2 and older may omit extensions entirely
        out.hello = std::move(hello);
        return out;
    }
    std::string_view extensions;
    if (!r.vec16(extensions))
        return malformed("ClientHello extensions have a bad length");
    if (!r.empty())
        return malformed("bytes after the ClientHello extensions");

    // RFC 8446 §4.2: no extension type may appear twice.
    std::bitset<65536> seen;
    Reader ext(extensions);
    std::string why;
    while (!ext.empty()) {
        std::uint16_t type;
        std::string_view data;
        if (!ext.u16(type) || !ext.vec16(data))
            return malformed("ClientHello extension has a bad length");
        if (seen.test(type))
            return malformed("ClientHello repeats extension " + std::to_string(type));
        seen.set(type);
        bool ok = true;
        switch (type) {
        case kExtServerName: ok = parseServerName(data, hello, why); break;
        case kExtAlpn: ok = parseAlpn(data, hello, why); break;
        case kExtSupportedVersions: ok = parseSupportedVersions(data, hello, why); break;
        default: break;
        }
        if (!ok)
            return malformed(why);
    }
    out.hello = std::move(hello);
    return out;
}

// Checks the handshake header as soon as its bytes are known (possibly from
// a partial record), so garbage is refused without waiting for 16 KiB.
// Returns false with `why` set when the header is wrong.
bool checkHandshakeHeader(std::string_view hs, std::string& why)
{
    if (hs.size() >= 1 && at(hs, 0) != kHandshakeClientHello) {
        why = "first handshake message is not a ClientHello";
        return false;
    }
    if (hs.size() >= kHandshakeHeader) {
        std::size_t len = std::size_t{at(hs, 1)} << 16 | std::size_t{at(hs, 2)} << 8 | at(hs, 3);
        if (len > kMaxClientHelloLength) {
            why = "ClientHello longer than " + std::to_string(kMaxClientHelloLength) + " bytes";
            return false;
        }
    }
    return true;
}

} // namespace

/**
 * Parses the TLS record layer and the ClientHello handshake message in
 * `bytes`, which must start at the first byte the client sent.
 *
 * | result    | meaning                                                      |
 * |-----------|--------------------------------------------------------------|
 * | NeedMore  | every byte so far is valid; the hello is not complete        |
 * | NotTls    | bytes 0..2 are not a handshake record header (0x16 0x03 ≤4)  |
 * | Malformed | a handshake record whose contents break TLS length rules     |
 * | Tls       | a complete hello; `hello` filled in, `hello.wireBytes` set   |
 *
 * Records are at most 2^14 bytes and may not be empty (RFC 8446 §5.1); the
 * hello may span up to kMaxClientHelloRecords of them and is at most
 * kMaxClientHelloLength bytes, so the result is never NeedMore once
 * kMaxPeekBytes bytes are given. Bytes after the hello's last record are not
 * looked at; bytes after the hello inside its last record are Malformed (a
 * client sends nothing else before the server's first flight).
 */
PeekResult peekClientHello(std::string_view bytes)
{
    // The record header decides NotTls byte by byte, so "G" of a plain-text
    // "GET" is refused at once instead of waiting for five bytes.
    if (bytes.empty())
        return verdict(PeekStatus::NeedMore, {});
    if (at(bytes, 0) != kContentHandshake)
        return verdict(PeekStatus::NotTls, "first byte is not a TLS handshake record");
    if (bytes.size() >= 2 && at(bytes, 1) != 3)
        return verdict(PeekStatus::NotTls, "record version is not 3.x");
    if (bytes.size() >= 3 && at(bytes, 2) > 4)
        return verdict(PeekStatus::NotTls, "record version is newer than TLS 1.3");

    ClientHello hello;
    // The handshake message: a view into the first record while it fits
    // there (the usual case, no copy), else reassembled into `joined`
    // (at most kMaxClientHelloLength + 4 bytes).
    std::string joined;
    std::string_view hs;
    std::size_t pos = 0;
    std::string why;
    for (std::size_t records = 0;; ++records) {
        if (records == kMaxClientHelloRecords)
            return malformed("ClientHello spans more than " + std::to_string(kMaxClientHelloRecords) + " records");
        std::string_view rest = bytes.substr(pos);
        if (rest.size() < kRecordHeader) {
            if (!rest.empty() && at(rest, 0) != kContentHandshake)
                return malformed("non-handshake record inside the ClientHello");
            return verdict(PeekStatus::NeedMore, {});
        }
        if (at(rest, 0) != kContentHandshake)
            return malformed("non-handshake record inside the ClientHello");
        if (at(rest, 1) != 3)
            return malformed("record version is not 3.x");
        std::uint16_t version = static_cast<std::uint16_t>(at(rest, 1) << 8 | at(rest, 2));
        if (records == 0)
            hello.recordVersion = version;
        std::size_t len = std::size_t{at(rest, 3)} << 8 | at(rest, 4);
        if (len == 0)
            return malformed("empty handshake record");
        if (len > kMaxRecordPayload)
            return malformed("record longer than 16384 bytes");

        std::string_view fragment = rest.substr(kRecordHeader, len); // may be short
        bool complete = fragment.size() == len;
        // Every handshake byte known so far, this record's available part
        // included. From the second record on they are copied into `joined`
        // (which `hs` then views), so `hs` is not used past the append.
        std::size_t before = hs.size();
        std::string_view known;
        if (records == 0) {
            known = fragment;
        } else {
            if (records == 1)
                joined.assign(hs);
            joined.append(fragment);
            known = joined;
        }
        if (!checkHandshakeHeader(known, why))
            return malformed(why);
        std::size_t total = 0;
        if (known.size() >= kHandshakeHeader) {
            total = kHandshakeHeader
                + (std::size_t{at(known, 1)} << 16 | std::size_t{at(known, 2)} << 8 | at(known, 3));
            // Decided from the record header, before its body arrives: this is
            // what keeps the peek within kMaxPeekBytes.
            if (before + len > total)
                return malformed("data after the ClientHello in its record");
        }
        if (!complete)
            return verdict(PeekStatus::NeedMore, {});
        pos += kRecordHeader + len;
        hs = known;
        if (total == 0 || hs.size() < total)
            continue;
        hello.wireBytes = pos;
        return parseBody(hs.substr(kHandshakeHeader, total - kHandshakeHeader), std::move(hello));
    }
}

bool ClientHello::offersAlpn(std::string_view protocol) const
{
    return std::find(alpn.begin(), alpn.end(), protocol) != alpn.end();
}

bool ClientHello::offersTls13() const
{
    return std::find(supportedVersions.begin(), supportedVersions.end(), 0x0304) != supportedVersions.end();
}

const char* toString(PeekStatus status)
{
    switch (status) {
    case PeekStatus::NeedMore: return "need more";
    case PeekStatus::NotTls: return "not TLS";
    case PeekStatus::Malformed: return "malformed ClientHello";
    case PeekStatus::Tls: return "TLS";
    }
    return "?";
}

const char* toString(SniStatus status)
{
    switch (status) {
    case SniStatus::Absent: return "absent";
    case SniStatus::Valid: return "valid";
    case SniStatus::IpLiteral: return "IP literal";
    case SniStatus::Invalid: return "invalid";
    }
    return "?";
}

} // namespace veil::tls
