#include "mask/sse.h"

#include <algorithm>
#include <charconv>

namespace veil::mask {

namespace {

// Streamed fields open at once (content blocks, choices × tool calls). Each
// holds at most a token-long tail; the bound keeps a hostile stream that
// never closes its blocks from growing the state without limit.
constexpr std::size_t kMaxStreams = 1024;

std::string_view rawOf(std::string_view text, json::Span s)
{
    return text.substr(s.begin, s.end - s.begin);
}

// A key or string value compared with a literal: escaped spellings of the
// names the unmasker reads do not occur in real streams, so they simply do
// not match (the string then gets one-shot restoration, which is safe).
bool is(std::string_view text, json::Span s, std::string_view name)
{
    return !s.escaped && rawOf(text, s) == name;
}

bool parseIndex(std::string_view raw, std::int64_t& value)
{
    std::int64_t v = 0;
    auto [ptr, ec] = std::from_chars(raw.data(), raw.data() + raw.size(), v);
    if (ec != std::errc() || ptr != raw.data() + raw.size())
        return false;
    value = v;
    return true;
}

void appendInt(std::int64_t v, std::string& out)
{
    char buf[24];
    auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, v);
    (void)ec; // 24 bytes hold any int64
    out.append(buf, ptr);
}

// The next CR or LF at or after `from`, or text.size().
std::size_t nextBreak(std::string_view text, std::size_t from)
{
    const std::size_t n = text.size();
    for (std::size_t i = from; i < n; ++i) {
        if (text[i] == '\n' || text[i] == '\r')
            return i;
    }
    return n;
}

// Line endings as literals, so eol_ outlives the event it was read from.
std::string_view eolLiteral(std::string_view term)
{
    if (term == "\r\n")
        return "\r\n";
    if (term == "\r")
        return "\r";
    return "\n";
}

} // namespace

SseUnmasker::SseUnmasker(const Mapping& mapping, std::size_t maxEventBytes)
    : map_(&mapping), maxEventBytes_(maxEventBytes)
{
}

unsigned SseUnmasker::restored() const
{
    unsigned n = restored_;
    for (const Stream& s : streams_)
        n += s.restorer.restored();
    return n;
}

void SseUnmasker::resetFraming()
{
    lineEmpty_ = true;
    crPending_ = false;
}

// Finds the end of the current event (the byte after its blank line) in
// bytes[from, …), continuing the framing state left by earlier calls. Returns
// false if the event is not complete yet. A CR as the last byte is left
// unresolved (crPending_): it may be a CR ending or the first half of a CRLF.
bool SseUnmasker::findEventEnd(std::string_view bytes, std::size_t from, std::size_t& end)
{
    const std::size_t n = bytes.size();
    std::size_t i = from;
    // A line terminator at `e` ends a blank line → the event ends there.
    auto terminate = [&](std::size_t e) {
        if (lineEmpty_) {
            end = e;
            return true;
        }
        lineEmpty_ = true;
        return false;
    };
    if (crPending_ && i < n) {
        crPending_ = false;
        if (bytes[i] == '\n')
            ++i;
        if (terminate(i))
            return true;
    }
    while (i < n) {
        std::size_t k = nextBreak(bytes, i);
        if (k > i)
            lineEmpty_ = false;
        if (k == n)
            return false;
        if (bytes[k] == '\n') {
            i = k + 1;
        } else if (k + 1 == n) {
            crPending_ = true;
            return false;
        } else {
            i = bytes[k + 1] == '\n' ? k + 2 : k + 1;
        }
        if (terminate(i))
            return true;
    }
    return false;
}

