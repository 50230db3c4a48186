#include "dns/message.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace veil::dns {

namespace {

constexpr std::size_t kHeader = 12;
constexpr std::size_t kMaxNameWire = 255;      // RFC 1035 §2.3.4, length octets included
constexpr unsigned kMaxPointers = 127;         // more than any 255-byte name can need
constexpr unsigned kMaxIpv6Extensions = 8;
constexpr std::uint16_t kClassIn = 1;
constexpr std::uint8_t kProtoUdp = 17;

using Bytes = std::span<const std::uint8_t>;

std::uint16_t be16(Bytes b, std::size_t at) { return static_cast<std::uint16_t>((b[at] << 8) | b[at + 1]); }

std::uint32_t be32(Bytes b, std::size_t at)
{
    return (std::uint32_t{b[at]} << 24) | (std::uint32_t{b[at + 1]} << 16) | (std::uint32_t{b[at + 2]} << 8) |
           std::uint32_t{b[at + 3]};
}

void appendLabel(std::string& out, Bytes msg, std::size_t at, std::size_t len)
{
    if (!out.empty())
        out += '.';
    for (std::size_t i = 0; i < len; ++i) {
        auto c = msg[at + i];
        if (c >= 'A' && c <= 'Z')
            out += static_cast<char>(c - 'A' + 'a');
        else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_')
            out += static_cast<char>(c);
        else {
            char esc[5];
            esc[0] = '\\';
            esc[1] = static_cast<char>('0' + c / 100);
            esc[2] = static_cast<char>('0' + c / 10 % 10);
            esc[3] = static_cast<char>('0' + c % 10);
            esc[4] = 0;
            out += esc;
        }
    }
}

// Reads the (possibly compressed) name at `pos`; on success `pos` is the
// offset after the name as it sits in the record. Every compression pointer
// must point strictly before the start of the segment it interrupts, so the
// jump targets strictly decrease: no loop is possible and the number of
// jumps is bounded by the message size (and by kMaxPointers). Valid
// compressors only ever point at names written earlier, so this rejects
// nothing real.
Result<std::string, ParseError> readName(Bytes msg, std::size_t& pos)
{
    std::string out;
    std::size_t p = pos;
    std::size_t segment = pos; // where the labels being read start
    std::size_t wire = 0;
    unsigned jumps = 0;
    bool jumped = false;
    for (;;) {
        if (p >= msg.size())
            return fail(ParseError::NameTruncated);
        std::uint8_t len = msg[p];
        if ((len & 0xC0) == 0xC0) {
            if (p + 1 >= msg.size())
                return fail(ParseError::NameTruncated);
            std::size_t target = (std::size_t{len & 0x3Fu} << 8) | msg[p + 1];
            if (target >= segment || ++jumps > kMaxPointers)
                return fail(ParseError::BadPointer);
            if (!jumped) {
                pos = p + 2;
                jumped = true;
            }
            segment = p = target;
            continue;
        }
        if (len & 0xC0)
            return fail(ParseError::BadLabel);
        wire += 1u + len;
        if (wire > kMaxNameWire)
            return fail(ParseError::NameTooLong);
        if (len == 0) {
            if (!jumped)
                pos = p + 1;
            return out;
        }
        if (msg.size() - (p + 1) < len)
            return fail(ParseError::NameTruncated);
        appendLabel(out, msg, p + 1, len);
        p += 1u + len;
    }
}

} // namespace

Address Address::v4(const std::uint8_t* p)
{
    Address a;
    a.family = AF_INET;
    std::memcpy(a.bytes.data(), p, 4);
    return a;
}

Address Address::v6(const std::uint8_t* p)
{
    Address a;
    a.family = AF_INET6;
    std::memcpy(a.bytes.data(), p, 16);
    return a;
}

Address Address::fromText(const std::string& text)
{
    Address a;
    if (inet_pton(AF_INET, text.c_str(), a.bytes.data()) == 1)
        a.family = AF_INET;
    else if (inet_pton(AF_INET6, text.c_str(), a.bytes.data()) == 1)
        a.family = AF_INET6;
    else
        a.bytes = {};
    return a;
}

std::string Address::text() const
{
    char buf[INET6_ADDRSTRLEN] = {};
    if (family != AF_INET && family != AF_INET6)
        return "?";
    inet_ntop(family, bytes.data(), buf, sizeof buf);
    return buf;
}

const char* toString(ParseError e)
{
    switch (e) {
    case ParseError::Truncated: return "truncated packet";
    case ParseError::NotIp: return "not IPv4 or IPv6";
    case ParseError::BadIpHeader: return "bad IPv4 header length";
    case ParseError::Fragment: return "IP fragment";
    case ParseError::NotUdp: return "not UDP";
    case ParseError::BadUdpLength: return "bad UDP length";
    case ParseError::HeaderTruncated: return "DNS header truncated";
    case ParseError::NameTruncated: return "name truncated";
    case ParseError::BadLabel: return "unsupported label type";
    case ParseError::NameTooLong: return "name too long";
    case ParseError::BadPointer: return "compression pointer not backwards";
    case ParseError::RecordTruncated: return "record truncated";
    case ParseError::BadRdata: return "bad rdata length";
    case ParseError::TrailingBytes: return "trailing bytes";
    case ParseError::ConflictingCname: return "conflicting CNAMEs";
    }
    return "unknown";
}

