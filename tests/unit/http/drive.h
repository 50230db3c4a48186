#pragma once

// Drives a parser the way the session does: a buffer that grows with each
// segment read, drops consumed bytes, and copies body views before dropping
// them. Outcomes compare equal when the messages, bodies and error match, so
// splitting tests can compare any two ways of feeding the same bytes.

#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/parser.h"

namespace veil::http::test {

using Fields = std::vector<std::pair<std::string, std::string>>;

inline Fields fieldsOf(const HeaderList& h)
{
    Fields out;
    for (HeaderList::Field f : h)
        out.emplace_back(std::string(f.name), std::string(f.value));
    return out;
}

struct Message {
    // Request: method/target; response: status/reason.
    std::string method, target;
    int status = 0;
    std::string reason;
    int version = 0;
    Fields headers;
    Framing framing = Framing::None;
    std::uint64_t contentLength = 0;
    bool keepAlive = false;
    bool expectContinue = false;
    std::string body;
    std::size_t bodyEvents = 0;
    Fields trailers;
    bool ended = false;

    bool operator==(const Message& o) const
    {
        return method == o.method && target == o.target && status == o.status && reason == o.reason &&
               version == o.version && headers == o.headers && framing == o.framing &&
               contentLength == o.contentLength && keepAlive == o.keepAlive &&
               expectContinue == o.expectContinue && body == o.body && trailers == o.trailers &&
               ended == o.ended;
    }
};

struct Outcome {
    std::vector<Message> messages;
    std::optional<HttpError> error;
    bool closed = false;

    bool operator==(const Outcome& o) const
    {
        bool sameError = error.has_value() == o.error.has_value() &&
                         (!error || (error->status == o.error->status && error->message == o.error->message));
        return messages == o.messages && sameError && closed == o.closed;
    }
    int status() const { return error ? error->status : 0; }
    std::string message() const { return error ? error->message : std::string(); }
};

inline std::ostream& operator<<(std::ostream& os, const Outcome& o)
{
    os << o.messages.size() << " message(s)";
    for (const Message& m : o.messages)
        os << " [" << m.method << m.status << ' ' << m.target << " body=" << m.body.size()
           << (m.ended ? " ended" : "") << ']';
    if (o.error)
        os << " error " << o.error->status << ": " << o.error->message;
    if (o.closed)
        os << " closed";
    return os;
}

struct DriveOptions {
    Limits limits;
    std::optional<std::uint64_t> bodyLimit; // set after every Head
    bool eof = true;                        // call finish() after the last segment
    bool headRequest = false;               // responses: answering HEAD
};

inline void capture(Message& m, const RequestHead& h)
{
    m.method = h.method;
    m.target = h.target;
    m.version = h.version;
    m.headers = fieldsOf(h.headers);
    m.framing = h.framing;
    m.contentLength = h.contentLength;
    m.keepAlive = h.keepAlive;
    m.expectContinue = h.expectContinue;
}

inline void capture(Message& m, const ResponseHead& h)
{
    m.status = h.status;
    m.reason = h.reason;
    m.version = h.version;
    m.headers = fieldsOf(h.headers);
    m.framing = h.framing;
    m.contentLength = h.contentLength.value_or(0);
    m.keepAlive = h.keepAlive;
}

template <typename Parser>
Outcome drive(const std::vector<std::string_view>& segments, const DriveOptions& opt = {})
{
    Parser p(opt.limits);
    if constexpr (std::is_same_v<Parser, ResponseParser>)
        p.setHeadRequest(opt.headRequest);
    Outcome o;
    std::string buf;
    auto handle = [&](const ParseResult& r) -> bool {
        switch (r.event) {
        case ParseEvent::Head:
            o.messages.emplace_back();
            capture(o.messages.back(), p.head());
            if (opt.bodyLimit && !p.setBodyLimit(opt.bodyLimit)) {
                o.error = p.error();
                return false;
            }
            return true;
        case ParseEvent::Body:
            o.messages.back().body.append(r.body);
            ++o.messages.back().bodyEvents;
            return true;
        case ParseEvent::End:
            o.messages.back().ended = true;
            o.messages.back().trailers = fieldsOf(p.trailers());
            if constexpr (std::is_same_v<Parser, ResponseParser>) {
                if (!p.head().interim())
                    p.setHeadRequest(opt.headRequest);
            }
            return true;
        case ParseEvent::Closed:
            o.closed = true;
            return false;
        case ParseEvent::Error:
            o.error = p.error();
            return false;
        case ParseEvent::NeedMore:
            return false;
        }
        return false;
    };
    for (std::string_view seg : segments) {
        buf.append(seg);
        for (;;) {
            ParseResult r = p.parse(buf);
            bool more = handle(r);
            if (o.error)
                return o;
            buf.erase(0, r.consumed);
            if (!more)
                break;
        }
    }
    if (opt.eof) {
        for (;;) {
            ParseResult r = p.finish();
            if (!handle(r) || r.event != ParseEvent::End)
                break;
        }
    }
    return o;
}

inline Outcome request(std::string_view bytes, const DriveOptions& opt = {})
{
    return drive<RequestParser>({bytes}, opt);
}

inline Outcome response(std::string_view bytes, const DriveOptions& opt = {})
{
    return drive<ResponseParser>({bytes}, opt);
}

// Every way of cutting `bytes` in two, plus byte by byte.
template <typename Parser>
std::vector<Outcome> splitOutcomes(std::string_view bytes, const DriveOptions& opt = {})
{
    std::vector<Outcome> out;
    for (std::size_t k = 0; k <= bytes.size(); ++k)
        out.push_back(drive<Parser>({bytes.substr(0, k), bytes.substr(k)}, opt));
    std::vector<std::string_view> single;
    for (std::size_t i = 0; i < bytes.size(); ++i)
        single.push_back(bytes.substr(i, 1));
    out.push_back(drive<Parser>(single, opt));
    return out;
}

} // namespace veil::http::test
