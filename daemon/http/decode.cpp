#include "http/decode.h"

#include <brotli/decode.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <vector>

#include "http/headers.h"

namespace veil::http {

namespace {

constexpr std::size_t kBlock = 16 * 1024;
constexpr std::size_t kMaxCodings = 3;

using Status = Result<void, DecodeError>;

Unexpected<DecodeError> failWith(DecodeFailure failure, std::string message)
{
    return fail(DecodeError{failure, std::move(message)});
}

enum class Coding : unsigned char { Gzip, Deflate, Brotli };

std::string_view codingName(Coding c)
{
    switch (c) {
    case Coding::Gzip: return "gzip";
    case Coding::Deflate: return "deflate";
    case Coding::Brotli: return "br";
    }
    return "?";
}

// Counters shared by the stages of one decoder.
struct Budget {
    DecodeLimits limits;
    std::uint64_t encoded = 0;
};

// A receiver of decoded bytes: the next stage, or the caller's string.
class Sink {
public:
    virtual ~Sink() = default;
    virtual Status write(std::string_view bytes) = 0;
};

class OutputSink final : public Sink {
public:
    Status write(std::string_view bytes) override
    {
        out->append(bytes);
        return {};
    }
    std::string* out = nullptr;
};

// One decoding stage. Every byte a stage produces is counted against the cap
// and the ratio guard before it moves on, so no stage of a chain can inflate
// without bound, and nothing over the limit reaches the caller.
class Stage : public Sink {
public:
    Stage(Coding coding, Budget& budget) : coding_(coding), budget_(budget) {}
    virtual Status end() = 0;
    void setNext(Sink* next) { next_ = next; }
    // The first stage counts the encoded bytes it has actually consumed, so
    // the ratio guard compares output with input read so far, not with the
    // size of the buffer the caller handed over.
    void countInputInto(std::uint64_t* counter) { consumed_ = counter; }
    std::uint64_t produced() const { return produced_; }

protected:
    Status emit(const unsigned char* p, std::size_t n)
    {
        if (n == 0)
            return {};
        produced_ += n;
        const DecodeLimits& l = budget_.limits;
        if (produced_ > l.maxOutput)
            return failWith(DecodeFailure::TooLarge, std::string(codingName(coding_)) +
                                                         " body decodes to more than " +
                                                         std::to_string(l.maxOutput) + " bytes");
        if (l.maxRatio != 0 && produced_ > l.ratioFloor &&
            produced_ / l.maxRatio > budget_.encoded)
            return failWith(DecodeFailure::RatioExceeded,
                            std::string(codingName(coding_)) + " decompression ratio above " +
                                std::to_string(l.maxRatio) + ":1 (decompression bomb)");
        return next_->write({reinterpret_cast<const char*>(p), n});
    }

    void consumed(std::size_t n)
    {
        if (consumed_ != nullptr)
            *consumed_ += n;
    }

    Coding coding_;
    Budget& budget_;
    Sink* next_ = nullptr;
    std::uint64_t* consumed_ = nullptr;
    std::uint64_t produced_ = 0;
    bool sawInput_ = false;
};

class ZlibStage final : public Stage {
public:
    ZlibStage(Coding coding, Budget& budget) : Stage(coding, budget) {}
    ~ZlibStage() override
    {
        if (initialized_)
            inflateEnd(&z_);
    }

    Status write(std::string_view in) override
    {
        if (in.empty())
            return {};
        sawInput_ = true;
        if (!initialized_) {
            int windowBits = 15 + 16; // gzip wrapper
            if (coding_ == Coding::Deflate) {
                // RFC 9110 "deflate" is zlib-wrapped, but some servers send
                // raw deflate; tell them apart by the zlib header (CMF/FLG:
                // method 8, window <= 32K, check bits), as curl does.
                std::size_t take = std::min(in.size(), 2 - sniffed_.size());
                sniffed_.append(in.substr(0, take));
                in.remove_prefix(take);
                if (sniffed_.size() < 2)
                    return {};
                auto cmf = static_cast<unsigned>(static_cast<unsigned char>(sniffed_[0]));
                auto flg = static_cast<unsigned>(static_cast<unsigned char>(sniffed_[1]));
                bool zlibWrapped = (cmf & 0x0f) == 8 && (cmf >> 4) <= 7 && ((cmf << 8) | flg) % 31 == 0;
                windowBits = zlibWrapped ? 15 : -15;
            }
            if (inflateInit2(&z_, windowBits) != Z_OK)
                return failWith(DecodeFailure::Corrupt, "zlib initialization failed");
            initialized_ = true;
            if (!sniffed_.empty()) {
                Status s = inflateAll(sniffed_);
                if (!s.ok())
                    return s;
            }
        }
        return inflateAll(in);
    }

