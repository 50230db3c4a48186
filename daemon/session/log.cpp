#include "session/log.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace veil::session {

namespace {

constexpr std::size_t kBufferFlushBytes = 64 * 1024;

// The calling thread's gathered lines; null without a LogBuffer.
thread_local std::string* gathered = nullptr;

bool needsQuotes(std::string_view v)
{
    if (v.empty())
        return true;
    for (char c : v)
        if (c == ' ' || c == '"' || c == '=' || c == '\\' || static_cast<unsigned char>(c) < 0x20)
            return true;
    return false;
}

void writeAll(std::string_view rest)
{
    while (!rest.empty()) {
        ssize_t n = ::write(STDERR_FILENO, rest.data(), rest.size());
        if (n <= 0)
            return; // logging never takes the daemon down
        rest.remove_prefix(static_cast<std::size_t>(n));
    }
}

// "ts=2026-12-01T07:25:50.583Z": the part up to the seconds is formatted
// once per second per thread, the milliseconds by hand.
void appendTimestamp(std::string& out)
{
    thread_local std::time_t cachedSecond = -1;
    thread_local char prefix[32];
    thread_local std::size_t prefixSize = 0;
    auto now = std::chrono::system_clock::now();
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
    std::time_t t = static_cast<std::time_t>(ms / 1000);
    if (t != cachedSecond) {
        std::tm tm{};
        gmtime_r(&t, &tm);
        int n = std::snprintf(prefix, sizeof prefix, "%04d-%02d-%02dT%02d:%02d:%02d.", tm.tm_year + 1900,
                              tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        prefixSize = n > 0 ? std::min(static_cast<std::size_t>(n), sizeof prefix - 1) : 0;
        cachedSecond = t;
    }
    int milli = static_cast<int>(ms % 1000);
    out.append(prefix, prefixSize);
    out += static_cast<char>('0' + milli / 100);
    out += static_cast<char>('0' + milli / 10 % 10);
    out += static_cast<char>('0' + milli % 10);
    out += 'Z';
}

} // namespace

LogLine::LogLine(std::string_view event, std::string_view level)
{
    line_.reserve(256);
    line_ += "ts=";
    appendTimestamp(line_);
    kv("level", level);
    kv("event", event);
}

LogLine& LogLine::kv(std::string_view key, std::string_view value)
{
    line_ += ' ';
    line_ += key;
    line_ += '=';
    if (!needsQuotes(value)) {
        line_ += value;
        return *this;
    }
    line_ += '"';
    for (char c : value) {
        if (c == '"' || c == '\\') {
            line_ += '\\';
            line_ += c;
        } else if (static_cast<unsigned char>(c) < 0x20) {
            line_ += ' ';
        } else {
            line_ += c;
        }
    }
    line_ += '"';
    return *this;
}

LogLine& LogLine::kv(std::string_view key, long long value)
{
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, value);
    return kv(key, std::string_view(buf, static_cast<std::size_t>(r.ptr - buf)));
}

LogLine& LogLine::kv(std::string_view key, unsigned long long value)
{
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, value);
    return kv(key, std::string_view(buf, static_cast<std::size_t>(r.ptr - buf)));
}

void LogLine::write()
{
    line_ += '\n';
    if (!gathered) {
        writeAll(line_);
        return;
    }
    gathered->append(line_);
    if (gathered->size() >= kBufferFlushBytes)
        LogBuffer::flush();
}

LogBuffer::LogBuffer()
{
    lines_.reserve(kBufferFlushBytes + 1024);
    gathered = &lines_;
}

LogBuffer::~LogBuffer()
{
    flush();
    gathered = nullptr;
}

void LogBuffer::flush()
{
    if (!gathered || gathered->empty())
        return;
    writeAll(*gathered);
    gathered->clear();
}

} // namespace veil::session
