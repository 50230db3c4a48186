#pragma once

// DNS host names as the tls module accepts them: for SNI, for forged leaves
// and for the lab CA's name constraints. One definition, so a name that
// passes the ClientHello peek is exactly a name the forger will sign.

#include <optional>
#include <string>
#include <string_view>

namespace veil::tls {

inline constexpr std::size_t kMaxHostNameLength = 253;

// The lowercased name if `name` is a DNS host name: LDH labels of 1..63
// bytes not starting or ending with '-', 1..253 bytes in all, no trailing dot,
// not an IP literal. std::nullopt otherwise.
std::optional<std::string> normalizeHostName(std::string_view name);

// True for IPv4/IPv6 literals and for names a URL parser would read as an
// IPv4 address (last label numeric, e.g. "10.1" or "0x7f.1").
bool isIpLiteral(std::string_view name);

} // namespace veil::tls
