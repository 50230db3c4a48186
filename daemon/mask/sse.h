#pragma once

// Incremental unmasking of a text/event-stream response (Anthropic Messages
// and OpenAI Chat Completions streams). Bytes in, bytes out, no I/O.
//
// The stream is cut into events at blank lines (HTML "server-sent events"
// framing: LF, CRLF or CR line endings, mixed). Only the current incomplete
// event is buffered; streamed text fields keep a per-field TokenRestorer so a
// token split across two deltas is still restored, holding back at most a
// token-long tail between events.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "mask/json.h"
#include "mask/mapping.h"
#include "mask/restore.h"

namespace veil::mask {

// Contract, per event:
// - Events without a change go out byte-identical. A changed event keeps its
//   other lines and gets one `data:` line (the first data line's ending).
// - Streamed fields (one TokenRestorer each): Anthropic content_block_delta
//   text_delta.text, thinking_delta.thinking (Escape::Json) and
//   input_json_delta.partial_json (JsonInJson), keyed by block index; OpenAI
//   choices[].delta.content, .reasoning_content (Json) and
//   .tool_calls[].function.arguments (JsonInJson), keyed by choice (+ tool
//   call) index. Every other key and string is restored in one shot.
// - Held-back text is released as a synthetic delta event (same field, one per
//   field) right before: Anthropic content_block_stop (that block),
//   message_stop and error (all); an OpenAI chunk whose choice has a non-null
//   finish_reason (that choice; a field present in that chunk is finished in
//   place instead); `data: [DONE]` (all); finish() (all).
// - Data that is not JSON passes untouched; data that looks like JSON but does
//   not parse gets one-shot restoration of its raw text.
class SseUnmasker {
public:
    // `mapping` is borrowed and must outlive the unmasker.
    explicit SseUnmasker(const Mapping& mapping, std::size_t maxEventBytes = 1 << 20);

    // Feeds bytes as they arrive (split anywhere) and appends to `out` every
    // event that is complete. `bytes` must not point into `out`. An error
    // (an event longer than maxEventBytes, too many open streamed fields) is
    // final: the unmasker is spent and later calls fail or emit nothing.
    Result<void> feed(std::string_view bytes, std::string& out);

    // End of stream: emits the held-back text as synthetic delta events, then
    // the bytes of an incomplete trailing event as they are.
    void finish(std::string& out);

    // Tokens restored so far.
    unsigned restored() const;

private:
    // A streamed string field: an Anthropic content block's text / thinking /
    // partial_json, or an OpenAI choice's content / reasoning_content / a tool
    // call's function.arguments.
    enum class Field : std::uint8_t {
        AnthText,
        AnthThinking,
        AnthPartialJson,
        OaContent,
        OaReasoning,
        OaArguments,
    };

    struct Stream {
        Field field;
        std::int64_t index;     // Anthropic block index or OpenAI choice index
        std::int64_t toolIndex; // OpenAI tool call index (OaArguments), else 0
        TokenRestorer restorer;
        std::string eventName;  // `event:` value of the creating event, if any
        bool hasEventName;
        std::uint64_t touched;  // number of the last event that fed it
        bool done;              // finished, to be removed after this event
    };

    // One string of the event's data JSON (key or value), in text order.
    struct StringRef {
        json::Span span;
        int role;   // -1: restore in one shot; else a Field
        int record; // OpenAI choice / tool call record, or -1
    };

    // Choice objects and tool call objects of one OpenAI chunk.
    struct ChoiceRec {
        std::int64_t index;
        bool finishing;
    };
    struct ToolRec {
        int choice;
        std::int64_t index;
    };

    // Where the walk of the data JSON is: only the paths the unmasker reads
    // get their own context, everything else is Other.
    enum class Ctx : std::uint8_t {
        Root,
        AnthDelta,   // root.delta
        OaChoices,   // root.choices
        OaChoice,    // root.choices[k]
        OaDelta,     // root.choices[k].delta
        OaToolCalls, // root.choices[k].delta.tool_calls
        OaToolCall,  // root.choices[k].delta.tool_calls[t]
        OaFunction,  // root.choices[k].delta.tool_calls[t].function
        Other,
    };
    struct Frame {
        Ctx ctx;
        bool object;
        int record;         // choice or tool call record, or -1
        std::int64_t count; // elements seen so far (arrays)
    };

    // One line of the current event.
    struct Line {
        std::size_t begin;   // content
        std::size_t end;
        std::size_t termEnd; // end of the line terminator
        bool isData;
    };

    // What the walk of one event's data found.
    struct Scan {
        std::string_view rootType;
        std::string_view deltaType;
        std::int64_t anthIndex;
        bool hasAnthIndex;
        bool hasChoices;
        json::Span id, object, model;
        std::size_t createdBegin, createdEnd;
        bool hasId, hasObject, hasModel, hasCreated;
    };

    bool findEventEnd(std::string_view bytes, std::size_t from, std::size_t& end);
    void resetFraming();
    void processEvent(std::string_view ev, std::string& out);
    bool processJson(std::string_view data, std::string_view eventName, std::string& out);
    void walkData(std::string_view data, Scan& scan);
    int findOrAddStream(Field field, std::int64_t index, std::int64_t toolIndex, std::string_view eventName);
    unsigned restoreInto(std::string_view raw, std::string& dst) const;
    void emitEvent(std::string_view ev, std::string_view data, bool dataIsJson, std::string& out) const;
    void flushStream(Stream& s, std::string& out);
    void flushAll(std::string& out);
    void rememberOpenAiHeader(std::string_view data, const Scan& scan);
    void dropDoneStreams();

    const Mapping* map_;
    std::size_t maxEventBytes_;
    bool failed_ = false;

    // Framing state of the current (incomplete) event.
    std::string pending_;
    bool lineEmpty_ = true; // no content byte since the last line terminator
    bool crPending_ = false; // the last byte seen was a CR: CR or CRLF?

    std::string_view eol_ = "\n"; // line ending of the last event, for synthetic ones
    std::string oaHeader_;        // `"id":…,"object":…,"created":…,"model":…,` of the last chunk
    std::uint64_t eventNo_ = 0;
    unsigned restored_ = 0; // by one-shot restoration and by removed streams
    std::vector<Stream> streams_;

    // Per-event scratch, kept to reuse its capacity.
    std::vector<Line> lines_;
    std::vector<StringRef> strings_;
    std::vector<ChoiceRec> choices_;
    std::vector<ToolRec> tools_;
    std::vector<int> streamOf_; // strings_[i] → streams_ slot, or -1
    std::vector<Frame> frames_;
    std::string joined_;
    std::string data_;
    std::string field_;
};

} // namespace veil::mask