Result<void> SseUnmasker::feed(std::string_view bytes, std::string& out)
{
    if (failed_)
        return fail("event stream unmasker already failed");
    std::size_t pos = 0;
    while (pos < bytes.size()) {
        std::size_t end = 0;
        if (!findEventEnd(bytes, pos, end)) {
            if (pending_.size() + (bytes.size() - pos) > maxEventBytes_) {
                failed_ = true;
                return fail("event stream event exceeds " + std::to_string(maxEventBytes_) + " bytes");
            }
            pending_.append(bytes.substr(pos));
            return {};
        }
        if (pending_.size() + (end - pos) > maxEventBytes_) {
            failed_ = true;
            return fail("event stream event exceeds " + std::to_string(maxEventBytes_) + " bytes");
        }
        if (pending_.empty()) {
            processEvent(bytes.substr(pos, end - pos), out);
        } else {
            pending_.append(bytes.substr(pos, end - pos));
            processEvent(pending_, out);
            pending_.clear();
        }
        resetFraming();
        if (failed_)
            return fail("event stream has more than " + std::to_string(kMaxStreams) + " open streamed fields");
        pos = end;
    }
    return {};
}

void SseUnmasker::finish(std::string& out)
{
    if (failed_)
        return;
    // A final CR is a line ending now that nothing can follow it.
    if (crPending_) {
        crPending_ = false;
        if (lineEmpty_) {
            processEvent(pending_, out);
            pending_.clear();
        }
    }
    flushAll(out);
    dropDoneStreams();
    // An event without its blank line is never dispatched by a reader: pass it on as is.
    out += pending_;
    pending_.clear();
    resetFraming();
}

// Handles one complete event `ev` (ending with its blank line).
void SseUnmasker::processEvent(std::string_view ev, std::string& out)
{
    lines_.clear();
    std::string_view eventName;
    std::string_view firstData;
    std::size_t dataLines = 0;
    std::size_t pos = 0;
    while (pos < ev.size()) {
        std::size_t k = nextBreak(ev, pos);
        std::size_t termEnd = k + 1;
        if (k < ev.size() && ev[k] == '\r' && k + 1 < ev.size() && ev[k + 1] == '\n')
            termEnd = k + 2;
        if (k == pos)
            break; // the blank line
        std::string_view line = ev.substr(pos, k - pos);
        if (lines_.empty())
            eol_ = eolLiteral(ev.substr(k, termEnd - k));
        bool isData = false;
        if (line[0] != ':') {
            std::size_t colon = line.find(':');
            std::string_view name = line.substr(0, colon);
            std::string_view value;
            if (colon != std::string_view::npos) {
                value = line.substr(colon + 1);
                if (!value.empty() && value[0] == ' ')
                    value.remove_prefix(1);
            }
            if (name == "data") {
                isData = true;
                if (dataLines++ == 0) {
                    firstData = value;
                } else {
                    if (dataLines == 2)
                        joined_.assign(firstData);
                    joined_ += '\n';
                    joined_ += value;
                }
            } else if (name == "event") {
                eventName = value;
            }
        }
        lines_.push_back({pos, k, termEnd, isData});
        pos = termEnd;
    }

    if (dataLines == 0) {
        out += ev;
        return;
    }
    std::string_view data = dataLines == 1 ? firstData : std::string_view(joined_);
    if (data == "[DONE]") {
        // OpenAI's end marker: nothing may be held back past it.
        flushAll(out);
        dropDoneStreams();
        out += ev;
        return;
    }
    if (json::validate(data)) {
        if (processJson(data, eventName, out))
            emitEvent(ev, data_, true, out);
        else
            out += ev;
        return;
    }
    if (json::looksLikeContainer(data)) {
        // Broken JSON from upstream: restore whole tokens in the raw text,
        // which is what a JSON-aware pass would do to its strings.
        data_.clear();
        unsigned n = restoreInto(data, data_);
        restored_ += n;
        if (n)
            emitEvent(ev, data_, false, out);
        else
            out += ev;
        return;
    }
    out += ev; // not JSON at all
}

