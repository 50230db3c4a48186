#include "session/session.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include "http/decode.h"
#include "http/headers.h"
#include "http/serialize.h"
#include "session/log.h"
#include "session/worker.h"
#include "tls/client_hello.h"

namespace veil::session {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// Bound on bytes queued toward one side before reading from the other pauses.
constexpr std::size_t kHighWater = 256 * 1024;
// Bound on client plaintext buffered ahead of the request being served
// (pipelined requests wait here).
constexpr std::size_t kMaxPipelined = 256 * 1024;

// A fatal handshake_failure alert in a TLS 1.2 record: what a client gets
// when upstream verification fails — never a certificate from the lab CA.
constexpr char kHandshakeFailureAlert[] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28};

std::string lower(std::string_view s)
{
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

// Media type without parameters, lower case.
std::string mediaType(std::string_view contentType)
{
    auto semi = contentType.find(';');
    return lower(http::trimOws(contentType.substr(0, semi)));
}

bool isJson(const std::string& mt)
{
    return mt == "application/json" || (mt.size() > 5 && mt.compare(mt.size() - 5, 5, "+json") == 0);
}

bool isText(const std::string& mt) { return mt.rfind("text/", 0) == 0; }

// Connection, Keep-Alive, Proxy-Connection, TE, Trailer, Upgrade,
// Transfer-Encoding (case-insensitive).
bool isHopByHopName(std::string_view n)
{
    switch (n.size()) {
    case 2: return http::iequals(n, "te");
    case 7: return http::iequals(n, "trailer") || http::iequals(n, "upgrade");
    case 10: return http::iequals(n, "connection") || http::iequals(n, "keep-alive");
    case 16: return http::iequals(n, "proxy-connection");
    case 17: return http::iequals(n, "transfer-encoding");
    default: return false;
    }
}

// Fields that describe one connection, not the message (RFC 9110 §7.6.1),
// plus Transfer-Encoding, which the session re-frames itself, plus every
// field a Connection field names. One pass over the list: the Connection
// values are kept as views, which erase() leaves valid (headers.h: only
// add/set/clear invalidate them).
void stripHopByHop(http::HeaderList& h)
{
    constexpr std::size_t kMaxConnectionFields = 8;
    std::array<std::string_view, kMaxConnectionFields> connection;
    std::size_t nConnection = 0;
    for (auto f : h) {
        if (!http::iequals(f.name, "connection"))
            continue;
        if (nConnection == kMaxConnectionFields) { // absurd but legal: the general way
            std::vector<std::string> named;
            for (auto g : h)
                if (http::iequals(g.name, "connection"))
                    http::forEachListElement(g.value, [&](std::string_view e) {
                        named.emplace_back(e);
                        return true;
                    });
            for (const auto& n : named)
                h.remove(n);
            nConnection = 0;
            break;
        }
        connection[nConnection++] = f.value;
    }
    auto named = [&](std::string_view name) {
        for (std::size_t c = 0; c < nConnection; ++c)
            if (!http::forEachListElement(connection[c], [&](std::string_view e) { return !http::iequals(e, name); }))
                return true;
        return false;
    };
    for (std::size_t i = 0; i < h.size();) {
        std::string_view name = h[i].name;
        if (isHopByHopName(name) || named(name))
            h.erase(i);
        else
            ++i;
    }
}

// Accept-Encoding toward upstream: only codings veil can decode, so a
// response it must unmask never arrives in a coding it cannot read.
std::string narrowAcceptEncoding(std::optional<std::string_view> value)
{
    if (!value)
        return {};
    std::string out;
    http::forEachListElement(*value, [&](std::string_view e) {
        std::string_view coding = http::trimOws(e.substr(0, e.find(';')));
        if (http::iequals(coding, "gzip") || http::iequals(coding, "deflate") || http::iequals(coding, "br") ||
            http::iequals(coding, "identity") || http::iequals(coding, "x-gzip")) {
            out += out.empty() ? "" : ", ";
            out += e;
        }
        return true;
    });
    return out.empty() ? "identity" : out;
}

bool routeMatches(const config::MaskRoute& r, std::string_view method, std::string_view path)
{
    if (r.method != "*" && r.method != method)
        return false;
    if (!r.path.empty() && r.path.back() == '*')
        return path.substr(0, r.path.size() - 1) == std::string_view(r.path).substr(0, r.path.size() - 1);
    return path == r.path;
}

std::string_view hostWithoutPort(std::string_view host)
{
    if (!host.empty() && host.front() == '[')
        return host.substr(0, host.find(']') + 1);
    return host.substr(0, host.find(':'));
}

http::Limits requestLimits(const config::Limits& l)
{
    http::Limits h;
    h.maxStartLine = l.maxRequestLine;
    h.maxHeaderBytes = l.maxHeaderBytes;
    h.maxHeaderCount = l.maxHeaders;
    return h;
}

} // namespace

// One request/response exchange on an intercepted connection.
struct Session::Exchange {
    Clock::time_point start = Clock::now();
    std::string method;
    std::string logPath;       // masked, without query
    bool masked = false;       // on a masked route
    bool headRequest = false;
    bool requestChunked = false;
    bool requestDone = false;  // the whole request was read from the client
    bool forwarded = false;    // the request head went upstream
    Clock::time_point bodyDeadline; // timeouts.request_body after the head
    bool bodyTimerIsDeadline = false; // the armed timer is bodyDeadline, not body_idle
    std::string body;          // buffered body of a masked request
    std::string contentType;
    std::string contentEncoding;
    http::RequestHead upHead;  // the head to send upstream (masked: sent after masking)
    mask::Mapping mapping;
    mask::MaskStats stats;
    std::string blocked;       // why the body was not forwarded
    bool passedUnmaskable = false;
    // response side
    bool responseStarted = false; // a final head went to the client
    int status = 0;
    enum class DownFraming { None, Length, Chunked, Close } downFraming = DownFraming::None;
    std::optional<http::ContentDecoder> decoder;
    std::unique_ptr<mask::SseUnmasker> sse;
    std::unique_ptr<mask::TokenRestorer> restorer;
    unsigned restored = 0;
    std::uint64_t requestBytes = 0;
    std::uint64_t responseBytes = 0;
    bool closeAfter = false;
    std::string note; // extra log detail
};

