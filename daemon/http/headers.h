#pragma once

// An ordered header list that keeps each field's original name case, plus the
// list-syntax helpers (RFC 9110 §5.6.1) the parser and the session share.
//
// Storage: every name and value lives in one arena string and the list holds
// offsets into it, so a parser that reuses its head object allocates nothing
// per message once the arena has grown to the usual head size. set() and
// remove() leave dead bytes in the arena until clear(); heads are bounded by
// the parser limits, so this stays small.
//
// Views returned by find(), operator[] and iteration are valid until the next
// add()/set()/clear() on the same list.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace veil::http {

// ASCII case-insensitive equality (header names, tokens, codings).
bool iequals(std::string_view a, std::string_view b);

// RFC 9110 tchar / token and field-value checks (the value rule: no CTL but
// HTAB, so no CR, LF or NUL can be injected into a serialized head).
bool isTokenChar(char c);
bool isToken(std::string_view s);
bool isFieldValue(std::string_view s);

// Strips leading and trailing SP / HTAB.
std::string_view trimOws(std::string_view s);

// Calls f(element) for each non-empty element of a comma-separated list,
// elements trimmed of OWS; commas inside quoted strings do not split.
// f returns false to stop early. Returns false if f stopped.
template <typename F>
bool forEachListElement(std::string_view value, F&& f);

class HeaderList {
public:
    struct Field {
        std::string_view name;
        std::string_view value;
    };

    class Iterator {
    public:
        Iterator(const HeaderList* list, std::size_t i) : list_(list), i_(i) {}
        Field operator*() const { return (*list_)[i_]; }
        Iterator& operator++()
        {
            ++i_;
            return *this;
        }
        bool operator==(const Iterator& o) const { return i_ == o.i_; }
        bool operator!=(const Iterator& o) const { return i_ != o.i_; }

    private:
        const HeaderList* list_;
        std::size_t i_;
    };

    std::size_t size() const { return entries_.size(); }
    bool empty() const { return entries_.empty(); }
    Field operator[](std::size_t i) const;
    Iterator begin() const { return {this, 0}; }
    Iterator end() const { return {this, entries_.size()}; }

    // First field with this name (case-insensitive), if any.
    std::optional<std::string_view> find(std::string_view name) const;
    std::size_t count(std::string_view name) const;
    bool contains(std::string_view name) const { return find(name).has_value(); }

    // Appends a field. Returns false (and adds nothing) if name is not a
    // token or value is not a valid field value: a head this list serializes
    // can never carry an injected CR/LF.
    bool add(std::string_view name, std::string_view value);
    // Replaces the first field of that name in place (keeping its position,
    // taking the new name's case) and removes any others; appends if absent.
    // Same validation as add().
    bool set(std::string_view name, std::string_view value);
    // Removes every field of that name; returns how many.
    std::size_t remove(std::string_view name);
    void erase(std::size_t index);

    // True if any field of that name holds `token` as a list element
    // (e.g. Connection: keep-alive, Close).
    bool hasToken(std::string_view name, std::string_view token) const;

    // Empties the list, keeping capacity for the next message.
    void clear();

    // Bytes of "name: value\r\n" lines when serialized.
    std::size_t wireSize() const;

private:
    struct Entry {
        std::uint32_t nameOffset;
        std::uint32_t nameSize;
        std::uint32_t valueOffset;
        std::uint32_t valueSize;
    };

    Entry store(std::string_view name, std::string_view value);

    std::string arena_;
    std::vector<Entry> entries_;
};

// Removes the hop-by-hop fields of RFC 9110 §7.6.1 (Connection, Proxy-Connection,
// Keep-Alive, TE, Transfer-Encoding, Upgrade), Trailer (the session re-frames
// and drops trailers), and every field the Connection header names.
void removeHopByHop(HeaderList& headers);

// Re-framing: sets Content-Length and removes Transfer-Encoding, or sets
// Transfer-Encoding: chunked and removes Content-Length.
void setContentLength(HeaderList& headers, std::uint64_t length);
void setChunked(HeaderList& headers);

// Narrows Accept-Encoding to the codings veil can decode (identity, gzip,
// x-gzip, deflate, br), keeping their parameters and order. Elements naming
// other codings, and "*", are dropped; if nothing remains, or the field is
// absent (which RFC 9110 reads as "any coding"), it becomes "identity".
void narrowAcceptEncoding(HeaderList& headers);

// ---- template implementation ----

template <typename F>
bool forEachListElement(std::string_view value, F&& f)
{
    std::size_t start = 0;
    bool quoted = false;
    for (std::size_t i = 0; i <= value.size(); ++i) {
        if (i < value.size()) {
            char c = value[i];
            if (quoted) {
                if (c == '\\' && i + 1 < value.size())
                    ++i;
                else if (c == '"')
                    quoted = false;
                continue;
            }
            if (c == '"') {
                quoted = true;
                continue;
            }
            if (c != ',')
                continue;
        }
        std::string_view element = trimOws(value.substr(start, i - start));
        start = i + 1;
        if (!element.empty() && !f(element))
            return false;
    }
    return true;
}

} // namespace veil::http
