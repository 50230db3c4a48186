#include "http/headers.h"

#include <array>

namespace veil::http {

namespace {

char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

constexpr std::array<bool, 256> makeTokenTable()
{
    std::array<bool, 256> t{};
    for (int c = '0'; c <= '9'; ++c)
        t[static_cast<std::size_t>(c)] = true;
    for (int c = 'a'; c <= 'z'; ++c)
        t[static_cast<std::size_t>(c)] = true;
    for (int c = 'A'; c <= 'Z'; ++c)
        t[static_cast<std::size_t>(c)] = true;
    for (char c : std::string_view("!#$%&'*+-.^_`|~"))
        t[static_cast<unsigned char>(c)] = true;
    return t;
}

constexpr std::array<bool, 256> kTokenTable = makeTokenTable();

// The part of an Accept-Encoding element before its parameters.
std::string_view codingOf(std::string_view element)
{
    std::size_t semi = element.find(';');
    return trimOws(element.substr(0, semi));
}

} // namespace

bool iequals(std::string_view a, std::string_view b)
{
    if (a.size() != b.size())
        return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (lower(a[i]) != lower(b[i]))
            return false;
    return true;
}

bool isTokenChar(char c)
{
    return kTokenTable[static_cast<unsigned char>(c)];
}

bool isToken(std::string_view s)
{
    if (s.empty())
        return false;
    for (char c : s)
        if (!isTokenChar(c))
            return false;
    return true;
}

bool isFieldValue(std::string_view s)
{
    for (char c : s) {
        auto u = static_cast<unsigned char>(c);
        if ((u < 0x20 && c != '\t') || u == 0x7f)
            return false;
    }
    return true;
}

std::string_view trimOws(std::string_view s)
{
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
        s.remove_suffix(1);
    return s;
}

HeaderList::Field HeaderList::operator[](std::size_t i) const
{
    const Entry& e = entries_[i];
    std::string_view arena(arena_);
    return {arena.substr(e.nameOffset, e.nameSize), arena.substr(e.valueOffset, e.valueSize)};
}

std::optional<std::string_view> HeaderList::find(std::string_view name) const
{
    for (std::size_t i = 0; i < entries_.size(); ++i) {
        Field f = (*this)[i];
        if (iequals(f.name, name))
            return f.value;
    }
    return std::nullopt;
}

std::size_t HeaderList::count(std::string_view name) const
{
    std::size_t n = 0;
    for (Field f : *this)
        if (iequals(f.name, name))
            ++n;
    return n;
}

HeaderList::Entry HeaderList::store(std::string_view name, std::string_view value)
{
    Entry e;
    e.nameOffset = static_cast<std::uint32_t>(arena_.size());
    e.nameSize = static_cast<std::uint32_t>(name.size());
    arena_.append(name);
    e.valueOffset = static_cast<std::uint32_t>(arena_.size());
    e.valueSize = static_cast<std::uint32_t>(value.size());
    arena_.append(value);
    return e;
}

bool HeaderList::add(std::string_view name, std::string_view value)
{
    if (!isToken(name) || !isFieldValue(value))
        return false;
    entries_.push_back(store(name, value));
    return true;
}

bool HeaderList::set(std::string_view name, std::string_view value)
{
    if (!isToken(name) || !isFieldValue(value))
        return false;
    bool replaced = false;
    for (std::size_t i = 0; i < entries_.size();) {
        if (iequals((*this)[i].name, name)) {
            if (!replaced) {
                entries_[i] = store(name, value);
                replaced = true;
                ++i;
            } else {
                erase(i);
            }
        } else {
            ++i;
        }
    }
    if (!replaced)
        entries_.push_back(store(name, value));
    return true;
}

std::size_t HeaderList::remove(std::string_view name)
{
    std::size_t removed = 0;
    for (std::size_t i = 0; i < entries_.size();) {
        if (iequals((*this)[i].name, name)) {
            erase(i);
            ++removed;
        } else {
            ++i;
        }
    }
    return removed;
}

void HeaderList::erase(std::size_t index)
{
    entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(index));
}

bool HeaderList::hasToken(std::string_view name, std::string_view token) const
{
    for (Field f : *this) {
        if (!iequals(f.name, name))
            continue;
        bool found = !forEachListElement(f.value, [&](std::string_view element) {
            return !iequals(element, token);
        });
        if (found)
            return true;
    }
    return false;
}

void HeaderList::clear()
{
    arena_.clear();
    entries_.clear();
}

std::size_t HeaderList::wireSize() const
{
    std::size_t n = 0;
    for (const Entry& e : entries_)
        n += e.nameSize + e.valueSize + 4;
    return n;
}

void removeHopByHop(HeaderList& headers)
{
    // Names listed in Connection are hop-by-hop too. Collect them first:
    // removing invalidates the views into the list.
    std::vector<std::string> listed;
    for (HeaderList::Field f : headers) {
        if (!iequals(f.name, "connection") && !iequals(f.name, "proxy-connection"))
            continue;
        forEachListElement(f.value, [&](std::string_view element) {
            listed.emplace_back(element);
            return true;
        });
    }
    for (const std::string& name : listed)
        headers.remove(name);
    for (std::string_view name : {"connection", "proxy-connection", "keep-alive", "te",
                                  "transfer-encoding", "upgrade", "trailer"})
        headers.remove(name);
}

void setContentLength(HeaderList& headers, std::uint64_t length)
{
    headers.remove("transfer-encoding");
    headers.set("Content-Length", std::to_string(length));
}

void setChunked(HeaderList& headers)
{
    headers.remove("content-length");
    headers.set("Transfer-Encoding", "chunked");
}

void narrowAcceptEncoding(HeaderList& headers)
{
    std::string narrowed;
    for (HeaderList::Field f : headers) {
        if (!iequals(f.name, "accept-encoding"))
            continue;
        forEachListElement(f.value, [&](std::string_view element) {
            std::string_view coding = codingOf(element);
            if (iequals(coding, "identity") || iequals(coding, "gzip") ||
                iequals(coding, "x-gzip") || iequals(coding, "deflate") ||
                iequals(coding, "br")) {
                if (!narrowed.empty())
                    narrowed += ", ";
                narrowed += element;
            }
            return true;
        });
    }
    if (narrowed.empty())
        narrowed = "identity";
    headers.set("Accept-Encoding", narrowed);
}

} // namespace veil::http
