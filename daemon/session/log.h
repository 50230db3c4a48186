#pragma once

// Structured log lines (logfmt) on standard error, one write(2) per line so
// lines from different workers never interleave. Callers pass only counts,
// names, addresses and masked paths — never an original value.

#include <string>
#include <string_view>

namespace veil::session {

class LogLine {
public:
    explicit LogLine(std::string_view event, std::string_view level = "info");
    LogLine& kv(std::string_view key, std::string_view value);
    LogLine& kv(std::string_view key, long long value);
    LogLine& kv(std::string_view key, unsigned long long value);
    LogLine& kv(std::string_view key, int value) { return kv(key, static_cast<long long>(value)); }
    LogLine& kv(std::string_view key, unsigned value) { return kv(key, static_cast<unsigned long long>(value)); }
    LogLine& kv(std::string_view key, unsigned long value) { return kv(key, static_cast<unsigned long long>(value)); }
    LogLine& kv(std::string_view key, long value) { return kv(key, static_cast<long long>(value)); }
    void write();

private:
    std::string line_;
};

} // namespace veil::session
