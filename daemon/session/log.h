#pragma once

// Structured log lines (logfmt) on standard error. Every write(2) carries
// whole lines, so lines from different threads never interleave. Callers
// pass only counts, names, addresses and masked paths — never an original
// value.
//
// A thread that holds a LogBuffer (the workers, around their loop) gathers
// its lines and writes them with LogBuffer::flush() — once per loop turn,
// before the loop waits, and whenever 64 KiB have gathered — instead of one
// write(2) per request line. Other threads write each line at once.

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

// Gathers the calling thread's log lines while it exists (one per thread at
// a time); the destructor writes what is left.
class LogBuffer {
public:
    LogBuffer();
    ~LogBuffer();
    LogBuffer(const LogBuffer&) = delete;
    LogBuffer& operator=(const LogBuffer&) = delete;

    // Writes the lines gathered so far (no-op on a thread without a LogBuffer).
    static void flush();

private:
    std::string lines_;
};

} // namespace veil::session
