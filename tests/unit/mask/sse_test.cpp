#include <catch2/catch.hpp>

#include <simdjson.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "mask/json.h"
#include "mask/sse.h"

using namespace veil::mask;

namespace {

const std::string kEc2a = "i-0123456789abcdef0";
const std::string kEc2b = "i-0fedcba9876543210";
const std::string kVpc = "vpc-0abc1234";
const std::string kAccount = "123456789012";
const std::string kOdd = "a\"b\\c"; // needs JSON escaping: a"b\c

Mapping sample()
{
    Mapping m;
    m.add("EC2_001", kEc2a);
    m.add("EC2_002", kEc2b);
    m.add("VPC_001", kVpc);
    m.add("ACCOUNT_001", kAccount);
    m.add("ODD_001", kOdd);
    return m;
}

// One event as a reader following the HTML spec sees it.
struct Event {
    std::string name;
    std::string data;
    std::string id;
    bool hasData = false;
};

// A small SSE reader: CR, LF and CRLF line endings; an event is dispatched at
// a blank line if it has a data field; a trailing incomplete event is dropped.
std::vector<Event> readSse(std::string_view s)
{
    std::vector<Event> events;
    Event cur;
    std::size_t pos = 0;
    while (pos < s.size()) {
        std::size_t k = s.find_first_of("\r\n", pos);
        if (k == std::string_view::npos)
            break; // incomplete line
        std::string_view line = s.substr(pos, k - pos);
        pos = k + 1;
        if (s[k] == '\r' && pos < s.size() && s[pos] == '\n')
            ++pos;
        if (line.empty()) {
            if (cur.hasData)
                events.push_back(cur);
            cur = Event{};
            continue;
        }
        if (line[0] == ':')
            continue;
        std::size_t colon = line.find(':');
        std::string_view name = line.substr(0, colon);
        std::string_view value;
        if (colon != std::string_view::npos) {
            value = line.substr(colon + 1);
            if (!value.empty() && value[0] == ' ')
                value.remove_prefix(1);
        }
        if (name == "data") {
            if (cur.hasData)
                cur.data += '\n';
            cur.data += value;
            cur.hasData = true;
        } else if (name == "event") {
            cur.name = std::string(value);
        } else if (name == "id") {
            cur.id = std::string(value);
        }
    }
    return events;
}

std::string unmask(const Mapping& m, const std::vector<std::string_view>& chunks, unsigned* restored = nullptr)
{
    SseUnmasker u(m);
    std::string out;
    for (std::string_view c : chunks)
        REQUIRE(u.feed(c, out).ok());
    u.finish(out);
    if (restored)
        *restored = u.restored();
    return out;
}

std::string unmaskWhole(const Mapping& m, std::string_view stream, unsigned* restored = nullptr)
{
    return unmask(m, {stream}, restored);
}

std::string toCrlf(std::string_view s)
{
    std::string o;
    for (char c : s) {
        if (c == '\n')
            o += '\r';
        o += c;
    }
    return o;
}

std::string toCr(std::string_view s)
{
    std::string o(s);
    for (char& c : o) {
        if (c == '\n')
            c = '\r';
    }
    return o;
}

// Every event's data is valid JSON (or the OpenAI end marker).
void requireValidData(const std::vector<Event>& events)
{
    for (const Event& e : events) {
        if (e.data == "[DONE]")
            continue;
        std::string why;
        INFO(e.data);
        REQUIRE(json::validate(e.data, &why));
    }
}

std::string str(simdjson::dom::element e)
{
    std::string_view sv;
    REQUIRE(e.get(sv) == simdjson::SUCCESS);
    return std::string(sv);
}

std::int64_t num(simdjson::dom::element e)
{
    std::int64_t v = 0;
    REQUIRE(e.get(v) == simdjson::SUCCESS);
    return v;
}

// Streamed text of an Anthropic stream, reassembled per content block.
struct AnthBlocks {
    std::map<std::int64_t, std::string> text, thinking, json;
    std::size_t deltas = 0;
};

AnthBlocks reassembleAnthropic(const std::vector<Event>& events)
{
    AnthBlocks b;
    simdjson::dom::parser parser;
    for (const Event& e : events) {
        simdjson::dom::element doc;
        REQUIRE(parser.parse(e.data).get(doc) == simdjson::SUCCESS);
        if (str(doc["type"]) != "content_block_delta")
            continue;
        ++b.deltas;
        std::int64_t index = num(doc["index"]);
        simdjson::dom::element delta = doc["delta"];
        std::string type = str(delta["type"]);
        if (type == "text_delta")
            b.text[index] += str(delta["text"]);
        else if (type == "thinking_delta")
            b.thinking[index] += str(delta["thinking"]);
        else if (type == "input_json_delta")
            b.json[index] += str(delta["partial_json"]);
    }
    return b;
}

// Streamed text of an OpenAI stream, per choice and per (choice, tool call).
struct OaChoices {
    std::map<std::int64_t, std::string> content, reasoning;
    std::map<std::pair<std::int64_t, std::int64_t>, std::string> arguments;
};

OaChoices reassembleOpenAi(const std::vector<Event>& events)
{
    OaChoices c;
    simdjson::dom::parser parser;
    for (const Event& e : events) {
        if (e.data == "[DONE]")
            continue;
        simdjson::dom::element doc;
        REQUIRE(parser.parse(e.data).get(doc) == simdjson::SUCCESS);
        simdjson::dom::array choices;
        REQUIRE(doc["choices"].get(choices) == simdjson::SUCCESS);
        for (simdjson::dom::element ch : choices) {
            std::int64_t index = num(ch["index"]);
            simdjson::dom::element delta;
            if (ch["delta"].get(delta))
                continue;
            std::string_view sv;
            if (!delta["content"].get(sv))
                c.content[index] += sv;
            if (!delta["reasoning_content"].get(sv))
                c.reasoning[index] += sv;
            simdjson::dom::array calls;
            if (!delta["tool_calls"].get(calls)) {
                for (simdjson::dom::element call : calls) {
                    std::int64_t t = num(call["index"]);
                    if (!call["function"]["arguments"].get(sv))
                        c.arguments[{index, t}] += sv;
                }
            }
        }
    }
    return c;
}

// The value of `key` in the JSON object text `objectText`.
std::string jsonField(const std::string& objectText, const char* key)
{
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    REQUIRE(parser.parse(objectText).get(doc) == simdjson::SUCCESS);
    return str(doc[key]);
}

const char* const kAnthropic =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01\",\"type\":\"message\",\"role\":\"assistant\","
    "\"model\":\"claude-sonnet-4\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":10,\"output_tokens\":1}}}\n"
    "\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\"}}\n"
    "\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"Check EC2_0\"}}\n"
    "\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"01 first.\"}}\n"
    "\n"
    "event: content_block_stop\n"
    "data: {\"type\":\"content_block_stop\",\"index\":0}\n"
    "\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n"
    "\n"
    "event: ping\n"
    "data: {\"type\": \"ping\"}\n"
    "\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"Instance EC2_0\"}}\n"
    "\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\","
    "\"text\":\"01 is in VPC_001 \\u00e9t\xc3\xa9 \xf0\x9f\x9a\x80; EC2_0012 is not ours.\\nNext: \\\"EC2_002\\\"\"}}\n"
    "\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\" and ACCOUNT_\"}}\n"
    "\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"001\"}}\n"
    "\n"
    "event: content_block_stop\n"
    "data: {\"type\":\"content_block_stop\",\"index\":1}\n"
    "\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_01\","
    "\"name\":\"describe\",\"input\":{\"hint\":\"EC2_002\"}}}\n"
    "\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\"}}\n"
    "\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\","
    "\"partial_json\":\"{\\\"instance\\\": \\\"EC\"}}\n"
    "\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\","
    "\"partial_json\":\"2_001\\\", \\\"secret\\\": \\\"ODD_0\"}}\n"
    "\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\","
    "\"partial_json\":\"01\\\"}\"}}\n"
    "\n"
    "event: content_block_stop\n"
    "data: {\"type\":\"content_block_stop\",\"index\":2}\n"
    "\n"
    "event: message_delta\n"
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},"
    "\"usage\":{\"output_tokens\":42}}\n"
    "\n"
    "event: message_stop\n"
    "data: {\"type\":\"message_stop\"}\n"
    "\n";