Session::Session(Worker& worker, UniqueFd downstream, listener::Address client, listener::Address destination)
    : worker_(worker), down_(worker.ring(), worker.buffers(), downHandler_),
      up_(worker.ring(), worker.buffers(), upHandler_), timer_(worker.ring(), [this] {
          Batch batch(*this);
          onTimeout();
      }),
      client_(client), destination_(destination),
      requests_(requestLimits(worker.runtime().config.limits)),
      started_(Clock::now())
{
    downHandler_.s = this;
    upHandler_.s = this;
    down_.attach(std::move(downstream));
    worker_.runtime().metrics.active.add(1);
    counted_ = true;
}

Session::~Session()
{
    if (counted_)
        worker_.runtime().metrics.active.add(-1);
}

bool Session::finished() const { return phase_ == Phase::Closing && down_.idle() && up_.idle(); }

void Session::start()
{
    armTimer(worker_.runtime().config.timeouts.tlsHandshake);
    down_.resume();
}

void Session::armTimer(std::chrono::milliseconds after) { timer_.arm(after); }

// ---------------------------------------------------------------- peek

void Session::onDownData(std::string_view bytes)
{
    switch (phase_) {
    case Phase::Peek:
        peek_.append(bytes);
        peek();
        return;
    case Phase::Connect:
    case Phase::UpstreamTls:
        // The client speaks before we answer its ClientHello only if it is
        // not TLS-conformant; keep the bytes for the handshake, bounded.
        if (peek_.size() + bytes.size() > tls::kMaxPeekBytes * 2) {
            closeNow();
            return;
        }
        peek_.append(bytes);
        return;
    case Phase::DownstreamTls:
        if (!downTls_->feedCiphertext(bytes)) {
            closeNow();
            return;
        }
        pumpDownstreamHandshake();
        return;
    case Phase::Http:
        if (!downTls_->feedCiphertext(bytes)) {
            closeNow();
            return;
        }
        readDownstreamTls();
        return;
    case Phase::Splice:
        if (!upConnected_) { // the recv that was in flight when peek paused
            peek_.append(bytes);
            return;
        }
        up_.send(std::string(bytes));
        applyBackpressure();
        return;
    case Phase::Closing:
        return;
    }
}

void Session::peek()
{
    auto& rt = worker_.runtime();
    auto r = tls::peekClientHello(peek_);
    if (r.status == tls::PeekStatus::NeedMore)
        return; // bounded: peekClientHello never asks for more than kMaxPeekBytes
    down_.pause();
    const config::Target* target = nullptr;
    if (r.status == tls::PeekStatus::Tls && r.hello.sniStatus == tls::SniStatus::Valid) {
        sni_ = *r.hello.sni;
        target = rt.config.targetFor(sni_);
        if (!target && rt.config.passthrough == config::Passthrough::Reject) {
            rt.metrics.rejected.add();
            LogLine("connection_rejected").kv("client", clientText()).kv("sni", sni_).kv("reason", "not_a_target").write();
            closeNow(true);
            return;
        }
    } else if (rt.config.noSni == config::Passthrough::Reject) {
        rt.metrics.rejected.add();
        LogLine("connection_rejected")
            .kv("client", clientText())
            .kv("reason", r.status == tls::PeekStatus::Tls ? tls::toString(r.hello.sniStatus) : tls::toString(r.status))
            .write();
        closeNow(true);
        return;
    }
    if (target) {
        rt.metrics.intercepted.add();
        phase_ = Phase::Connect;
    } else {
        rt.metrics.passthrough.add();
        phase_ = Phase::Splice;
        LogLine("passthrough")
            .kv("client", clientText())
            .kv("dst", destination_.toString())
            .kv("sni", sni_.empty() ? "-" : sni_)
            .write();
    }
    connectUpstream();
}

