#include "http/parser.h"

// The parsers drive Boost.Beast's basic_parser, which tokenizes start lines,
// fields and chunk lines and slices bodies. Beast is lenient where a proxy
// cannot be, so veil checks on top of it:
//
//   Beast accepts                               veil
//   ------------------------------------------  ---------------------------------
//   obs-fold (joins continuation lines)         400: line scan before Beast
//   duplicate Content-Length with equal values  400 (differing values: Beast, 400)
//   Content-Length as a list ("5, 5")           400
//   Transfer-Encoding without final chunked     400 (Beast: no body → smuggling)
//     ("xchunked", "gzip", "identity")
//   "chunked, chunked" (Beast: no body)         400
//   other codings before chunked               501 request / 502 response
//   TE (not chunked) followed by Content-Length 400 (Beast frames by the CL)
//   Transfer-Encoding in HTTP/1.0               400 (RFC 9112 §6.1)
//   non-ASCII bytes in request-target           400
//   any request-target shape                    400 unless origin/absolute/
//                                               authority(CONNECT)/asterisk(OPTIONS)
//   HTTP/1.1 without Host, repeated Host        400 (RFC 9112 §3.2)
//   CTLs inside quoted chunk extensions         400
//   chunk lines and trailers of any length      400 / 431 (Limits)
//   status codes 000-099, 600-999; 101          502
//   Transfer-Encoding on 1xx/204 responses      502
//   any Expect value                            417 unless 100-continue
//
// Beast's own checks kept: token method and field names, CTL-free values and
// reason phrase, HTTP/1.0 and 1.1 only, chunk-size hex with overflow check,
// chunk-ext grammar, CRLF after chunk data, differing Content-Length values,
// CL+TE when chunked came first, CL/TE in trailers.
//
// Beast is only ever shown complete structures: the whole head, a whole
// chunk-size line, the last chunk with its whole trailer section. veil's own
// line scan finds their ends first. This keeps Beast off its partial-input
// paths (one of which asserts on a legal split of "0\r\n\r\n") and makes the
// outcome independent of how the bytes were split.

// GCC 12 with -fsanitize reports boost::optional storage inside Beast's
// do_field as maybe-uninitialized (a known false positive of optional's
// aligned storage); the templates are instantiated here, so the system-header
// exemption does not cover it.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/system/errc.hpp>

#include <algorithm>
#include <cstring>
#include <limits>
#include <type_traits>

