#include "mask/mapping.h"

#include <algorithm>

#include <simdjson.h>

#include "mask/json.h"

namespace veil::mask {

std::uint32_t Mapping::lowerBound(std::string_view token) const
{
    auto it = std::lower_bound(byToken_.begin(), byToken_.end(), token,
                               [&](std::uint32_t e, std::string_view t) { return entries_[e].token < t; });
    return static_cast<std::uint32_t>(it - byToken_.begin());
}

void Mapping::add(std::string token, std::string original)
{
    const std::uint32_t at = lowerBound(token);
    byToken_.insert(byToken_.begin() + at, static_cast<std::uint32_t>(entries_.size()));
    entries_.push_back({std::move(token), std::move(original)});
}

void Mapping::reserve(std::size_t n)
{
    entries_.reserve(n);
    byToken_.reserve(n);
}

const std::string* Mapping::find(std::string_view token) const
{
    const std::uint32_t at = lowerBound(token);
    if (at == byToken_.size() || entries_[byToken_[at]].token != token)
        return nullptr;
    return &entries_[byToken_[at]].original;
}

bool Mapping::isTokenPrefix(std::string_view prefix) const
{
    const std::uint32_t at = lowerBound(prefix);
    return at != byToken_.size() && std::string_view(entries_[byToken_[at]].token).substr(0, prefix.size()) == prefix;
}

std::string Mapping::toJson() const
{
    std::string out = "{";
    for (std::size_t i = 0; i < entries_.size(); ++i) {
        out += i ? ",\n  \"" : "\n  \"";
        json::escape(entries_[i].token, out);
        out += "\": \"";
        json::escape(entries_[i].original, out);
        out += '"';
    }
    out += entries_.empty() ? "}\n" : "\n}\n";
    return out;
}

Result<Mapping> Mapping::fromJson(std::string_view text)
{
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    if (auto err = parser.parse(text.data(), text.size(), true).get(doc))
        return fail(std::string("mapping is not valid JSON: ") + simdjson::error_message(err));
    simdjson::dom::object obj;
    if (doc.get(obj))
        return fail("mapping must be a JSON object {token: original}");
    Mapping m;
    for (auto field : obj) {
        std::string_view original;
        if (field.value.get(original))
            return fail("mapping value for a token is not a string");
        if (field.key.empty())
            return fail("mapping has an empty token");
        if (m.find(field.key))
            return fail("mapping lists a token twice");
        m.add(std::string(field.key), std::string(original));
    }
    return m;
}

} // namespace veil::mask