void Session::connectUpstream()
{
    auto& rt = worker_.runtime();
    UniqueFd fd(::socket(destination_.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) {
        upstreamFailed(std::string("socket: ") + std::strerror(errno), 502);
        return;
    }
    if (rt.config.upstreamMark) {
        std::uint32_t mark = rt.config.upstreamMark;
        ::setsockopt(fd.get(), SOL_SOCKET, SO_MARK, &mark, sizeof mark);
    }
    int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    up_.attach(std::move(fd));
    up_.connect(destination_.sa(), destination_.length(), rt.config.timeouts.connect);
}

void Session::onUpConnected(int res)
{
    auto& rt = worker_.runtime();
    if (res < 0) {
        rt.metrics.upstreamConnectFail.add();
        upstreamFailed(std::string("connect ") + destination_.toString() + ": " + std::strerror(-res), 502);
        return;
    }
    upConnected_ = true;
    if (phase_ == Phase::Splice) {
        armTimer(rt.config.timeouts.idle);
        up_.send(std::move(peek_));
        peek_.clear();
        up_.resume();
        down_.resume();
        return;
    }
    startUpstreamTls();
}

// ---------------------------------------------------------------- TLS

void Session::startUpstreamTls()
{
    phase_ = Phase::UpstreamTls;
    auto ep = worker_.runtime().upstreamTls->connect(sni_);
    if (!ep) {
        upstreamFailed("upstream TLS setup: " + ep.error().message, 502);
        return;
    }
    upTls_.emplace(std::move(ep.value()));
    up_.resume();
    pumpUpstreamHandshake();
}

void Session::pumpUpstreamHandshake()
{
    auto& rt = worker_.runtime();
    tls::TlsStatus st = upTls_->handshake();
    flushUpTls();
    if (st == tls::TlsStatus::WantRead)
        return;
    if (st != tls::TlsStatus::Ok) {
        bool verify = upTls_->verifyFailure() != tls::VerifyFailure::None;
        if (verify)
            rt.metrics.upstreamVerifyFail.add();
        LogLine("upstream_tls_failed", "warn")
            .kv("client", clientText())
            .kv("sni", sni_)
            .kv("dst", destination_.toString())
            .kv("reason", verify ? tls::toString(upTls_->verifyFailure()) : "handshake")
            .kv("detail", upTls_->error())
            .write();
        // Nothing was sent upstream but the handshake; the client gets an
        // alert instead of a forged certificate.
        down_.send(std::string(kHandshakeFailureAlert, sizeof kHandshakeFailureAlert));
        closeGracefully();
        return;
    }
    startDownstreamTls();
}

void Session::startDownstreamTls()
{
    auto& rt = worker_.runtime();
    phase_ = Phase::DownstreamTls;
    auto leaf = rt.leaves->get(sni_);
    if (!leaf) {
        LogLine("forge_failed", "error").kv("sni", sni_).kv("detail", leaf.error().message).write();
        down_.send(std::string(kHandshakeFailureAlert, sizeof kHandshakeFailureAlert));
        closeGracefully();
        return;
    }
    auto ep = rt.downstreamTls->accept(**leaf);
    if (!ep) {
        LogLine("downstream_tls_failed", "error").kv("sni", sni_).kv("detail", ep.error().message).write();
        closeNow();
        return;
    }
    downTls_.emplace(std::move(ep.value()));
    if (!downTls_->feedCiphertext(peek_)) {
        closeNow();
        return;
    }
    peek_.clear();
    peek_.shrink_to_fit();
    down_.resume();
    pumpDownstreamHandshake();
}

void Session::pumpDownstreamHandshake()
{
    auto& rt = worker_.runtime();
    tls::TlsStatus st = downTls_->handshake();
    flushDownTls();
    if (st == tls::TlsStatus::WantRead)
        return;
    if (st != tls::TlsStatus::Ok) {
        rt.metrics.downstreamTlsFail.add();
        LogLine("downstream_tls_failed", "warn")
            .kv("client", clientText())
            .kv("sni", sni_)
            .kv("detail", downTls_->error())
            .write();
        closeGracefully();
        return;
    }
    enterHttp();
}

void Session::enterHttp()
{
    phase_ = Phase::Http;
    armTimer(worker_.runtime().config.timeouts.idle);
    // Application data may have come with the client's Finished.
    readDownstreamTls();
}

void Session::flushDownTls()
{
    downEncrypted_ = 0;
    if (!downTls_ || downTls_->pendingCiphertext() == 0)
        return;
    std::string out = down_.takeBuffer();
    downTls_->takeCiphertext(out);
    down_.send(std::move(out));
}

void Session::flushUpTls()
{
    upEncrypted_ = 0;
    if (!upTls_ || upTls_->pendingCiphertext() == 0)
        return;
    std::string out = up_.takeBuffer();
    upTls_->takeCiphertext(out);
    up_.send(std::move(out));
}

namespace {

// Plaintext pieces smaller than a TLS record are gathered so that one record
// carries them; a piece of a record's size or more is encrypted at once
// (after what was gathered before it), so the buffer stays under two records
// and a large masked body is never copied into it.
constexpr std::size_t kGatherLimit = 16 * 1024;

// Returns the plaintext bytes it encrypted (now ciphertext waiting in the
// endpoint until the batch's flush).
std::size_t gather(tls::TlsEndpoint& tls, std::string& pending, std::string_view plaintext)
{
    if (plaintext.size() < kGatherLimit) {
        pending.append(plaintext);
        if (pending.size() < kGatherLimit)
            return 0;
        plaintext = {};
    }
    std::size_t written = pending.size() + plaintext.size();
    if (!pending.empty()) {
        tls.write(pending);
        pending.clear();
    }
    if (!plaintext.empty())
        tls.write(plaintext);
    return written;
}

} // namespace

void Session::sendDown(std::string_view plaintext)
{
    if (plaintext.empty() || phase_ == Phase::Closing)
        return;
    if (ex_)
        ex_->responseBytes += plaintext.size();
    downEncrypted_ += gather(*downTls_, downPlain_, plaintext);
    if (batchDepth_ == 0)
        flushPlaintext();
}

void Session::sendUp(std::string_view plaintext)
{
    if (plaintext.empty() || phase_ == Phase::Closing)
        return;
    upEncrypted_ += gather(*upTls_, upPlain_, plaintext);
    if (batchDepth_ == 0)
        flushPlaintext();
}

void Session::flushPlaintext()
{
    if (phase_ == Phase::Closing) {
        downPlain_.clear();
        upPlain_.clear();
        return;
    }
    bool wrote = !downPlain_.empty() || !upPlain_.empty() || downEncrypted_ > 0 || upEncrypted_ > 0;
    if (!downPlain_.empty()) {
        downTls_->write(downPlain_);
        downPlain_.clear();
    }
    if (!upPlain_.empty()) {
        upTls_->write(upPlain_);
        upPlain_.clear();
    }
    flushDownTls();
    flushUpTls();
    if (wrote && phase_ == Phase::Http)
        applyBackpressure();
}

std::size_t Session::downQueued() const
{
    return down_.pending() + downPlain_.size() + downEncrypted_;
}

std::size_t Session::upQueued() const
{
    return up_.pending() + upPlain_.size() + upEncrypted_;
}

const std::string& Session::clientText()
{
    if (clientText_.empty())
        clientText_ = client_.toString();
    return clientText_;
}

// ---------------------------------------------------------------- upstream bytes

void Session::onUpData(std::string_view bytes)
{
    switch (phase_) {
    case Phase::UpstreamTls:
        if (!upTls_->feedCiphertext(bytes)) {
            upstreamFailed("upstream TLS input", 502);
            return;
        }
        pumpUpstreamHandshake();
        return;
    case Phase::DownstreamTls:
    case Phase::Http:
        if (!upTls_->feedCiphertext(bytes)) {
            upstreamFailed("upstream TLS input", 502);
            return;
        }
        if (phase_ == Phase::Http)
            readUpstreamTls();
        return;
    case Phase::Splice:
        armTimer(worker_.runtime().config.timeouts.idle);
        down_.send(std::string(bytes));
        applyBackpressure();
        return;
    default:
        return;
    }
}

void Session::readUpstreamTls()
{
    char buf[16384];
    for (;;) {
        tls::TlsIo io = upTls_->read(buf);
        if (io.status == tls::TlsStatus::Ok && io.bytes > 0) {
            upIn_.append(buf, io.bytes);
            continue;
        }
        if (io.status == tls::TlsStatus::Closed)
            upEof_ = true;
        else if (io.status == tls::TlsStatus::Error) {
            upstreamFailed("upstream TLS: " + upTls_->error(), 502);
            return;
        }
        break;
    }
    // Post-handshake messages SSL_read produced (session tickets, key
    // updates) leave with the batch's next flush, ahead of later records.
    processResponses();
}

void Session::onUpEof()
{
    if (phase_ == Phase::Splice) {
        spliceUpEof_ = true;
        down_.shutdownWrite();
        if (spliceDownEof_)
            closeGracefully();
        return;
    }
    if (phase_ == Phase::Connect || phase_ == Phase::UpstreamTls) {
        upstreamFailed("upstream closed during the handshake", 502);
        return;
    }
    if (phase_ == Phase::Http || phase_ == Phase::DownstreamTls) {
        upTls_->feedEof();
        upEof_ = true;
        if (phase_ == Phase::Http)
            readUpstreamTls();
    }
}

// ---------------------------------------------------------------- downstream HTTP

void Session::readDownstreamTls()
{
    char buf[16384];
    for (;;) {
        tls::TlsIo io = downTls_->read(buf);
        if (io.status == tls::TlsStatus::Ok && io.bytes > 0) {
            downIn_.append(buf, io.bytes);
            continue;
        }
        if (io.status == tls::TlsStatus::Closed)
            downEof_ = true;
        else if (io.status == tls::TlsStatus::Error) {
            closeNow();
            return;
        }
        break;
    }
    processRequests(); // post-handshake output leaves with the batch's flush
    afterClientEnd();
}

void Session::afterClientEnd()
{
    if (!downEof_ || phase_ != Phase::Http)
        return;
    if (!ex_) {
        closeGracefully();
    } else if (!ex_->requestDone) {
        // The client ended its side (close_notify, or a FIN) in the middle
        // of a request body: it can never complete, so it is answered now
        // rather than at the body_idle timeout, and nothing more of it goes
        // upstream (a masked body was never sent; a streamed one is cut
        // with the upstream connection).
        (void)requests_.finish();
        worker_.runtime().metrics.badRequests.add();
        answerError(requests_.error(), true);
    }
}

void Session::onDownEof()
{
    // Lingering, or a graceful close still sending its answer (a receive
    // already in flight may end with the FIN): the answer goes out first.
    if (lingering_ || (phase_ == Phase::Closing && closeWhenDrained_)) {
        downEof_ = true;
        maybeFinishClose();
        return;
    }
    if (phase_ == Phase::Splice) {
        spliceDownEof_ = true;
        up_.shutdownWrite();
        if (spliceUpEof_)
            closeGracefully();
        return;
    }
    if (phase_ != Phase::Http) {
        closeNow();
        return;
    }
    downTls_->feedEof();
    downEof_ = true;
    readDownstreamTls();
    if (phase_ == Phase::Http && ex_ && !ex_->requestDone)
        closeNow(); // the client went away in the middle of its request
}

void Session::processRequests()
{
    auto& rt = worker_.runtime();
    while (phase_ == Phase::Http) {
        if (ex_ && ex_->requestDone)
            break; // pipelined: the next request waits for this response
        std::string_view data = std::string_view(downIn_).substr(downOff_);
        if (data.empty() && (!ex_ || requests_.idle()))
            break;
        http::ParseResult r = requests_.parse(data);
        switch (r.event) {
        case http::ParseEvent::NeedMore:
            downOff_ += r.consumed;
            if (!ex_ && !requests_.idle() && !headTimerArmed_) {
                // A head has begun: it must be complete within
                // request_headers of its first byte (the slowloris bound).
                // Armed once, not per byte: re-arming on every piece made it
                // an idle timer that a byte a second kept open for ever.
                headTimerArmed_ = true;
                armTimer(rt.config.timeouts.requestHeaders);
            }
            goto compact;
        case http::ParseEvent::Head:
            downOff_ += r.consumed;
            if (!onRequestHead())
                return;
            break;
        case http::ParseEvent::Body:
            onRequestBody(r.body);
            downOff_ += r.consumed;
            break;
        case http::ParseEvent::End:
            downOff_ += r.consumed;
            onRequestEnd();
            break;
        case http::ParseEvent::Closed:
            goto compact;
        case http::ParseEvent::Error:
            rt.metrics.badRequests.add();
            if (!ex_) {
                ex_ = std::make_unique<Exchange>();
                ex_->method = "-";
                ex_->logPath = "-";
            }
            answerError(requests_.error(), true);
            return;
        }
    }
compact:
    if (downOff_ > 0 && (downOff_ == downIn_.size() || downOff_ > 65536)) {
        downIn_.erase(0, downOff_);
        downOff_ = 0;
    }
    // Backpressure on a client that pipelines far ahead.
    if (downIn_.size() - downOff_ > kMaxPipelined)
        down_.pause();
    else if (!down_.receiving() && !down_.closed() && !downEof_ && upQueued() < kHighWater)
        down_.resume();
}

bool Session::onRequestHead()
{
    auto& rt = worker_.runtime();
    rt.metrics.requests.add();
    headTimerArmed_ = false;
    ex_ = std::make_unique<Exchange>();
    http::RequestHead& h = requests_.head();
    ex_->method = h.method;
    ex_->headRequest = h.isMethod("HEAD");
    // The path is logged masked: a query or path segment may hold an identifier.
    ex_->logPath = worker_.logPath(h.path());
    ex_->bodyDeadline = Clock::now() + rt.config.timeouts.requestBody;
    armBodyTimer();

    // The request must be for the server the client's TLS named: masking
    // routes are chosen by that name, and a different Host on this
    // connection would be a way around them.
    // sni_ is lower case (peekClientHello lowers it): a case-insensitive
    // comparison, without building a lowered copy.
    if (!http::iequals(hostWithoutPort(h.host()), sni_)) {
        answerError({421, "misdirected_request", "Host does not match the TLS server name", http::Side::Downstream},
                    true);
        return false;
    }
    if (h.upgrade) {
        answerError({501, "not_implemented", "protocol upgrades are not relayed", http::Side::Downstream}, true);
        return false;
    }
    const config::Target* target = rt.config.targetFor(sni_);
    std::string_view p = h.path();
    for (const auto& route : target ? target->mask : std::vector<config::MaskRoute>{})
        if (routeMatches(route, h.method, p))
            ex_->masked = true;
    if (ex_->masked && !requests_.setBodyLimit(rt.config.masking.maxBodyBytes)) {
        answerError(requests_.error(), true);
        return false;
    }
    ex_->requestChunked = h.framing == http::Framing::Chunked;
    ex_->contentType = std::string(h.headers.find("content-type").value_or(""));
    ex_->contentEncoding = std::string(h.headers.find("content-encoding").value_or(""));
    if (!h.keepAlive)
        ex_->closeAfter = true;

    // The head for upstream.
    ex_->upHead = h;
    http::RequestHead& u = ex_->upHead;
    stripHopByHop(u.headers);
    u.headers.remove("expect");
    if (ex_->masked) {
        std::string ae = narrowAcceptEncoding(u.headers.find("accept-encoding"));
        if (!ae.empty())
            u.headers.set("Accept-Encoding", ae);
    }
    u.version = 11;
    // We answer 100-continue ourselves: the body is needed here first
    // (masked routes buffer it), and upstream never sees the Expect.
    if (h.expectContinue && h.framing != http::Framing::None)
        sendDown(http::kContinueResponse);

    if (!ex_->masked) {
        if (ex_->requestChunked)
            u.headers.set("Transfer-Encoding", "chunked");
        std::string out;
        http::appendRequestHead(out, u);
        sendUp(out);
        ex_->forwarded = true;
    }
    return true;
}

void Session::onRequestBody(std::string_view body)
{
    if (!ex_)
        return; // the exchange was answered early; the connection is closing
    armBodyTimer();
    ex_->requestBytes += body.size();
    if (ex_->masked) {
        ex_->body.append(body); // bounded by the parser's body limit
        return;
    }
    if (ex_->requestChunked) {
        std::string out;
        http::appendChunk(out, body);
        sendUp(out);
    } else {
        sendUp(body);
    }
    applyBackpressure();
}

// body_idle after the latest body bytes, but never past the body's deadline
// (request_body): a body that trickles a byte per second is still cut.
void Session::armBodyTimer()
{
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(ex_->bodyDeadline - Clock::now());
    auto idle = worker_.runtime().config.timeouts.bodyIdle;
    ex_->bodyTimerIsDeadline = left < idle;
    armTimer(std::max(std::chrono::milliseconds(0), std::min(idle, left)));
}

void Session::onRequestEnd()
{
    auto& rt = worker_.runtime();
    if (!ex_)
        return;
    ex_->requestDone = true;
    if (ex_->masked) {
        maskAndSend();
        if (!ex_ || !ex_->forwarded)
            return; // answered here (blocked)
    } else if (ex_->requestChunked) {
        sendUp(http::kLastChunk);
    }
    responses_.setHeadRequest(ex_->headRequest);
    armTimer(rt.config.timeouts.response);
}

void Session::maskAndSend()
{
    auto& rt = worker_.runtime();
    Exchange& ex = *ex_;
    std::string decoded;
    std::string_view plain = ex.body;
    std::string why;
    int status = 0;
    const char* kind = "unmaskable";

    if (!ex.contentEncoding.empty() && !http::iequals(ex.contentEncoding, "identity")) {
        http::DecodeLimits limits;
        limits.maxOutput = std::min(rt.config.limits.maxDecodedBytes, rt.config.masking.maxBodyBytes);
        limits.maxRatio = rt.config.limits.maxDecodeRatio;
        auto d = http::decodeBody(ex.contentEncoding, ex.body, limits);
        if (!d) {
            http::HttpError e = http::toHttpError(d.error(), http::Side::Downstream);
            why = e.message;
            status = e.status;
            kind = e.status == 415 ? "unsupported_encoding" : (e.status == 413 ? "body_too_large" : "bad_request");
        } else {
            decoded = std::move(d.value());
            plain = decoded;
        }
    }

    std::optional<mask::Masked> masked;
    if (status == 0 && !plain.empty()) {
        std::string mt = mediaType(ex.contentType);
        Result<mask::Masked, mask::MaskError> r = fail(mask::MaskError{mask::Unmaskable::Internal, ""});
        // A body that is JSON under another label is masked as JSON (the
        // validator decides); anything else that is not text cannot be
        // masked reliably (form or multipart encodings hide identifiers).
        bool looksJson = plain.front() == '{' || plain.front() == '[';
        if (isJson(mt) || looksJson)
            r = worker_.masker().maskJson(plain);
        else if (isText(mt))
            r = worker_.masker().maskText(plain);
        else {
            why = "content type '" + (mt.empty() ? std::string("none") : mt) + "' cannot be masked";
            status = 415;
            kind = "unmaskable_content_type";
        }
        if (status == 0) {
            if (r) {
                masked.emplace(std::move(r.value()));
            } else {
                why = std::string(mask::unmaskableName(r.error().reason)) + ": " + r.error().detail;
                switch (r.error().reason) {
                case mask::Unmaskable::InvalidJson: status = 400; kind = "invalid_json"; break;
                case mask::Unmaskable::TooLarge: status = 413; kind = "body_too_large"; break;
                case mask::Unmaskable::Residual: status = 422; kind = "unmaskable"; break;
                case mask::Unmaskable::Internal: status = 500; kind = "internal"; break;
                }
            }
        }
    }

    http::RequestHead& u = ex.upHead;
    std::string out;
    if (status != 0) {
        if (rt.config.masking.blockUnmaskable) {
            rt.metrics.blocked.add();
            ex.blocked = why;
            answerError({status, kind, "request body blocked, not forwarded: " + why,
                         status == 500 ? http::Side::Internal : http::Side::Downstream},
                        ex.closeAfter);
            return;
        }
        // on_unmaskable: pass — an explicit opt-out, logged on the request line.
        rt.metrics.passedUnmaskable.add();
        ex.passedUnmaskable = true;
        ex.note = why;
        u.headers.set("Content-Length", std::to_string(ex.body.size()));
        http::appendRequestHead(out, u);
        out += ex.body;
    } else {
        std::string_view body = masked ? std::string_view(masked->body) : plain;
        u.headers.remove("content-encoding");
        u.headers.set("Content-Length", std::to_string(body.size()));
        http::appendRequestHead(out, u);
        out += body;
        if (masked) {
            ex.stats = masked->stats;
            ex.mapping = std::move(masked->mapping);
            if (masked->stats.total > 0) {
                rt.metrics.masked.add();
                rt.metrics.tokens.add(masked->stats.total);
            }
        }
    }
    ex.body.clear();
    ex.body.shrink_to_fit();
    sendUp(out);
    ex.forwarded = true;
}

// ---------------------------------------------------------------- responses

void Session::processResponses()
{
    while (phase_ == Phase::Http) {
        std::string_view data = std::string_view(upIn_).substr(upOff_);
        if (!ex_ || !ex_->forwarded) {
            if (!data.empty()) {
                // Bytes from upstream with no request outstanding: the
                // connection is out of step; end it.
                upstreamFailed("upstream sent data with no request outstanding", 502);
                return;
            }
            if (upEof_) {
                // Upstream closed an idle keep-alive connection; this
                // connection cannot carry another request.
                if (!ex_)
                    closeGracefully();
            }
            break;
        }
        http::ParseResult r = responses_.parse(data);
        bool stop = false;
        switch (r.event) {
        case http::ParseEvent::NeedMore:
            upOff_ += r.consumed;
            if (upEof_) {
                http::ParseResult f = responses_.finish();
                if (f.event == http::ParseEvent::End) {
                    // A body delimited by the close is complete only if TLS
                    // ended with close_notify: a bare FIN (a crash, an
                    // on-path reset of the stream) may have cut it, and the
                    // client's chunked framing would present the cut as a
                    // clean end.
                    if (upTls_->closeKind() != tls::CloseKind::CloseNotify) {
                        upstreamFailed("upstream closed without close_notify: the close-delimited body may be truncated",
                                       502);
                        return;
                    }
                    onResponseEnd();
                    continue;
                }
                upstreamFailed("upstream closed in the middle of a response", 502);
                return;
            }
            stop = true;
            break;
        case http::ParseEvent::Head:
            upOff_ += r.consumed;
            onResponseHead();
            break;
        case http::ParseEvent::Body:
            onResponseBody(r.body);
            upOff_ += r.consumed;
            break;
        case http::ParseEvent::End:
            upOff_ += r.consumed;
            onResponseEnd();
            break;
        case http::ParseEvent::Closed:
            stop = true;
            break;
        case http::ParseEvent::Error:
            upstreamFailed(responses_.error().message, 502);
            return;
        }
        if (stop)
            break;
    }
    if (upOff_ > 0 && (upOff_ == upIn_.size() || upOff_ > 65536)) {
        upIn_.erase(0, upOff_);
        upOff_ = 0;
    }
}

void Session::onResponseHead()
{
    auto& rt = worker_.runtime();
    http::ResponseHead& h = responses_.head();
    Exchange& ex = *ex_;
    armTimer(rt.config.timeouts.streamIdle);
    if (h.interim()) {
        if (h.status == 100)
            return; // 100-continue was answered by veild
        std::string out;
        http::ResponseHead copy = h;
        stripHopByHop(copy.headers);
        http::appendResponseHead(out, copy);
        sendDown(out);
        return;
    }
    ex.status = h.status;
    http::ResponseHead d = h;
    stripHopByHop(d.headers);
    bool clientHttp11 = requests_.head().version >= 11;
    bool hasBody = h.framing != http::Framing::None;

    // Unmask responses to masked requests that handed out tokens.
    bool unmask = hasBody && !ex.mapping.empty();
    std::string mt = unmask ? mediaType(h.contentType()) : std::string();
    if (unmask) {
        std::string_view enc = h.contentEncoding();
        if (!enc.empty() && !http::iequals(enc, "identity")) {
            auto dec = http::ContentDecoder::create(enc, http::DecodeLimits{rt.config.limits.maxDecodedBytes * 8,
                                                                            0, 0});
            if (dec) {
                ex.decoder.emplace(std::move(dec.value()));
                d.headers.remove("content-encoding");
            } else {
                unmask = false; // cannot read it: tokens reach the client, nothing leaks
                ex.note = "response coding not decodable; left masked";
            }
        }
    }
    if (unmask) {
        if (mt == "text/event-stream")
            ex.sse = std::make_unique<mask::SseUnmasker>(ex.mapping);
        else if (isJson(mt))
            ex.restorer = std::make_unique<mask::TokenRestorer>(ex.mapping, mask::Escape::Json);
        else if (isText(mt) || mt.empty())
            ex.restorer = std::make_unique<mask::TokenRestorer>(ex.mapping, mask::Escape::None);
        else {
            unmask = false;
            ex.decoder.reset();
            d.headers.set("Content-Encoding", h.contentEncoding());
            if (h.contentEncoding().empty())
                d.headers.remove("content-encoding");
        }
    }

    bool keepAlive = !ex.closeAfter && h.keepAlive && !draining_ && !downEof_;
    if (!hasBody) {
        ex.downFraming = Exchange::DownFraming::None;
    } else if (!unmask && h.framing == http::Framing::ContentLength) {
        ex.downFraming = Exchange::DownFraming::Length;
    } else if (clientHttp11) {
        // Unmasking changes the length; close-delimited upstream bodies get
        // a length too. Chunked keeps the connection reusable.
        d.headers.remove("content-length");
        d.headers.set("Transfer-Encoding", "chunked");
        ex.downFraming = Exchange::DownFraming::Chunked;
    } else {
        d.headers.remove("content-length");
        ex.downFraming = Exchange::DownFraming::Close;
        keepAlive = false;
    }
    if (!keepAlive) {
        ex.closeAfter = true;
        d.headers.set("Connection", "close");
    } else if (!clientHttp11) {
        d.headers.set("Connection", "keep-alive");
    }
    d.version = clientHttp11 ? 11 : 10;
    std::string out;
    http::appendResponseHead(out, d);
    ex.responseStarted = true;
    sendDown(out);
}

void Session::sendResponseBytes(std::string_view plaintext)
{
    if (plaintext.empty())
        return;
    if (ex_->downFraming == Exchange::DownFraming::Chunked) {
        std::string out;
        http::appendChunk(out, plaintext);
        sendDown(out);
    } else {
        sendDown(plaintext);
    }
}

void Session::onResponseBody(std::string_view body)
{
    auto& rt = worker_.runtime();
    Exchange& ex = *ex_;
    armTimer(rt.config.timeouts.streamIdle);
    std::string decoded;
    if (ex.decoder) {
        if (auto r = ex.decoder->feed(body, decoded); !r) {
            upstreamFailed("response body: " + r.error().message, 502);
            return;
        }
        body = decoded;
    }
    std::string out;
    if (ex.sse) {
        if (auto r = ex.sse->feed(body, out); !r) {
            upstreamFailed("event stream: " + r.error().message, 502);
            return;
        }
    } else if (ex.restorer) {
        ex.restorer->feed(body, out);
    } else {
        sendResponseBytes(body);
        applyBackpressure();
        return;
    }
    sendResponseBytes(out);
    applyBackpressure();
}

void Session::onResponseEnd()
{
    Exchange& ex = *ex_;
    std::string out;
    if (ex.decoder) {
        std::string decoded;
        if (auto r = ex.decoder->finish(decoded); !r) {
            upstreamFailed("response body: " + r.error().message, 502);
            return;
        }
        if (ex.sse)
            (void)ex.sse->feed(decoded, out);
        else if (ex.restorer)
            ex.restorer->feed(decoded, out);
    }
    if (ex.sse) {
        ex.sse->finish(out);
        ex.restored = ex.sse->restored();
    } else if (ex.restorer) {
        ex.restorer->finish(out);
        ex.restored = ex.restorer->restored();
    }
    sendResponseBytes(out);
    if (ex.downFraming == Exchange::DownFraming::Chunked)
        sendDown(http::kLastChunk);
    finishExchange();
}

void Session::finishExchange()
{
    auto& rt = worker_.runtime();
    rt.metrics.restored.add(ex_->restored);
    logExchange();
    // A response that ended before its request (an early error from
    // upstream) leaves request bytes on the wire: the connection cannot
    // carry another exchange.
    bool close = !ex_->requestDone || ex_->closeAfter || ex_->downFraming == Exchange::DownFraming::Close || draining_ || upEof_;
    ex_.reset();
    if (close) {
        closeGracefully();
        return;
    }
    armTimer(rt.config.timeouts.idle);
    processRequests(); // a pipelined request may be waiting
    afterClientEnd();  // ... and the client may have ended its side in it
}

void Session::logExchange()
{
    Exchange& ex = *ex_;
    std::string masked;
    for (const auto& [type, n] : ex.stats.perType)
        masked += (masked.empty() ? "" : ",") + type + ":" + std::to_string(n);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - ex.start).count();
    LogLine line("request", ex.status >= 500 ? "warn" : "info");
    line.kv("client", clientText())
        .kv("sni", sni_)
        .kv("method", ex.method)
        .kv("path", ex.logPath)
        .kv("status", ex.status)
        .kv("req_bytes", static_cast<unsigned long long>(ex.requestBytes))
        .kv("resp_bytes", static_cast<unsigned long long>(ex.responseBytes))
        .kv("masked", masked.empty() ? "-" : masked)
        .kv("restored", ex.restored)
        .kv("dur_ms", static_cast<long long>(ms));
    if (!ex.blocked.empty())
        line.kv("blocked", ex.blocked);
    if (ex.passedUnmaskable)
        line.kv("on_unmaskable", "pass");
    if (!ex.note.empty())
        line.kv("note", ex.note);
    line.write();
}

