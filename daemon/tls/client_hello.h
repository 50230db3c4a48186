#pragma once

// ClientHello peek (DESIGN.md step 2): reads the first bytes a client sends
// and says whether they are a TLS ClientHello and for which name. Pure: it
// never consumes, copies out of or reads past the caller's buffer, so the
// same bytes are later fed to the TLS endpoint or spliced upstream unchanged.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace veil::tls {

// Largest ClientHello handshake message accepted (body, without its 4-byte
// header). Real ones are under 2 KiB, post-quantum key shares included.
inline constexpr std::size_t kMaxClientHelloLength = 16384;
// A ClientHello may be fragmented over records; more than this many is
// refused rather than reassembled (no client does it; it only costs memory).
inline constexpr std::size_t kMaxClientHelloRecords = 16;
// The most bytes the peek ever needs: callers can bound their peek buffer by
// this and never see NeedMore at the bound.
inline constexpr std::size_t kMaxPeekBytes = 4 + kMaxClientHelloLength + 5 * kMaxClientHelloRecords;

enum class PeekStatus {
    NeedMore,  // a valid prefix: read more bytes and peek again
    NotTls,    // the first bytes are not a TLS handshake record (e.g. plain HTTP)
    Malformed, // a TLS handshake record, but not a well-formed ClientHello
    Tls,       // a complete, well-formed ClientHello
};

enum class SniStatus {
    Absent,    // no server_name extension, or no host_name entry in it
    Valid,     // host_name is a DNS name; ClientHello::sni holds it lowercased
    IpLiteral, // host_name is an IP address (not allowed by RFC 6066)
    Invalid,   // host_name is not an LDH name (bad bytes, empty label, > 253 bytes, ...)
};

struct ClientHello {
    SniStatus sniStatus = SniStatus::Absent;
    std::optional<std::string> sni;            // set iff sniStatus == Valid
    std::vector<std::string> alpn;             // offered protocols, client order
    std::uint16_t recordVersion = 0;           // of the first record
    std::uint16_t legacyVersion = 0;           // ClientHello.legacy_version
    std::vector<std::uint16_t> supportedVersions; // extension 43, client order
    std::size_t wireBytes = 0;                 // bytes of the records carrying the hello

    bool offersAlpn(std::string_view protocol) const;
    bool offersTls13() const;
};

struct PeekResult {
    PeekStatus status = PeekStatus::NeedMore;
    ClientHello hello;  // meaningful when status == Tls
    std::string reason; // why NotTls or Malformed; names fields, never copies input
};

PeekResult peekClientHello(std::string_view bytes);

const char* toString(PeekStatus status);
const char* toString(SniStatus status);

} // namespace veil::tls