// Walks valid JSON `data`, filling strings_ (every key and string, in text
// order, with the streamed ones tagged), choices_, tools_ and `scan`.
void SseUnmasker::walkData(std::string_view data, Scan& scan)
{
    struct Visitor : json::Walker {
        SseUnmasker& u;
        std::string_view text;
        Scan& scan;
        json::Span lastKey{0, 0, false};

        Visitor(SseUnmasker& self, std::string_view t, Scan& s) : u(self), text(t), scan(s) {}

        Frame* top() { return u.frames_.empty() ? nullptr : &u.frames_.back(); }
        // The key of the value about to be visited; unusable inside arrays.
        bool keyIs(std::string_view name)
        {
            Frame* f = top();
            return f && f->object && is(text, lastKey, name);
        }
        // Position of the value about to be visited in its array.
        std::int64_t element()
        {
            Frame* f = top();
            return (f && !f->object) ? f->count++ : 0;
        }

        void open(bool object)
        {
            Frame* f = top();
            Ctx ctx = Ctx::Other;
            int record = -1;
            std::int64_t at = element();
            if (!f) {
                ctx = object ? Ctx::Root : Ctx::Other;
            } else {
                switch (f->ctx) {
                case Ctx::Root:
                    if (object && keyIs("delta")) {
                        ctx = Ctx::AnthDelta;
                    } else if (!object && keyIs("choices")) {
                        ctx = Ctx::OaChoices;
                        scan.hasChoices = true;
                    }
                    break;
                case Ctx::OaChoices:
                    if (object) {
                        ctx = Ctx::OaChoice;
                        record = static_cast<int>(u.choices_.size());
                        u.choices_.push_back({at, false});
                    }
                    break;
                case Ctx::OaChoice:
                    if (object && keyIs("delta")) {
                        ctx = Ctx::OaDelta;
                        record = f->record;
                    }
                    break;
                case Ctx::OaDelta:
                    if (!object && keyIs("tool_calls")) {
                        ctx = Ctx::OaToolCalls;
                        record = f->record;
                    }
                    break;
                case Ctx::OaToolCalls:
                    if (object) {
                        ctx = Ctx::OaToolCall;
                        record = static_cast<int>(u.tools_.size());
                        u.tools_.push_back({f->record, at});
                    }
                    break;
                case Ctx::OaToolCall:
                    if (object && keyIs("function")) {
                        ctx = Ctx::OaFunction;
                        record = f->record;
                    }
                    break;
                default:
                    break;
                }
            }
            u.frames_.push_back({ctx, object, record, 0});
        }
        void close()
        {
            if (!u.frames_.empty())
                u.frames_.pop_back();
        }

        void objectBegin(std::size_t) { open(true); }
        void arrayBegin(std::size_t) { open(false); }
        void objectEnd(std::size_t) { close(); }
        void arrayEnd(std::size_t) { close(); }

        void key(json::Span s)
        {
            lastKey = s;
            u.strings_.push_back({s, -1, -1});
        }

        void string(json::Span s)
        {
            element();
            Frame* f = top();
            int role = -1;
            int record = -1;
            if (f && f->object) {
                switch (f->ctx) {
                case Ctx::Root:
                    if (keyIs("type")) {
                        scan.rootType = s.escaped ? std::string_view() : rawOf(text, s);
                    } else if (keyIs("id")) {
                        scan.id = s;
                        scan.hasId = true;
                    } else if (keyIs("object")) {
                        scan.object = s;
                        scan.hasObject = true;
                    } else if (keyIs("model")) {
                        scan.model = s;
                        scan.hasModel = true;
                    }
                    break;
                case Ctx::AnthDelta:
                    if (keyIs("type"))
                        scan.deltaType = s.escaped ? std::string_view() : rawOf(text, s);
                    else if (keyIs("text"))
                        role = static_cast<int>(Field::AnthText);
                    else if (keyIs("thinking"))
                        role = static_cast<int>(Field::AnthThinking);
                    else if (keyIs("partial_json"))
                        role = static_cast<int>(Field::AnthPartialJson);
                    break;
                case Ctx::OaChoice:
                    if (keyIs("finish_reason"))
                        u.choices_[static_cast<std::size_t>(f->record)].finishing = true;
                    break;
                case Ctx::OaDelta:
                    if (keyIs("content"))
                        role = static_cast<int>(Field::OaContent);
                    else if (keyIs("reasoning_content"))
                        role = static_cast<int>(Field::OaReasoning);
                    record = f->record;
                    break;
                case Ctx::OaFunction:
                    if (keyIs("arguments"))
                        role = static_cast<int>(Field::OaArguments);
                    record = f->record;
                    break;
                default:
                    break;
                }
            }
            u.strings_.push_back({s, role, record});
        }

        void scalar(std::size_t b, std::size_t e)
        {
            element();
            Frame* f = top();
            if (!f || !f->object)
                return;
            std::string_view raw = text.substr(b, e - b);
            switch (f->ctx) {
            case Ctx::Root:
                if (keyIs("index")) {
                    scan.hasAnthIndex = parseIndex(raw, scan.anthIndex);
                } else if (keyIs("created")) {
                    scan.createdBegin = b;
                    scan.createdEnd = e;
                    scan.hasCreated = true;
                }
                break;
            case Ctx::OaChoice:
                if (keyIs("index"))
                    parseIndex(raw, u.choices_[static_cast<std::size_t>(f->record)].index);
                else if (keyIs("finish_reason"))
                    u.choices_[static_cast<std::size_t>(f->record)].finishing = raw != "null";
                break;
            case Ctx::OaToolCall:
                if (keyIs("index"))
                    parseIndex(raw, u.tools_[static_cast<std::size_t>(f->record)].index);
                break;
            default:
                break;
            }
        }
    };

    strings_.clear();
    choices_.clear();
    tools_.clear();
    frames_.clear();
    Visitor v(*this, data, scan);
    json::walk(data, v);
}