// ---------------------------------------------------------------- errors

void Session::answerError(const http::HttpError& e, bool close)
{
    if (!ex_) {
        ex_ = std::make_unique<Exchange>();
        ex_->method = "-";
        ex_->logPath = "-";
    }
    if (ex_->responseStarted) {
        // The head went out: only an abnormal end tells the client the body
        // is incomplete.
        logExchange();
        closeNow(true);
        return;
    }
    ex_->status = e.status;
    if (ex_->note.empty())
        ex_->note = std::string(e.kind) + ": " + e.message;
    if (!ex_->requestDone) {
        close = true; // the rest of the request is still on the wire
        // Linger for a client that may still be sending; not for one that
        // timed out (408): it is too slow to be worth waiting for.
        lingerDown_ = !downEof_ && e.status != 408;
    }
    sendDown(http::renderErrorResponse(e, close));
    ex_->responseStarted = true;
    ex_->downFraming = Exchange::DownFraming::None;
    ex_->closeAfter = ex_->closeAfter || close;
    finishExchange();
}

void Session::upstreamFailed(const std::string& why, int status)
{
    auto& rt = worker_.runtime();
    rt.metrics.upstreamErrors.add();
    if (phase_ == Phase::Http) {
        if (ex_) {
            answerError({status, status == 504 ? "gateway_timeout" : "bad_gateway", why, http::Side::Upstream}, true);
        } else {
            LogLine("upstream_error", "warn").kv("client", clientText()).kv("sni", sni_).kv("detail", why).write();
            closeGracefully();
        }
        return;
    }
    LogLine("upstream_error", "warn")
        .kv("client", clientText())
        .kv("sni", sni_.empty() ? "-" : sni_)
        .kv("dst", destination_.toString())
        .kv("detail", why)
        .write();
    if (phase_ == Phase::Connect || phase_ == Phase::UpstreamTls) {
        // The client's handshake never got an answer: fail it.
        down_.send(std::string(kHandshakeFailureAlert, sizeof kHandshakeFailureAlert));
        closeGracefully();
        return;
    }
    closeNow(phase_ == Phase::Splice);
}

