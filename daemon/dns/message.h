#pragma once

// DNS answers as NFQUEUE delivers them: an IPv4 or IPv6 packet carrying UDP
// carrying a DNS message (RFC 1035). No I/O (STYLE.md habit 6): bytes in, a
// value or an error out, so unit tests and fuzzers call it directly.
//
// Contract of parse() and parseMessage(): total. For any input of any length
// they return a Message or a ParseError; they never read outside the span,
// never loop unboundedly and never assert. Every length and count in the
// input is checked against what is really there.

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"

namespace veil::dns {

// An IPv4 or IPv6 address in network byte order.
struct Address {
    int family = 0;                       // AF_INET or AF_INET6
    std::array<std::uint8_t, 16> bytes{}; // AF_INET: the first 4, the rest 0

    static Address v4(const std::uint8_t* p);
    static Address v6(const std::uint8_t* p);
    // Parses "198.18.0.1" or "fd00::1"; family 0 when it is neither.
    static Address fromText(const std::string& text);
    std::string text() const; // inet_ntop form

    friend bool operator==(const Address&, const Address&) = default;
    friend auto operator<=>(const Address&, const Address&) = default;
};

// Why a packet is not a DNS message we can read. Every value is untrusted
// input, handled and counted (STYLE.md habit 5), never a crash.
enum class ParseError {
    Truncated,        // shorter than its IP/UDP headers say, or than a header itself
    NotIp,            // IP version is neither 4 nor 6
    BadIpHeader,      // IPv4 header length under 20 bytes or over the packet
    Fragment,         // an IP fragment: the DNS message is not all here
    NotUdp,           // transport is not UDP (or too many IPv6 extension headers)
    BadUdpLength,     // UDP length under 8 or over the packet
    HeaderTruncated,  // DNS message under 12 bytes
    NameTruncated,    // a name runs past the end of the message
    BadLabel,         // label type 0x40/0x80 (obsolete/extended), not supported
    NameTooLong,      // a name over 255 bytes in wire form
    BadPointer,       // a compression pointer that does not point strictly backwards (loops)
    RecordTruncated,  // a question or resource record runs past the end (bad counts)
    BadRdata,         // A not 4 bytes, AAAA not 16, CNAME rdata not exactly one name
    TrailingBytes,    // bytes after the last record the counts announce
    ConflictingCname, // two different CNAMEs for one owner name (RFC 2181 §10.1)
};

const char* toString(ParseError e);

inline constexpr std::uint16_t kTypeA = 1;
inline constexpr std::uint16_t kTypeCname = 5;
inline constexpr std::uint16_t kTypeAaaa = 28;

// A resource record of the answer section that DNS-following uses: class IN,
// type A, AAAA or CNAME. Other types and classes are skipped.
struct Record {
    std::string name;    // owner; presentation form (see below)
    std::uint16_t type = 0;
    std::uint32_t ttl = 0; // seconds; values with the top bit set read as 0 (RFC 2181 §8)
    Address address;     // A, AAAA
    std::string target;  // CNAME
};

// Names are lower-case ASCII, labels joined with '.', no final dot, the root
// is "". Label bytes other than letters, digits, '-' and '_' are written
// \DDD (decimal), so a label holding a '.' or a '*' can never be mistaken
// for two labels or a wildcard when matched against target hosts.
struct Message {
    std::uint16_t id = 0;
    std::uint16_t flags = 0;
    std::vector<std::string> questions; // names of the question section (class IN)
    std::vector<Record> answers;        // A, AAAA, CNAME of class IN, in message order

    bool response() const { return (flags & 0x8000) != 0; }
    unsigned opcode() const { return (flags >> 11) & 0xF; }
    unsigned rcode() const { return flags & 0xF; }
    bool truncated() const { return (flags & 0x0200) != 0; }
};

// A DNS message (the UDP payload).
Result<Message, ParseError> parseMessage(std::span<const std::uint8_t> message);

// The UDP payload of an IPv4 or IPv6 packet (bounds-checked headers; IPv6
// extension headers are skipped, fragments are refused).
Result<std::span<const std::uint8_t>, ParseError> udpPayload(std::span<const std::uint8_t> packet);

// An IP packet as NFQUEUE delivers it: udpPayload() then parseMessage().
Result<Message, ParseError> parse(std::span<const std::uint8_t> packet);

} // namespace veil::dns
