#pragma once

// Blocking whole-file helpers for command-line tools and start-up. Never on
// the daemon's event loop.

#include <string>
#include <string_view>

#include "base/result.h"

namespace veil {

// Reads a whole file ("-" = standard input).
Result<std::string> readAll(const std::string& path);
// Writes a whole file, created with `mode` (e.g. 0600 for secrets) and
// replaced atomically (temporary file + rename).
Result<void> writeFileAtomic(const std::string& path, std::string_view data, unsigned mode);
// Writes all of `data` to a descriptor, retrying on EINTR/short writes.
Result<void> writeAll(int fd, std::string_view data);

} // namespace veil
