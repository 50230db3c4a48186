#pragma once

// Puts originals back in place of whole tokens: in a JSON response, in raw
// text, and incrementally in a stream whose chunks may split a token anywhere.
// "Whole" means the token is not part of a longer run of [A-Za-z0-9_]
// (EC2_001 never matches inside EC2_0012 or XEC2_001); in JSON modes a
// backslash escape counts as a boundary, so "\nEC2_001" is found in raw JSON,
// and so does the escape letter after an odd number of escaped backslashes
// ("\\nEC2_001": the \n of JSON text held in a string).

#include <string>
#include <string_view>

#include "mask/mapping.h"

namespace veil::mask {

// How the text around a token is encoded, and so how an original is inserted.
enum class Escape {
    None,       // plain text: insert the original as is
    Json,       // raw JSON (a document or a string's content): JSON-escape it
    JsonInJson, // raw content of a JSON string whose decoded text is JSON
                // (tool input partial_json, OpenAI arguments): escape twice
};

class TokenRestorer {
public:
    TokenRestorer(const Mapping& mapping, Escape escape) : map_(&mapping), esc_(escape) {}

    // Appends to `out` everything of `chunk` that is safe to emit. A trailing
    // run that could still become a token (it is a prefix of one, or a whole
    // token that more word characters could extend) is held back, and so is
    // an incomplete escape sequence in JSON modes (at most 6 bytes, even in
    // a long run of backslashes; 11 where they are written \u005c); so
    // held() is bounded by the longest token or 11, whichever is larger.
    void feed(std::string_view chunk, std::string& out);
    // Emits whatever is held back (end of the field, block or stream).
    void finish(std::string& out);

    bool holding() const { return !carry_.empty(); }
    // Bytes held back now (bounded as feed says).
    std::size_t held() const { return carry_.size(); }
    unsigned restored() const { return restored_; }

    // Whole text in one call.
    static std::string restoreAll(const Mapping& mapping, std::string_view text, Escape escape,
                                  unsigned* restored = nullptr);

private:
    std::size_t scan(std::string_view text, bool final, std::string& out);

    const Mapping* map_;
    Escape esc_;
    std::string carry_;
    bool prevWord_ = false; // the byte before the next one fed is a word character
    unsigned restored_ = 0;
};

} // namespace veil::mask
