#pragma once

// Listening sockets and the original destination of an accepted connection
// (Envoy's original_dst listener filter): SO_ORIGINAL_DST /
// IP6T_SO_ORIGINAL_DST after nat REDIRECT/DNAT, or the local address of an
// IP_TRANSPARENT socket after TPROXY.

#include "base/result.h"
#include "base/unique_fd.h"
#include "listener/address.h"

namespace veil::listener {

enum class Mode { Redirect, Tproxy };

// A non-blocking listening socket with SO_REUSEPORT, so each worker thread
// opens its own on the same address and the kernel spreads connections.
// Tproxy mode sets IP_TRANSPARENT/IPV6_TRANSPARENT (needs CAP_NET_ADMIN).
Result<UniqueFd> openListener(const Address& at, Mode mode, int backlog = 1024);

// The destination the client connected to before the rules redirected it.
// Fails for a connection that was not redirected (no conntrack NAT entry).
Result<Address> originalDestination(int fd, Mode mode);

// True if `dst` is veild itself: a client connected to the listener directly,
// or a redirect loop. Such connections are refused and counted.
bool pointsAtListener(const Address& dst, const Address& listenAt, int acceptedFd, Mode mode);

} // namespace veil::listener
