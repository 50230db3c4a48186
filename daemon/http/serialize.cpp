#include "http/serialize.h"

#include "http/error.h"

namespace veil::http {

namespace {

void appendFields(std::string& out, const HeaderList& fields)
{
    for (HeaderList::Field f : fields) {
        out += f.name;
        out += ": ";
        out += f.value;
        out += "\r\n";
    }
}

std::string_view versionString(int version)
{
    return version == 10 ? "HTTP/1.0" : "HTTP/1.1";
}

} // namespace

void appendRequestHead(std::string& out, const RequestHead& head)
{
    out.reserve(out.size() + head.method.size() + head.target.size() + head.headers.wireSize() + 16);
    out += head.method;
    out += ' ';
    out += head.target;
    out += ' ';
    out += versionString(head.version);
    out += "\r\n";
    appendFields(out, head.headers);
    out += "\r\n";
}

void appendResponseHead(std::string& out, const ResponseHead& head)
{
    std::string_view reason = head.reason.empty() ? reasonPhrase(head.status) : head.reason;
    out.reserve(out.size() + reason.size() + head.headers.wireSize() + 20);
    out += versionString(head.version);
    out += ' ';
    out += std::to_string(head.status);
    out += ' ';
    out += reason;
    out += "\r\n";
    appendFields(out, head.headers);
    out += "\r\n";
}

ChunkPrefix chunkPrefix(std::uint64_t size)
{
    static constexpr char kHex[] = "0123456789abcdef";
    ChunkPrefix p;
    char digits[16];
    int n = 0;
    do {
        digits[n++] = kHex[size & 0xf];
        size >>= 4;
    } while (size != 0);
    while (n > 0)
        p.bytes[p.size++] = digits[--n];
    p.bytes[p.size++] = '\r';
    p.bytes[p.size++] = '\n';
    return p;
}

void appendChunk(std::string& out, std::string_view data)
{
    if (data.empty())
        return;
    out += chunkPrefix(data.size()).view();
    out += data;
    out += kChunkTerminator;
}

void appendLastChunk(std::string& out, const HeaderList& trailers)
{
    out += "0\r\n";
    appendFields(out, trailers);
    out += "\r\n";
}

} // namespace veil::http
