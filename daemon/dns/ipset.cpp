// SetUpdater on libipset's session API: one netlink socket for the life of
// veild; the set's type is looked up once (libipset caches it by name) and
// forgotten after a failure so a set re-created by veil-iptables is found
// again.

#include <libipset/data.h>
#include <libipset/nfproto.h>
#include <libipset/session.h>
#include <libipset/types.h>
#include <sys/socket.h>

#include <cstring>
#include <mutex>

#include "dns/sets.h"

namespace veil::dns {

namespace {

std::string oneLine(const char* msg)
{
    std::string s = msg ? msg : "";
    while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
        s.pop_back();
    for (char& c : s)
        if (c == '\n')
            c = ' ';
    return s.empty() ? "ipset error" : s;
}

class Ipsets final : public SetUpdater {
public:
    Ipsets(ipset_session* s, std::string set4, std::string set6)
        : session_(s), set4_(std::move(set4)), set6_(std::move(set6))
    {
    }
    ~Ipsets() override { ipset_session_fini(session_); }
    Ipsets(const Ipsets&) = delete;
    Ipsets& operator=(const Ipsets&) = delete;

    const std::string& setFor(int family) const override { return family == AF_INET6 ? set6_ : set4_; }

    Result<void, SetError> add(const Address& address, std::chrono::seconds timeout) override
    {
        const std::string& name = setFor(address.family);
        ipset_session_report_reset(session_);
        ipset_data_reset(ipset_session_data(session_));
        if (ipset_session_data_set(session_, IPSET_SETNAME, name.c_str()) < 0)
            return error(name);
        // Asks the kernel for the set's type and family (cached by name).
        if (ipset_type_get(session_, IPSET_CMD_ADD) == nullptr)
            return error(name);
        std::uint8_t family = address.family == AF_INET6 ? NFPROTO_IPV6 : NFPROTO_IPV4;
        union nf_inet_addr ip {};
        std::memcpy(&ip, address.bytes.data(), address.family == AF_INET6 ? 16 : 4);
        auto t = static_cast<std::uint32_t>(timeout.count());
        if (ipset_session_data_set(session_, IPSET_OPT_FAMILY, &family) < 0 ||
            ipset_session_data_set(session_, IPSET_OPT_IP, &ip) < 0 ||
            ipset_session_data_set(session_, IPSET_OPT_TIMEOUT, &t) < 0 ||
            ipset_cmd(session_, IPSET_CMD_ADD, 0) < 0)
            return error(name);
        return Ok{};
    }

private:
    Unexpected<SetError> error(const std::string& name)
    {
        std::string msg = oneLine(ipset_session_report_msg(session_));
        ipset_session_report_reset(session_);
        ipset_cache_del(name.c_str()); // look the type up again next time
        // libipset turns the kernel's ENOENT into this sentence; it has no
        // other way to say which error it was.
        SetErrorKind kind = msg.find("does not exist") != std::string::npos ? SetErrorKind::Missing
                                                                            : SetErrorKind::Failed;
        return fail(SetError{kind, "ipset " + name + ": " + msg});
    }

    ipset_session* session_;
    std::string set4_, set6_;
};

} // namespace

Result<std::unique_ptr<SetUpdater>> openIpsets(std::string set4, std::string set6)
{
    static std::once_flag types;
    std::call_once(types, [] { ipset_load_types(); });
    ipset_session* s = ipset_session_init(nullptr, nullptr);
    if (s == nullptr)
        return fail(std::string("libipset: cannot open a netlink session: ") + std::strerror(errno));
    // -exist: adding an address already in the set replaces its timeout.
    ipset_envopt_set(s, IPSET_ENV_EXIST);
    return std::unique_ptr<SetUpdater>(std::make_unique<Ipsets>(s, std::move(set4), std::move(set6)));
}

} // namespace veil::dns