    Status end() override
    {
        if (!sawInput_)
            return {};
        if (!initialized_ || !ended_)
            return failWith(DecodeFailure::Truncated,
                            "truncated " + std::string(codingName(coding_)) + " stream");
        return {};
    }

private:
    Status inflateAll(std::string_view in)
    {
        z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
        z_.avail_in = static_cast<uInt>(in.size());
        std::array<unsigned char, kBlock> block;
        while (z_.avail_in > 0) {
            if (ended_) {
                // RFC 1952 allows several gzip members back to back; zlib
                // and raw deflate end with their stream.
                if (coding_ != Coding::Gzip)
                    return failWith(DecodeFailure::Corrupt, "bytes after the end of the deflate stream");
                if (inflateReset(&z_) != Z_OK)
                    return failWith(DecodeFailure::Corrupt, "gzip member reset failed");
                ended_ = false;
            }
            int rc;
            do {
                z_.next_out = block.data();
                z_.avail_out = static_cast<uInt>(block.size());
                const uInt before = z_.avail_in;
                rc = inflate(&z_, Z_NO_FLUSH);
                consumed(before - z_.avail_in);
                if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR)
                    return failWith(DecodeFailure::Corrupt,
                                    "invalid " + std::string(codingName(coding_)) + " data");
                Status s = emit(block.data(), block.size() - z_.avail_out);
                if (!s.ok())
                    return s;
                if (rc == Z_STREAM_END) {
                    ended_ = true;
                    break;
                }
            } while (z_.avail_out == 0 || (z_.avail_in > 0 && rc == Z_OK));
            if (!ended_ && z_.avail_in > 0)
                return failWith(DecodeFailure::Corrupt,
                                "invalid " + std::string(codingName(coding_)) + " data");
        }
        return {};
    }

    z_stream z_{};
    bool initialized_ = false;
    bool ended_ = false;
    std::string sniffed_;
};

class BrotliStage final : public Stage {
public:
    explicit BrotliStage(Budget& budget)
        : Stage(Coding::Brotli, budget), state_(BrotliDecoderCreateInstance(nullptr, nullptr, nullptr))
    {
    }
    ~BrotliStage() override
    {
        if (state_ != nullptr)
            BrotliDecoderDestroyInstance(state_);
    }
    BrotliStage(const BrotliStage&) = delete;
    BrotliStage& operator=(const BrotliStage&) = delete;

    Status write(std::string_view in) override
    {
        if (in.empty())
            return {};
        sawInput_ = true;
        if (state_ == nullptr)
            return failWith(DecodeFailure::Corrupt, "brotli decoder could not be created");
        if (ended_)
            return failWith(DecodeFailure::Corrupt, "bytes after the end of the br stream");
        const auto* nextIn = reinterpret_cast<const std::uint8_t*>(in.data());
        std::size_t availIn = in.size();
        std::array<std::uint8_t, kBlock> block;
        for (;;) {
            std::uint8_t* nextOut = block.data();
            std::size_t availOut = block.size();
            const std::size_t before = availIn;
            BrotliDecoderResult r =
                BrotliDecoderDecompressStream(state_, &availIn, &nextIn, &availOut, &nextOut, nullptr);
            consumed(before - availIn);
            if (r == BROTLI_DECODER_RESULT_ERROR)
                return failWith(DecodeFailure::Corrupt,
                                std::string("invalid br data (") +
                                    BrotliDecoderErrorString(BrotliDecoderGetErrorCode(state_)) + ")");
            Status s = emit(block.data(), block.size() - availOut);
            if (!s.ok())
                return s;
            if (r == BROTLI_DECODER_RESULT_SUCCESS) {
                ended_ = true;
                if (availIn > 0)
                    return failWith(DecodeFailure::Corrupt, "bytes after the end of the br stream");
                return {};
            }
            if (r == BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT)
                return {};
            // NEEDS_MORE_OUTPUT: go round with a fresh block.
        }
    }

    Status end() override
    {
        if (sawInput_ && !ended_)
            return failWith(DecodeFailure::Truncated, "truncated br stream");
        return {};
    }

private:
    BrotliDecoderState* state_;
    bool ended_ = false;
};

Result<std::vector<Coding>, DecodeError> parseCodings(std::string_view value)
{
    std::vector<Coding> codings;
    std::string unsupported;
    bool tooMany = false;
    forEachListElement(value, [&](std::string_view e) {
        if (iequals(e, "identity"))
            return true;
        if (iequals(e, "gzip") || iequals(e, "x-gzip"))
            codings.push_back(Coding::Gzip);
        else if (iequals(e, "deflate"))
            codings.push_back(Coding::Deflate);
        else if (iequals(e, "br"))
            codings.push_back(Coding::Brotli);
        else {
            // Named in the error when it is a plain token (it is a header
            // value, not body content); anything else is not echoed.
            unsupported = isToken(e) && e.size() <= 32 ? std::string(e) : std::string("?");
            return false;
        }
        if (codings.size() > kMaxCodings) {
            tooMany = true;
            return false;
        }
        return true;
    });
    if (!unsupported.empty())
        return failWith(DecodeFailure::Unsupported,
                        "unsupported Content-Encoding " + unsupported + " (veil decodes gzip, deflate, br)");
    if (tooMany)
        return failWith(DecodeFailure::Unsupported,
                        "more than " + std::to_string(kMaxCodings) + " content codings");
    return codings;
}

} // namespace