const std::string kAnthThinking = "Check " + kEc2a + " first.";
const std::string kAnthText = "Instance " + kEc2a + " is in " + kVpc +
                              " \xc3\xa9t\xc3\xa9 \xf0\x9f\x9a\x80; EC2_0012 is not ours.\nNext: \"" + kEc2b +
                              "\" and " + kAccount;

// Everything a correct unmasking of kAnthropic (in any line ending style) shows a reader.
void checkAnthropic(const std::string& out, std::size_t inputEvents)
{
    std::vector<Event> events = readSse(out);
    requireValidData(events);
    // One synthetic delta: block 1 ends with a whole token, held until its stop.
    REQUIRE(events.size() == inputEvents + 1);
    AnthBlocks b = reassembleAnthropic(events);
    CHECK(b.thinking[0] == kAnthThinking);
    CHECK(b.text[1] == kAnthText);
    CHECK(jsonField(b.json[2], "instance") == kEc2a);
    CHECK(jsonField(b.json[2], "secret") == kOdd);
    // The synthetic delta sits right before block 1's stop.
    bool seen = false;
    for (std::size_t i = 0; i + 1 < events.size(); ++i) {
        if (events[i + 1].data == "{\"type\":\"content_block_stop\",\"index\":1}") {
            seen = true;
            CHECK(events[i].name == "content_block_delta");
            CHECK(events[i].data.find(kAccount) != std::string::npos);
        }
    }
    CHECK(seen);
}