void Session::onStreamError(int err, bool downstream)
{
    if (downstream && lingering_) { // the client reset instead of closing: nothing more to wait for
        downEof_ = true;
        maybeFinishClose();
        return;
    }
    if (phase_ == Phase::Closing)
        return;
    if (!downstream && phase_ == Phase::Http && ex_ && ex_->forwarded) {
        upstreamFailed(std::string("upstream: ") + std::strerror(-err), 502);
        return;
    }
    closeNow(!downstream);
}

void Session::onTimeout()
{
    auto& rt = worker_.runtime();
    rt.metrics.timeouts.add();
    switch (phase_) {
    case Phase::Http:
        if (!ex_) {
            if (requests_.idle()) { // keep-alive idle: a quiet close
                closeGracefully();
                return;
            }
            answerError({408, "request_timeout", "request headers not complete in time", http::Side::Downstream},
                        true);
            return;
        }
        if (!ex_->requestDone) {
            if (!down_.receiving() && upQueued() > 0) {
                // veild stopped reading the body because the upstream does
                // not take it (backpressure): the upstream is the slow side.
                upstreamFailed("upstream stalled taking the request body", 504);
                return;
            }
            bool late = ex_->bodyTimerIsDeadline;
            answerError({408, "request_timeout", late ? "request body not complete in time" : "request body stalled",
                         http::Side::Downstream},
                        true);
            return;
        }
        if (ex_->responseStarted && !up_.receiving() && !upEof_ && downQueued() > 0) {
            // Upstream is quiet because veild stopped reading it: the
            // client stopped reading (backpressure). Cut the client, and
            // say so — it is not an upstream failure.
            ex_->note = "downstream stalled: the client stopped reading the response";
            logExchange();
            closeNow(true);
            return;
        }
        upstreamFailed(ex_->responseStarted ? "upstream stalled in the response" : "no response from upstream in time",
                       504);
        return;
    case Phase::Connect:
        upstreamFailed("connect timed out", 504);
        return;
    case Phase::Closing:
        closeNow(true);
        return;
    default:
        LogLine("timeout", "info").kv("client", clientText()).kv("phase", static_cast<int>(phase_)).write();
        closeNow(true);
        return;
    }
}

