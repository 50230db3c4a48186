#include "base/io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/unique_fd.h"

namespace veil {

namespace {
std::string errnoText(const std::string& what) { return what + ": " + std::strerror(errno); }
} // namespace

Result<std::string> readAll(const std::string& path)
{
    UniqueFd owned;
    int fd = STDIN_FILENO;
    if (path != "-") {
        owned.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
        if (!owned)
            return fail(errnoText(path));
        fd = owned.get();
    }
    std::string out;
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fail(errnoText(path == "-" ? "standard input" : path));
        if (n == 0)
            break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
}

Result<void> writeAll(int fd, std::string_view data)
{
    while (!data.empty()) {
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fail(errnoText("write"));
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return Ok{};
}

Result<void> writeFileAtomic(const std::string& path, std::string_view data, unsigned mode)
{
    std::string tmp = path + ".tmp." + std::to_string(::getpid());
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
    if (!fd)
        return fail(errnoText(tmp));
    // The umask must not widen or narrow what the caller asked for.
    if (::fchmod(fd.get(), mode) != 0) {
        ::unlink(tmp.c_str());
        return fail(errnoText(tmp));
    }
    if (auto w = writeAll(fd.get(), data); !w) {
        ::unlink(tmp.c_str());
        return fail(tmp + ": " + w.error().message);
    }
    if (::fsync(fd.get()) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0) {
        ::unlink(tmp.c_str());
        return fail(errnoText(path));
    }
    return Ok{};
}

} // namespace veil