std::string openAiChunk(const std::string& choices)
{
    return "data: {\"id\":\"chatcmpl-9\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
           "\"model\":\"gpt-4o\",\"choices\":[" +
           choices + "]}\n\n";
}

std::string openAiContent(int choice, const std::string& rawContent, const char* finish = "null")
{
    return openAiChunk("{\"index\":" + std::to_string(choice) + ",\"delta\":{\"content\":\"" + rawContent +
                       "\"},\"finish_reason\":" + finish + "}");
}

std::string openAiArgs(int choice, int tool, const std::string& rawArgs)
{
    return openAiChunk("{\"index\":" + std::to_string(choice) + ",\"delta\":{\"tool_calls\":[{\"index\":" +
                       std::to_string(tool) + ",\"function\":{\"arguments\":\"" + rawArgs +
                       "\"}}]},\"finish_reason\":null}");
}

const std::string kOpenAi =
    openAiChunk("{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null},"
                "{\"index\":1,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}") +
    openAiContent(0, "Instance EC2_0") + openAiContent(1, "Other: EC2_00") +
    openAiContent(0, "01 runs in VPC_00") + openAiContent(1, "2 ok") + openAiContent(0, "1") +
    openAiChunk("{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\","
                "\"function\":{\"name\":\"describe\",\"arguments\":\"\"}}]},\"finish_reason\":null}") +
    openAiArgs(0, 0, "{\\\"id\\\": \\\"EC2_0") + openAiArgs(0, 0, "02\\\", \\\"odd\\\": \\\"ODD_001") +
    openAiArgs(0, 0, "\\\"}") +
    openAiChunk("{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}") +
    openAiContent(1, " and ACCOUNT_001", "\"stop\"") + "data: [DONE]\n\n";

void checkOpenAi(const std::string& out)
{
    std::vector<Event> events = readSse(out);
    requireValidData(events);
    // One synthetic chunk: choice 0's content held "VPC_001" until finish_reason.
    REQUIRE(events.size() == readSse(kOpenAi).size() + 1);
    OaChoices c = reassembleOpenAi(events);
    CHECK(c.content[0] == "Instance " + kEc2a + " runs in " + kVpc);
    CHECK(c.content[1] == "Other: " + kEc2b + " ok and " + kAccount);
    CHECK(jsonField(c.arguments[{0, 0}], "id") == kEc2b);
    CHECK(jsonField(c.arguments[{0, 0}], "odd") == kOdd);
    CHECK(events.back().data == "[DONE]");
}

} // namespace

TEST_CASE("an Anthropic stream gets its tokens back, including tokens split across deltas")
{
    Mapping m = sample();
    unsigned restored = 0;
    std::string out = unmaskWhole(m, kAnthropic, &restored);
    checkAnthropic(out, readSse(kAnthropic).size());
    // thinking 1, text 4, tool_use start input 1, partial_json 2.
    CHECK(restored == 8);
}

