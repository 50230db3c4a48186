#include <catch2/catch.hpp>

#include <brotli/encode.h>
#include <sys/resource.h>
#include <zlib.h>

#include <string>
#include <vector>

#include "http/decode.h"

using namespace veil::http;

namespace {

// windowBits: 15 + 16 gzip, 15 zlib, -15 raw deflate.
std::string deflateWith(std::string_view data, int windowBits)
{
    z_stream z{};
    REQUIRE(deflateInit2(&z, 6, Z_DEFLATED, windowBits, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    std::string out(deflateBound(&z, static_cast<uLong>(data.size())), '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    z.avail_in = static_cast<uInt>(data.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    REQUIRE(deflate(&z, Z_FINISH) == Z_STREAM_END);
    out.resize(z.total_out);
    deflateEnd(&z);
    return out;
}

std::string gzip(std::string_view data) { return deflateWith(data, 15 + 16); }

std::string brotli(std::string_view data)
{
    std::size_t size = BrotliEncoderMaxCompressedSize(data.size());
    std::string out(size, '\0');
    REQUIRE(BrotliEncoderCompress(5, BROTLI_DEFAULT_WINDOW, BROTLI_MODE_GENERIC, data.size(),
                                  reinterpret_cast<const std::uint8_t*>(data.data()), &size,
                                  reinterpret_cast<std::uint8_t*>(out.data())) == BROTLI_TRUE);
    out.resize(size);
    return out;
}

// `total` zero bytes, gzip-compressed without ever holding them all.
std::string gzipZeros(std::size_t total)
{
    z_stream z{};
    REQUIRE(deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) == Z_OK);
    std::string zeros(1 << 20, '\0');
    std::string out;
    std::vector<unsigned char> block(1 << 16);
    for (std::size_t done = 0; done <= total;) {
        std::size_t n = std::min(zeros.size(), total - done);
        int flush = done + n == total ? Z_FINISH : Z_NO_FLUSH;
        z.next_in = reinterpret_cast<Bytef*>(zeros.data());
        z.avail_in = static_cast<uInt>(n);
        int rc;
        do {
            z.next_out = block.data();
            z.avail_out = static_cast<uInt>(block.size());
            rc = deflate(&z, flush);
            out.append(reinterpret_cast<char*>(block.data()), block.size() - z.avail_out);
        } while (z.avail_out == 0);
        done += n;
        if (rc == Z_STREAM_END)
            break;
    }
    deflateEnd(&z);
    return out;
}

std::string sampleJson()
{
    std::string s = R"({"model":"claude","messages":[)";
    for (int i = 0; i < 200; ++i)
        s += R"({"role":"user","content":"instance i-0123456789abcdef0 in vpc-0a1b2c3d number )" +
             std::to_string(i) + "\"},";
    s += "{}]}";
    return s;
}

long maxRssKiB()
{
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return u.ru_maxrss;
}

} // namespace

TEST_CASE("gzip, zlib deflate, raw deflate and br bodies decode to the original")
{
    const std::string json = sampleJson();
    struct Case {
        std::string coding;
        std::string encoded;
    };
    for (const Case& c : {Case{"gzip", gzip(json)}, Case{"x-gzip", gzip(json)}, Case{"deflate", deflateWith(json, 15)},
                          Case{"deflate", deflateWith(json, -15)}, Case{"br", brotli(json)},
                          Case{"GZIP", gzip(json)}, Case{"identity", json}, Case{"", json}}) {
        INFO("coding: " << c.coding);
        auto decoded = decodeBody(c.coding, c.encoded);
        REQUIRE(decoded.ok());
        CHECK(*decoded == json);
    }
}

TEST_CASE("Stacked codings are decoded in reverse order of application")
{
    const std::string json = sampleJson();
    auto decoded = decodeBody("gzip, br", brotli(gzip(json)));
    REQUIRE(decoded.ok());
    CHECK(*decoded == json);
    decoded = decodeBody("deflate, identity, gzip", gzip(deflateWith(json, 15)));
    REQUIRE(decoded.ok());
    CHECK(*decoded == json);
}

TEST_CASE("Decoding fed one byte at a time gives the same body")
{
    const std::string json = sampleJson();
    for (auto [coding, encoded] : std::vector<std::pair<std::string, std::string>>{
             {"gzip", gzip(json)}, {"deflate", deflateWith(json, 15)}, {"deflate", deflateWith(json, -15)},
             {"br", brotli(json)}}) {
        INFO("coding: " << coding);
        auto decoder = ContentDecoder::create(coding);
        REQUIRE(decoder.ok());
        std::string out;
        for (char c : encoded)
            REQUIRE(decoder->feed(std::string_view(&c, 1), out).ok());
        REQUIRE(decoder->finish(out).ok());
        CHECK(out == json);
        CHECK(decoder->encodedBytes() == encoded.size());
        CHECK(decoder->decodedBytes() == json.size());
    }
}

TEST_CASE("Concatenated gzip members decode as one body")
{
    auto decoded = decodeBody("gzip", gzip("first, ") + gzip("second"));
    REQUIRE(decoded.ok());
    CHECK(*decoded == "first, second");
}

TEST_CASE("A gzip bomb of 100 MB of zeros is stopped by the ratio guard after about a megabyte")
{
    const std::string bomb = gzipZeros(100u * 1024 * 1024);
    REQUIRE(bomb.size() < 200 * 1024);
    auto decoder = ContentDecoder::create("gzip");
    REQUIRE(decoder.ok());
    std::string out;
    auto fed = decoder->feed(bomb, out);
    REQUIRE_FALSE(fed.ok());
    CHECK(fed.error().failure == DecodeFailure::RatioExceeded);
    CHECK_THAT(fed.error().message, Catch::Contains("ratio above 200:1"));
    CHECK(out.size() <= 1024 * 1024 + 16 * 1024);
    HttpError e = toHttpError(fed.error(), Side::Downstream);
    CHECK(e.status == 413);
    CHECK(e.kind == "body_too_large");
}

TEST_CASE("Without the ratio guard the size cap stops a bomb with bounded memory")
{
    const std::string bomb = gzipZeros(100u * 1024 * 1024);
    DecodeLimits limits;
    limits.maxRatio = 0;
    limits.maxOutput = 8 * 1024 * 1024;
    long before = maxRssKiB();
    auto decoded = decodeBody("gzip", bomb, limits);
    long after = maxRssKiB();
    REQUIRE_FALSE(decoded.ok());
    CHECK(decoded.error().failure == DecodeFailure::TooLarge);
    CHECK_THAT(decoded.error().message, Catch::Contains("more than 8388608 bytes"));
    CHECK(after - before < 40 * 1024);
}

TEST_CASE("A stacked bomb is stopped at the inner stage too")
{
    DecodeLimits limits;
    limits.maxRatio = 0;
    limits.maxOutput = 4 * 1024 * 1024;
    auto decoded = decodeBody("gzip, gzip", gzip(gzipZeros(64u * 1024 * 1024)), limits);
    REQUIRE_FALSE(decoded.ok());
    CHECK(decoded.error().failure == DecodeFailure::TooLarge);
}

TEST_CASE("Truncated, corrupt and trailing-garbage bodies are refused")
{
    const std::string json = sampleJson();
    const std::string gz = gzip(json);

    auto r = decodeBody("gzip", gz.substr(0, gz.size() / 2));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().failure == DecodeFailure::Truncated);
    CHECK(toHttpError(r.error(), Side::Downstream).status == 400);

