#pragma once

// Writing heads and chunked bodies. The session edits a parsed head (drops
// hop-by-hop fields, re-frames, narrows Accept-Encoding — see headers.h) and
// serializes it toward the other side; fields keep their order and case.

#include <cstdint>
#include <string>
#include <string_view>

#include "http/message.h"

namespace veil::http {

// "METHOD target HTTP/1.x\r\n" + fields + "\r\n", appended to out.
void appendRequestHead(std::string& out, const RequestHead& head);
// "HTTP/1.x status reason\r\n" + fields + "\r\n"; an empty reason is replaced
// by the standard phrase.
void appendResponseHead(std::string& out, const ResponseHead& head);

inline constexpr std::string_view kChunkTerminator = "\r\n"; // after each chunk's data
inline constexpr std::string_view kLastChunk = "0\r\n\r\n";  // ends a chunked body, no trailers
inline constexpr std::string_view kContinueResponse = "HTTP/1.1 100 Continue\r\n\r\n";

// The "<hex size>\r\n" line before a chunk's data, for writing header, data
// and kChunkTerminator as separate buffers without copying the data.
struct ChunkPrefix {
    char bytes[20];
    unsigned char size = 0;
    std::string_view view() const { return {bytes, size}; }
};
ChunkPrefix chunkPrefix(std::uint64_t size);

// Appends one chunk (size line, data, CRLF). Empty data appends nothing: a
// zero-size chunk would end the body.
void appendChunk(std::string& out, std::string_view data);
// Appends the last chunk, with trailer fields if any.
void appendLastChunk(std::string& out, const HeaderList& trailers = {});

} // namespace veil::http