TEST_CASE("events the unmasker does not change go out byte-identical")
{
    Mapping m = sample();
    std::string out = unmaskWhole(m, kAnthropic);
    for (const char* ev : {"event: ping\ndata: {\"type\": \"ping\"}\n\n",
                           "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
                           "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":2}\n\n"}) {
        CHECK(out.find(ev) != std::string::npos);
    }
    CHECK(out.rfind("event: message_start\ndata: {\"type\":\"message_start\",", 0) == 0);
    // A stream without tokens is returned as is.
    Mapping empty;
    CHECK(unmaskWhole(empty, kAnthropic) == kAnthropic);
}

TEST_CASE("a token split across two text deltas is restored in the second one")
{
    Mapping m = sample();
    std::string in = "event: content_block_delta\n"
                     "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"EC2_0\"}}\n\n"
                     "event: content_block_delta\n"
                     "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"01 is\"}}\n\n";
    SseUnmasker u(m);
    std::string out;
    REQUIRE(u.feed(in, out).ok());
    // The first delta goes out with the safe prefix only: here, nothing.
    CHECK(out == "event: content_block_delta\n"
                 "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"\"}}\n\n"
                 "event: content_block_delta\n"
                 "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"" +
                     kEc2a + " is\"}}\n\n");
    CHECK(u.restored() == 1);
}

TEST_CASE("a longer token is not restored from the prefix that is a shorter token")
{
    Mapping m = sample();
    auto delta = [](const char* text) {
        return std::string("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
                           "\"delta\":{\"type\":\"text_delta\",\"text\":\"") +
               text + "\"}}\n\n";
    };
    std::string in = delta("EC2_001") + delta("2 and EC2_001") + delta("x, EC2_001") + delta(" end") +
                     "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n";
    std::string out = unmaskWhole(m, in);
    std::vector<Event> events = readSse(out);
    requireValidData(events);
    CHECK(events.size() == 5);
    CHECK(reassembleAnthropic(events).text[0] == "EC2_0012 and EC2_001x, " + kEc2a + " end");
}

TEST_CASE("a token at the very end of a block is flushed at content_block_stop, before the stop")
{
    Mapping m = sample();
    std::string in = "event: content_block_delta\n"
                     "data: {\"type\":\"content_block_delta\",\"index\":3,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"see EC2_002\"}}\n\n"
                     "event: content_block_stop\n"
                     "data: {\"type\":\"content_block_stop\",\"index\":3}\n\n";
    std::string out = unmaskWhole(m, in);
    CHECK(out == "event: content_block_delta\n"
                 "data: {\"type\":\"content_block_delta\",\"index\":3,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"see \"}}\n\n"
                 "event: content_block_delta\n"
                 "data: {\"type\":\"content_block_delta\",\"index\":3,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"" +
                     kEc2b + "\"}}\n\n"
                 "event: content_block_stop\n"
                 "data: {\"type\":\"content_block_stop\",\"index\":3}\n\n");
}

TEST_CASE("tool input split mid-token parses to the original, escaped for JSON inside JSON")
{
    Mapping m = sample();
    auto delta = [](const std::string& raw) {
        return "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,"
               "\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"" +
               raw + "\"}}\n\n";
    };
    // Decoded partial_json: {"a": "ODD_001", "b": ["EC2_001", "ACCOUNT_001"]}
    std::string in = delta("{\\\"a\\\": \\\"OD") + delta("D_001\\\", \\\"b\\\": [\\\"EC2_0") +
                     delta("01\\\", \\\"ACCOUNT_001") + delta("\\\"]}") +
                     "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n";
    std::string out = unmaskWhole(m, in);
    std::vector<Event> events = readSse(out);
    requireValidData(events);
    REQUIRE(events.size() == 5);
    std::string input = reassembleAnthropic(events).json[1];
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    REQUIRE(parser.parse(input).get(doc) == simdjson::SUCCESS);
    CHECK(str(doc["a"]) == kOdd);
    CHECK(str(doc["b"].at(0)) == kEc2a);
    CHECK(str(doc["b"].at(1)) == kAccount);
}