    r = decodeBody("gzip", gz.substr(0, gz.size() - 4)); // no ISIZE trailer
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().failure == DecodeFailure::Truncated);

    std::string corrupt = gz;
    corrupt[20] = static_cast<char>(corrupt[20] ^ 0x55);
    corrupt[21] = static_cast<char>(corrupt[21] ^ 0x55);
    r = decodeBody("gzip", corrupt);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().failure == DecodeFailure::Corrupt);

    r = decodeBody("gzip", "this is not gzip at all");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().failure == DecodeFailure::Corrupt);

    r = decodeBody("gzip", gz + "garbage");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().failure == DecodeFailure::Corrupt);

    r = decodeBody("deflate", deflateWith(json, 15) + "x");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().failure == DecodeFailure::Corrupt);

    r = decodeBody("deflate", "x");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().failure == DecodeFailure::Truncated);
}

TEST_CASE("Bad and truncated brotli is refused")
{
    const std::string br = brotli(sampleJson());
    auto r = decodeBody("br", "\xff\xff\xff\xff not brotli");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().failure == DecodeFailure::Corrupt);
    CHECK_THAT(r.error().message, Catch::StartsWith("invalid br data"));

    r = decodeBody("br", br.substr(0, br.size() / 2));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().failure == DecodeFailure::Truncated);

    r = decodeBody("br", br + "tail");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().failure == DecodeFailure::Corrupt);
}

TEST_CASE("Unknown codings fail closed with 415 naming the coding")
{
    auto r = decodeBody("zstd", "anything");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().failure == DecodeFailure::Unsupported);
    CHECK_THAT(r.error().message, Catch::Contains("zstd"));
    HttpError e = toHttpError(r.error(), Side::Downstream);
    CHECK(e.status == 415);
    CHECK(e.kind == "unsupported_encoding");

    CHECK_FALSE(ContentDecoder::create("gzip, compress").ok());
    CHECK_FALSE(ContentDecoder::create("gzip, gzip, gzip, gzip").ok());
    CHECK_FALSE(isSupportedContentEncoding("br, zstd"));
    CHECK(isSupportedContentEncoding("gzip, br"));
    CHECK(isSupportedContentEncoding(""));

    r = decodeBody("x\"<script>", "anything");
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.error().message, !Catch::Contains("script"));
}

TEST_CASE("Decoding errors from upstream bodies map to 502, and no message echoes body content")
{
    const std::string secret = "AKIAIOSFODNN7EXAMPLE";
    std::string gz = gzip("{\"key\":\"" + secret + "\"}");
    for (const std::string& body : {gz.substr(0, gz.size() - 3), secret, gz + secret}) {
        auto r = decodeBody("gzip", body);
        REQUIRE_FALSE(r.ok());
        CHECK_THAT(r.error().message, !Catch::Contains(secret));
        HttpError e = toHttpError(r.error(), Side::Upstream);
        CHECK(e.status == 502);
        CHECK(e.side == Side::Upstream);
    }
}

TEST_CASE("An empty body decodes to nothing under any coding")
{
    for (std::string coding : {"gzip", "deflate", "br"}) {
        auto r = decodeBody(coding, "");
        REQUIRE(r.ok());
        CHECK(r->empty());
    }
}

TEST_CASE("Identity bodies are still held to the size cap")
{
    DecodeLimits limits;
    limits.maxOutput = 4;
    auto r = decodeBody("identity", "hello", limits);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().failure == DecodeFailure::TooLarge);
}