// ---------------------------------------------------------------- flow control and closing

void Session::applyBackpressure()
{
    // Reading from one side pauses while the other side's queue is long;
    // onDrained resumes it.
    if (upQueued() > kHighWater)
        down_.pause();
    if (downQueued() > kHighWater)
        up_.pause();
}

void Session::onDownDrained()
{
    if (closeWhenDrained_) {
        maybeFinishClose();
        return;
    }
    if (!up_.receiving() && !up_.closed() && !upEof_ && (phase_ == Phase::Http || phase_ == Phase::Splice))
        up_.resume();
}

void Session::onUpDrained()
{
    if (closeWhenDrained_) {
        maybeFinishClose();
        return;
    }
    if (!down_.receiving() && !down_.closed() && !downEof_ && (phase_ == Phase::Http || phase_ == Phase::Splice))
        down_.resume();
}

void Session::drain()
{
    draining_ = true;
    if (phase_ == Phase::Http && !ex_)
        closeGracefully();
    else if (phase_ == Phase::Peek)
        closeNow();
}

void Session::sweepBuffers()
{
    // The first sweep after an event may come at once; the second is a
    // whole interval later: released after one to two intervals of quiet.
    if (quietSweeps_ >= 2 || ++quietSweeps_ < 2 || phase_ != Phase::Http)
        return;
    downTls_->releaseBuffers();
    upTls_->releaseBuffers();
}