// Restores the strings of one event's valid JSON data into data_; streamed
// fields go through their stream's restorer. Emits the synthetic flush events
// this event calls for into `out` (they precede it). Returns whether data_
// differs from `data`.
bool SseUnmasker::processJson(std::string_view data, std::string_view eventName, std::string& out)
{
    ++eventNo_;
    Scan scan{};
    walkData(data, scan);
    std::string_view type = scan.rootType.empty() ? eventName : scan.rootType;

    // Tie the streamed strings to their streams.
    const bool blockDelta = type == "content_block_delta";
    streamOf_.assign(strings_.size(), -1);
    for (std::size_t i = 0; i < strings_.size(); ++i) {
        StringRef& s = strings_[i];
        if (s.role < 0)
            continue;
        auto field = static_cast<Field>(s.role);
        std::int64_t index = -1;
        std::int64_t toolIndex = 0;
        bool streamed = false;
        switch (field) {
        case Field::AnthText:
            streamed = blockDelta && scan.deltaType == "text_delta";
            break;
        case Field::AnthThinking:
            streamed = blockDelta && scan.deltaType == "thinking_delta";
            break;
        case Field::AnthPartialJson:
            streamed = blockDelta && scan.deltaType == "input_json_delta";
            break;
        case Field::OaContent:
        case Field::OaReasoning:
            streamed = s.record >= 0;
            if (streamed)
                index = choices_[static_cast<std::size_t>(s.record)].index;
            break;
        case Field::OaArguments:
            streamed = s.record >= 0;
            if (streamed) {
                const ToolRec& t = tools_[static_cast<std::size_t>(s.record)];
                index = choices_[static_cast<std::size_t>(t.choice)].index;
                toolIndex = t.index;
            }
            break;
        }
        if (field == Field::AnthText || field == Field::AnthThinking || field == Field::AnthPartialJson)
            index = scan.hasAnthIndex ? scan.anthIndex : -1;
        if (!streamed) {
            s.role = -1;
            continue;
        }
        int slot = findOrAddStream(field, index, toolIndex, eventName);
        if (slot < 0) {
            failed_ = true;
            return false;
        }
        streamOf_[i] = slot;
    }

    // Flushes this event calls for, before it.
    if (type == "content_block_stop") {
        std::int64_t index = scan.hasAnthIndex ? scan.anthIndex : -1;
        for (Stream& s : streams_) {
            if (!s.done && s.field <= Field::AnthPartialJson && s.index == index)
                flushStream(s, out);
        }
    } else if (type == "message_stop" || type == "error") {
        flushAll(out);
    }
    if (scan.hasChoices) {
        rememberOpenAiHeader(data, scan);
        for (const ChoiceRec& c : choices_) {
            if (!c.finishing)
                continue;
            for (Stream& s : streams_) {
                if (s.done || s.field < Field::OaContent || s.index != c.index)
                    continue;
                if (s.touched == eventNo_)
                    s.done = true; // fed below, then finished in place
                else
                    flushStream(s, out);
            }
        }
    }

    // Rebuild the data with every string restored.
    data_.clear();
    bool changed = false;
    std::size_t copied = 0;
    for (std::size_t i = 0; i < strings_.size(); ++i) {
        const json::Span& sp = strings_[i].span;
        data_.append(data.substr(copied, sp.begin - copied));
        std::string_view raw = rawOf(data, sp);
        const std::size_t at = data_.size();
        if (streamOf_[i] >= 0) {
            Stream& s = streams_[static_cast<std::size_t>(streamOf_[i])];
            s.restorer.feed(raw, data_);
            if (s.done)
                s.restorer.finish(data_);
            if (!changed && std::string_view(data_).substr(at) != raw)
                changed = true;
        } else {
            unsigned n = restoreInto(raw, data_);
            restored_ += n;
            changed = changed || n > 0;
        }
        copied = sp.end;
    }
    data_.append(data.substr(copied));
    dropDoneStreams();
    return changed;
}

