#include "session/log.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>

namespace veil::session {

namespace {

bool needsQuotes(std::string_view v)
{
    if (v.empty())
        return true;
    for (char c : v)
        if (c == ' ' || c == '"' || c == '=' || c == '\\' || static_cast<unsigned char>(c) < 0x20)
            return true;
    return false;
}

} // namespace

LogLine::LogLine(std::string_view event, std::string_view level)
{
    auto now = std::chrono::system_clock::now();
    std::time_t t = std::chrono::system_clock::to_time_t(now);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[96];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
    line_.reserve(256);
    line_ += "ts=";
    line_ += buf;
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

LogLine& LogLine::kv(std::string_view key, long long value) { return kv(key, std::string_view(std::to_string(value))); }

LogLine& LogLine::kv(std::string_view key, unsigned long long value)
{
    return kv(key, std::string_view(std::to_string(value)));
}

void LogLine::write()
{
    line_ += '\n';
    std::string_view rest = line_;
    while (!rest.empty()) {
        ssize_t n = ::write(STDERR_FILENO, rest.data(), rest.size());
        if (n <= 0)
            return; // logging never takes the daemon down
        rest.remove_prefix(static_cast<std::size_t>(n));
    }
}

} // namespace veil::session