namespace veil::http {

namespace beasthttp = boost::beast::http;
using boost::beast::error_code;
using BeastView = boost::beast::string_view;

std::string_view parseEventName(ParseEvent event)
{
    switch (event) {
    case ParseEvent::NeedMore: return "need-more";
    case ParseEvent::Head: return "head";
    case ParseEvent::Body: return "body";
    case ParseEvent::End: return "end";
    case ParseEvent::Closed: return "closed";
    case ParseEvent::Error: return "error";
    }
    return "error";
}

namespace detail {

namespace {

constexpr std::size_t npos = std::string_view::npos;

std::string_view view(BeastView v)
{
    return {v.data(), v.size()};
}

bool isHex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool allDigits(std::string_view s)
{
    if (s.empty())
        return false;
    for (char c : s)
        if (c < '0' || c > '9')
            return false;
    return true;
}

// uri-host [ ":" port ] (RFC 3986 reg-name / IP-literal characters); no
// userinfo, no whitespace, no path.
bool isHostValue(std::string_view s)
{
    for (char c : s) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  std::string_view("-._~!$&'()*+,;=%:[]").find(c) != npos;
        if (!ok)
            return false;
    }
    return true;
}

bool startsWithNoCase(std::string_view s, std::string_view prefix)
{
    return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

// Where a section of lines ends, found before Beast sees it. One scanner
// serves the head (start line + fields) and a trailer section (fields only);
// it resumes where the previous call stopped, so a head arriving byte by byte
// costs linear time.
struct LineScan {
    std::size_t pos = 0;          // next byte to examine
    std::size_t lineStart = 0;    // first byte of the current line
    std::size_t sectionStart = 0; // first byte of the field section
    bool startLineDone = true;    // false while scanning a head's start line
    bool methodDone = false;      // request start line: the method's SP was seen
    std::size_t fieldLines = 0;

    void reset(std::size_t start, bool head)
    {
        pos = lineStart = sectionStart = start;
        startLineDone = !head;
        methodDone = false;
        fieldLines = 0;
    }
};

struct ScanOutcome {
    enum Kind { NeedMore, Complete, Failed } kind = NeedMore;
    std::size_t end = 0; // Complete: one past the final CRLF
    int status = 400;    // Failed
    std::string message; // Failed
};

ScanOutcome scanFailed(int status, std::string message)
{
    ScanOutcome o;
    o.kind = ScanOutcome::Failed;
    o.status = status;
    o.message = std::move(message);
    return o;
}

// Garbage (TLS records, binary) is refused at its first byte rather than
// after a whole start line's worth of it: a request line starts with a token
// method, a status line with "HTTP/". Beast checks the rest once the head is
// complete.
bool startLinePrefixOk(std::string_view buf, LineScan& s, std::size_t i, bool request)
{
    if (request) {
        if (s.methodDone)
            return true;
        if (buf[i] == ' ')
            s.methodDone = true;
        return buf[i] == ' ' || isTokenChar(buf[i]);
    }
    static constexpr std::string_view kHttp = "HTTP/";
    return i - s.lineStart >= kHttp.size() || buf[i] == kHttp[i - s.lineStart];
}

bool isLineEnd(char c)
{
    return c == '\r' || c == '\n';
}

ScanOutcome scanLines(std::string_view buf, LineScan& s, const Limits& limits, bool trailers,
                      bool request = false)
{
    const std::string_view what = trailers ? "trailer section" : "header section";
    for (std::size_t i = s.pos; i < buf.size(); ++i) {
        const char c = buf[i];
        if (i == s.lineStart && s.startLineDone && (c == ' ' || c == '\t')) {
            if (i == s.sectionStart && !trailers)
                return scanFailed(400, "whitespace between the start line and the first header field");
            return scanFailed(400, "obsolete line folding (obs-fold) in the " + std::string(what));
        }
        if (c == '\r') {
            if (i + 1 == buf.size()) {
                s.pos = i; // decide once the next byte is here
                return {};
            }
            if (buf[i + 1] != '\n')
                return scanFailed(400, "bare CR in the " + std::string(what));
            continue;
        }
        if (c != '\n') {
            if (!s.startLineDone) {
                if (!startLinePrefixOk(buf, s, i, request))
                    return scanFailed(400, request ? "invalid request method" : "invalid HTTP version");
                if (i - s.lineStart >= limits.maxStartLine)
                    return scanFailed(414, "start line longer than " +
                                               std::to_string(limits.maxStartLine) + " bytes");
            } else if (i - s.sectionStart >= limits.maxHeaderBytes) {
                return scanFailed(431, std::string(what) + " larger than " +
                                           std::to_string(limits.maxHeaderBytes) + " bytes");
            }
            // Once a line's prefix checks are behind (a field line's first
            // byte; the method's SP; "HTTP/"), the only thing an ordinary
            // byte can do is pass the size limit: jump to the next CR or LF,
            // failing exactly where the byte-by-byte loop would.
            bool settled = s.startLineDone || (request ? s.methodDone : i + 1 - s.lineStart >= 5);
            if (settled) {
                std::size_t next = i + 1;
                while (next < buf.size() && !isLineEnd(buf[next]))
                    ++next;
                std::size_t limit = s.startLineDone ? s.sectionStart + limits.maxHeaderBytes
                                                    : s.lineStart + limits.maxStartLine;
                if (std::max(i + 1, limit) < next) {
                    if (!s.startLineDone)
                        return scanFailed(414, "start line longer than " +
                                                   std::to_string(limits.maxStartLine) + " bytes");
                    return scanFailed(431, std::string(what) + " larger than " +
                                               std::to_string(limits.maxHeaderBytes) + " bytes");
                }
                i = next - 1; // the loop's ++i lands on the CR/LF (or the end)
            }
            continue;
        }
        if (i == 0 || buf[i - 1] != '\r')
            return scanFailed(400, "bare LF line terminator in the " + std::string(what));
        if (!s.startLineDone) {
            s.startLineDone = true;
            s.sectionStart = i + 1;
        } else if (i - 1 == s.lineStart) {
            if (i + 1 - s.sectionStart > limits.maxHeaderBytes)
                return scanFailed(431, std::string(what) + " larger than " +
                                           std::to_string(limits.maxHeaderBytes) + " bytes");
            ScanOutcome done;
            done.kind = ScanOutcome::Complete;
            done.end = i + 1;
            return done;
        } else if (++s.fieldLines > limits.maxHeaderCount) {
            return scanFailed(431, "more than " + std::to_string(limits.maxHeaderCount) +
                                       " fields in the " + std::string(what));
        }
        s.lineStart = i + 1;
    }
    s.pos = buf.size();
    return {};
}

} // namespace

enum class Phase : unsigned char {
    Idle,        // between messages
    Head,        // start line and fields
    Body,        // Content-Length body
    ChunkHeader, // expecting a chunk-size line (or the last chunk + trailers)
    ChunkData,   // inside chunk-data
    UntilClose,  // response body delimited by the connection close
    Complete,    // message complete, End not reported yet
    Dead,        // after an error
};

template <bool isRequest>
class Codec;

// The Beast side: forwards each callback to the codec, which decides.
template <bool isRequest>
class Driver final : public beasthttp::basic_parser<isRequest> {
public:
    explicit Driver(Codec<isRequest>& codec) : codec_(codec) {}

private:
    static void check(bool ok, error_code& ec)
    {
        // Any error other than need_more stops Beast; the codec holds the real one.
        if (!ok)
            ec = boost::system::errc::make_error_code(boost::system::errc::protocol_error);
    }