int SseUnmasker::findOrAddStream(Field field, std::int64_t index, std::int64_t toolIndex,
                                 std::string_view eventName)
{
    for (std::size_t i = 0; i < streams_.size(); ++i) {
        Stream& s = streams_[i];
        if (!s.done && s.field == field && s.index == index && s.toolIndex == toolIndex) {
            s.touched = eventNo_;
            return static_cast<int>(i);
        }
    }
    if (streams_.size() >= kMaxStreams)
        return -1;
    Escape esc = (field == Field::AnthPartialJson || field == Field::OaArguments) ? Escape::JsonInJson
                                                                                  : Escape::Json;
    streams_.push_back(Stream{field, index, toolIndex, TokenRestorer(*map_, esc), std::string(eventName),
                              !eventName.empty(), eventNo_, false});
    return static_cast<int>(streams_.size() - 1);
}

// One-shot whole-token restoration of a complete raw JSON string (or raw
// JSON text), appended to `dst`. Returns the number of tokens restored.
unsigned SseUnmasker::restoreInto(std::string_view raw, std::string& dst) const
{
    // feed + finish on a fresh restorer is restoreAll without its temporary string.
    TokenRestorer r(*map_, Escape::Json);
    r.feed(raw, dst);
    r.finish(dst);
    return r.restored();
}

// Writes a changed event: its non-data lines as they were, and its data as one
// `data:` line in place of the first data line (same line ending). Valid JSON
// can hold raw line feeds only as whitespace, so they become spaces; other
// data keeps its lines, as separate `data:` lines.
void SseUnmasker::emitEvent(std::string_view ev, std::string_view data, bool dataIsJson,
                            std::string& out) const
{
    bool first = true;
    std::size_t blank = 0;
    for (const Line& line : lines_) {
        blank = line.termEnd;
        if (!line.isData) {
            out.append(ev.substr(line.begin, line.termEnd - line.begin));
            continue;
        }
        if (!first)
            continue;
        first = false;
        std::string_view term = ev.substr(line.end, line.termEnd - line.end);
        if (dataIsJson) {
            out += "data: ";
            const std::size_t at = out.size();
            out += data;
            std::replace(out.begin() + static_cast<std::ptrdiff_t>(at), out.end(), '\n', ' ');
            out += term;
        } else {
            std::size_t p = 0;
            while (true) {
                std::size_t nl = data.find('\n', p);
                out += "data: ";
                out += data.substr(p, nl == std::string_view::npos ? std::string_view::npos : nl - p);
                out += term;
                if (nl == std::string_view::npos)
                    break;
                p = nl + 1;
            }
        }
    }
    out.append(ev.substr(blank));
}