TEST_CASE("other strings of any event are restored in one shot")
{
    Mapping m = sample();
    std::string in =
        "event: message_start\n"
        "data: {\"type\":\"message_start\",\"message\":{\"content\":[{\"type\":\"text\",\"text\":\"EC2_001\"}],"
        "\"EC2_002\":\"key\"}}\n\n"
        "event: content_block_start\n"
        "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\","
        "\"input\":{\"odd\":\"ODD_001\"}}}\n\n"
        "event: message_delta\n"
        "data: {\"type\":\"message_delta\",\"delta\":{\"text\":\"EC2_001\"}}\n\n";
    unsigned restored = 0;
    std::string out = unmaskWhole(m, in, &restored);
    std::vector<Event> events = readSse(out);
    requireValidData(events);
    REQUIRE(events.size() == 3);
    CHECK(events[0].data == "{\"type\":\"message_start\",\"message\":{\"content\":[{\"type\":\"text\",\"text\":\"" +
                                kEc2a + "\"}],\"" + kEc2b + "\":\"key\"}}");
    CHECK(events[1].data.find(R"("odd":"a\"b\\c")") != std::string::npos);
    // A delta that is not a content block delta is not streamed: nothing held back.
    CHECK(events[2].data == "{\"type\":\"message_delta\",\"delta\":{\"text\":\"" + kEc2a + "\"}}");
    CHECK(restored == 4);
}

TEST_CASE("the Anthropic stream split at every byte offset unmasks the same")
{
    Mapping m = sample();
    std::string_view s = kAnthropic;
    const std::string whole = unmaskWhole(m, s);
    const std::size_t inputEvents = readSse(s).size();
    for (std::size_t cut = 0; cut <= s.size(); ++cut) {
        std::string out = unmask(m, {s.substr(0, cut), s.substr(cut)});
        INFO("cut at " << cut);
        REQUIRE(out == whole);
        checkAnthropic(out, inputEvents);
    }
}

TEST_CASE("the Anthropic stream fed byte by byte, in every line ending style, unmasks the same")
{
    Mapping m = sample();
    for (const std::string& s : {std::string(kAnthropic), toCrlf(kAnthropic), toCr(kAnthropic)}) {
        const std::string whole = unmaskWhole(m, s);
        checkAnthropic(whole, readSse(s).size());
        std::vector<std::string_view> bytes;
        for (std::size_t i = 0; i < s.size(); ++i)
            bytes.push_back(std::string_view(s).substr(i, 1));
        CHECK(unmask(m, bytes) == whole);
        // Three pieces, so a cut lands between every CR and LF.
        for (std::size_t cut = 0; cut <= s.size(); cut += 3) {
            std::string_view v = s;
            std::size_t cut2 = std::min(v.size(), cut + 1);
            REQUIRE(unmask(m, {v.substr(0, cut), v.substr(cut, cut2 - cut), v.substr(cut2)}) == whole);
        }
    }
}

TEST_CASE("CRLF streams keep CRLF in the events that change")
{
    Mapping m = sample();
    std::string in = toCrlf(kAnthropic);
    std::string out = unmaskWhole(m, in);
    for (std::size_t i = 0; i < out.size(); ++i) {
        if (out[i] == '\n') {
            REQUIRE(i > 0);
            REQUIRE(out[i - 1] == '\r');
        }
        if (out[i] == '\r') {
            REQUIRE(i + 1 < out.size());
            REQUIRE(out[i + 1] == '\n');
        }
    }
    checkAnthropic(out, readSse(in).size());
}

TEST_CASE("mixed line endings frame events like a spec reader does")
{
    Mapping m = sample();
    // \r\r, \n\n, \r\n\r\n, \r\n\n and \n\r\n all end an event.
    std::string in = "data: {\"text\":\"EC2_001\"}\r\r"
                     "data: {\"text\":\"EC2_002\"}\n\n"
                     "data: {\"text\":\"VPC_001\"}\r\n\r\n"
                     "event: x\r\ndata: {\"text\":\"ACCOUNT_001\"}\r\n\n"
                     "data: {\"text\":\"ODD_001\"}\n\r\n";
    std::vector<std::string> expected = {kEc2a, kEc2b, kVpc, kAccount, kOdd};
    const std::string whole = unmaskWhole(m, in);
    for (std::size_t cut = 0; cut <= in.size(); ++cut) {
        std::string_view v = in;
        std::string out = unmask(m, {v.substr(0, cut), v.substr(cut)});
        REQUIRE(out == whole);
    }
    std::vector<Event> events = readSse(whole);
    requireValidData(events);
    REQUIRE(events.size() == expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i)
        CHECK(jsonField(events[i].data, "text") == expected[i]);
    CHECK(events[3].name == "x");
    // Each event kept its own line endings.
    CHECK(whole.find("data: {\"text\":\"" + kEc2a + "\"}\r\r") == 0);
    CHECK(whole.find("event: x\r\ndata: {\"text\":\"" + kAccount + "\"}\r\n\n") != std::string::npos);
}

TEST_CASE("multi-line data is joined, restored and sent as one data line")
{
    Mapping m = sample();
    std::string in = "event: content_block_delta\n"
                     "data: {\"type\":\"content_block_delta\",\n"
                     "data:  \"index\":0,\"delta\":{\"type\":\"text_delta\",\n"
                     "data:\"text\":\"x EC2_001 y\"}}\n\n";
    std::string out = unmaskWhole(m, in);
    CHECK(out == "event: content_block_delta\n"
                 "data: {\"type\":\"content_block_delta\",  \"index\":0,\"delta\":{\"type\":\"text_delta\", \"text\":\"x " +
                     kEc2a + " y\"}}\n\n");
    // Unchanged multi-line data keeps its lines.
    std::string plain = "data: {\"a\":\ndata: 1}\n\n";
    CHECK(unmaskWhole(m, plain) == plain);
}

TEST_CASE("comments, id and retry lines pass through and stay in changed events")
{
    Mapping m = sample();
    std::string in = ": keep-alive\n\n"
                     "retry: 3000\n\n"
                     "id: 7\n"
                     ": a comment inside\n"
                     "event: content_block_delta\n"
                     "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"EC2_001 ok\"}}\n"
                     "retry: 10\n\n"
                     "\n";
    std::string out = unmaskWhole(m, in);
    CHECK(out == ": keep-alive\n\n"
                 "retry: 3000\n\n"
                 "id: 7\n"
                 ": a comment inside\n"
                 "event: content_block_delta\n"
                 "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"" +
                     kEc2a + " ok\"}}\n"
                 "retry: 10\n\n"
                 "\n");
    std::vector<Event> events = readSse(out);
    REQUIRE(events.size() == 1);
    CHECK(events[0].id == "7");
}

TEST_CASE("an event longer than maxEventBytes is an error")
{
    Mapping m = sample();
    std::string big = "data: {\"text\":\"" + std::string(100, 'x') + "\"}\n\n";
    {
        SseUnmasker u(m, 64);
        std::string out;
        CHECK_FALSE(u.feed(big, out).ok());
        CHECK_FALSE(u.feed("data: {}\n\n", out).ok()); // spent
        CHECK(out.empty());
    }
    {
        // Incomplete, arriving in small pieces: fails once the buffer would pass the limit.
        SseUnmasker u(m, 64);
        std::string out;
        bool failed = false;
        for (std::size_t i = 0; i < big.size() && !failed; i += 10)
            failed = !u.feed(std::string_view(big).substr(i, 10), out).ok();
        CHECK(failed);
    }
    {
        // Small events are fine however many there are.
        SseUnmasker u(m, 64);
        std::string out;
        for (int i = 0; i < 100; ++i)
            REQUIRE(u.feed("data: {\"text\":\"EC2_001\"}\n\n", out).ok());
        CHECK(u.restored() == 100);
    }
}

TEST_CASE("data that is not JSON passes untouched and broken JSON gets raw restoration")
{
    Mapping m = sample();
    std::string in = "data: hello EC2_001\n\n"
                     "data: {\"text\":\"EC2_001 ODD_001\n\n"
                     "data: [1, \"EC2_002\"\n"
                     "data: , 2\n\n";
    std::string out = unmaskWhole(m, in);
    CHECK(out == "data: hello EC2_001\n\n"
                 "data: {\"text\":\"" + kEc2a + " a\\\"b\\\\c\n\n"
                 "data: [1, \"" + kEc2b + "\"\n"
                 "data: , 2\n\n");
}

TEST_CASE("held text is flushed before error and message_stop events")
{
    Mapping m = sample();
    auto delta = [](int index, const char* text) {
        return "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":" + std::to_string(index) +
               ",\"delta\":{\"type\":\"text_delta\",\"text\":\"" + text + "\"}}\n\n";
    };
    std::string in = delta(0, "a EC2_00") + delta(1, "b VPC_001") +
                     "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
                     "\"message\":\"EC2_002 overloaded\"}}\n\n" +
                     delta(2, "c ACCOUNT_001") + "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    std::string out = unmaskWhole(m, in);
    std::vector<Event> events = readSse(out);
    requireValidData(events);
    REQUIRE(events.size() == 8);
    CHECK(events[2].data == "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"EC2_00\"}}");
    CHECK(events[3].data == "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"" + kVpc + "\"}}");
    CHECK(events[4].name == "error");
    CHECK(events[4].data.find(kEc2b + " overloaded") != std::string::npos);
    CHECK(events[6].data.find(kAccount) != std::string::npos);
    CHECK(events[7].name == "message_stop");
    AnthBlocks b = reassembleAnthropic(events);
    CHECK(b.text[0] == "a EC2_00");
    CHECK(b.text[1] == "b " + kVpc);
    CHECK(b.text[2] == "c " + kAccount);
}

TEST_CASE("finish flushes held text, then an incomplete trailing event as it is")
{
    Mapping m = sample();
    std::string in = "event: content_block_delta\n"
                     "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"x EC2_001\"}}\n\n"
                     "event: content_block_delta\n"
                     "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"EC2_002";
    SseUnmasker u(m);
    std::string out;
    REQUIRE(u.feed(in, out).ok());
    u.finish(out);
    CHECK(out == "event: content_block_delta\n"
                 "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"x \"}}\n\n"
                 "event: content_block_delta\n"
                 "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"" +
                     kEc2a + "\"}}\n\n"
                 "event: content_block_delta\n"
                 "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"EC2_002");
    CHECK(u.restored() == 1);
    // A stream ending in a bare CR blank line is complete at finish.
    SseUnmasker cr(m);
    std::string crOut;
    REQUIRE(cr.feed("data: {\"text\":\"EC2_001\"}\r\r", crOut).ok());
    CHECK(crOut.empty()); // CR or CRLF? not known yet
    cr.finish(crOut);
    CHECK(crOut == "data: {\"text\":\"" + kEc2a + "\"}\r\r");
}

TEST_CASE("an OpenAI stream gets content and tool call arguments back, flushed at finish_reason")
{
    Mapping m = sample();
    unsigned restored = 0;
    std::string out = unmaskWhole(m, kOpenAi, &restored);
    checkOpenAi(out);
    CHECK(restored == 6);
    // The synthetic chunk copies id/object/created/model and precedes the finish chunk of choice 0.
    std::vector<Event> events = readSse(out);
    bool seen = false;
    for (std::size_t i = 0; i + 1 < events.size(); ++i) {
        if (events[i + 1].data.find("\"finish_reason\":\"tool_calls\"") != std::string::npos) {
            seen = true;
            CHECK(events[i].data == "{\"id\":\"chatcmpl-9\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
                                    "\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"" +
                                        kVpc + "\"},\"finish_reason\":null}]}");
        }
    }
    CHECK(seen);
    // Choice 1's last content came with its finish_reason: restored in place, no synthetic chunk.
    CHECK(out.find("\"content\":\" and " + kAccount + "\"},\"finish_reason\":\"stop\"") != std::string::npos);
}

TEST_CASE("the OpenAI stream split at every byte offset unmasks the same")
{
    Mapping m = sample();
    const std::string whole = unmaskWhole(m, kOpenAi);
    std::string_view s = kOpenAi;
    for (std::size_t cut = 0; cut <= s.size(); ++cut) {
        std::string out = unmask(m, {s.substr(0, cut), s.substr(cut)});
        INFO("cut at " << cut);
        REQUIRE(out == whole);
        checkOpenAi(out);
    }
    std::vector<std::string_view> bytes;
    for (std::size_t i = 0; i < s.size(); ++i)
        bytes.push_back(s.substr(i, 1));
    CHECK(unmask(m, bytes) == whole);
}

TEST_CASE("held OpenAI text is flushed before [DONE], reasoning_content included")
{
    Mapping m = sample();
    std::string in = openAiChunk("{\"index\":0,\"delta\":{\"reasoning_content\":\"think EC2_0\"},\"finish_reason\":null}") +
                     openAiChunk("{\"index\":0,\"delta\":{\"reasoning_content\":\"01\"},\"finish_reason\":null}") +
                     openAiContent(0, "use EC2_002") + openAiArgs(0, 1, "{\\\"x\\\":\\\"ODD_001") +
                     "data: [DONE]\n\n";
    std::string out = unmaskWhole(m, in);
    std::vector<Event> events = readSse(out);
    requireValidData(events);
    REQUIRE(events.size() == 5 + 3);
    CHECK(events.back().data == "[DONE]");
    OaChoices c = reassembleOpenAi(events);
    CHECK(c.reasoning[0] == "think " + kEc2a);
    CHECK(c.content[0] == "use " + kEc2b);
    CHECK(jsonField(c.arguments[{0, 1}] + "\"}", "x") == kOdd);
}

TEST_CASE("OpenAI choices keep separate held text")
{
    Mapping m = sample();
    // Choice 1's "EC2_0" must not join choice 0's "01".
    std::string in = openAiContent(1, "EC2_0") + openAiContent(0, "01 x") + openAiContent(1, "02") +
                     openAiContent(0, "", "\"stop\"") + openAiContent(1, "", "\"stop\"");
    std::string out = unmaskWhole(m, in);
    std::vector<Event> events = readSse(out);
    requireValidData(events);
    CHECK(events.size() == 5);
    OaChoices c = reassembleOpenAi(events);
    CHECK(c.content[0] == "01 x");
    CHECK(c.content[1] == kEc2b);
}

TEST_CASE("random streams unmask the same however they are split, and not at all without a mapping")
{
    Mapping m = sample();
    Mapping empty;
    // Pieces of SSE framing, Anthropic/OpenAI JSON, tokens and escapes, glued at random.
    const char* const pieces[] = {
        "data: ", "event: content_block_delta\n", "\n", "\r", "\r\n", "\n\n", ":", " ", "x", "retry: 1\n",
        "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"",
        "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"",
        "\"}}", "{\"type\":\"content_block_stop\",\"index\":0}", "{\"type\":\"message_stop\"}",
        "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"", "\"},\"finish_reason\":null}]}",
        "\"},\"finish_reason\":\"stop\"}]}", "\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"", "[DONE]",
        "EC2_0", "01", "02", "ODD_00", "1", "\\\"", "\\\\", "\\n", "\\u00e9", "\xc3\xa9", "{", "}", "[", "]", ",", "\""};
    const std::size_t count = sizeof pieces / sizeof pieces[0];
    std::uint32_t seed = 12345;
    auto next = [&seed] {
        seed = seed * 1103515245u + 12345u;
        return seed >> 8;
    };
    for (int iter = 0; iter < 3000; ++iter) {
        std::string s;
        for (std::uint32_t k = next() % 40; k > 0; --k)
            s += pieces[next() % count];
        INFO(s);
        SseUnmasker whole(m, 4096);
        std::string a;
        bool okA = whole.feed(s, a).ok();
        if (okA)
            whole.finish(a);
        SseUnmasker split(m, 4096);
        std::string b;
        bool okB = true;
        for (std::size_t p = 0; p < s.size() && okB;) {
            std::size_t len = std::min<std::size_t>(s.size() - p, 1 + next() % 8);
            okB = split.feed(std::string_view(s).substr(p, len), b).ok();
            p += len;
        }
        if (okB)
            split.finish(b);
        REQUIRE(okA == okB);
        REQUIRE(a == b);
        SseUnmasker none(empty, 4096);
        std::string c;
        REQUIRE(none.feed(s, c).ok());
        none.finish(c);
        REQUIRE(c == s);
    }
}

TEST_CASE("a stream that opens too many blocks without closing them is an error")
{
    Mapping m = sample();
    SseUnmasker u(m);
    std::string out;
    bool failed = false;
    for (int i = 0; i < 2000 && !failed; ++i) {
        failed = !u.feed("data: {\"type\":\"content_block_delta\",\"index\":" + std::to_string(i) +
                             ",\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}\n\n",
                         out)
                      .ok();
    }
    CHECK(failed);
}