    void on_request_impl(beasthttp::verb, BeastView method, BeastView target, int version,
                         error_code& ec) override
    {
        if constexpr (isRequest)
            check(codec_.onRequestLine(view(method), view(target), version), ec);
    }
    void on_response_impl(int code, BeastView reason, int version, error_code& ec) override
    {
        if constexpr (!isRequest)
            check(codec_.onStatusLine(code, view(reason), version), ec);
    }
    void on_field_impl(beasthttp::field, BeastView name, BeastView value, error_code& ec) override
    {
        check(codec_.onField(view(name), view(value)), ec);
    }
    void on_header_impl(error_code& ec) override { check(codec_.onHeaderDone(), ec); }
    void on_body_init_impl(boost::optional<std::uint64_t> const&, error_code&) override {}
    std::size_t on_body_impl(BeastView body, error_code& ec) override
    {
        check(codec_.onBody(view(body)), ec);
        return body.size();
    }
    void on_chunk_header_impl(std::uint64_t size, BeastView extensions, error_code& ec) override
    {
        check(codec_.onChunkHeader(size, view(extensions)), ec);
    }
    std::size_t on_chunk_body_impl(std::uint64_t, BeastView body, error_code& ec) override
    {
        check(codec_.onChunkBody(view(body)), ec);
        return body.size();
    }
    void on_finish_impl(error_code&) override { codec_.onFinish(); }

    Codec<isRequest>& codec_;
};

template <bool isRequest>
class Codec {
public:
    using Head = std::conditional_t<isRequest, RequestHead, ResponseHead>;

    explicit Codec(Limits limits) : limits_(std::move(limits)) {}
    Codec(const Codec&) = delete;
    Codec& operator=(const Codec&) = delete;

    ParseResult parse(std::string_view data);
    ParseResult finish();
    bool setBodyLimit(std::optional<std::uint64_t> limit);

    Head head_;
    HeaderList trailers_;
    HttpError error_;
    Phase phase_ = Phase::Idle;
    std::uint64_t bodyBytes_ = 0;
    bool headRequest_ = false; // responses only

    // Beast callbacks; false = error_ is set.
    bool onRequestLine(std::string_view method, std::string_view target, int version);
    bool onStatusLine(int status, std::string_view reason, int version);
    bool onField(std::string_view name, std::string_view value);
    bool onHeaderDone();
    bool onBody(std::string_view body);
    bool onChunkHeader(std::uint64_t size, std::string_view extensions);
    bool onChunkBody(std::string_view body);
    void onFinish() { complete_ = true; }

private:
    // The status veil answers a downstream error with; upstream errors are 502.
    bool fail(int status, std::string message);
    ParseResult failed(int status, std::string message)
    {
        fail(status, std::move(message));
        return {ParseEvent::Error, 0, {}};
    }
    ParseResult failedFromBeast(const error_code& ec, std::string_view line);
    ParseResult endMessage();
    void startMessage();
    void enterChunkHeader()
    {
        phase_ = Phase::ChunkHeader;
        trailerScanActive_ = false;
    }
    // Feeds exactly `bytes` to Beast; returns consumed or sets error_.
    std::size_t put(std::string_view bytes, error_code& ec);

    ParseResult parseHead(std::string_view rem, std::size_t consumed);
    ParseResult parseChunkHeader(std::string_view rem, std::size_t& consumed, bool& progressed);
    ParseResult deliver(std::size_t consumed);

    bool validateTransferEncoding();
    bool exceedsBodyLimit(std::uint64_t total) const { return bodyLimit_ && total > *bodyLimit_; }
    std::string bodyLimitMessage() const
    {
        return "body larger than the " + std::to_string(*bodyLimit_) + "-byte limit";
    }

    Limits limits_;
    std::optional<Driver<isRequest>> driver_;
    bool ownError_ = false;
    bool complete_ = false;
    bool headReady_ = false;
    std::string_view pendingBody_;
    LineScan headScan_;
    LineScan trailerScan_;
    bool trailerScanActive_ = false;
    std::size_t emptyLines_ = 0;

