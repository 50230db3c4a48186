#include "iptables/exec.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "base/unique_fd.h"

extern char** environ;

namespace veil::iptables {

namespace {

std::string sysError(const std::string& what)
{
    return what + ": " + std::strerror(errno);
}

std::string findTool(const std::string& name)
{
    if (name.find('/') != std::string::npos)
        return name;
    const char* env = std::getenv("PATH");
    std::string path = env ? env : "";
    path += ":/usr/sbin:/sbin:/usr/bin:/bin";
    std::size_t start = 0;
    while (start <= path.size()) {
        std::size_t end = path.find(':', start);
        if (end == std::string::npos)
            end = path.size();
        std::string dir = path.substr(start, end - start);
        if (!dir.empty()) {
            std::string candidate = dir + "/" + name;
            if (::access(candidate.c_str(), X_OK) == 0)
                return candidate;
        }
        start = end + 1;
    }
    return "";
}

struct Pipe {
    UniqueFd read, write;
};

Result<Pipe> makePipe()
{
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0)
        return fail(sysError("pipe"));
    return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

} // namespace

bool haveTool(const std::string& name)
{
    return !findTool(name).empty();
}

Result<Output> run(const std::vector<std::string>& argv, std::string_view input)
{
    if (argv.empty())
        return fail(std::string("run: no command"));
    const std::string path = findTool(argv[0]);
    if (path.empty())
        return fail(argv[0] + ": not found (in PATH or /usr/sbin, /sbin, /usr/bin, /bin)");
    // Everything the child needs is built before fork: it only dup2s and execs.
    std::vector<char*> args;
    for (const auto& a : argv)
        args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);

    auto in = makePipe();
    auto out = makePipe();
    auto err = makePipe();
    if (!in || !out || !err)
        return fail(!in ? in.error() : !out ? out.error() : err.error());

    const pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0)
        return fail(sysError("fork"));
    if (pid == 0) {
        // A tool outlives a killed veil-iptables only to race the next run
        // (two inserts of one missing jump): it dies with us instead. Its
        // own work is atomic, so dying mid-way leaves nothing half done.
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent)
            ::_exit(127);
        ::dup2(in->read.get(), STDIN_FILENO);
        ::dup2(out->write.get(), STDOUT_FILENO);
        ::dup2(err->write.get(), STDERR_FILENO);
        ::execve(path.c_str(), args.data(), environ);
        ::_exit(127);
    }
    in->read.reset();
    out->write.reset();
    err->write.reset();
    // A tool that dies early must not kill us with SIGPIPE.
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    struct sigaction old {};
    ::sigaction(SIGPIPE, &ignore, &old);

    Output result;
    std::size_t written = 0;
    if (input.empty())
        in->write.reset();
    char buf[16384];
    while (out->read || err->read) {
        pollfd fds[3];
        int n = 0;
        int outIdx = -1, errIdx = -1, inIdx = -1;
        if (out->read) {
            outIdx = n;
            fds[n++] = {out->read.get(), POLLIN, 0};
        }
        if (err->read) {
            errIdx = n;
            fds[n++] = {err->read.get(), POLLIN, 0};
        }
        if (in->write) {
            inIdx = n;
            fds[n++] = {in->write.get(), POLLOUT, 0};
        }
        if (::poll(fds, static_cast<nfds_t>(n), -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        auto drain = [&](int idx, UniqueFd& fd, std::string& to) {
            if (idx < 0 || !(fds[idx].revents & (POLLIN | POLLHUP | POLLERR)))
                return;
            ssize_t r = ::read(fd.get(), buf, sizeof buf);
            if (r > 0)
                to.append(buf, static_cast<std::size_t>(r));
            else if (r == 0 || errno != EINTR)
                fd.reset();
        };
        drain(outIdx, out->read, result.out);
        drain(errIdx, err->read, result.err);
        if (inIdx >= 0 && (fds[inIdx].revents & (POLLOUT | POLLERR | POLLHUP))) {
            ssize_t w = ::write(in->write.get(), input.data() + written, input.size() - written);
            if (w > 0)
                written += static_cast<std::size_t>(w);
            if ((w < 0 && errno != EINTR && errno != EAGAIN) || written == input.size())
                in->write.reset(); // done, or the tool stopped reading
        }
    }
    in->write.reset();
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    ::sigaction(SIGPIPE, &old, nullptr);
    if (WIFEXITED(status))
        result.status = WEXITSTATUS(status);
    else if (WIFSIGNALED(status))
        result.status = 128 + WTERMSIG(status);
    if (result.status == 127 && result.err.empty())
        result.err = "could not execute " + path;
    return result;
}

Result<UniqueFd> lockRules()
{
    // /run/xtables.lock is iptables' own; ours only orders veil-iptables
    // runs, so that two never read the same state and both add a jump.
    UniqueFd fd(::open("/run/veil-iptables.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!fd)
        return fail(sysError("/run/veil-iptables.lock"));
    while (::flock(fd.get(), LOCK_EX) != 0)
        if (errno != EINTR)
            return fail(sysError("flock /run/veil-iptables.lock"));
    return fd;
}

Result<void> enterNetns(const std::string& name)
{
    if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..")
        return fail("--netns: '" + name + "' is not a namespace name");
    const std::string path = "/run/netns/" + name;
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd)
        return fail(sysError("--netns " + name + ": " + path));
    if (::setns(fd.get(), CLONE_NEWNET) != 0)
        return fail(sysError("--netns " + name + ": setns"));
    return Ok{};
}

} // namespace veil::iptables