// Remembers the identifying fields of an OpenAI chunk, raw, for the synthetic
// chunks that flush held-back text (they copy id, object, created, model).
void SseUnmasker::rememberOpenAiHeader(std::string_view data, const Scan& scan)
{
    oaHeader_.clear();
    auto str = [&](const char* name, const json::Span& s) {
        oaHeader_ += '"';
        oaHeader_ += name;
        oaHeader_ += "\":\"";
        oaHeader_ += rawOf(data, s);
        oaHeader_ += "\",";
    };
    if (scan.hasId)
        str("id", scan.id);
    if (scan.hasObject)
        str("object", scan.object);
    if (scan.hasCreated) {
        oaHeader_ += "\"created\":";
        oaHeader_ += data.substr(scan.createdBegin, scan.createdEnd - scan.createdBegin);
        oaHeader_ += ',';
    }
    if (scan.hasModel)
        str("model", scan.model);
}

// Ends a stream: its held-back tail goes out as a synthetic delta event of
// the same kind (nothing if there is no tail). The stream is removed by
// dropDoneStreams().
void SseUnmasker::flushStream(Stream& s, std::string& out)
{
    s.done = true;
    field_.clear();
    s.restorer.finish(field_);
    if (field_.empty())
        return;
    if (s.hasEventName) {
        out += "event: ";
        out += s.eventName;
        out += eol_;
    }
    out += "data: ";
    switch (s.field) {
    case Field::AnthText:
    case Field::AnthThinking:
    case Field::AnthPartialJson:
        out += "{\"type\":\"content_block_delta\",";
        if (s.index >= 0) {
            out += "\"index\":";
            appendInt(s.index, out);
            out += ',';
        }
        out += s.field == Field::AnthText       ? "\"delta\":{\"type\":\"text_delta\",\"text\":\""
               : s.field == Field::AnthThinking ? "\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\""
                                                : "\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"";
        out += field_;
        out += "\"}}";
        break;
    case Field::OaContent:
    case Field::OaReasoning:
    case Field::OaArguments:
        out += '{';
        // The header is raw JSON from upstream: restore it like the chunk it came from.
        restoreInto(oaHeader_, out);
        out += "\"choices\":[{\"index\":";
        appendInt(s.index, out);
        if (s.field == Field::OaArguments) {
            out += ",\"delta\":{\"tool_calls\":[{\"index\":";
            appendInt(s.toolIndex, out);
            out += ",\"function\":{\"arguments\":\"";
            out += field_;
            out += "\"}}]}";
        } else {
            out += s.field == Field::OaContent ? ",\"delta\":{\"content\":\"" : ",\"delta\":{\"reasoning_content\":\"";
            out += field_;
            out += "\"}";
        }
        out += ",\"finish_reason\":null}]}";
        break;
    }
    out += eol_;
    out += eol_;
}

void SseUnmasker::flushAll(std::string& out)
{
    for (Stream& s : streams_) {
        if (!s.done)
            flushStream(s, out);
    }
}

void SseUnmasker::dropDoneStreams()
{
    for (const Stream& s : streams_) {
        if (s.done)
            restored_ += s.restorer.restored();
    }
    std::erase_if(streams_, [](const Stream& s) { return s.done; });
}

} // namespace veil::mask