    // Per message.
    std::size_t contentLengthFields_ = 0;
    std::uint64_t contentLength_ = 0;
    std::size_t transferEncodingFields_ = 0;
    std::size_t hostFields_ = 0;
    bool inTrailers_ = false;
    bool expectCrlf_ = false; // a chunk's data ended; its CRLF comes next
    std::uint64_t chunkRemaining_ = 0;
    std::uint64_t declaredChunkBytes_ = 0;
    std::size_t chunkExtensionBytes_ = 0;
    std::optional<std::uint64_t> bodyLimit_;
};

template <bool isRequest>
bool Codec<isRequest>::fail(int status, std::string message)
{
    ownError_ = true;
    phase_ = Phase::Dead;
    if constexpr (isRequest) {
        error_ = HttpError{status, kindForStatus(status), std::move(message), Side::Downstream};
    } else {
        (void)status;
        error_ = HttpError{502, kindForStatus(502), "invalid upstream response: " + message,
                           Side::Upstream};
    }
    return false;
}

template <bool isRequest>
void Codec<isRequest>::startMessage()
{
    head_.clear();
    trailers_.clear();
    driver_.emplace(*this);
    // Limits are veil's (the line scan); Beast's must never bind first.
    driver_->header_limit(static_cast<std::uint32_t>(std::min<std::uint64_t>(
        limits_.maxStartLine + limits_.maxHeaderBytes + 16, std::numeric_limits<std::uint32_t>::max())));
    driver_->body_limit(boost::none);
    driver_->eager(false);
    if constexpr (!isRequest)
        driver_->skip(headRequest_);
    ownError_ = complete_ = headReady_ = false;
    pendingBody_ = {};
    headScan_.reset(0, true);
    trailerScanActive_ = false;
    contentLengthFields_ = transferEncodingFields_ = hostFields_ = 0;
    contentLength_ = 0;
    inTrailers_ = expectCrlf_ = false;
    chunkRemaining_ = declaredChunkBytes_ = 0;
    chunkExtensionBytes_ = 0;
    bodyBytes_ = 0;
    bodyLimit_ = limits_.maxBody;
    phase_ = Phase::Head;
}

template <bool isRequest>
std::size_t Codec<isRequest>::put(std::string_view bytes, error_code& ec)
{
    return driver_->put(boost::asio::const_buffer(bytes.data(), bytes.size()), ec);
}

template <bool isRequest>
ParseResult Codec<isRequest>::endMessage()
{
    phase_ = Phase::Idle;
    emptyLines_ = 0;
    if constexpr (!isRequest) {
        if (!head_.interim())
            headRequest_ = false;
    }
    return {ParseEvent::End, 0, {}};
}

// Reports what the last put() produced; `consumed` counts the whole call.
template <bool isRequest>
ParseResult Codec<isRequest>::deliver(std::size_t consumed)
{
    std::string_view body = pendingBody_;
    pendingBody_ = {};
    if (complete_)
        phase_ = Phase::Complete;
    if (!body.empty())
        return {ParseEvent::Body, consumed, body};
    if (phase_ == Phase::Complete) {
        ParseResult r = endMessage();
        r.consumed = consumed;
        return r;
    }
    return {ParseEvent::NeedMore, consumed, {}};
}

template <bool isRequest>
ParseResult Codec<isRequest>::parse(std::string_view data)
{
    if (phase_ == Phase::Dead)
        return {ParseEvent::Error, 0, {}};
    if (phase_ == Phase::Complete)
        return endMessage();

    std::size_t consumed = 0;
    if (phase_ == Phase::Idle) {
        if constexpr (isRequest) {
            // RFC 9112 §2.2: ignore empty lines before a request line (some
            // clients send CRLF after a POST body). Bounded.
            while (data.size() - consumed >= 2 && data[consumed] == '\r' && data[consumed + 1] == '\n') {
                if (++emptyLines_ > limits_.maxLeadingEmptyLines)
                    return failed(400, "too many empty lines before the request line");
                consumed += 2;
            }
            if (data.size() - consumed == 1 && data[consumed] == '\r')
                return {ParseEvent::NeedMore, consumed, {}};
        }
        if (data.size() == consumed)
            return {ParseEvent::NeedMore, consumed, {}};
        startMessage();
    }

    for (;;) {
        std::string_view rem = data.substr(consumed);
        switch (phase_) {
        case Phase::Head:
            return parseHead(rem, consumed);
        case Phase::ChunkHeader: {
            bool progressed = false;
            ParseResult r = parseChunkHeader(rem, consumed, progressed);
            if (!progressed)
                return r;
            if (phase_ == Phase::ChunkData)
                continue; // the chunk's data may already be here
            return r;
        }
        case Phase::Body:
        case Phase::ChunkData:
        case Phase::UntilClose: {
            if (rem.empty())
                return {ParseEvent::NeedMore, consumed, {}};
            error_code ec;
            std::size_t n = put(rem, ec);
            if (ec)
                return ownError_ ? ParseResult{ParseEvent::Error, 0, {}} : failedFromBeast(ec, {});
            if (n == 0)
                return {ParseEvent::NeedMore, consumed, {}};
            return deliver(consumed + n);
        }
        case Phase::Idle:
        case Phase::Complete:
        case Phase::Dead:
            break;
        }
        return failed(400, "internal parser state error");
    }
}

template <bool isRequest>
ParseResult Codec<isRequest>::parseHead(std::string_view rem, std::size_t consumed)
{
    ScanOutcome scan = scanLines(rem, headScan_, limits_, false, isRequest);
    if (scan.kind == ScanOutcome::NeedMore)
        return {ParseEvent::NeedMore, consumed, {}};
    if (scan.kind == ScanOutcome::Failed)
        return failed(scan.status, std::move(scan.message));

    std::string_view headBytes = rem.substr(0, scan.end);
    error_code ec;
    std::size_t n = put(headBytes, ec);
    if (ec) {
        if (ownError_)
            return {ParseEvent::Error, 0, {}};
        // Beast stops at the start of the line it rejects.
        std::string_view line = headBytes.substr(std::min(n, headBytes.size()));
        return failedFromBeast(ec, line.substr(0, line.find('\n')));
    }
    if (n != headBytes.size() || !headReady_)
        return failed(400, "malformed message head");
    if (complete_)
        phase_ = Phase::Complete;
    return {ParseEvent::Head, consumed + n, {}};
}

template <bool isRequest>
ParseResult Codec<isRequest>::parseChunkHeader(std::string_view rem, std::size_t& consumed,
                                               bool& progressed)
{
    std::size_t start = 0;
    if (expectCrlf_) {
        if (!rem.empty() && rem[0] != '\r')
            return failed(400, "chunk data not followed by CRLF");
        if (rem.size() < 2)
            return {ParseEvent::NeedMore, consumed, {}};
        if (rem[1] != '\n')
            return failed(400, "chunk data not followed by CRLF");
        start = 2;
    }
    std::size_t window = std::min(rem.size(), start + limits_.maxChunkLine + 2);
    const void* lfp = std::memchr(rem.data() + start, '\n', window - start);
    if (lfp == nullptr) {
        if (rem.size() >= start + limits_.maxChunkLine + 2)
            return failed(400, "chunk-size line longer than " + std::to_string(limits_.maxChunkLine) +
                                   " bytes");
        return {ParseEvent::NeedMore, consumed, {}};
    }
    std::size_t lf = static_cast<std::size_t>(static_cast<const char*>(lfp) - rem.data());
    if (lf == start || rem[lf - 1] != '\r')
        return failed(400, "bare LF line terminator in a chunk-size line");
    std::string_view line = rem.substr(start, lf - 1 - start);
    if (line.find('\r') != npos)
        return failed(400, "bare CR in a chunk-size line");

    std::size_t digits = 0;
    while (digits < line.size() && isHex(line[digits]))
        ++digits;
    bool last = digits > 0 && line.find_first_not_of('0') >= digits;

    std::size_t end = lf + 1;
    if (last) {
        if (!trailerScanActive_) {
            trailerScan_.reset(lf + 1, false);
            trailerScanActive_ = true;
        }
        ScanOutcome scan = scanLines(rem, trailerScan_, limits_, true);
        if (scan.kind == ScanOutcome::NeedMore)
            return {ParseEvent::NeedMore, consumed, {}};
        if (scan.kind == ScanOutcome::Failed)
            return failed(scan.status, std::move(scan.message));
        end = scan.end;
    }

    std::string_view structure = rem.substr(0, end);
    error_code ec;
    std::size_t n = put(structure, ec);
    if (ec) {
        if (ownError_)
            return {ParseEvent::Error, 0, {}};
        std::string_view failing = rem.substr(start, lf - 1 - start);
        if (last && n > 0) // Beast got past the chunk line: a trailer failed
            failing = rem.substr(std::min(n, rem.size()));
        return failedFromBeast(ec, failing.substr(0, failing.find('\n')));
    }
    if (n != structure.size())
        return failed(400, "malformed chunk header");
    consumed += n;
    progressed = true;
    if (last) {
        if (!complete_)
            return failed(400, "malformed last chunk");
        ParseResult r = endMessage();
        r.consumed = consumed;
        return r;
    }
    return {ParseEvent::NeedMore, consumed, {}};
}


namespace {
constexpr const char* kClTe = "Content-Length and Transfer-Encoding together";

// "HTTP/" DIGIT "." DIGIT: well formed, so a failure is an unsupported
// version (505), not a malformed one (400).
bool isVersionToken(std::string_view v)
{
    return v.size() == 8 && v.substr(0, 5) == "HTTP/" && v[5] >= '0' && v[5] <= '9' && v[6] == '.' &&
           v[7] >= '0' && v[7] <= '9';
}
} // namespace

template <bool isRequest>
bool Codec<isRequest>::onRequestLine(std::string_view method, std::string_view target, int version)
{
    head_.method.assign(method);
    head_.target.assign(target);
    head_.version = version;
    for (char c : target) {
        if (static_cast<unsigned char>(c) >= 0x80)
            return fail(400, "non-ASCII byte in the request-target");
        if (c == '#')
            return fail(400, "fragment in the request-target");
    }
    if (method == "CONNECT") {
        if (!isHostValue(target))
            return fail(400, "CONNECT request-target is not host:port");
    } else if (target == "*") {
        if (method != "OPTIONS")
            return fail(400, "asterisk-form request-target on a method other than OPTIONS");
    } else if (target.front() != '/' && !startsWithNoCase(target, "http://") &&
               !startsWithNoCase(target, "https://")) {
        return fail(400, "request-target is not in origin, absolute, authority or asterisk form");
    }
    return true;
}

template <bool isRequest>
bool Codec<isRequest>::onStatusLine(int status, std::string_view reason, int version)
{
    if (status < 100 || status > 599)
        return fail(502, "status code out of range");
    if (status == 101)
        return fail(502, "101 Switching Protocols (upgrades are not relayed)");
    if constexpr (!isRequest) {
        head_.status = status;
        head_.reason.assign(reason);
        head_.version = version;
    }
    return true;
}

template <bool isRequest>
bool Codec<isRequest>::onField(std::string_view name, std::string_view value)
{
    if (inTrailers_) {
        if (!trailers_.add(name, value))
            return fail(400, "invalid trailer field");
        return true;
    }
    if (!head_.headers.add(name, value))
        return fail(400, "invalid header field");
    if (iequals(name, "content-length")) {
        if (transferEncodingFields_ > 0)
            return fail(400, kClTe);
        if (++contentLengthFields_ > 1)
            return fail(400, "duplicate Content-Length");
        if (!allDigits(value))
            return fail(400, "invalid Content-Length");
        std::uint64_t v = 0;
        for (char c : value) {
            auto d = static_cast<std::uint64_t>(c - '0');
            if (v > (std::numeric_limits<std::uint64_t>::max() - d) / 10)
                return fail(400, "invalid Content-Length");
            v = v * 10 + d;
        }
        contentLength_ = v;
    } else if (iequals(name, "transfer-encoding")) {
        if (contentLengthFields_ > 0)
            return fail(400, kClTe);
        ++transferEncodingFields_;
    } else if (isRequest && iequals(name, "host")) {
        if (++hostFields_ > 1)
            return fail(400, "duplicate Host");
        if (!isHostValue(value))
            return fail(400, "invalid Host");
    }
    return true;
}

template <bool isRequest>
bool Codec<isRequest>::validateTransferEncoding()
{
    if (head_.version < 11)
        return fail(400, "Transfer-Encoding in an HTTP/1.0 message");
    if constexpr (!isRequest) {
        if (head_.interim() || head_.status == 204)
            return fail(502, "Transfer-Encoding in a 1xx or 204 response");
    }
    std::size_t elements = 0, chunkedCount = 0;
    bool lastChunked = false, invalid = false, other = false;
    for (HeaderList::Field f : head_.headers) {
        if (!iequals(f.name, "transfer-encoding"))
            continue;
        forEachListElement(f.value, [&](std::string_view e) {
            ++elements;
            if (!isToken(e))
                invalid = true;
            lastChunked = iequals(e, "chunked");
            if (lastChunked)
                ++chunkedCount;
            else
                other = true;
            return true;
        });
    }
    if (elements == 0)
        return fail(400, "empty Transfer-Encoding");
    if (invalid)
        return fail(400, "invalid transfer coding in Transfer-Encoding");
    if (chunkedCount > 1)
        return fail(400, "chunked applied more than once");
    if (!lastChunked)
        return fail(400, "Transfer-Encoding without chunked as the final coding");
    if (other)
        return fail(501, "transfer coding other than chunked");
    return true;
}

template <bool isRequest>
bool Codec<isRequest>::onHeaderDone()
{
    const bool http11 = head_.version >= 11;
    const bool chunked = transferEncodingFields_ > 0;
    if (chunked && !validateTransferEncoding())
        return false;
    // Beast must frame the body the way veil decided.
    if (chunked != driver_->chunked())
        return fail(400, "inconsistent message framing");

    const HeaderList& h = head_.headers;
    const bool close = h.hasToken("connection", "close");
    head_.keepAlive = http11 ? !close : (h.hasToken("connection", "keep-alive") && !close);

    if constexpr (isRequest) {
        if (http11 && hostFields_ == 0)
            return fail(400, "HTTP/1.1 request without Host");
        bool expectContinue = false, unknownExpectation = false;
        for (HeaderList::Field f : h) {
            if (!iequals(f.name, "expect"))
                continue;
            forEachListElement(f.value, [&](std::string_view e) {
                if (iequals(e, "100-continue"))
                    expectContinue = true;
                else
                    unknownExpectation = true;
                return true;
            });
        }
        if (unknownExpectation)
            return fail(417, "unsupported expectation in Expect");
        // RFC 9110 §10.1.1: ignore 100-continue from an HTTP/1.0 client.
        head_.expectContinue = expectContinue && http11;
        head_.upgrade = h.contains("upgrade") && h.hasToken("connection", "upgrade");

        if (chunked) {
            head_.framing = Framing::Chunked;
            enterChunkHeader();
        } else if (contentLengthFields_ > 0) {
            head_.framing = Framing::ContentLength;
            head_.contentLength = contentLength_;
            if (exceedsBodyLimit(contentLength_))
                return fail(413, bodyLimitMessage());
            if (contentLength_ > 0)
                phase_ = Phase::Body;
        } else {
            head_.framing = Framing::None;
        }
    } else {
        if (contentLengthFields_ > 0)
            head_.contentLength = contentLength_;
        const bool bodiless =
            headRequest_ || head_.interim() || head_.status == 204 || head_.status == 304;
        if (bodiless) {
            head_.framing = Framing::None;
        } else if (chunked) {
            head_.framing = Framing::Chunked;
            enterChunkHeader();
        } else if (contentLengthFields_ > 0) {
            head_.framing = Framing::ContentLength;
            if (exceedsBodyLimit(contentLength_))
                return fail(502, bodyLimitMessage());
            if (contentLength_ > 0)
                phase_ = Phase::Body;
        } else {
            head_.framing = Framing::UntilClose;
            head_.keepAlive = false;
            phase_ = Phase::UntilClose;
        }
    }
    headReady_ = true;
    return true;
}

template <bool isRequest>
bool Codec<isRequest>::onBody(std::string_view body)
{
    bodyBytes_ += body.size();
    if (exceedsBodyLimit(bodyBytes_))
        return fail(413, bodyLimitMessage());
    pendingBody_ = body;
    return true;
}

template <bool isRequest>
bool Codec<isRequest>::onChunkHeader(std::uint64_t size, std::string_view extensions)
{
    for (char c : extensions) {
        auto u = static_cast<unsigned char>(c);
        if ((u < 0x20 && c != '\t') || u == 0x7f)
            return fail(400, "control character in a chunk extension");
    }
    chunkExtensionBytes_ += extensions.size();
    if (chunkExtensionBytes_ > limits_.maxChunkExtensionBytes)
        return fail(400, "chunk extensions larger than " +
                             std::to_string(limits_.maxChunkExtensionBytes) + " bytes in one message");
    if (size == 0) {
        inTrailers_ = true;
        return true;
    }
    if (size > std::numeric_limits<std::uint64_t>::max() - declaredChunkBytes_)
        return fail(400, "chunk sizes overflow");
    declaredChunkBytes_ += size;
    if (exceedsBodyLimit(declaredChunkBytes_))
        return fail(413, bodyLimitMessage());
    chunkRemaining_ = size;
    expectCrlf_ = true;
    phase_ = Phase::ChunkData;
    return true;
}

template <bool isRequest>
bool Codec<isRequest>::onChunkBody(std::string_view body)
{
    pendingBody_ = body;
    bodyBytes_ += body.size();
    chunkRemaining_ -= body.size();
    if (chunkRemaining_ == 0)
        enterChunkHeader();
    return true;
}

template <bool isRequest>
ParseResult Codec<isRequest>::failedFromBeast(const error_code& ec, std::string_view line)
{
    using E = beasthttp::error;
    if (ec == E::header_limit)
        return failed(431, "header section larger than " + std::to_string(limits_.maxHeaderBytes) +
                               " bytes");
    if (ec == E::bad_method)
        return failed(400, "invalid request method");
    if (ec == E::bad_target) {
        std::size_t spaces = 0;
        for (char c : line)
            spaces += c == ' ';
        if (spaces == 1)
            return failed(400, "request line without HTTP version (HTTP/0.9 is not supported)");
        return failed(400, "invalid request-target");
    }
    if (ec == E::bad_version) {
        if constexpr (isRequest) {
            std::string_view v = line;
            if (!v.empty() && v.back() == '\r')
                v.remove_suffix(1);
            std::size_t sp = v.rfind(' ');
            v = sp == npos ? std::string_view{} : v.substr(sp + 1);
            if (line.substr(0, 15) == "PRI * HTTP/2.0\r")
                return failed(505, "HTTP/2 connection preface on an HTTP/1.1 connection");
            if (isVersionToken(v))
                return failed(505, "HTTP version not supported (only HTTP/1.0 and HTTP/1.1)");
        }
        return failed(400, "invalid HTTP version");
    }
    if (ec == E::bad_status)
        return failed(400, "invalid status code");
    if (ec == E::bad_reason)
        return failed(400, "invalid reason phrase");
    if (ec == E::bad_field)
        return failed(400, inTrailers_ ? "invalid trailer field name" : "invalid header field name");
    if (ec == E::bad_value)
        return failed(400, inTrailers_ ? "invalid trailer field value" : "invalid header field value");
    if (ec == E::bad_content_length) {
        if (inTrailers_)
            return failed(400, "Content-Length in the trailer section");
        return failed(400, transferEncodingFields_ > 0 ? kClTe : "invalid Content-Length");
    }
    if (ec == E::multiple_content_length)
        return failed(400, "differing Content-Length values");
    if (ec == E::bad_transfer_encoding) {
        if (inTrailers_)
            return failed(400, "Transfer-Encoding in the trailer section");
        return failed(400, contentLengthFields_ > 0 ? kClTe : "chunked applied more than once");
    }
    if (ec == E::bad_chunk)
        return failed(400, "invalid chunk size");
    if (ec == E::bad_chunk_extension)
        return failed(400, "invalid chunk extension");
    if (ec == E::bad_line_ending)
        return failed(400, "invalid line ending");
    if (ec == E::partial_message)
        return failed(400, "message truncated");
    return failed(400, "malformed message (" + ec.message() + ")");
}

template <bool isRequest>
ParseResult Codec<isRequest>::finish()
{
    switch (phase_) {
    case Phase::Dead:
        return {ParseEvent::Error, 0, {}};
    case Phase::Complete:
        return endMessage();
    case Phase::Idle:
        return {ParseEvent::Closed, 0, {}};
    case Phase::UntilClose: {
        error_code ec;
        driver_->put_eof(ec);
        if (ec)
            return ownError_ ? ParseResult{ParseEvent::Error, 0, {}} : failedFromBeast(ec, {});
        if (!complete_)
            return failed(400, "message truncated");
        return endMessage();
    }
    case Phase::Head:
        return failed(400, "connection closed before the message head was complete");
    case Phase::Body:
    case Phase::ChunkHeader:
    case Phase::ChunkData:
        break;
    }
    return failed(400, "connection closed in the middle of the body");
}

template <bool isRequest>
bool Codec<isRequest>::setBodyLimit(std::optional<std::uint64_t> limit)
{
    if (phase_ == Phase::Dead)
        return false;
    bodyLimit_ = limit;
    std::uint64_t declared = declaredChunkBytes_;
    if (head_.framing == Framing::ContentLength)
        declared = contentLength_;
    if (exceedsBodyLimit(declared) || exceedsBodyLimit(bodyBytes_))
        return fail(413, bodyLimitMessage());
    return true;
}

} // namespace detail

// ---- RequestParser ----

RequestParser::RequestParser(Limits limits) : codec_(std::make_unique<detail::Codec<true>>(std::move(limits))) {}
RequestParser::~RequestParser() = default;
RequestParser::RequestParser(RequestParser&&) noexcept = default;
RequestParser& RequestParser::operator=(RequestParser&&) noexcept = default;
ParseResult RequestParser::parse(std::string_view data) { return codec_->parse(data); }
ParseResult RequestParser::finish() { return codec_->finish(); }
const RequestHead& RequestParser::head() const { return codec_->head_; }
RequestHead& RequestParser::head() { return codec_->head_; }
const HeaderList& RequestParser::trailers() const { return codec_->trailers_; }
const HttpError& RequestParser::error() const { return codec_->error_; }
bool RequestParser::setBodyLimit(std::optional<std::uint64_t> limit) { return codec_->setBodyLimit(limit); }
bool RequestParser::idle() const { return codec_->phase_ == detail::Phase::Idle; }
std::uint64_t RequestParser::bodyBytes() const { return codec_->bodyBytes_; }

// ---- ResponseParser ----

ResponseParser::ResponseParser(Limits limits) : codec_(std::make_unique<detail::Codec<false>>(std::move(limits))) {}
ResponseParser::~ResponseParser() = default;
ResponseParser::ResponseParser(ResponseParser&&) noexcept = default;
ResponseParser& ResponseParser::operator=(ResponseParser&&) noexcept = default;
void ResponseParser::setHeadRequest(bool headRequest) { codec_->headRequest_ = headRequest; }
ParseResult ResponseParser::parse(std::string_view data) { return codec_->parse(data); }
ParseResult ResponseParser::finish() { return codec_->finish(); }
const ResponseHead& ResponseParser::head() const { return codec_->head_; }
ResponseHead& ResponseParser::head() { return codec_->head_; }
const HeaderList& ResponseParser::trailers() const { return codec_->trailers_; }
const HttpError& ResponseParser::error() const { return codec_->error_; }
bool ResponseParser::setBodyLimit(std::optional<std::uint64_t> limit) { return codec_->setBodyLimit(limit); }
bool ResponseParser::idle() const { return codec_->phase_ == detail::Phase::Idle; }
std::uint64_t ResponseParser::bodyBytes() const { return codec_->bodyBytes_; }

} // namespace veil::http