std::string_view decodeFailureName(DecodeFailure failure)
{
    switch (failure) {
    case DecodeFailure::Unsupported: return "unsupported";
    case DecodeFailure::TooLarge: return "too_large";
    case DecodeFailure::RatioExceeded: return "ratio_exceeded";
    case DecodeFailure::Corrupt: return "corrupt";
    case DecodeFailure::Truncated: return "truncated";
    }
    return "corrupt";
}

HttpError toHttpError(const DecodeError& error, Side side)
{
    if (side != Side::Downstream)
        return HttpError{502, kindForStatus(502), "upstream body: " + error.message, side};
    switch (error.failure) {
    case DecodeFailure::Unsupported:
        return HttpError{415, kindForStatus(415), error.message, side};
    case DecodeFailure::TooLarge:
    case DecodeFailure::RatioExceeded:
        return HttpError{413, kindForStatus(413), error.message, side};
    case DecodeFailure::Corrupt:
    case DecodeFailure::Truncated:
        break;
    }
    return HttpError{400, "bad_encoding", error.message, side};
}

bool isSupportedContentEncoding(std::string_view contentEncoding)
{
    return parseCodings(contentEncoding).ok();
}

struct ContentDecoder::Impl {
    Budget budget;
    std::vector<std::unique_ptr<Stage>> stages; // stages[0] sees the encoded bytes
    OutputSink output;
    bool broken = false;

    Status feed(std::string_view encoded, std::string& decoded)
    {
        if (broken)
            return failWith(DecodeFailure::Corrupt, "decoder used after an error");
        output.out = &decoded;
        if (stages.empty()) {
            budget.encoded += encoded.size();
            if (budget.encoded > budget.limits.maxOutput)
                return mark(failWith(DecodeFailure::TooLarge,
                                     "body larger than " + std::to_string(budget.limits.maxOutput) + " bytes"));
            decoded.append(encoded);
            return {};
        }
        Status s = stages.front()->write(encoded);
        if (!s.ok())
            return mark(std::move(s));
        return {};
    }

    Status finish(std::string& decoded)
    {
        if (broken)
            return failWith(DecodeFailure::Corrupt, "decoder used after an error");
        output.out = &decoded;
        for (auto& stage : stages) {
            Status s = stage->end();
            if (!s.ok())
                return mark(std::move(s));
        }
        return {};
    }

    Status mark(Status s)
    {
        broken = true;
        return s;
    }
};

ContentDecoder::ContentDecoder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ContentDecoder::ContentDecoder(ContentDecoder&&) noexcept = default;
ContentDecoder& ContentDecoder::operator=(ContentDecoder&&) noexcept = default;
ContentDecoder::~ContentDecoder() = default;

Result<ContentDecoder, DecodeError> ContentDecoder::create(std::string_view contentEncoding,
                                                           DecodeLimits limits)
{
    auto codings = parseCodings(contentEncoding);
    if (!codings.ok())
        return fail(codings.error());
    auto impl = std::make_unique<Impl>();
    impl->budget.limits = limits;
    // Codings are listed in the order applied; decode the last one first.
    for (auto it = codings->rbegin(); it != codings->rend(); ++it) {
        if (*it == Coding::Brotli)
            impl->stages.push_back(std::make_unique<BrotliStage>(impl->budget));
        else
            impl->stages.push_back(std::make_unique<ZlibStage>(*it, impl->budget));
    }
    for (std::size_t i = 0; i < impl->stages.size(); ++i) {
        Sink* next = i + 1 < impl->stages.size() ? static_cast<Sink*>(impl->stages[i + 1].get())
                                                 : static_cast<Sink*>(&impl->output);
        impl->stages[i]->setNext(next);
    }
    if (!impl->stages.empty())
        impl->stages.front()->countInputInto(&impl->budget.encoded);
    return ContentDecoder(std::move(impl));
}

Result<void, DecodeError> ContentDecoder::feed(std::string_view encoded, std::string& decoded)
{
    return impl_->feed(encoded, decoded);
}

Result<void, DecodeError> ContentDecoder::finish(std::string& decoded)
{
    return impl_->finish(decoded);
}

bool ContentDecoder::identity() const
{
    return impl_->stages.empty();
}

std::uint64_t ContentDecoder::encodedBytes() const
{
    return impl_->budget.encoded;
}

std::uint64_t ContentDecoder::decodedBytes() const
{
    return impl_->stages.empty() ? impl_->budget.encoded : impl_->stages.back()->produced();
}

Result<std::string, DecodeError> decodeBody(std::string_view contentEncoding, std::string_view body,
                                            DecodeLimits limits)
{
    auto decoder = ContentDecoder::create(contentEncoding, limits);
    if (!decoder.ok())
        return fail(decoder.error());
    std::string decoded;
    auto fed = decoder->feed(body, decoded);
    if (!fed.ok())
        return fail(fed.error());
    auto finished = decoder->finish(decoded);
    if (!finished.ok())
        return fail(finished.error());
    return decoded;
}

} // namespace veil::http
