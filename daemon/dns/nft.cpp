// SetUpdater on libnftables: one context for the life of veild; each update
// is one nft transaction.

#include <nftables/libnftables.h>
#include <sys/socket.h>

#include "dns/sets.h"

namespace veil::dns {

namespace {

class NftSets final : public SetUpdater {
public:
    NftSets(nft_ctx* ctx, std::string table, std::string set4, std::string set6)
        : ctx_(ctx), table_(std::move(table)), set4_(std::move(set4)), set6_(std::move(set6))
    {
    }
    ~NftSets() override { nft_ctx_free(ctx_); }
    NftSets(const NftSets&) = delete;
    NftSets& operator=(const NftSets&) = delete;

    const std::string& setFor(int family) const override { return family == AF_INET6 ? set6_ : set4_; }

    Result<void, SetError> add(const Address& address, std::chrono::seconds timeout) override
    {
        const std::string& name = setFor(address.family);
        const std::string set = "inet " + table_ + " " + name;
        const std::string elem = "{ " + address.text() + " timeout " + std::to_string(timeout.count()) + "s }";
        // Re-adding an element does not replace its timeout on kernels before
        // 6.x, so: add (a no-op when present), delete, add with the timeout —
        // one transaction, so the packet path never sees the element missing.
        const std::string cmd = "add element " + set + " " + elem + "\ndelete element " + set + " { " +
                                address.text() + " }\nadd element " + set + " " + elem + "\n";
        if (nft_run_cmd_from_buffer(ctx_, cmd.c_str()) == 0) {
            nft_ctx_get_error_buffer(ctx_); // rewinds it
            return Ok{};
        }
        std::string err = nft_ctx_get_error_buffer(ctx_);
        std::string first = err.substr(0, err.find('\n'));
        if (first.empty())
            first = "nft error";
        // The kernel's ENOENT: the table or the set is not there.
        SetErrorKind kind = first.find("No such file or directory") != std::string::npos ? SetErrorKind::Missing
                                                                                         : SetErrorKind::Failed;
        return fail(SetError{kind, "nft set " + set + ": " + first});
    }

private:
    nft_ctx* ctx_;
    std::string table_, set4_, set6_;
};

} // namespace

Result<std::unique_ptr<SetUpdater>> openNftSets(std::string table, std::string set4, std::string set6)
{
    nft_ctx* ctx = nft_ctx_new(NFT_CTX_DEFAULT);
    if (ctx == nullptr)
        return fail("libnftables: cannot create a context");
    if (nft_ctx_buffer_output(ctx) != 0 || nft_ctx_buffer_error(ctx) != 0) {
        nft_ctx_free(ctx);
        return fail("libnftables: cannot buffer output");
    }
    return std::unique_ptr<SetUpdater>(
        std::make_unique<NftSets>(ctx, std::move(table), std::move(set4), std::move(set6)));
}

} // namespace veil::dns