Result<Message, ParseError> parseMessage(Bytes msg)
{
    if (msg.size() < kHeader)
        return fail(ParseError::HeaderTruncated);
    Message m;
    m.id = be16(msg, 0);
    m.flags = be16(msg, 2);
    const unsigned qd = be16(msg, 4), an = be16(msg, 6), ns = be16(msg, 8), ar = be16(msg, 10);
    std::size_t pos = kHeader;

    for (unsigned i = 0; i < qd; ++i) {
        auto name = readName(msg, pos);
        if (!name)
            return fail(name.error());
        if (msg.size() - pos < 4)
            return fail(ParseError::RecordTruncated);
        if (be16(msg, pos + 2) == kClassIn)
            m.questions.push_back(std::move(name.value()));
        pos += 4;
    }

    const unsigned records = an + ns + ar;
    for (unsigned i = 0; i < records; ++i) {
        auto name = readName(msg, pos);
        if (!name)
            return fail(name.error());
        if (msg.size() - pos < 10)
            return fail(ParseError::RecordTruncated);
        const std::uint16_t type = be16(msg, pos), cls = be16(msg, pos + 2);
        std::uint32_t ttl = be32(msg, pos + 4);
        const std::size_t rdlen = be16(msg, pos + 8);
        pos += 10;
        if (msg.size() - pos < rdlen)
            return fail(ParseError::RecordTruncated);
        const std::size_t rdata = pos;
        pos += rdlen;
        // Only the answer section says what the question name resolves to;
        // authority and additional records are checked for framing only.
        if (i >= an || cls != kClassIn)
            continue;
        if (ttl > 0x7FFFFFFFu)
            ttl = 0;
        Record r;
        r.type = type;
        r.ttl = ttl;
        if (type == kTypeA) {
            if (rdlen != 4)
                return fail(ParseError::BadRdata);
            r.address = Address::v4(msg.data() + rdata);
        } else if (type == kTypeAaaa) {
            if (rdlen != 16)
                return fail(ParseError::BadRdata);
            r.address = Address::v6(msg.data() + rdata);
        } else if (type == kTypeCname) {
            std::size_t at = rdata;
            // The name may be compressed against anything before it, but
            // must end exactly where the rdata does.
            auto target = readName(msg.first(rdata + rdlen), at);
            if (!target) {
                if (target.error() == ParseError::NameTruncated)
                    return fail(ParseError::BadRdata);
                return fail(target.error());
            }
            if (at != rdata + rdlen)
                return fail(ParseError::BadRdata);
            r.target = std::move(target.value());
        } else {
            continue;
        }
        r.name = std::move(name.value());
        m.answers.push_back(std::move(r));
    }
    if (pos != msg.size())
        return fail(ParseError::TrailingBytes);

    // One owner, one CNAME (identical duplicates are harmless).
    std::vector<const Record*> cnames;
    for (const auto& r : m.answers)
        if (r.type == kTypeCname)
            cnames.push_back(&r);
    std::sort(cnames.begin(), cnames.end(), [](const Record* a, const Record* b) { return a->name < b->name; });
    for (std::size_t i = 1; i < cnames.size(); ++i)
        if (cnames[i]->name == cnames[i - 1]->name && cnames[i]->target != cnames[i - 1]->target)
            return fail(ParseError::ConflictingCname);
    return m;
}

Result<Bytes, ParseError> udpPayload(Bytes pkt)
{
    if (pkt.empty())
        return fail(ParseError::Truncated);
    std::size_t l4 = 0;   // where the UDP header starts
    std::size_t end = 0;  // end of the IP datagram (link padding after it is ignored)
    const unsigned version = pkt[0] >> 4;
    if (version == 4) {
        if (pkt.size() < 20)
            return fail(ParseError::Truncated);
        const std::size_t ihl = std::size_t{pkt[0] & 0x0Fu} * 4;
        const std::size_t total = be16(pkt, 2);
        if (ihl < 20 || total < ihl)
            return fail(ParseError::BadIpHeader);
        if (total > pkt.size())
            return fail(ParseError::Truncated);
        // More-fragments set or a non-zero offset.
        if ((be16(pkt, 6) & 0x3FFF) != 0)
            return fail(ParseError::Fragment);
        if (pkt[9] != kProtoUdp)
            return fail(ParseError::NotUdp);
        l4 = ihl;
        end = total;
    } else if (version == 6) {
        if (pkt.size() < 40)
            return fail(ParseError::Truncated);
        const std::size_t payload = be16(pkt, 4);
        if (pkt.size() - 40 < payload)
            return fail(ParseError::Truncated);
        end = 40 + payload;
        std::uint8_t next = pkt[6];
        std::size_t at = 40;
        for (unsigned n = 0;; ++n) {
            if (next == kProtoUdp)
                break;
            if (next == 44)
                return fail(ParseError::Fragment);
            // Hop-by-hop, routing, destination options: (len + 1) * 8 bytes.
            if ((next != 0 && next != 43 && next != 60) || n >= kMaxIpv6Extensions)
                return fail(ParseError::NotUdp);
            if (end - at < 8)
                return fail(ParseError::Truncated);
            const std::size_t len = (std::size_t{pkt[at + 1]} + 1) * 8;
            if (end - at < len)
                return fail(ParseError::Truncated);
            next = pkt[at];
            at += len;
        }
        l4 = at;
    } else {
        return fail(ParseError::NotIp);
    }
    if (end - l4 < 8)
        return fail(ParseError::Truncated);
    const std::size_t udpLen = be16(pkt, l4 + 4);
    if (udpLen < 8 || udpLen > end - l4)
        return fail(ParseError::BadUdpLength);
    return pkt.subspan(l4 + 8, udpLen - 8);
}

Result<Message, ParseError> parse(Bytes packet)
{
    auto payload = udpPayload(packet);
    if (!payload)
        return fail(payload.error());
    return parseMessage(payload.value());
}

} // namespace veil::dns