void Session::abort(const char* why)
{
    LogLine("connection_aborted", "info").kv("client", clientText()).kv("reason", why).write();
    closeNow(true);
}

void Session::closeGracefully()
{
    if (phase_ == Phase::Closing)
        return;
    flushPlaintext(); // what was queued goes out before close_notify
    if (downTls_ && downTls_->handshakeDone()) {
        downTls_->shutdown();
        flushDownTls();
    }
    if (upTls_ && upTls_->handshakeDone()) {
        upTls_->shutdown();
        flushUpTls();
    }
    phase_ = Phase::Closing;
    closeWhenDrained_ = true;
    down_.pause();
    up_.pause();
    // Bounded: a client that never reads does not hold the session.
    armTimer(5s);
    maybeFinishClose();
}

void Session::maybeFinishClose()
{
    if (down_.pending() == 0 && !down_.closed()) {
        if (lingerDown_ && !downEof_) {
            if (!lingering_) { // the answer is out: FIN, then read to the client's (bounded by the close timer)
                lingering_ = true;
                down_.shutdownWrite();
                down_.resume();
            }
        } else {
            down_.close();
        }
    }
    if (up_.pending() == 0 && !up_.closed())
        up_.close();
    if (down_.closed() && up_.closed())
        worker_.sessionClosing(this);
}

void Session::closeNow(bool resetDownstream)
{
    if (resetDownstream && down_.fd() >= 0) {
        // RST instead of FIN: the client must not take a cut stream as a
        // complete response.
        linger l{1, 0};
        ::setsockopt(down_.fd(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    phase_ = Phase::Closing;
    closeWhenDrained_ = false;
    timer_.cancel();
    down_.close();
    up_.close();
    worker_.sessionClosing(this);
}

} // namespace veil::session
