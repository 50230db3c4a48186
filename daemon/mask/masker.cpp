#include "mask/masker.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <hs/hs.h>
#include <pcre2.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cassert>
#include <cctype>
#include <climits>
#include <cstring>
#include <functional>
#include <set>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#endif

#include "mask/json.h"

// How a JSON body is masked
// -------------------------
// 1. simdjson validates the body; its structural index gives the raw byte
//    span of every key, string and scalar (json::Parser::walk).
// 2. The texts to scan are laid out in one buffer, each followed by a NUL:
//    - the document itself with the contents of strings that have escapes
//      (and of base64 source data) blanked. A candidate whose masked span
//      lies inside a string without escapes is taken as is (raw bytes ==
//      decoded bytes there); key context ("SecretAccessKey": "…") is
//      visible because key and value are adjacent;
//    - per string with escapes (or whose key or preceding sibling has
//      escapes): `<sibling>","<key>": "<decoded value>`, so that context
//      rules still see the key; candidates must start in the value. When
//      the sibling's decoded text was laid out just before (as the value of
//      its own segment, or as a JSON text with nothing blanked), the two
//      texts share its bytes: a message's `content` is not scanned twice to
//      give `"role": "assistant"` its context;
//    - per string whose decoded text is itself JSON: that document, laid
//      out the same way (recursively, down to nestedJsonDepth);
//    - per other decoded string with an escape letter after an odd run of
//      literal backslashes (`log:\ni-0abc…`): a second reading, the same
//      text with those letters blanked, after the first with the same
//      context (Str::alt). Both readings' candidates are in the decoded
//      text's offsets and resolved together.
//    One Vectorscan scan covers them all. Vectorscan reports every end
//    offset of every match, so a match inside one text is reported exactly
//    as if that text were scanned alone; PCRE2 then locates starts inside
//    that text only, so a match crossing into it is never taken. Every text
//    is preceded and followed by a byte that is not a word byte (NUL, or
//    the quote of `": "` / `","`), so \b at a text's edge holds as at a
//    buffer's edge. An end is given to the text whose value part holds it:
//    an end before the value cannot give a candidate starting in it.
//    Only ^, $, \A, \z, \Z and \G could tell the difference: a rule set with
//    one of them (RuleSet::boundarySensitive) gets one scan per text.
//    Strings that a raw candidate crossed are decoded and scanned in a
//    further round.
// 3. Token-shaped runs (\b[A-Z][A-Z0-9_]*_[0-9]{3,}\b) in the same texts,
//    and in the raw text of strings blanked there where it reads otherwise
//    (sealExisting(): base64 data, and escaped strings with an escape
//    unit that decodes to a word byte, at every level of JSON text), are
//    collected by a memchr pass for '_' (forEachShape), so that a
//    handed-out token never stands as a whole word in the input, raw or
//    decoded; as a Vectorscan pattern this class-led shape halved the
//    scan's speed.
// 4. Per string, overlaps are resolved: lower priority number, then
//    leftmost, then longest. Then every span is widened to whole words
//    (settle()): left while the byte before it is a word byte
//    [A-Za-z0-9_], right while the byte after it is one, in the text it
//    lives in (a raw string, or the decoded text of one). The unmasker
//    restores whole tokens only, so a token glued to a word byte would
//    never come back; the widened text is the original the mapping
//    records. Spans that overlap or touch after widening become one (the
//    union, with the lower priority number's rule). Widening only ever
//    masks more. A span that would cut a UTF-8 character fails closed.
// 4c. Every other whole occurrence of an original in any string of the
//    body is masked with the same token (propagate(): a bucket named in
//    s3://… once and bare elsewhere), and strings with new spans are
//    planned again (settled with them). An occurrence masked with the
//    escape letter before it is a new original, looked for in another
//    round.
// 5. The output is written in body order, which numbers tokens by first
//    occurrence. Bytes outside masked spans are copied unchanged; a masked
//    span inside an escaped string is spliced at the raw offsets of the escape
//    units it covers.
// 6. Residual check (residual()): the output must yield no candidate when
//    planned as in steps 2-4, and no original looked for in 4c may still
//    stand whole in it (residualOccurrence()). See the comment there for
//    what is rescanned.
//
// All buffers belong to the Masker (one per worker thread) and keep their
// capacity between calls; a call allocates only what it returns.

namespace veil::mask {

const char* unmaskableName(Unmaskable r)
{
    switch (r) {
    case Unmaskable::InvalidJson: return "invalid_json";
    case Unmaskable::Residual: return "residual_match";
    case Unmaskable::TooLarge: return "too_large";
    case Unmaskable::Internal: return "internal";
    }
    return "unknown";
}

namespace {

constexpr std::size_t kMaxBody = std::size_t{1} << 31; // offsets are 32-bit
constexpr std::uint8_t kEdited = 2;                    // Doc::dirty: masking changed this token
// Ends every text in the scan buffer (see step 2 above).
constexpr char kSeparator = '\0';

// Ends [from, to] (every offset) at which rule `id` matches: a rule such
// as an ARN's resource `[…]*` ends at every byte of a long value, and a run
// is one entry however long it is.
struct Hit {
    std::uint32_t seg;
    std::uint32_t id;
    std::uint32_t from;
    std::uint32_t to;
};

// A masked span (value span) found by a rule, in the coordinates of the
// text it belongs to (a document, or a decoded string value).
struct Candidate {
    std::uint32_t rule;
    std::uint32_t begin;
    std::uint32_t end;
};

enum class Kind : std::uint8_t { Key, String, Scalar };

struct Tok {
    std::uint32_t begin; // raw content span (strings: between the quotes)
    std::uint32_t end;
    std::int32_t key;    // values in objects: index of their key token, else -1
    Kind kind;
    bool escaped;
    bool skip = false;   // base64 source data
    bool rescan = false; // decode and scan it on its own (a raw candidate crossed its edge, or context)
};

bool isWordByte(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

bool isDigit(char c)
{
    return c >= '0' && c <= '9';
}

bool isContinuation(char c)
{
    return (static_cast<unsigned char>(c) & 0xC0) == 0x80;
}

// [b, e) of valid UTF-8 `s` starts and ends between characters.
bool onCharBoundaries(std::string_view s, std::uint32_t b, std::uint32_t e)
{
    return (b >= s.size() || !isContinuation(s[b])) && (e >= s.size() || !isContinuation(s[e]));
}

// Originals shorter than this are not looked for elsewhere in the body
// (propagate()): short values are the ones most likely to be ordinary text.
constexpr std::size_t kMinPropagated = 6;

// The second reading of a decoded string (see Str::alt): its escape
// letters are blanked, to kRestorable where the unmasker reads the letter
// as a boundary in the body's raw text, else to kDetected.
constexpr char kRestorable = ' ';
constexpr char kDetected = '\t';

// In the text t[lo, hi) with second reading `alt` (null: none), t[p] is
// the last letter of an escape letter unit (\n, \u0041 after an odd run of
// backslashes): an escape, not a word byte, to what follows it. A letter
// followed by another letter of its unit (p inside \u0041) is not.
bool endsUnit(const char* t, const char* alt, std::size_t hi, std::size_t p)
{
    return alt && alt[p] != t[p] && (p + 1 >= hi || alt[p + 1] == t[p + 1]);
}

// t[p] is a word byte that joins the word after it (see endsUnit()).
bool wordBefore(const char* t, const char* alt, std::size_t hi, std::size_t p)
{
    return isWordByte(t[p]) && !endsUnit(t, alt, hi, p);
}

// [b, e) of the text t[lo, hi) is a whole occurrence: on each side, the
// byte next to it is not a word byte, nor a '-' or '.' that continues into
// one (acme-logs is not in acme-logs-old or acme-logs.example.com, but is
// in "acme-logs." at a sentence's end). With the text's second reading
// `alt` (a decoded string, see Str::alt), an escape letter before it is a
// boundary (log:\nacme-logs is whole); after it, a letter is a word byte
// (its backslash would be in [b, e)).
bool wholeOccurrence(const char* t, std::size_t lo, std::size_t hi, std::size_t b, std::size_t e,
                     const char* alt = nullptr)
{
    if (b > lo) {
        const char c = t[b - 1];
        if (wordBefore(t, alt, hi, b - 1) || ((c == '-' || c == '.') && b - 1 > lo && wordBefore(t, alt, hi, b - 2)))
            return false;
    }
    if (e < hi) {
        const char c = t[e];
        if (isWordByte(c) || ((c == '-' || c == '.') && e + 1 < hi && isWordByte(t[e + 1])))
            return false;
    }
    return true;
}

// The first three bytes of the needles (propagate()) as nibble tables, in
// the manner of Teddy (Hyperscan's literal matcher): each needle is in one
// of 8 buckets (by its first three bytes), and for each of the three
// positions lo[c & 15] & hi[c >> 4] has the bits of the buckets that have
// a needle with byte c there. An offset whose three bytes leave a bucket
// bit in all three may start a needle; nibble tables can admit a few
// byte combinations no needle has (a filter, never a miss).
struct StartSets {
    // Per position, each 16-byte table twice: one per 128-bit lane of a ymm
    // register (vpshufb looks up within a lane).
    alignas(32) std::uint8_t lo[3][32]{};
    alignas(32) std::uint8_t hi[3][32]{};

    void clear() { *this = StartSets{}; }
    void add(const char* needle)
    {
        const auto* u = reinterpret_cast<const unsigned char*>(needle);
        const unsigned bucket = ((u[0] * 31u + u[1]) * 31u + u[2]) % 8;
        for (int j = 0; j < 3; ++j) {
            lo[j][u[j] & 15] |= static_cast<std::uint8_t>(1u << bucket);
            hi[j][u[j] >> 4] |= static_cast<std::uint8_t>(1u << bucket);
        }
    }
    // After the last add(): the other lanes.
    void seal()
    {
        for (int j = 0; j < 3; ++j) {
            std::memcpy(lo[j] + 16, lo[j], 16);
            std::memcpy(hi[j] + 16, hi[j], 16);
        }
    }
    bool mayStart(const char* at) const
    {
        const auto* u = reinterpret_cast<const unsigned char*>(at);
        unsigned bits = 0xff;
        for (int j = 0; j < 3; ++j)
            bits &= lo[j][u[j] & 15] & hi[j][u[j] >> 4];
        return bits != 0;
    }
};

// Appends to `out` the offsets i in [from, n - 2) where a word starts (p[i]
// is a word byte, p[i - 1], if any, is not) that may start a needle.
void wordStartsScalar(const char* p, std::size_t from, std::size_t n, const StartSets& sets,
                      std::vector<std::uint32_t>& out)
{
    for (std::size_t i = from; i + 2 < n; ++i)
        if (sets.mayStart(p + i) && isWordByte(p[i]) && (i == 0 || !isWordByte(p[i - 1])))
            out.push_back(static_cast<std::uint32_t>(i));
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define VEIL_MASK_X86 1
// 32 bytes at a time, the three nibble table lookups (vpshufb, per 128-bit
// lane); the few offsets that pass are checked for a word start one by
// one. (A word-start mask in the vector loop, or 64-byte blocks, cost as
// much as they save here.)
[[gnu::target("avx2"), gnu::always_inline]] inline __m256i bucketsAvx2(__m256i c, __m256i lo, __m256i hi)
{
    const __m256i nibble = _mm256_set1_epi8(0x0f);
    return _mm256_and_si256(_mm256_shuffle_epi8(lo, _mm256_and_si256(c, nibble)),
                            _mm256_shuffle_epi8(hi, _mm256_and_si256(_mm256_srli_epi16(c, 4), nibble)));
}

[[gnu::target("avx2")]] void wordStartsAvx2(const char* p, std::size_t n, const StartSets& sets,
                                            std::vector<std::uint32_t>& out)
{
    const auto* lo = reinterpret_cast<const __m256i*>(sets.lo);
    const auto* hi = reinterpret_cast<const __m256i*>(sets.hi);
    const __m256i lo0 = _mm256_load_si256(lo), hi0 = _mm256_load_si256(hi);
    const __m256i lo1 = _mm256_load_si256(lo + 1), hi1 = _mm256_load_si256(hi + 1);
    const __m256i lo2 = _mm256_load_si256(lo + 2), hi2 = _mm256_load_si256(hi + 2);
    const __m256i zero = _mm256_setzero_si256();
    std::size_t i = 0;
    for (; i + 34 <= n; i += 32) {
        const auto* at = reinterpret_cast<const __m256i*>(p + i);
        const __m256i b0 = bucketsAvx2(_mm256_loadu_si256(at), lo0, hi0);
        const __m256i b1 = bucketsAvx2(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 1)), lo1, hi1);
        const __m256i b2 = bucketsAvx2(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 2)), lo2, hi2);
        const __m256i b = _mm256_and_si256(_mm256_and_si256(b0, b1), b2);
        auto cand = ~static_cast<std::uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(b, zero)));
        while (cand) {
            const std::size_t q = i + static_cast<std::size_t>(__builtin_ctz(cand));
            cand &= cand - 1;
            if (isWordByte(p[q]) && (q == 0 || !isWordByte(p[q - 1])))
                out.push_back(static_cast<std::uint32_t>(q));
        }
    }
    wordStartsScalar(p, i, n, sets, out);
}

bool haveAvx2()
{
    static const bool avx2 = __builtin_cpu_supports("avx2");
    return avx2;
}
#endif

void wordStarts(const char* p, std::size_t n, const StartSets& sets, std::vector<std::uint32_t>& out, bool vector)
{
#ifdef VEIL_MASK_X86
    if (vector && haveAvx2()) {
        wordStartsAvx2(p, n, sets, out);
        return;
    }
#endif
    wordStartsScalar(p, 0, n, sets, out);
}

std::int64_t tokenAt(const std::vector<Tok>& toks, std::uint32_t pos)
{
    auto it = std::upper_bound(toks.begin(), toks.end(), pos, [](std::uint32_t p, const Tok& t) { return p < t.begin; });
    if (it == toks.begin())
        return -1;
    --it;
    return pos < it->end ? it - toks.begin() : -1;
}

// Bump allocator whose blocks never move: decoded strings and nested
// documents are referred to by pointer while more are added. reset() keeps
// the blocks for the next call.
class Arena {
public:
    char* allocate(std::size_t n)
    {
        while (cur_ < blocks_.size() && blocks_[cur_].size - used_ < n) {
            ++cur_;
            used_ = 0;
        }
        if (cur_ == blocks_.size())
            blocks_.push_back({std::make_unique<char[]>(std::max(n, kBlock)), std::max(n, kBlock)});
        char* p = blocks_[cur_].data.get() + used_;
        used_ += n;
        return p;
    }
    // Gives back the tail of the last allocation (p, of which `used` bytes are kept).
    void trim(const char* p, std::size_t used)
    {
        used_ = static_cast<std::size_t>(p - blocks_[cur_].data.get()) + used;
    }
    void reset()
    {
        cur_ = 0;
        used_ = 0;
    }
    std::size_t capacity() const
    {
        std::size_t n = 0;
        for (const Block& b : blocks_)
            n += b.size;
        return n;
    }
    void release() { blocks_.clear(); }

private:
    static constexpr std::size_t kBlock = 64 * 1024;
    struct Block {
        std::unique_ptr<char[]> data;
        std::size_t size;
    };
    std::vector<Block> blocks_;
    std::size_t cur_ = 0;
    std::size_t used_ = 0;
};

// A replacement of [begin, end) of a document's text; its text is
// Impl::etext_[text, text + len).
struct Edit {
    std::uint32_t begin;
    std::uint32_t end;
    std::uint32_t text;
    std::uint32_t len;
};

// A string of a document that is decoded and scanned on its own.
struct Str {
    std::uint32_t tok;
    std::string_view decoded;
    std::int32_t nested = -1; // the decoded text is JSON: index of its Doc
    std::int32_t seg = -1;    // otherwise its segment (context + value)
    bool inert = false;       // residual check: decoded in the first pass, and masking left it alone
    std::uint32_t unit = 0;   // its escape units: Impl::units[unit, unit + nunit)
    std::uint32_t nunit = 0;
    // Its second reading (decoded text, not JSON text, with an escape
    // letter unit; empty: none): `decoded` with the letters of every unit
    // blanked, same length, laid out as segment altSeg. A unit is b f n r
    // t, or u and 4 hex digits, after an odd run of backslashes: read as
    // the escape it spells, a boundary, so that \b sees `i-0abc…` in
    // `log:\ni-0abc…`; read as text, the letter is a word byte, so that
    // `C:\nat-0abc…` still holds a NAT gateway. Both are scanned (fail
    // closed). See altReading().
    std::string_view alt{};
    std::int32_t altSeg = -1;
};

// A token to edit: its resolved candidates (Fast: in document coordinates;
// Slow: in decoded coordinates), or a nested document with work.
struct Work {
    enum Type : std::uint8_t { Fast, Slow, Nested } type;
    std::uint32_t tok;
    std::int32_t str;
    std::uint32_t cand;
    std::uint32_t ncand;
    std::uint32_t edit = 0; // Slow, after emit(): its first edit (one per candidate)
};

// One JSON document: the body, or JSON text decoded from one of its strings.
struct Doc {
    std::string_view text;
    unsigned depth = 0;
    std::int32_t origin = -1; // residual check: the document this one is the masked output of
    std::vector<Tok> toks;
    std::vector<Str> strs;
    std::vector<std::int32_t> strOf; // per token: index in strs, or -1
    std::vector<std::pair<std::uint32_t, Candidate>> fast;
    // Occurrences of originals found by propagate() that no span covers,
    // per token, in the coordinates its work uses (see Work).
    std::vector<std::pair<std::uint32_t, Candidate>> extra;
    std::vector<Work> work;
    std::vector<Candidate> cands; // of work items
    // Per cands entry (first finalize() only): the span is exactly what its
    // rule matched, neither widened nor merged (see propagate()).
    std::vector<std::uint8_t> plain;
    // Residual check: which tokens masking changed (kEdited) or whose
    // context it changed (1); only those are decoded again. Empty: all.
    std::vector<std::uint8_t> dirty;
    std::vector<std::uint32_t> edited; // residual check: tokens masking changed, and data no longer skipped
    std::uint32_t rawSeg = 0;
    bool blanked = false; // some string of its raw text is blanked in the scan buffer
    std::vector<std::uint32_t> skipped; // tokens skipped as base64 data
    bool processed = false;
    // After emit(): the document's edits, and its masked text (nested
    // documents, for the residual check).
    std::vector<Edit> edits;
    std::string_view masked;

    void reset(std::string_view t, unsigned d)
    {
        text = t;
        depth = d;
        origin = -1;
        toks.clear();
        strs.clear();
        strOf.clear();
        fast.clear();
        extra.clear();
        work.clear();
        cands.clear();
        plain.clear();
        dirty.clear();
        edited.clear();
        rawSeg = 0;
        blanked = false;
        skipped.clear();
        processed = false;
        edits.clear();
        masked = {};
    }
    bool needsDecode(std::size_t ti) const { return dirty.empty() || dirty[ti]; }
};

// One text of the scan buffer: [begin, end) of Impl::scan_. Candidates must
// start at or after `from` (the value part of a context segment).
//
// Segments may overlap (see addStr); their value parts [begin + from, end)
// do not, and increase with the index.
struct Segment {
    std::uint32_t begin;
    std::uint32_t end;
    std::uint32_t from;
    std::uint32_t doc;
    std::int32_t str; // -1: the document's raw text
    std::uint32_t cand = 0;
    std::uint32_t ncand = 0;
    bool alt = false; // the second reading of string `str` (Str::alt)
};

// Lists the tokens of a valid JSON text, and marks the `data` of objects
// whose `type` is "base64" (image/document sources) to be skipped.
struct Collector : json::Walker {
    std::string_view text;
    std::vector<Tok>& toks;
    struct Frame {
        bool object;
        bool base64 = false;
        std::int32_t data = -1;
    };
    std::vector<Frame>& frames;
    std::int32_t pendingKey = -1;

    Collector(std::string_view t, std::vector<Tok>& out, std::vector<Frame>& f) : text(t), toks(out), frames(f)
    {
        frames.clear();
    }

    // raw text of t == word, inline (the base64 checks run on every value).
    bool is(const Tok& t, std::string_view word) const
    {
        return t.end - t.begin == word.size() && std::memcmp(text.data() + t.begin, word.data(), word.size()) == 0;
    }

    void objectBegin(std::size_t)
    {
        frames.push_back({true});
        pendingKey = -1;
    }
    void arrayBegin(std::size_t)
    {
        frames.push_back({false});
        pendingKey = -1;
    }
    void objectEnd(std::size_t)
    {
        if (!frames.empty()) {
            Frame f = frames.back();
            frames.pop_back();
            if (f.base64 && f.data >= 0)
                toks[static_cast<std::size_t>(f.data)].skip = true;
        }
        pendingKey = -1;
    }
    void arrayEnd(std::size_t)
    {
        if (!frames.empty())
            frames.pop_back();
        pendingKey = -1;
    }
    void key(json::Span s)
    {
        pendingKey = static_cast<std::int32_t>(toks.size());
        toks.push_back({static_cast<std::uint32_t>(s.begin), static_cast<std::uint32_t>(s.end), -1, Kind::Key,
                        s.escaped});
    }
    void string(json::Span s)
    {
        auto idx = static_cast<std::int32_t>(toks.size());
        toks.push_back({static_cast<std::uint32_t>(s.begin), static_cast<std::uint32_t>(s.end), pendingKey,
                        Kind::String, s.escaped});
        if (pendingKey >= 0 && !frames.empty() && frames.back().object) {
            const Tok& k = toks[static_cast<std::size_t>(pendingKey)];
            if (is(k, "type") && is(toks.back(), "base64"))
                frames.back().base64 = true;
            else if (is(k, "data"))
                frames.back().data = idx;
        }
        pendingKey = -1;
    }
    void scalar(std::size_t b, std::size_t e)
    {
        toks.push_back({static_cast<std::uint32_t>(b), static_cast<std::uint32_t>(e), pendingKey, Kind::Scalar,
                        false});
        pendingKey = -1;
    }
};

// The raw texts the Collector compares to find base64 sources: masking one
// of them could change what the residual check must skip.
bool isSkipMarker(std::string_view raw)
{
    return raw == "type" || raw == "base64" || raw == "data";
}

bool contextEscaped(const std::vector<Tok>& toks, const Tok& value)
{
    auto ki = static_cast<std::size_t>(value.key);
    if (toks[ki].escaped)
        return true;
    return ki > 0 && toks[ki - 1].kind == Kind::String && toks[ki - 1].escaped;
}

std::string join(const std::set<std::string>& names)
{
    std::string s;
    for (const auto& n : names)
        s += (s.empty() ? "" : ", ") + n;
    return s;
}

} // namespace

struct Masker::Impl {
    const RuleSet& rs;
    MaskOptions opts;
    hs_scratch_t* scratch = nullptr;
    pcre2_match_data* md = nullptr;
    json::Parser parser;
    std::vector<Collector::Frame> frames;

    // Documents of this call; Doc objects are kept for the next call.
    std::vector<std::unique_ptr<Doc>> docs;
    std::size_t ndocs = 0;
    Arena arena;

    // The scan buffer and its texts; segments [0, scanned) have been scanned.
    std::string scanBuf;
    std::vector<Segment> segs;
    // The buffer ends with the value of segment tailSeg, with no separator
    // yet (the next segment may use it as its context).
    bool tailOpen = false;
    std::uint32_t tailSeg = 0;
    std::size_t scanned = 0;
    std::vector<Hit> hits;
    std::vector<std::int32_t> lastRun; // per rule: its last entry in hits, or -1
    std::uint32_t hitSeg = 0;  // per-text scans: the segment being scanned
    std::uint32_t hitBase = 0; // offset of the scanned range in scanBuf
    std::vector<Candidate> cands; // per segment, see Segment::cand
    std::vector<Candidate> resolveTmp;
    std::vector<std::uint8_t> plainTmp; // settle(): per span, see Doc::plain
    std::vector<Candidate> candTmp;
    std::vector<std::uint32_t> order;
    bool collectShapes = false;
    std::vector<std::pair<std::uint32_t, std::uint32_t>> shapes; // token-shaped runs in scanBuf

    // Emission.
    std::string etext; // texts of edits
    std::string strTmp;
    std::string altTmp;                     // altReading()'s decoding
    std::vector<json::EscapeUnit> altUnits; // and its units
    std::vector<json::EscapeUnit> units; // of decoded strings, see Str
    std::vector<std::uint32_t> rawPos;
    std::vector<std::uint8_t> unitStart;
    std::vector<std::vector<Edit>> editPool;

    // Tokens of this call. Originals are views into the body or the arena.
    struct Slot {
        std::size_t hash;
        std::uint32_t gen;
        std::uint32_t entry;
    };
    std::vector<Slot> slots;
    std::uint32_t gen = 0;
    std::vector<std::string_view> originals; // by mapping entry
    std::vector<std::pair<std::uint32_t, std::uint32_t>> tokens; // by mapping entry: span in tokText
    std::string tokText;
    std::vector<std::string_view> existing; // sorted token-shaped runs of the input

    // Originals looked for elsewhere in the body (propagate()), and where
    // they were found in the text searched: (needle, offset).
    struct Needle {
        std::string_view text; // into the body or the arena
        std::uint32_t rule;    // its occurrences are masked as this rule's type
        std::uint32_t next;    // the next needle with the same key, or kNone
        std::uint64_t key;     // its first kMinPropagated bytes
    };
    static constexpr std::uint32_t kNone = UINT32_MAX;
    std::vector<Needle> needles;        // as collected, repeats included
    std::vector<std::uint32_t> memNeedles; // found by memmem (all, or those not starting with a word byte)
    bool wordSearch = false;            // the others are found by wordStarts()
    std::uint32_t uniqueNeedles = 0;
    StartSets startSets;                // their first three bytes, as nibble tables
    struct KeySlot {
        std::uint64_t key;
        std::uint32_t head; // first needle with this key; kNone: empty slot
    };
    std::vector<KeySlot> keySlots; // open addressing, a power of two
    std::vector<std::uint32_t> starts;
    std::vector<std::pair<std::uint32_t, std::uint32_t>> occ;
    std::vector<std::pair<std::uint32_t, std::uint32_t>> spanAt; // the spans' [begin, end) in scanBuf, in order
    // propagate() masked an occurrence with the escape letter before it
    // (occurrenceAt()): a new original, looked for in another round.
    bool grown = false;
    struct ResText {
        std::uint32_t begin; // in resBuf
        bool scalar;
        std::int32_t first = -1; // a second reading (Str::alt): the index of the text it reads
    };
    std::string resBuf; // residualOccurrence()'s texts
    std::string resAlt; // and their second readings (Str::alt), if any
    std::vector<std::pair<std::uint32_t, std::string_view>> resAlts;
    std::vector<ResText> resTexts;
    std::vector<std::pair<std::uint32_t, Candidate>> textExtra; // maskText's occurrences
    std::uint32_t accountRule = UINT32_MAX; // a rule of token type ACCOUNT, if any
    // Per rule: a span that is exactly its match is matched again wherever
    // its text stands whole (see propagate()).
    std::vector<bool> refinds;
    std::vector<unsigned> nextNumber; // per token type
    std::vector<unsigned> perType;    // occurrences per token type
    Mapping* mapping = nullptr;

    Impl(const RuleSet& r, MaskOptions o) : rs(r), opts(o)
    {
        if (rs.database() && hs_alloc_scratch(rs.database(), &scratch) != HS_SUCCESS)
            scratch = nullptr;
        md = pcre2_match_data_create(4, nullptr);
        for (std::uint32_t i = 0; i < rs.rules().size(); ++i)
            if (rs.rules()[i].spec.tokenType == "ACCOUNT") {
                accountRule = i;
                break;
            }
        for (const RuleSet::Compiled& c : rs.rules())
            refinds.push_back(!rs.boundarySensitive() && !c.group && !c.spec.validate &&
                              std::none_of(c.notBefore.begin(), c.notBefore.end(), [](bool b) { return b; }) &&
                              std::none_of(c.notAfter.begin(), c.notAfter.end(), [](bool b) { return b; }));
    }
    ~Impl()
    {
        if (scratch)
            hs_free_scratch(scratch);
        if (md)
            pcre2_match_data_free(md);
    }

    void resetCall()
    {
        ndocs = 0;
        arena.reset();
        units.clear();
        resetScan();
        shapes.clear();
        etext.clear();
        if (++gen == 0) { // wrapped: no slot may look current
            for (Slot& s : slots)
                s.gen = 0;
            gen = 1;
        }
        originals.clear();
        tokens.clear();
        tokText.clear();
        existing.clear();
        nextNumber.assign(rs.tokenTypes().size(), 0);
        perType.assign(rs.tokenTypes().size(), 0);
    }

    // After a call: what a very large body left behind is given back, so a
    // worker keeps at most a few MiB between calls.
    void trim()
    {
        constexpr std::size_t kKeep = 4u << 20;
        if (scanBuf.capacity() > kKeep)
            std::string().swap(scanBuf);
        if (outBody_.capacity() > kKeep)
            std::string().swap(outBody_);
        if (arena.capacity() > kKeep)
            arena.release();
        if (etext.capacity() > kKeep)
            std::string().swap(etext);
        if (units.capacity() * sizeof(json::EscapeUnit) > kKeep)
            std::vector<json::EscapeUnit>().swap(units);
        if (hits.capacity() * sizeof(Hit) > kKeep)
            std::vector<Hit>().swap(hits);
        if (cands.capacity() * sizeof(Candidate) > kKeep)
            std::vector<Candidate>().swap(cands);
        if (ndocs > 64)
            docs.resize(64); // Doc objects hold per-document vectors
        else
            for (std::size_t di = 0; di < docs.size(); ++di)
                if (docs[di]->toks.capacity() * sizeof(Tok) > kKeep)
                    docs[di] = std::make_unique<Doc>();
    }

    void resetScan()
    {
        tailOpen = false;
        scanBuf.clear();
        segs.clear();
        scanned = 0;
        cands.clear();
    }

    std::uint32_t newDoc(std::string_view text, unsigned depth)
    {
        if (ndocs == docs.size())
            docs.push_back(std::make_unique<Doc>());
        docs[ndocs]->reset(text, depth);
        return static_cast<std::uint32_t>(ndocs++);
    }

    static MaskError invalidEscape(const char* what, std::uint32_t at)
    {
        return MaskError{Unmaskable::InvalidJson,
                         std::string(what) + " at byte " + std::to_string(at) + " has an invalid escape"};
    }

    // ---- laying out the texts to scan ---------------------------------------

    // Tokens of `d`, whose text parser.parse() just accepted.
    void collect(Doc& d)
    {
        d.toks.clear();
        Collector col(d.text, d.toks, frames);
        parser.walk(d.text, col);
        d.strOf.assign(d.toks.size(), -1);
    }

    void closeTail()
    {
        if (tailOpen)
            scanBuf.push_back(kSeparator);
        tailOpen = false;
    }

    // Adds the document's raw text and every string that must be decoded
    // whatever the raw scan finds (escapes in it or in its context).
    Result<void, MaskError> prepare(std::uint32_t di)
    {
        Doc& d = *docs[di];
        closeTail();
        const auto base = static_cast<std::uint32_t>(scanBuf.size());
        scanBuf.append(d.text);
        // Left open: a JSON text with nothing blanked is also the context
        // of the value after it (see addStr).
        tailOpen = true;
        tailSeg = d.rawSeg = static_cast<std::uint32_t>(segs.size());
        segs.push_back({base, base + static_cast<std::uint32_t>(d.text.size()), 0, di, -1});
        for (std::uint32_t ti = 0; ti < d.toks.size(); ++ti) {
            Tok& t = d.toks[ti];
            if (t.kind == Kind::Scalar)
                continue;
            // The raw scan does not need the contents of strings with
            // escapes (they are scanned decoded) or of skipped base64 data:
            // blanked, they cost Vectorscan next to nothing.
            if (t.escaped || t.skip) {
                std::memset(scanBuf.data() + base + t.begin, ' ', t.end - t.begin);
                d.blanked = true;
            }
            if (t.skip)
                d.skipped.push_back(ti);
            if (t.skip)
                continue;
            // A value whose context (its key, or the sibling value before
            // the key, as in ECS's {"name": "AWS_SECRET_ACCESS_KEY",
            // "value": "…"}) has escapes lost that context in the raw scan.
            if (t.kind == Kind::String && t.key >= 0 && contextEscaped(d.toks, t) && d.needsDecode(ti))
                t.rescan = true;
            if ((t.escaped && d.needsDecode(ti)) || t.rescan) {
                if (auto r = addStr(di, ti); !r)
                    return r;
            } else if (d.origin >= 0 && !d.needsDecode(ti) && docs[static_cast<std::size_t>(d.origin)]->strOf[ti] >= 0) {
                // Residual check: the first pass decoded this string and
                // masking left it and its context alone, so decoding it
                // again would give the same nothing; its raw candidates
                // (superseded by that decoding) do not count either.
                d.strOf[ti] = static_cast<std::int32_t>(d.strs.size());
                d.strs.push_back(Str{ti, {}, -1, -1, true});
            }
        }
        return Ok{};
    }

    // Appends the decoded text of token `ti` of `d` to the scan buffer.
    Result<void, MaskError> appendDecoded(const Doc& d, std::size_t ti, const char* what)
    {
        const Tok& t = d.toks[ti];
        std::string_view raw = d.text.substr(t.begin, t.end - t.begin);
        if (!t.escaped) {
            scanBuf.append(raw);
            return Ok{};
        }
        if (d.strOf[ti] >= 0 && !d.strs[static_cast<std::size_t>(d.strOf[ti])].inert) { // decoded already
            scanBuf.append(d.strs[static_cast<std::size_t>(d.strOf[ti])].decoded);
            return Ok{};
        }
        const std::size_t at = scanBuf.size();
        scanBuf.resize(at + raw.size());
        const std::ptrdiff_t n = json::unescapeTo(raw, scanBuf.data() + at);
        if (n < 0)
            return fail(invalidEscape(what, t.begin));
        scanBuf.resize(at + static_cast<std::size_t>(n));
        return Ok{};
    }

    // The decoded text of string osi of emitted document `od`, masked.
    std::string_view masked(const Doc& od, std::size_t osi, bool edited)
    {
        const Str& os = od.strs[osi];
        if (!edited)
            return os.decoded;
        auto w = std::lower_bound(od.work.begin(), od.work.end(), os.tok,
                                  [](const Work& x, std::uint32_t tok) { return x.tok < tok; });
        assert(w != od.work.end() && w->tok == os.tok && w->type == Work::Slow);
        std::size_t size = os.decoded.size();
        for (std::uint32_t k = 0; k < w->ncand; ++k) {
            const Candidate& c = od.cands[w->cand + k];
            size = size - (c.end - c.begin) + od.edits[w->edit + k].len;
        }
        char* out = arena.allocate(size);
        char* o = out;
        std::uint32_t pos = 0;
        for (std::uint32_t k = 0; k < w->ncand; ++k) {
            const Candidate& c = od.cands[w->cand + k];
            const Edit& e = od.edits[w->edit + k];
            std::memcpy(o, os.decoded.data() + pos, c.begin - pos);
            o += c.begin - pos;
            std::memcpy(o, etext.data() + e.text, e.len);
            o += e.len;
            pos = c.end;
        }
        std::memcpy(o, os.decoded.data() + pos, os.decoded.size() - pos);
        return std::string_view(out, size);
    }

    // Str::alt of string token `t` of `d`, decoded as `decoded`, or empty.
    // Only a decoded text that holds a backslash can have one (a memchr
    // otherwise). Letters of a unit in the decoded text's own reading (after
    // an odd run of decoded backslashes) are blanked to kDetected; those the
    // unmasker reads as a boundary in the body's raw text, to kRestorable:
    // in the body itself (depth 0), a letter that stands raw right after an
    // odd run of escaped backslashes, raw \\ or \u005c (TokenRestorer's
    // reading; raw \\n is decoded \n). Only after a kRestorable letter may a
    // masked span start (settle(), occurrenceAt()); after any other (JSON
    // text, whose \n the body holds as \\\\n) a token would stand glued to
    // the letter for the unmasker, so the span takes the letter in.
    std::string_view altReading(const Doc& d, const Tok& t, std::string_view decoded)
    {
        const std::size_t n = decoded.size();
        if (!t.escaped || !std::memchr(decoded.data(), '\\', n))
            return {};
        char* alt = nullptr;
        auto blank = [&](std::size_t p, std::size_t len, char c) {
            if (!alt) {
                alt = arena.allocate(n);
                std::memcpy(alt, decoded.data(), n);
            }
            std::memset(alt + p, c, len);
        };
        for (std::size_t i = 0; i < n;) {
            const void* bs = std::memchr(decoded.data() + i, '\\', n - i);
            if (!bs)
                break;
            const auto run = static_cast<std::size_t>(static_cast<const char*>(bs) - decoded.data());
            std::size_t j = run;
            while (j < n && decoded[j] == '\\')
                ++j;
            if ((j - run) % 2 == 1)
                if (const std::size_t len = innerEscapeAt(decoded.data() + j, n - j))
                    blank(j, len, kDetected);
            i = j;
        }
        if (d.depth == 0) {
            const std::string_view raw = d.text.substr(t.begin, t.end - t.begin);
            altTmp.resize(raw.size());
            altUnits.clear();
            if (json::unescapeTo(raw, altTmp.data(), &altUnits) == static_cast<std::ptrdiff_t>(n)) {
                std::size_t pairs = 0; // escaped backslashes (raw \\ or \u005c) in a row, up to this one
                for (std::size_t k = 0; k < altUnits.size(); ++k) {
                    const json::EscapeUnit& u = altUnits[k];
                    if (decoded[u.decoded] != '\\') {
                        pairs = 0;
                        continue;
                    }
                    pairs = pairs > 0 && altUnits[k - 1].raw + altUnits[k - 1].rawLen == u.raw ? pairs + 1 : 1;
                    const std::size_t r = u.raw + u.rawLen; // what follows the run, if it ends here
                    if (pairs % 2 == 1 && r < raw.size() && raw[r] != '\\')
                        // Literal bytes (letters, hex digits): decoded as they are.
                        if (const std::size_t len = innerEscapeAt(raw.data() + r, raw.size() - r))
                            blank(u.decoded + 1u, len, kRestorable);
                }
            }
        }
        return alt ? std::string_view(alt, n) : std::string_view();
    }

    // Decodes string `ti` of document `di` and adds it: as a nested JSON
    // document, or as a segment `<sibling>","<key>": "<value>` (and its
    // second reading, if any, with the same context: see Str::alt).
    Result<void, MaskError> addStr(std::uint32_t di, std::uint32_t ti)
    {
        Doc& d = *docs[di];
        const Tok& t = d.toks[ti];
        Str s{ti, d.text.substr(t.begin, t.end - t.begin)};
        bool decoded = !t.escaped;
        if (d.origin >= 0) {
            // Residual check of a masked document: a JSON text masked in
            // the first pass is known valid (masking keeps JSON valid, see
            // emit()) and its structure follows from its edits.
            const Doc& od = *docs[static_cast<std::size_t>(d.origin)];
            const std::int32_t osi = od.strOf[ti];
            if (osi >= 0 && od.strs[static_cast<std::size_t>(osi)].nested >= 0) {
                const auto ni = static_cast<std::uint32_t>(od.strs[static_cast<std::size_t>(osi)].nested);
                if (docs[ni]->work.empty()) {
                    // Not changed: the first pass found nothing in it, so
                    // the same bytes yield nothing now.
                    s.inert = true;
                } else {
                    assert(json::validate(docs[ni]->masked));
                    auto r = derive(ni);
                    if (!r)
                        return fail(r.error());
                    s.nested = static_cast<std::int32_t>(*r);
                    if (auto p = prepare(*r); !p)
                        return p;
                }
                d.strOf[ti] = static_cast<std::int32_t>(d.strs.size());
                d.strs.push_back(s);
                return Ok{};
            }
            if (osi >= 0 && t.escaped) {
                // Decoded in the first pass: the same text if masking left
                // it alone, else that text with its tokens spliced in (its
                // spans were whole escape units, so decoding the output
                // would give exactly that).
                s.decoded = masked(od, static_cast<std::size_t>(osi), d.dirty[ti] == kEdited);
                decoded = true;
            }
        }
        if (!decoded) {
            char* p = arena.allocate(s.decoded.size());
            s.unit = static_cast<std::uint32_t>(units.size());
            const std::ptrdiff_t n = json::unescapeTo(s.decoded, p, &units);
            s.nunit = static_cast<std::uint32_t>(units.size()) - s.unit;
            if (n < 0)
                return fail(invalidEscape("string", t.begin));
            arena.trim(p, static_cast<std::size_t>(n));
            s.decoded = std::string_view(p, static_cast<std::size_t>(n));
        }
        if (t.kind == Kind::String && d.depth < opts.nestedJsonDepth && json::looksLikeContainer(s.decoded) &&
            parser.parse(s.decoded)) {
            const std::uint32_t ni = newDoc(s.decoded, d.depth + 1);
            collect(*docs[ni]);
            s.nested = static_cast<std::int32_t>(ni);
            d.strOf[ti] = static_cast<std::int32_t>(d.strs.size());
            d.strs.push_back(s);
            return prepare(ni);
        }
        // Scan `<sibling>","<key>": "<value>` so context rules see what the
        // raw body shows around an unescaped value. If the sibling is the
        // value that ends the buffer, this text starts where that value does.
        Segment seg{static_cast<std::uint32_t>(scanBuf.size()), 0, 0, di, static_cast<std::int32_t>(d.strs.size())};
        if (t.kind == Kind::String && t.key >= 0) {
            const auto ki = static_cast<std::size_t>(t.key);
            const bool sibling = ki > 0 && d.toks[ki - 1].kind == Kind::String;
            // The buffer may end with the sibling's decoded text: as the
            // value of its own segment, or as the raw text of the JSON
            // document it holds if nothing in that was blanked.
            const Segment* tail = tailOpen ? &segs[tailSeg] : nullptr;
            const std::int32_t ps = sibling ? d.strOf[ki - 1] : -1;
            const std::int32_t pn = ps >= 0 ? d.strs[static_cast<std::size_t>(ps)].nested : -1;
            const bool chain =
                tail && ((tail->doc == di && tail->str >= 0 && d.strs[static_cast<std::size_t>(tail->str)].tok == ki - 1) ||
                         (pn >= 0 && tail->str < 0 && tail->doc == static_cast<std::uint32_t>(pn) &&
                          !docs[static_cast<std::size_t>(pn)]->blanked));
            if (sibling && chain) {
                seg.begin = tail->begin + tail->from;
                scanBuf += "\",\"";
            } else {
                closeTail();
                seg.begin = static_cast<std::uint32_t>(scanBuf.size());
                if (sibling) {
                    if (auto r = appendDecoded(d, ki - 1, "string"); !r)
                        return r;
                    scanBuf += "\",\"";
                }
            }
            if (auto r = appendDecoded(d, ki, "key"); !r)
                return r;
            scanBuf += "\": \"";
        } else {
            closeTail();
            seg.begin = static_cast<std::uint32_t>(scanBuf.size());
        }
        seg.from = static_cast<std::uint32_t>(scanBuf.size()) - seg.begin;
        scanBuf.append(s.decoded);
        seg.end = static_cast<std::uint32_t>(scanBuf.size());
        tailOpen = true;
        tailSeg = static_cast<std::uint32_t>(segs.size());
        s.seg = static_cast<std::int32_t>(segs.size());
        segs.push_back(seg);
        s.alt = altReading(d, t, s.decoded);
        if (!s.alt.empty()) {
            // After the first reading, closed: the next value's context is
            // laid out again rather than read from the second reading.
            scanBuf.reserve(scanBuf.size() + 1 + seg.from + s.alt.size() + 1);
            scanBuf.push_back(kSeparator);
            Segment alt = seg;
            alt.begin = static_cast<std::uint32_t>(scanBuf.size());
            scanBuf.append(scanBuf.data() + seg.begin, seg.from);
            scanBuf.append(s.alt);
            alt.end = static_cast<std::uint32_t>(scanBuf.size());
            alt.alt = true;
            s.altSeg = static_cast<std::int32_t>(segs.size());
            segs.push_back(alt);
            scanBuf.push_back(kSeparator);
            tailOpen = false;
        }
        d.strOf[ti] = static_cast<std::int32_t>(d.strs.size());
        d.strs.push_back(s);
        return Ok{};
    }

    // ---- scanning -----------------------------------------------------------

    void addEnd(unsigned id, std::uint32_t at)
    {
        std::int32_t& last = lastRun[id];
        if (last >= 0) {
            Hit& run = hits[static_cast<std::size_t>(last)];
            if (run.to == at || run.to + 1 == at) {
                run.to = at;
                return;
            }
        }
        last = static_cast<std::int32_t>(hits.size());
        hits.push_back({hitSeg, id, at, at});
    }
    static int onMatch(unsigned id, unsigned long long, unsigned long long to, unsigned, void* ctx)
    {
        auto* self = static_cast<Impl*>(ctx);
        self->addEnd(id, self->hitBase + static_cast<std::uint32_t>(to));
        return 0;
    }
    // Per-text scans: only ends in the text's value part (see above).
    static int onMatchValue(unsigned id, unsigned long long, unsigned long long to, unsigned, void* ctx)
    {
        auto* self = static_cast<Impl*>(ctx);
        if (to > self->segs[self->hitSeg].from)
            self->addEnd(id, self->hitBase + static_cast<std::uint32_t>(to));
        return 0;
    }

    // Scans the segments added since the last call and locates their
    // candidates (and, if collectShapes, their token-shaped runs).
    Result<void, MaskError> scanPending()
    {
        if (scanned == segs.size())
            return Ok{};
        closeTail();
        if (scanBuf.size() > UINT_MAX)
            return fail(MaskError{Unmaskable::TooLarge, "body too large to scan"});
        const std::size_t first = scanned;
        scanned = segs.size();
        if (collectShapes)
            findShapes(segs[first].begin, segs.back().end);
        if (!rs.database())
            return Ok{};
        if (!scratch)
            return fail(MaskError{Unmaskable::Internal, "could not allocate Vectorscan scratch"});
        hits.clear();
        lastRun.assign(rs.rules().size(), -1);
        if (!rs.boundarySensitive()) {
            hitBase = segs[first].begin;
            if (hs_scan(rs.database(), scanBuf.data() + hitBase, segs.back().end - hitBase, 0, scratch, onMatch,
                        this) != HS_SUCCESS)
                return fail(MaskError{Unmaskable::Internal, "Vectorscan scan failed"});
            assignRuns(first);
        } else {
            for (std::size_t si = first; si < segs.size(); ++si) {
                hitSeg = static_cast<std::uint32_t>(si);
                hitBase = segs[si].begin;
                lastRun.assign(rs.rules().size(), -1);
                if (hs_scan(rs.database(), scanBuf.data() + hitBase, segs[si].end - hitBase, 0, scratch,
                            onMatchValue, this) != HS_SUCCESS)
                    return fail(MaskError{Unmaskable::Internal, "Vectorscan scan failed"});
            }
        }
        // Per text, per rule, longest end first (see locateAll); runs that
        // touch (ends reported out of order) become one.
        std::sort(hits.begin(), hits.end(), [](const Hit& a, const Hit& b) {
            if (a.seg != b.seg)
                return a.seg < b.seg;
            return a.id != b.id ? a.id < b.id : a.to > b.to;
        });
        std::size_t kept = 0;
        for (std::size_t i = 0; i < hits.size(); ++i) {
            Hit& last = hits[kept - (kept > 0)];
            if (kept > 0 && last.seg == hits[i].seg && last.id == hits[i].id && hits[i].to + 1 >= last.from) {
                last.from = std::min(last.from, hits[i].from);
                continue;
            }
            hits[kept++] = hits[i];
        }
        hits.resize(kept);
        std::size_t h = 0;
        for (std::size_t si = first; si < segs.size(); ++si) {
            Segment& s = segs[si];
            s.cand = static_cast<std::uint32_t>(cands.size());
            std::size_t e = h;
            while (e < hits.size() && hits[e].seg == si)
                ++e;
            locateAll(s, h, e);
            s.ncand = static_cast<std::uint32_t>(cands.size()) - s.cand;
            h = e;
        }
        return Ok{};
    }

    // Gives each run of the joined scan the text whose value part holds its
    // ends, splitting it where it spans several. Ends elsewhere (in a
    // context, or just past a separator) cannot give a candidate.
    void assignRuns(std::size_t first)
    {
        const auto lo = segs.begin() + static_cast<std::ptrdiff_t>(first);
        const std::size_t n = hits.size();
        for (std::size_t i = 0; i < n; ++i) {
            const Hit run = hits[i];
            hits[i].seg = UINT32_MAX;
            // The text holding the run's last end (the scan stops at the
            // last text's end), then the texts before it.
            auto it = std::lower_bound(lo, segs.end(), run.to,
                                       [](const Segment& s, std::uint32_t t) { return s.end < t; });
            std::uint32_t to = run.to;
            for (;;) {
                const std::uint32_t value = it->begin + it->from; // ends must be after it
                if (to > value) {
                    const Hit piece{static_cast<std::uint32_t>(it - segs.begin()), run.id,
                                    std::max(run.from, value + 1), to};
                    if (hits[i].seg == UINT32_MAX)
                        hits[i] = piece;
                    else
                        hits.push_back(piece);
                }
                if (run.from > value || it == lo)
                    break;
                --it;
                to = std::min(value, it->end);
                if (to < run.from)
                    break;
            }
        }
        hits.erase(std::remove_if(hits.begin(), hits.end(), [](const Hit& h) { return h.seg == UINT32_MAX; }),
                   hits.end());
    }

    // Candidates of hits[h, e) (one segment, sorted by rule then end
    // descending). Vectorscan reports ends only; the rule's finder gives the
    // leftmost start of a match ending there (and its group). An end inside
    // a span already taken for the same rule is skipped: its match could
    // only overlap that span.
    void locateAll(const Segment& s, std::size_t h, std::size_t e)
    {
        const std::string_view text(scanBuf.data() + s.begin, s.end - s.begin);
        const auto& rules = rs.rules();
        std::uint32_t takenFrom = 0, takenTo = 0, takenRule = UINT32_MAX;
        for (; h < e; ++h) {
            const Hit& run = hits[h];
            if (run.id != takenRule) {
                takenRule = run.id;
                takenFrom = takenTo = 0;
            }
            const RuleSet::Compiled& rule = rules[run.id];
            const std::uint32_t low = run.from - s.begin;
            for (std::uint32_t to = run.to - s.begin + 1; to-- > low;) {
                if (to > takenFrom && to < takenTo) {
                    to = takenFrom + 1; // the next end not inside: takenFrom
                    continue;
                }
                std::uint32_t begin = 0, vb = 0, ve = 0;
                if (!locate(rule, text, to, begin, vb, ve))
                    continue;
                if (begin > 0 && rule.notBefore[static_cast<unsigned char>(text[begin - 1])])
                    continue;
                if (to < text.size() && rule.notAfter[static_cast<unsigned char>(text[to])])
                    continue;
                if (ve <= vb || vb < s.from)
                    continue;
                if (rule.spec.validate && !rule.spec.validate(text.substr(vb, ve - vb)))
                    continue;
                cands.push_back({run.id, vb - s.from, ve - s.from});
                takenFrom = begin;
                takenTo = to;
            }
        }
    }

    // Where the match of `rule` that Vectorscan saw end at `end` starts
    // (leftmost), and the span to mask (its group, or all of it). The search
    // window is the rule's longest possible match; for unbounded rules it
    // grows until a match is found whose start is not pinned to its edge.
    bool locate(const RuleSet::Compiled& rule, std::string_view text, std::uint32_t end, std::uint32_t& begin,
                std::uint32_t& vb, std::uint32_t& ve)
    {
        const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
        int rc = 0;
        if (rule.anchored) {
            // Every match is maxWidth long: the window search could only
            // find one starting at its first byte.
            if (end < rule.maxWidth)
                return false;
            rc = pcre2_match(rule.anchored, subject, end, end - rule.maxWidth, 0, md, nullptr);
        } else {
            std::uint32_t window = rule.maxWidth == UINT_MAX ? 256u : rule.maxWidth;
            for (;;) {
                const std::uint32_t ws = end > window ? end - window : 0;
                rc = pcre2_match(rule.finder, subject, end, ws, 0, md, nullptr);
                // Vectorscan saw a match end here: none in the window, or one
                // starting at its edge, means the window is too short.
                const bool pinned = rc >= 1 && pcre2_get_ovector_pointer(md)[0] == ws;
                if (ws > 0 && rule.maxWidth == UINT_MAX && (rc < 1 || pinned)) {
                    window = window >= (1u << 30) ? UINT32_MAX : window * 4;
                    continue;
                }
                break;
            }
        }
        if (rc < 1)
            return false;
        PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
        begin = static_cast<std::uint32_t>(ov[0]);
        if (rule.group) {
            if (rc < 2 || ov[2] == PCRE2_UNSET)
                return false;
            vb = static_cast<std::uint32_t>(ov[2]);
            ve = static_cast<std::uint32_t>(ov[3]);
        } else {
            vb = begin;
            ve = end;
        }
        return true;
    }

    // Runs matching \b[A-Z][A-Z0-9_]*_[0-9]{3,}\b in p[begin, end), as
    // shape(begin, length). Such a match is a whole run of word bytes (every
    // byte of the pattern is one, and \b holds at both ends), so it is found
    // from the last '_' of a run when that '_' is followed by 3 or more
    // digits up to the run's end. p[begin, end) is taken as a text of its
    // own: no run crosses its edges (nor a separator or a blank, which are
    // not word bytes). With `raw`, p is raw JSON read as the unmasker reads
    // it: an escape unit is a boundary, so after `9\u0033` a run starts.
    // How many of p[0, n) an escape letter takes after an odd number of raw
    // escaped backslashes, in the unmasker's reading (b f n r t: 1; u and 4
    // hex digits: 5; else 0).
    static std::size_t innerEscapeAt(const char* p, std::size_t n)
    {
        if (n == 0)
            return 0;
        if (p[0] == 'b' || p[0] == 'f' || p[0] == 'n' || p[0] == 'r' || p[0] == 't')
            return 1;
        if (p[0] != 'u' || n < 5)
            return 0;
        for (std::size_t k = 1; k < 5; ++k)
            if (!std::isxdigit(static_cast<unsigned char>(p[k])))
                return 0;
        return 5;
    }

    // p[0, n) starts with \u005c (or \u005C): a backslash written as a \u
    // escape.
    static bool isEscapedBackslashU(const char* p, std::size_t n)
    {
        return n >= 6 && p[0] == '\\' && p[1] == 'u' && p[2] == '0' && p[3] == '0' && p[4] == '5' &&
               (p[5] | 0x20) == 'c';
    }

    // How many escaped backslashes of raw JSON (\\ or \u005c) end at x in
    // p[begin, x), x being where an escape unit starts: read backwards, a
    // run of raw backslashes ending at x is pairs, and a \u005c before it
    // counts if its backslash starts an escape (an even run before it).
    static std::size_t escapedBackslashesBefore(const char* p, std::size_t begin, std::size_t x)
    {
        std::size_t count = 0;
        for (;;) {
            std::size_t j = x;
            while (j > begin && p[j - 1] == '\\')
                --j;
            if ((x - j) % 2 == 1)
                return count; // not a start of units: nothing more to read
            count += (x - j) / 2;
            if (j < begin + 6 || !isEscapedBackslashU(p + j - 6, 6))
                return count;
            std::size_t k = j - 6;
            while (k > begin && p[k - 1] == '\\')
                --k;
            if ((j - 6 - k) % 2 == 1)
                return count; // its backslash is escaped itself: "u005c" is text
            ++count;
            x = j - 6;
        }
    }

    template <bool raw = false, typename F>
    static void forEachShape(const char* p, std::size_t begin, std::size_t end, F&& shape)
    {
        std::size_t i = begin;
        while (i < end) {
            const void* u = std::memchr(p + i, '_', end - i);
            if (!u)
                break;
            const auto us = static_cast<std::size_t>(static_cast<const char*>(u) - p);
            std::size_t q = us + 1;
            while (q < end && isDigit(p[q]))
                ++q;
            if (q - us - 1 < 3 || (q < end && isWordByte(p[q]))) {
                i = us + 1; // not the end of this run
                continue;
            }
            std::size_t b = us;
            while (b > begin && isWordByte(p[b - 1]))
                --b;
            if (raw && b > begin && p[b - 1] == '\\') {
                std::size_t j = b - 1;
                while (j > begin && p[j - 1] == '\\')
                    --j;
                if ((b - j) % 2 == 1) { // an odd run of backslashes: the last one starts a unit
                    if (isEscapedBackslashU(p + b - 1, us - b + 1)) {
                        // \u005c: one more escaped backslash (TokenRestorer)
                        const std::size_t k = (b - 1 - j) / 2 + 1 + escapedBackslashesBefore(p, begin, j);
                        b = std::min(us, b + 5);
                        if (k % 2 == 1)
                            b = std::min(us, b + innerEscapeAt(p + b, us - b));
                    } else {
                        b = std::min(us, b - 1 + (p[b] == 'u' ? 6 : 2));
                    }
                } else if (((b - j) / 2 + escapedBackslashesBefore(p, begin, j)) % 2 == 1) {
                    // an odd number of escaped backslashes (raw \\ or
                    // \u005c): an inner escape (TokenRestorer)
                    b = std::min(us, b + innerEscapeAt(p + b, us - b));
                }
            }
            bool shaped = p[b] >= 'A' && p[b] <= 'Z';
            for (std::size_t k = b; shaped && k < us; ++k)
                shaped = (p[k] >= 'A' && p[k] <= 'Z') || isDigit(p[k]) || p[k] == '_';
            if (shaped)
                shape(b, q - b);
            i = q;
        }
    }

    void findShapes(std::size_t begin, std::size_t end)
    {
        forEachShape(scanBuf.data(), begin, end, [&](std::size_t b, std::size_t n) {
            shapes.push_back({static_cast<std::uint32_t>(b), static_cast<std::uint32_t>(n)});
        });
    }

    // Scans everything laid out, assigns raw candidates to tokens, decodes
    // what they crossed, and repeats until nothing new was laid out.
    Result<void, MaskError> run()
    {
        std::size_t next = 0; // first document not yet processed
        while (scanned < segs.size()) {
            if (auto r = scanPending(); !r)
                return r;
            for (std::size_t di = next; di < ndocs; ++di) {
                if (docs[di]->processed || docs[di]->rawSeg >= scanned)
                    continue;
                if (auto r = processRaw(static_cast<std::uint32_t>(di)); !r)
                    return r;
            }
            while (next < ndocs && docs[next]->processed)
                ++next;
        }
        return Ok{};
    }

    // Raw-scan candidates of a document: those inside a string without
    // escapes (or equal to a scalar) are taken as they are; one that crosses
    // a string's edge has that string decoded and scanned on its own.
    Result<void, MaskError> processRaw(std::uint32_t di)
    {
        Doc& d = *docs[di];
        d.processed = true;
        auto& toks = d.toks;
        auto tokAt = [&](std::uint32_t pos) { return tokenAt(toks, pos); };
        const Segment& seg = segs[d.rawSeg];
        for (std::uint32_t ci = seg.cand; ci < seg.cand + seg.ncand; ++ci) {
            const Candidate c = cands[ci];
            std::int64_t ti = tokAt(c.begin);
            if (ti < 0) {
                // Starts outside any token: it may end inside a clean one.
                std::int64_t te = c.end > 0 ? tokAt(c.end - 1) : -1;
                if (te >= 0 && toks[static_cast<std::size_t>(te)].kind != Kind::Scalar)
                    toks[static_cast<std::size_t>(te)].rescan = true;
                continue;
            }
            Tok& t = toks[static_cast<std::size_t>(ti)];
            if (t.skip || t.escaped)
                continue;
            if (t.kind == Kind::Scalar) {
                if (c.begin == t.begin && c.end == t.end)
                    d.fast.push_back({static_cast<std::uint32_t>(ti), c});
                continue;
            }
            if (c.end <= t.end)
                d.fast.push_back({static_cast<std::uint32_t>(ti), c});
            else
                t.rescan = true;
        }
        if (seg.ncand == 0)
            return Ok{};
        for (std::uint32_t ti = 0; ti < toks.size(); ++ti) {
            const Tok& t = toks[ti];
            if (t.rescan && !t.skip && t.kind != Kind::Scalar && d.strOf[ti] < 0)
                if (auto r = addStr(di, ti); !r)
                    return r;
        }
        return Ok{};
    }

    // ---- planning -----------------------------------------------------------

    // Overlaps: lower priority number wins, then leftmost, then longest.
    // Result sorted by begin.
    void resolve(std::vector<Candidate>& c)
    {
        if (c.size() < 2)
            return;
        const auto& rules = rs.rules();
        std::sort(c.begin(), c.end(), [&](const Candidate& a, const Candidate& b) {
            int pa = rules[a.rule].spec.priority, pb = rules[b.rule].spec.priority;
            if (pa != pb)
                return pa < pb;
            if (a.begin != b.begin)
                return a.begin < b.begin;
            return a.end - a.begin > b.end - b.begin;
        });
        std::vector<Candidate>& kept = resolveTmp;
        kept.clear();
        for (const Candidate& x : c) {
            auto it = std::lower_bound(kept.begin(), kept.end(), x.begin,
                                       [](const Candidate& k, std::uint32_t b) { return k.end <= b; });
            if (it != kept.end() && it->begin < x.end)
                continue; // overlaps an accepted span
            kept.insert(it, x);
        }
        c.swap(kept);
    }

    // A masked span must not cut a UTF-8 character (only a rule matching
    // part of one can): the output would not be valid UTF-8.
    Result<void, MaskError> checkBoundaries(std::string_view text, const std::vector<Candidate>& c) const
    {
        for (const Candidate& x : c)
            if (!onCharBoundaries(text, x.begin, x.end))
                return fail(MaskError{Unmaskable::Residual,
                                      "rule " + rs.rules()[x.rule].spec.name + " matches part of a multi-byte character"});
        return Ok{};
    }

    // Step 4b: the resolved spans of one text, text[lo, hi) (sorted by
    // begin, disjoint), widened to whole words: left while the byte before
    // is a word byte, right while the byte after is one. The unmasker
    // restores whole tokens only, so a token glued to a word byte
    // ("notify-reEC2_ELASTICACHE_HOST_001") would never come back. Word
    // bytes are ASCII, each one whole escape unit and one whole character,
    // so a widened span keeps the unit and UTF-8 boundaries it had. Spans
    // that then overlap or touch (a token next to a token is glued too)
    // become one, the union, with the rule of lower priority number (the
    // leftmost on a tie). Then the occurrences extra[0, nextra) (sorted by
    // begin; whole words already) join: one inside a span adds nothing,
    // one that overlaps or touches spans makes their union. Widening and
    // merging only ever mask more.
    void settle(std::vector<Candidate>& c, std::string_view text, std::uint32_t lo, std::uint32_t hi,
                const std::pair<std::uint32_t, Candidate>* extra = nullptr, std::size_t nextra = 0,
                const char* alt = nullptr)
    {
        const auto& rules = rs.rules();
        auto lower = [&](std::uint32_t a, std::uint32_t b) {
            return rules[a].spec.priority < rules[b].spec.priority ? a : b;
        };
        std::size_t out = 0;
        plainTmp.clear();
        for (std::size_t i = 0; i < c.size(); ++i) {
            Candidate x = c[i];
            while (x.begin > lo && isWordByte(text[x.begin - 1]) &&
                   !(alt && alt[x.begin - 1] == kRestorable && endsUnit(text.data(), alt, hi, x.begin - 1)))
                --x.begin;
            while (x.end < hi && isWordByte(text[x.end]))
                ++x.end;
            // Widening is monotonic: c stays sorted by begin.
            if (out > 0 && x.begin <= c[out - 1].end) {
                Candidate& p = c[out - 1];
                p.end = std::max(p.end, x.end);
                p.rule = lower(x.rule, p.rule);
                plainTmp[out - 1] = 0;
                continue;
            }
            plainTmp.push_back(x.begin == c[i].begin && x.end == c[i].end);
            c[out++] = x;
        }
        c.resize(out);
        if (nextra == 0)
            return;
        plainTmp.assign(c.size() + nextra, 0); // (only the first finalize() reads it)
        std::vector<Candidate>& all = resolveTmp;
        all.clear();
        std::size_t i = 0, k = 0;
        while (i < c.size() || k < nextra) {
            const bool span = k == nextra || (i < c.size() && c[i].begin <= extra[k].second.begin);
            const Candidate x = span ? c[i++] : extra[k++].second;
            if (!all.empty() && x.begin <= all.back().end) {
                Candidate& p = all.back();
                if (x.end > p.end) {
                    p.end = x.end;
                    p.rule = lower(x.rule, p.rule);
                }
                continue;
            }
            all.push_back(x);
        }
        c.swap(all);
    }

    // The work of document `di`: per token in order, its resolved
    // candidates, settled with the occurrences propagate() added. Nested
    // documents are finalized first (they come later).
    Result<void, MaskError> finalize(std::uint32_t di)
    {
        Doc& d = *docs[di];
        std::stable_sort(d.fast.begin(), d.fast.end(),
                         [](const auto& a, const auto& b) { return a.first < b.first; });
        std::sort(d.extra.begin(), d.extra.end(), [](const auto& a, const auto& b) {
            return a.first != b.first ? a.first < b.first : a.second.begin < b.second.begin;
        });
        // Tokens with something to finalize, in order: those with raw
        // candidates or occurrences, and the decoded ones.
        order.clear();
        for (const auto& [ti, c] : d.fast)
            if (order.empty() || order.back() != ti)
                order.push_back(ti);
        for (const auto& [ti, c] : d.extra)
            order.push_back(ti);
        for (const Str& s : d.strs)
            order.push_back(s.tok);
        std::sort(order.begin(), order.end());
        order.erase(std::unique(order.begin(), order.end()), order.end());
        std::size_t fi = 0, xi = 0;
        for (const std::uint32_t ti : order) {
            candTmp.clear();
            while (fi < d.fast.size() && d.fast[fi].first == ti)
                candTmp.push_back(d.fast[fi++].second);
            const std::size_t x0 = xi;
            while (xi < d.extra.size() && d.extra[xi].first == ti)
                ++xi;
            const auto* extra = d.extra.data() + x0;
            const std::size_t nextra = xi - x0;
            const std::int32_t si = d.strOf[ti];
            const Tok& t = d.toks[ti];
            Work w{Work::Fast, ti, si, 0, 0};
            if (si < 0) {
                resolve(candTmp);
                settle(candTmp, d.text, t.begin, t.end, extra, nextra);
                if (t.kind != Kind::Scalar)
                    if (auto r = checkBoundaries(d.text, candTmp); !r)
                        return r;
            } else {
                // Decoded: its raw candidates (if any) are superseded.
                const Str& s = d.strs[static_cast<std::size_t>(si)];
                if (s.inert)
                    continue;
                if (s.nested >= 0) {
                    if (!docs[static_cast<std::size_t>(s.nested)]->work.empty())
                        d.work.push_back({Work::Nested, ti, si, 0, 0});
                    continue;
                }
                const Segment& seg = segs[static_cast<std::size_t>(s.seg)];
                candTmp.assign(cands.begin() + seg.cand, cands.begin() + seg.cand + seg.ncand);
                if (s.altSeg >= 0) { // both readings' candidates, in decoded coordinates
                    const Segment& as = segs[static_cast<std::size_t>(s.altSeg)];
                    candTmp.insert(candTmp.end(), cands.begin() + as.cand, cands.begin() + as.cand + as.ncand);
                }
                if (candTmp.empty() && nextra == 0)
                    continue;
                resolve(candTmp);
                settle(candTmp, s.decoded, 0, static_cast<std::uint32_t>(s.decoded.size()), extra, nextra,
                       s.alt.empty() ? nullptr : s.alt.data());
                if (auto r = checkBoundaries(s.decoded, candTmp); !r)
                    return r;
                w.type = Work::Slow;
            }
            w.cand = static_cast<std::uint32_t>(d.cands.size());
            w.ncand = static_cast<std::uint32_t>(candTmp.size());
            d.cands.insert(d.cands.end(), candTmp.begin(), candTmp.end());
            d.plain.insert(d.plain.end(), plainTmp.begin(), plainTmp.begin() + static_cast<std::ptrdiff_t>(candTmp.size()));
            d.work.push_back(w);
        }
        return Ok{};
    }

    Result<void, MaskError> finalizeFrom(std::size_t firstDoc)
    {
        for (std::size_t di = ndocs; di-- > firstDoc;)
            if (auto r = finalize(static_cast<std::uint32_t>(di)); !r)
                return r;
        return Ok{};
    }

    // ---- propagation ----------------------------------------------------------
    //
    // Step 4c. A value recognised by its context in one place (the bucket
    // of s3://acme-logs/…, the account of "OwnerId": "…") may stand bare
    // elsewhere in the same body: in a tool_use input that holds the token
    // the model answered with, restored by veild, and sent back with the
    // conversation. So after the first finalize() of every document, every
    // whole occurrence (wholeOccurrence()) of an original of kMinPropagated
    // bytes or more, in any string of the body (keys and values, decoded,
    // JSON text at every level; not base64 data), is masked with the same
    // token: added to its string's candidates (Doc::extra), and all
    // documents are finalized again. An ARN's account id (its 5th ':'
    // field) is looked for as an ACCOUNT original too, so a bare account id
    // is masked even where only typed ARN tokens carry it. Still a pure
    // function of the body.
    //
    // Not looked for: an original whose span is exactly what a rule that
    // needs no context matched (no capture group, no notBefore/notAfter,
    // no validator; RuleSet not boundary-sensitive). Wherever its text
    // stands whole, that rule matches it again: the same bytes, and \b
    // sees non-word bytes (or a text's edge) on both sides as it did, since
    // the span was not widened. Those are found by their rules anyway (and
    // the residual check's rescan would find them); looking for them too
    // cost ~10 us per dense body.
    //
    // The search runs over the scan buffer, where every text of the body
    // is once as a value part: with few needles memmem each, with more one
    // AVX2 pass (or a portable one) that keeps the word starts whose first
    // three bytes may begin a needle (StartSets), then a hash of the first
    // kMinPropagated bytes (keySlots). Hits are then placed in their text,
    // which decides the boundaries; most are spans already (walked next to
    // spanAt, in order).

    // Up to this many needles (repeats included), memmem each; measured on
    // bench/mask_bench: memmem ~0.7-0.9 us per needle over a 16 KB scan
    // buffer, the AVX2 pass ~1.5 us whatever the count, the portable one
    // several times that.
    static constexpr std::size_t kFewNeedles = 4;
    static constexpr std::size_t kFewNeedlesSimd = 2;

    bool vectorSearch() const
    {
#ifdef VEIL_MASK_X86
        return opts.vectorSearch && haveAvx2();
#else
        return false;
#endif
    }

    // Originals made only of letters and '_' ("content", "object",
    // "messages": S3 allows such bucket names) read as words of the
    // language and of the request's own schema: masking every bare
    // occurrence of them would rewrite prose, keys and enumerated values
    // ("type": "object") and break the request. They are masked where a
    // rule finds them in context, and not looked for elsewhere.
    static bool distinctive(std::string_view v)
    {
        return std::any_of(v.begin(), v.end(), [](char c) {
            return !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_');
        });
    }

    void addNeedle(std::string_view v, std::uint32_t rule, bool plain)
    {
        if (v.size() >= kMinPropagated && !(plain && refinds[rule]) && distinctive(v))
            needles.push_back({v, rule, kNone, 0});
        if (accountRule == UINT32_MAX || v.substr(0, 4) != "arn:")
            return;
        // arn:partition:service:region:account:resource
        std::size_t at = 0; // the 4th ':'
        for (int colon = 0; colon < 4; ++colon) {
            at = v.find(':', colon == 0 ? 0 : at + 1);
            if (at == std::string_view::npos)
                return;
        }
        const std::size_t end = v.find(':', at + 1);
        if (end == std::string_view::npos || end - at - 1 != 12)
            return;
        const std::string_view account = v.substr(at + 1, 12);
        if (std::all_of(account.begin(), account.end(), isDigit))
            needles.push_back({account, accountRule, kNone, 0});
    }

    // Prepares the search: every needle goes into a hash table by its
    // first kMinPropagated bytes (a chain per key), repeats of a text are
    // dropped (the first one stays: body order), and those that start
    // with a word byte are found by wordStarts() (with few needles and no
    // vector unit, all by memmem).
    void sealNeedles()
    {
        startSets.clear();
        memNeedles.clear();
        std::size_t nslots = 16;
        while (nslots < 2 * needles.size())
            nslots *= 2;
        keySlots.assign(nslots, KeySlot{0, kNone});
        wordSearch = needles.size() > (vectorSearch() ? kFewNeedlesSimd : kFewNeedles);
        uniqueNeedles = 0;
        for (std::uint32_t k = 0; k < needles.size(); ++k) {
            Needle& n = needles[k];
            n.key = keyOf(n.text.data());
            KeySlot* slot = slotOf(n.key);
            bool repeat = false;
            for (std::uint32_t j = slot->head; j != kNone && !repeat; j = needles[j].next)
                repeat = needles[j].text == n.text;
            if (repeat)
                continue;
            ++uniqueNeedles;
            slot->key = n.key;
            n.next = slot->head;
            slot->head = k;
            if (!wordSearch || !isWordByte(n.text[0])) {
                memNeedles.push_back(k);
                continue;
            }
            startSets.add(n.text.data());
        }
        startSets.seal();
    }

    // a[0, n) == b[0, n), for the short tails of needles: inline, where a
    // call to memcmp costs more than the compare.
    static bool sameBytes(const char* a, const char* b, std::size_t n)
    {
        for (; n >= 8; a += 8, b += 8, n -= 8) {
            std::uint64_t x, y;
            std::memcpy(&x, a, 8);
            std::memcpy(&y, b, 8);
            if (x != y)
                return false;
        }
        for (; n > 0; ++a, ++b, --n)
            if (*a != *b)
                return false;
        return true;
    }

    // The first kMinPropagated bytes at p, as a number; `room`: 8 bytes
    // may be read (one load, no store forwarding stall on a partial copy).
    static std::uint64_t keyOf(const char* p, bool room = false)
    {
        static_assert(kMinPropagated == 6);
        std::uint64_t k = 0;
        if constexpr (std::endian::native == std::endian::little) {
            if (room) {
                std::memcpy(&k, p, 8);
                return k & 0xFFFFFFFFFFFFull; // the first 6 bytes, as the loop below builds them
            }
        }
        for (std::size_t i = kMinPropagated; i-- > 0;)
            k = (k << 8) | static_cast<unsigned char>(p[i]);
        return k;
    }

    // The slot of `key`: its own, or the empty one where it would go.
    KeySlot* slotOf(std::uint64_t key)
    {
        const std::size_t mask = keySlots.size() - 1;
        for (std::size_t i = static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ull) >> 40) & mask;; i = (i + 1) & mask)
            if (keySlots[i].head == kNone || keySlots[i].key == key)
                return &keySlots[i];
    }

    // Every place in p[0, n) whose bytes equal a needle, into occ.
    void findOccurrences(const char* p, std::size_t n)
    {
        occ.clear();
        for (const std::uint32_t k : memNeedles) {
            const std::string_view t = needles[k].text;
            std::size_t at = 0;
            while (at + t.size() <= n) {
                const void* h = memmem(p + at, n - at, t.data(), t.size());
                if (!h)
                    break;
                const auto pos = static_cast<std::size_t>(static_cast<const char*>(h) - p);
                occ.push_back({k, static_cast<std::uint32_t>(pos)});
                at = pos + 1;
            }
        }
        if (!wordSearch || memNeedles.size() == uniqueNeedles)
            return;
        // A needle that starts with a word byte can only occur whole at a
        // word start of the text holding it, and so at one of p, whose
        // first three bytes may be a needle's (wordStarts()), then whose
        // first kMinPropagated are one's (keySlots).
        starts.clear();
        wordStarts(p, n, startSets, starts, opts.vectorSearch);
        for (const std::uint32_t q : starts) {
            if (q + kMinPropagated > n)
                break;
            for (std::uint32_t k = slotOf(keyOf(p + q, q + 8 <= n))->head; k != kNone; k = needles[k].next) {
                const std::string_view t = needles[k].text;
                if (q + t.size() <= n && sameBytes(p + q + kMinPropagated, t.data() + kMinPropagated,
                                                   t.size() - kMinPropagated))
                    occ.push_back({k, q});
            }
        }
    }

    // Where scanBuf[pos, pos + len) lies, if it is a whole occurrence in one
    // text: its document, token and begin in the coordinates the token's
    // work uses (the document's for a raw string or a scalar, which must be
    // the whole scalar; the decoded text's for a decoded string).
    // In the body itself (depth 0) a value of the API's enumerated fields
    // ("type": "base64", "role", "model", "media_type") that is exactly an
    // original is not rewritten this way: such an original is a word of the
    // schema, and rewriting it breaks the request (one that only holds an
    // original among other text is masked as any string) (an original that is a schema key
    // is all letters, see distinctive()). A number that is an original
    // after a '-' is one whole occurrence with its sign: [begin, end)
    // covers the scalar (its token restores the signed text).
    static bool schemaValue(const Doc& d, const Tok& t)
    {
        if (d.depth != 0 || t.kind != Kind::String || t.key < 0)
            return false;
        const Tok& k = d.toks[static_cast<std::size_t>(t.key)];
        const std::string_view name = d.text.substr(k.begin, k.end - k.begin);
        return name == "type" || name == "role" || name == "model" || name == "media_type";
    }

    // [b, e) of decoded string token `tok` of `d` lies inside one of its spans.
    static bool insideSpan(const Doc& d, std::uint32_t tok, std::uint32_t b, std::uint32_t e)
    {
        auto w = std::lower_bound(d.work.begin(), d.work.end(), tok,
                                  [](const Work& x, std::uint32_t t) { return x.tok < t; });
        if (w == d.work.end() || w->tok != tok || w->type != Work::Slow)
            return false;
        const auto first = d.cands.begin() + w->cand;
        auto c = std::upper_bound(first, first + w->ncand, b,
                                  [](std::uint32_t x, const Candidate& k) { return x < k.begin; });
        return c != first && (c - 1)->end >= e;
    }

    bool occurrenceAt(std::uint32_t pos, std::uint32_t len, std::uint32_t& doc, std::uint32_t& tok,
                      std::uint32_t& begin, std::uint32_t& end)
    {
        auto it = std::lower_bound(segs.begin(), segs.end(), pos,
                                   [](const Segment& s, std::uint32_t p) { return s.end <= p; });
        if (it == segs.end() || pos < it->begin + it->from || pos + len > it->end)
            return false; // in a context, or across a text's end
        const Doc& d = *docs[it->doc];
        if (it->str >= 0) {
            const Str& s = d.strs[static_cast<std::size_t>(it->str)];
            const std::uint32_t off = pos - (it->begin + it->from);
            // A hit in the second reading (the search keeps word starts
            // only, and in `\nacme-logs` the a is one there only) stands
            // for the same offsets of the first, if the bytes there are the
            // needle's too.
            if (it->alt && std::memcmp(s.decoded.data() + off, scanBuf.data() + pos, len) != 0)
                return false;
            if (off == 0 && len == s.decoded.size() && schemaValue(d, d.toks[s.tok]))
                return false;
            const char* alt = s.alt.empty() ? nullptr : s.alt.data();
            if (!wholeOccurrence(s.decoded.data(), 0, s.decoded.size(), off, off + len, alt))
                return false;
            doc = it->doc;
            tok = s.tok;
            begin = off;
            end = off + len;
            // After an escape letter the unmasker would read as a word byte
            // (Str::alt): the letter is masked with it.
            if (off > 0 && endsUnit(s.decoded.data(), alt, s.decoded.size(), off - 1) && alt[off - 1] == kDetected) {
                while (begin > 0 && alt[begin - 1] != s.decoded[begin - 1])
                    --begin;
                grown = true;
            }
            // propagate() skips first-reading hits inside spans as it walks;
            // a second-reading hit is looked up.
            return !(it->alt && insideSpan(d, s.tok, begin, end));
        }
        const std::uint32_t off = pos - it->begin;
        const std::int64_t ti = tokenAt(d.toks, off);
        if (ti < 0)
            return false;
        const Tok& t = d.toks[static_cast<std::size_t>(ti)];
        // Blanked, or decoded and placed in its own text.
        if (t.escaped || t.skip || d.strOf[static_cast<std::size_t>(ti)] >= 0 || off + len > t.end)
            return false;
        if (off == t.begin && off + len == t.end && schemaValue(d, t))
            return false;
        begin = off;
        if (t.kind == Kind::Scalar) {
            if (off + len != t.end)
                return false;
            if (off != t.begin) {
                if (off != t.begin + 1 || d.text[t.begin] != '-')
                    return false;
                begin = t.begin;
            }
        } else if (!wholeOccurrence(d.text.data(), t.begin, t.end, off, off + len)) {
            return false;
        }
        doc = it->doc;
        tok = static_cast<std::uint32_t>(ti);
        end = off + len;
        return true;
    }

    // The spans of the first finalize() in scanBuf coordinates, in order
    // (segments and their value parts are in buffer order).
    void indexSpans()
    {
        spanAt.clear();
        for (const Segment& sg : segs) {
            if (sg.alt)
                continue; // spans are in the first reading's coordinates
            const Doc& d = *docs[sg.doc];
            auto add = [&](const Work& w, std::uint32_t base) {
                for (std::uint32_t k = 0; k < w.ncand; ++k)
                    spanAt.push_back({base + d.cands[w.cand + k].begin, base + d.cands[w.cand + k].end});
            };
            if (sg.str < 0) {
                for (const Work& w : d.work)
                    if (w.type == Work::Fast)
                        add(w, sg.begin);
                continue;
            }
            const std::uint32_t tok = d.strs[static_cast<std::size_t>(sg.str)].tok;
            auto w = std::lower_bound(d.work.begin(), d.work.end(), tok,
                                      [](const Work& x, std::uint32_t t) { return x.tok < t; });
            if (w != d.work.end() && w->tok == tok && w->type == Work::Slow)
                add(*w, sg.begin + sg.from);
        }
    }

    // After finalize(): adds every occurrence of an original that no span
    // covers to its document's extra. True if one was added (then the
    // documents are finalized again).
    bool propagate()
    {
        grown = false;
        needles.clear();
        for (std::size_t di = 0; di < ndocs; ++di) {
            const Doc& d = *docs[di];
            for (const Work& w : d.work) {
                if (w.type == Work::Nested)
                    continue;
                const std::string_view text = w.type == Work::Fast ? d.text : d.strs[static_cast<std::size_t>(w.str)].decoded;
                for (std::uint32_t k = 0; k < w.ncand; ++k) {
                    const Candidate& c = d.cands[w.cand + k];
                    addNeedle(text.substr(c.begin, c.end - c.begin), c.rule, d.plain[w.cand + k] != 0);
                }
            }
        }
        if (needles.empty())
            return false;
        sealNeedles();
        findOccurrences(scanBuf.data(), scanBuf.size());
        if (occ.empty())
            return false;
        indexSpans();
        // Most hits are spans themselves (the rule found them): walked in
        // order next to the spans, those cost nothing more.
        if (!memNeedles.empty()) // wordStarts() hits come in order
            std::sort(occ.begin(), occ.end(), [](const auto& a, const auto& b) {
                return a.second != b.second ? a.second < b.second : a.first < b.first;
            });
        bool added = false;
        std::size_t si = 0;
        for (const auto& [k, pos] : occ) {
            const Needle& n = needles[k];
            const auto len = static_cast<std::uint32_t>(n.text.size());
            while (si < spanAt.size() && spanAt[si].second <= pos)
                ++si; // spans are disjoint and in order: the first that ends after pos
            if (si < spanAt.size() && spanAt[si].first <= pos && pos + len <= spanAt[si].second)
                continue;
            std::uint32_t di = 0, ti = 0, b = 0, e = 0;
            if (!occurrenceAt(pos, len, di, ti, b, e))
                continue;
            docs[di]->extra.push_back({ti, Candidate{n.rule, b, e}});
            added = true;
        }
        return added;
    }

    // The residual check's half for originals: none may still stand whole
    // in a decoded text of the output (documents [firstDoc, ndocs), planned
    // by residual()). Only strings masking changed are searched, and those
    // the first pass skipped as base64 data and the output no longer does:
    // any other string had no whole occurrence in the first pass
    // (propagate() found them all, and masking one edits its string), and
    // an occurrence lies inside one string. Returns the token type of an
    // original that still stands, or null.
    const std::string* residualOccurrence(std::size_t firstDoc)
    {
        if (needles.empty())
            return nullptr;
        // The texts, one after the other, each followed by a NUL (not a
        // word byte), so that one search covers them.
        resBuf.clear();
        resTexts.clear();
        resAlts.clear();
        for (std::size_t di = firstDoc; di < ndocs; ++di) {
            const Doc& d = *docs[di];
            const bool all = d.origin < 0 || d.dirty.empty(); // not planned from edits: all of it
            const std::size_t count = all ? d.toks.size() : d.edited.size();
            for (std::size_t i = 0; i < count; ++i) {
                const std::uint32_t ti = all ? static_cast<std::uint32_t>(i) : d.edited[i];
                const Tok& t = d.toks[ti];
                if (t.skip)
                    continue;
                std::string_view text = d.text.substr(t.begin, t.end - t.begin);
                if (const std::int32_t si = d.strOf[ti]; si >= 0) {
                    const Str& s = d.strs[static_cast<std::size_t>(si)];
                    if (s.nested >= 0 || s.inert)
                        continue; // JSON text: its own document is searched
                    text = s.decoded;
                    if (!s.alt.empty() && text.size() >= kMinPropagated)
                        resAlts.push_back({static_cast<std::uint32_t>(resTexts.size()), s.alt});
                } else {
                    assert(!t.escaped); // what masking changed is decoded again
                    if (t.escaped)
                        continue;
                }
                if (text.size() < kMinPropagated)
                    continue;
                resTexts.push_back({static_cast<std::uint32_t>(resBuf.size()), t.kind == Kind::Scalar});
                resBuf.append(text);
                resBuf.push_back('\0');
            }
        }
        if (resTexts.empty())
            return nullptr;
        // The second readings (Str::alt), as texts of their own after the
        // others (the search keeps word starts, as in propagate()), and
        // over their texts in resAlt, a copy of resBuf, for the boundaries.
        resAlt.clear();
        if (!resAlts.empty()) {
            for (const auto& [first, alt] : resAlts) {
                resTexts.push_back({static_cast<std::uint32_t>(resBuf.size()), false, static_cast<std::int32_t>(first)});
                resBuf.append(alt);
                resBuf.push_back('\0');
            }
            resAlt = resBuf;
            for (const auto& [first, alt] : resAlts)
                std::memcpy(resAlt.data() + resTexts[first].begin, alt.data(), alt.size());
        }
        const char* alt = resAlt.empty() ? nullptr : resAlt.data();
        findOccurrences(resBuf.data(), resBuf.size());
        for (const auto& [k, at] : occ) {
            auto it = std::upper_bound(resTexts.begin(), resTexts.end(), at,
                                       [](std::uint32_t p, const ResText& r) { return p < r.begin; }) - 1;
            std::size_t pos = at;
            const std::size_t len = needles[k].text.size();
            if (it->first >= 0) { // the same offsets of the text it reads, if the needle is there too
                const std::size_t off = pos - it->begin;
                it = resTexts.begin() + it->first;
                pos = it->begin + off;
                if (std::memcmp(resBuf.data() + pos, resBuf.data() + at, len) != 0)
                    continue;
            }
            const std::size_t lo = it->begin;
            const std::size_t hi = it + 1 == resTexts.end() ? resBuf.size() - 1 : (it + 1)->begin - 1;
            if (pos + len > hi)
                continue;
            if (it->scalar ? pos == lo && pos + len == hi : wholeOccurrence(resBuf.data(), lo, hi, pos, pos + len, alt))
                return &rs.tokenTypes()[rs.rules()[needles[k].rule].type];
        }
        return nullptr;
    }

    // ---- tokens ---------------------------------------------------------------

    // The token for `original` (same original, same token), numbered per
    // type by first occurrence and never one already in the input.
    // Returns its span in tokText.
    std::pair<std::uint32_t, std::uint32_t> tokenFor(std::string_view original, unsigned type)
    {
        ++perType[type];
        if (slots.size() < 2 * (originals.size() + 1)) {
            // Grow (or first use) and reinsert this call's entries.
            std::vector<Slot> old(std::max<std::size_t>(64, slots.size() * 2), Slot{0, 0, 0});
            slots.swap(old);
            for (std::uint32_t e = 0; e < originals.size(); ++e)
                place(std::hash<std::string_view>{}(originals[e]), e);
        }
        const std::size_t h = std::hash<std::string_view>{}(original);
        const std::size_t mask = slots.size() - 1;
        for (std::size_t i = h & mask;; i = (i + 1) & mask) {
            Slot& s = slots[i];
            if (s.gen != gen)
                break;
            if (s.hash == h && originals[s.entry] == original)
                return tokens[s.entry];
        }
        const std::string& name = rs.tokenTypes()[type];
        std::string_view token;
        const auto at = static_cast<std::uint32_t>(tokText.size());
        do {
            tokText.resize(at);
            tokText += name;
            tokText += '_';
            // The number, at least 3 digits ("%03u").
            char digits[12];
            std::size_t nd = 0;
            for (unsigned v = ++nextNumber[type]; v > 0 || nd < 3; v /= 10)
                digits[nd++] = static_cast<char>('0' + v % 10);
            while (nd > 0)
                tokText += digits[--nd];
            token = std::string_view(tokText).substr(at);
        } while (std::binary_search(existing.begin(), existing.end(), token));
        const auto entry = static_cast<std::uint32_t>(originals.size());
        originals.push_back(original);
        tokens.push_back({at, static_cast<std::uint32_t>(tokText.size()) - at});
        place(h, entry);
        mapping->add(std::string(token), std::string(original));
        return tokens.back();
    }

    void place(std::size_t h, std::uint32_t entry)
    {
        const std::size_t mask = slots.size() - 1;
        std::size_t i = h & mask;
        while (slots[i].gen == gen)
            i = (i + 1) & mask;
        slots[i] = {h, gen, entry};
    }

    // Token-shaped runs of the input, for tokenFor: those of the texts
    // scanned (decoded strings), and those of the raw text of strings the
    // scan buffer holds blanked where it differs: `SUBNET_001\u00349`
    // decodes to SUBNET_00149, but its raw SUBNET_001 stands as a whole
    // word, which the unmasker would turn into an original if SUBNET_001
    // were handed out. Raw text is read as the unmasker reads it
    // (forEachShape<true>: an escape unit is a boundary, and so is an escape
    // letter after \\), so a raw run differs from the decoded one only next
    // to a unit that decodes to a word byte or to a \\ before a letter;
    // strings without such a unit need no second look. Base64
    // data is never decoded: its raw text is read. At every level of JSON
    // text.
    void sealExisting()
    {
        existing.clear();
        for (const auto& [b, n] : shapes)
            existing.push_back(std::string_view(scanBuf).substr(b, n));
        for (std::size_t di = 0; di < ndocs; ++di) {
            const Doc& d = *docs[di];
            if (!d.blanked)
                continue;
            auto raw = [&](const Tok& t) {
                forEachShape<true>(d.text.data(), t.begin, t.end,
                                   [&](std::size_t b, std::size_t n) { existing.push_back(d.text.substr(b, n)); });
            };
            for (const std::uint32_t ti : d.skipped)
                raw(d.toks[ti]);
            for (const Str& s : d.strs) {
                if (s.inert || !d.toks[s.tok].escaped)
                    continue;
                for (std::uint32_t u = s.unit; u < s.unit + s.nunit; ++u) {
                    const json::EscapeUnit& e = units[u];
                    const char c = e.decodedLen == 1 ? s.decoded[e.decoded] : '\0';
                    // A unit that decodes to a word byte, or \\ before a letter
                    // (read as an inner escape, see forEachShape).
                    const char next = e.decoded + 1 < s.decoded.size() ? s.decoded[e.decoded + 1] : '\0';
                    if (isWordByte(c) || (c == '\\' && (next == 'b' || next == 'f' || next == 'n' || next == 'r' ||
                                                         next == 't' || next == 'u'))) {
                        raw(d.toks[s.tok]);
                        break;
                    }
                }
            }
        }
        std::sort(existing.begin(), existing.end());
        existing.erase(std::unique(existing.begin(), existing.end()), existing.end());
    }

    std::uint32_t addEditText(std::string_view s)
    {
        const auto at = static_cast<std::uint32_t>(etext.size());
        etext.append(s);
        return at;
    }
    Edit tokenEdit(std::uint32_t b, std::uint32_t e, std::string_view original, std::uint32_t rule, bool quoted)
    {
        const auto [at, len] = tokenFor(original, rs.rules()[rule].type);
        const auto start = static_cast<std::uint32_t>(etext.size());
        if (quoted)
            etext += '"';
        etext.append(tokText, at, len);
        if (quoted)
            etext += '"';
        return {b, e, start, static_cast<std::uint32_t>(etext.size()) - start};
    }
    std::string_view editText(const Edit& e) const { return std::string_view(etext).substr(e.text, e.len); }

    // Edits [first, end) of `edits`, in decoded coordinates of escaped
    // string `t`, moved to raw coordinates of `text`. Returns false (and
    // changes nothing) if one does not start and end between escape units.
    bool toRaw(const Str& s, const Tok& t, std::vector<Edit>& edits, std::size_t first)
    {
        rawPos.clear();
        for (std::size_t k = first; k < edits.size(); ++k) {
            rawPos.push_back(edits[k].begin);
            rawPos.push_back(edits[k].end);
        }
        json::rawOffsets(units.data() + s.unit, s.nunit, s.decoded.size(), t.end - t.begin, rawPos, &unitStart);
        if (std::find(unitStart.begin(), unitStart.end(), 0) != unitStart.end())
            return false;
        for (std::size_t k = first, j = 0; k < edits.size(); ++k, j += 2) {
            edits[k].begin = t.begin + rawPos[j];
            edits[k].end = t.begin + rawPos[j + 1];
        }
        return true;
    }

    // Step 5: the work of document `di` as edits of its text (in order),
    // tokens allocated in order of appearance. Nested documents' masked
    // texts are kept for the residual check.
    //
    // Why the output is valid JSON of the same structure (so the residual
    // check does not validate it again): edits lie inside string contents
    // or replace a whole scalar with a quoted token; tokens are
    // [A-Z0-9_]; spans start and end between UTF-8 characters
    // (checkBoundaries) and, in strings with escapes, between escape units;
    // nested JSON is re-escaped with json::escape from valid UTF-8.
    void emit(std::uint32_t di)
    {
        Doc& d = *docs[di];
        d.edits.clear();
        for (Work& w : d.work) {
            const Tok& t = d.toks[w.tok];
            w.edit = static_cast<std::uint32_t>(d.edits.size());
            const Candidate* c = d.cands.data() + w.cand;
            if (w.type == Work::Fast) {
                if (t.kind == Kind::Scalar) {
                    // A number in account context: becomes a string token.
                    d.edits.push_back(
                        tokenEdit(t.begin, t.end, d.text.substr(c->begin, c->end - c->begin), c->rule, true));
                    continue;
                }
                for (std::uint32_t k = 0; k < w.ncand; ++k)
                    d.edits.push_back(tokenEdit(c[k].begin, c[k].end,
                                                d.text.substr(c[k].begin, c[k].end - c[k].begin), c[k].rule, false));
                continue;
            }
            const Str& s = d.strs[static_cast<std::size_t>(w.str)];
            if (w.type == Work::Slow) {
                // Every masked span starts and ends on an escape unit
                // boundary (a character boundary, checked when planned),
                // so it is spliced at raw offsets.
                if (!t.escaped) {
                    for (std::uint32_t k = 0; k < w.ncand; ++k)
                        d.edits.push_back(tokenEdit(t.begin + c[k].begin, t.begin + c[k].end,
                                                    s.decoded.substr(c[k].begin, c[k].end - c[k].begin), c[k].rule,
                                                    false));
                    continue;
                }
                std::size_t first = d.edits.size();
                for (std::uint32_t k = 0; k < w.ncand; ++k)
                    d.edits.push_back(tokenEdit(c[k].begin, c[k].end,
                                                s.decoded.substr(c[k].begin, c[k].end - c[k].begin), c[k].rule,
                                                false));
                const bool aligned = toRaw(s, t, d.edits, first);
                assert(aligned); // character boundaries are unit boundaries
                (void)aligned;
                continue;
            }
            // JSON inside the string: its edits are in decoded coordinates.
            // Where they start and end on escape-unit boundaries they map
            // back to raw offsets, so the client's own escapes elsewhere in
            // the string (\u2192, \/, \u003e) stay byte for byte; otherwise
            // the string is re-escaped whole.
            Doc& nd = *docs[static_cast<std::size_t>(s.nested)];
            emit(static_cast<std::uint32_t>(s.nested));
            auto maskNested = [&] {
                char* masked = arena.allocate(maskedSize(nd));
                nd.masked = std::string_view(masked, applyEdits(nd.text, nd.edits, masked));
            };
            if (opts.residualCheck)
                maskNested();
            const std::size_t first = d.edits.size();
            for (const Edit& e : nd.edits) {
                strTmp.assign(editText(e));
                const auto at = static_cast<std::uint32_t>(etext.size());
                json::escape(strTmp, etext);
                d.edits.push_back({e.begin, e.end, at, static_cast<std::uint32_t>(etext.size()) - at});
            }
            if (!t.escaped) { // raw == decoded
                for (std::size_t k = first; k < d.edits.size(); ++k) {
                    d.edits[k].begin += t.begin;
                    d.edits[k].end += t.begin;
                }
                continue;
            }
            if (toRaw(s, t, d.edits, first))
                continue;
            d.edits.resize(first);
            if (nd.masked.data() == nullptr)
                maskNested();
            const auto at = static_cast<std::uint32_t>(etext.size());
            json::escape(nd.masked, etext);
            d.edits.push_back({t.begin, t.end, at, static_cast<std::uint32_t>(etext.size()) - at});
        }
    }

    std::size_t maskedSize(const Doc& d) const
    {
        std::size_t n = d.text.size();
        for (const Edit& e : d.edits)
            n = n - (e.end - e.begin) + e.len;
        return n;
    }

    std::size_t applyEdits(std::string_view text, const std::vector<Edit>& edits, char* out) const
    {
        char* o = out;
        std::size_t pos = 0;
        for (const Edit& e : edits) {
            std::memcpy(o, text.data() + pos, e.begin - pos);
            o += e.begin - pos;
            std::memcpy(o, etext.data() + e.text, e.len);
            o += e.len;
            pos = e.end;
        }
        std::memcpy(o, text.data() + pos, text.size() - pos);
        o += text.size() - pos;
        return static_cast<std::size_t>(o - out);
    }

    void applyEdits(std::string_view text, const std::vector<Edit>& edits, std::string& out) const
    {
        std::size_t pos = 0;
        for (const Edit& e : edits) {
            out.append(text.substr(pos, e.begin - pos));
            out.append(etext, e.text, e.len);
            pos = e.end;
        }
        out.append(text.substr(pos));
    }

    // ---- residual check -----------------------------------------------------
    //
    // After masking, the output planned as in steps 2-4 must yield nothing
    // (fail closed). It is planned from what masking knows rather than
    // parsed again, and decides each string the way the first pass did:
    //
    // - Not validated: valid by construction (see emit()); debug builds
    //   check it (assert).
    // - Its structure is the input's with offsets moved by the edits, a
    //   scalar that became a token now a string, and the escape flag of
    //   edited strings read again (derive()). If an edited token was "type",
    //   "base64" or "data" (which decide what is skipped) it is walked again.
    // - The raw text of every masked document is scanned again in full (the
    //   body, and each nested JSON text masking changed): no window around
    //   the edits, because 64 of the aws pack's rules have no longest match
    //   and could reach an edit from anywhere.
    // - A string is decoded and scanned again if masking changed it, its
    //   key, or the sibling before its key (dirty), or if a candidate of the
    //   new raw scan crosses it; its decoded text is the first pass's, with
    //   the tokens spliced in where masking replaced whole escape units.
    // - A string the first pass decoded that masking left alone, with its
    //   context, is the same text the first pass scanned; had that scan
    //   found anything, masking would have changed the string. So it yields
    //   nothing, and (as in the first pass) its raw candidates do not count
    //   (inert). The same holds for a JSON text in such a string, and,
    //   recursively, for the strings of a nested JSON text that changed.
    // - A string that was not JSON text in the first pass is checked again
    //   (masking inside it could make it JSON).
    // - Base64 data the first pass skipped and the output no longer does
    //   (masking changed a "type", "base64" or "data") was never decoded:
    //   it is decoded and scanned now (dirty).
    // - Originals (residualOccurrence()): none looked for in step 4c may
    //   stand whole in the decoded text of a string masking changed, or of
    //   data no longer skipped; any other string is as the first pass saw
    //   it, which masked every whole occurrence there.
    //
    // tests/unit/mask/masker_test.cpp plants what this must still catch: a
    // token completing a match, in every kind of string and in JSON text two
    // levels down; text joined across a token; a skipped key masked; an
    // original in data that masking made no longer skipped.

    // The masked output of document `oi` (emitted), as a new document.
    Result<std::uint32_t, MaskError> derive(std::uint32_t oi)
    {
        const std::string_view outText = oi == 0 ? std::string_view(outBody_) : docs[oi]->masked;
        const std::uint32_t ni = newDoc(outText, docs[oi]->depth);
        Doc& n = *docs[ni];
        const Doc& o = *docs[oi];
        n.origin = static_cast<std::int32_t>(oi);
        n.toks = o.toks;
        n.strOf.assign(n.toks.size(), -1);
        n.dirty.assign(n.toks.size(), 0);
        bool rewalk = false;
        std::int64_t delta = 0;
        std::size_t ei = 0;
        for (std::size_t ti = 0; ti < n.toks.size(); ++ti) {
            Tok& t = n.toks[ti];
            t.rescan = false;
            const Tok& in = o.toks[ti];
            t.begin = static_cast<std::uint32_t>(in.begin + delta);
            bool edited = false;
            for (; ei < o.edits.size() && o.edits[ei].begin < in.end; ++ei) {
                const Edit& e = o.edits[ei];
                edited = true;
                if (in.kind == Kind::Scalar) { // [begin, end) became "TOKEN"
                    t.kind = Kind::String;
                    t.begin += 1;
                }
                delta += static_cast<std::int64_t>(e.len) - (e.end - e.begin);
            }
            t.end = static_cast<std::uint32_t>(in.end + delta) - (t.kind != in.kind ? 1 : 0);
            if (edited) {
                n.edited.push_back(static_cast<std::uint32_t>(ti));
                if (t.kind != Kind::Scalar)
                    t.escaped = std::memchr(outText.data() + t.begin, '\\', t.end - t.begin) != nullptr;
                rewalk = rewalk || isSkipMarker(o.text.substr(in.begin, in.end - in.begin));
            }
            // Values whose key or preceding sibling changed (context rules).
            const std::int32_t k = t.key;
            n.dirty[ti] = edited ? kEdited
                                 : (k >= 0 && (n.dirty[static_cast<std::size_t>(k)] ||
                                               (k > 0 && n.dirty[static_cast<std::size_t>(k) - 1])));
        }
        if (rewalk) {
            std::string why;
            if (!parser.parse(outText, &why))
                return fail(MaskError{Unmaskable::Internal, "masked body is not valid JSON: " + why});
            collect(n);
            if (n.dirty.size() != n.toks.size()) { // not the input's structure: check everything
                n.dirty.clear();
                n.origin = -1;
            } else {
                // Data the first pass skipped and the output does not was
                // never decoded: it is read now, escapes and all.
                for (std::size_t ti = 0; ti < n.toks.size(); ++ti)
                    if (o.toks[ti].skip && !n.toks[ti].skip) {
                        n.dirty[ti] = std::max<std::uint8_t>(n.dirty[ti], 1);
                        n.edited.push_back(static_cast<std::uint32_t>(ti));
                    }
            }
        }
        return ni;
    }

    // The residual check of the output body (outBody_).
    Result<void, MaskError> residual()
    {
        assert(json::validate(outBody_));
        existing.clear(); // views into the first pass's scan buffer
        resetScan();
        collectShapes = false;
        const std::size_t firstDoc = ndocs;
        auto top = derive(0);
        if (!top)
            return fail(top.error());
        if (auto r = prepare(*top); !r)
            return r;
        if (auto r = run(); !r)
            return r;
        if (auto r = finalizeFrom(firstDoc); !r)
            return r;
        if (docs[*top]->work.empty()) {
            if (const std::string* type = residualOccurrence(firstDoc))
                return fail(MaskError{Unmaskable::Residual, "a value masked as " + *type +
                                                                " still occurs unmasked after masking"});
            return Ok{};
        }
        std::set<std::string> names;
        for (std::size_t di = firstDoc; di < ndocs; ++di)
            for (const Candidate& c : docs[di]->cands)
                names.insert(rs.rules()[c.rule].spec.name);
        return fail(MaskError{Unmaskable::Residual, "still matching after masking: " + join(names)});
    }

    std::string outBody_; // the output while the residual check runs (moved out after)

    void fillStats(MaskStats& stats) const
    {
        for (std::size_t ty = 0; ty < perType.size(); ++ty) {
            if (perType[ty] == 0)
                continue;
            stats.perType[rs.tokenTypes()[ty]] = perType[ty];
            stats.total += perType[ty];
        }
    }
};

Masker::Masker(std::shared_ptr<const RuleSet> rules, MaskOptions options)
    : rules_(std::move(rules)), impl_(std::make_unique<Impl>(*rules_, options))
{
}

Masker::~Masker() = default;

Result<Masked, MaskError> Masker::maskJson(std::string_view body)
{
    if (body.size() >= kMaxBody)
        return fail(MaskError{Unmaskable::TooLarge, "body of " + std::to_string(body.size()) + " bytes"});
    Impl& im = *impl_;
    struct Trim {
        Impl& im;
        ~Trim() { im.trim(); }
    } trim{im};
    std::string why;
    if (!im.parser.parse(body, &why))
        return fail(MaskError{Unmaskable::InvalidJson, why});
    im.resetCall();
    im.collectShapes = true;
    const std::uint32_t top = im.newDoc(body, 0);
    im.collect(*im.docs[top]);
    if (auto r = im.prepare(top); !r)
        return fail(r.error());
    if (auto r = im.run(); !r)
        return fail(r.error());
    if (auto r = im.finalizeFrom(0); !r)
        return fail(r.error());

    Masked m;
    if (im.docs[top]->work.empty()) {
        m.body.assign(body);
        return m; // nothing matched: the residual check would scan the same bytes
    }
    // Propagation rounds: one, and another while the last one made new
    // originals by taking an escape letter in (occurrenceAt()): those are
    // looked for too (and then by the residual check). Each such round
    // needs one more escape letter before the same value; past a few, fail
    // closed.
    constexpr int kMaxRounds = 4;
    for (int round = 0; round == 0 || im.grown; ++round) {
        if (!im.propagate())
            break;
        if (round == kMaxRounds)
            return fail(MaskError{Unmaskable::Residual, "a value is masked differently at each of many escape letters"});
        for (std::size_t di = 0; di < im.ndocs; ++di) {
            im.docs[di]->work.clear();
            im.docs[di]->cands.clear();
            im.docs[di]->plain.clear();
        }
        if (auto r = im.finalizeFrom(0); !r)
            return fail(r.error());
    }
    im.sealExisting();
    im.mapping = &m.mapping;
    std::size_t spans = 0;
    for (std::size_t di = 0; di < im.ndocs; ++di)
        spans += im.docs[di]->cands.size();
    m.mapping.reserve(spans);
    im.emit(top);
    im.mapping = nullptr;
    im.fillStats(m.stats);
    m.body.reserve(im.maskedSize(*im.docs[top]));
    im.applyEdits(body, im.docs[top]->edits, m.body);

    if (im.opts.residualCheck) {
        im.outBody_.swap(m.body);
        auto r = im.residual();
        im.outBody_.swap(m.body);
        if (!r)
            return fail(r.error());
    }
    return m;
}

Result<Masked, MaskError> Masker::maskText(std::string_view body)
{
    if (body.size() >= kMaxBody)
        return fail(MaskError{Unmaskable::TooLarge, "body of " + std::to_string(body.size()) + " bytes"});
    Impl& im = *impl_;
    struct Trim {
        Impl& im;
        ~Trim() { im.trim(); }
    } trim{im};
    im.resetCall();
    im.collectShapes = true;
    auto scanText = [&](std::string_view text) -> Result<void, MaskError> {
        im.resetScan();
        im.segs.push_back({0, static_cast<std::uint32_t>(text.size()), 0, 0, -1});
        im.scanBuf.assign(text);
        return im.scanPending();
    };
    if (auto r = scanText(body); !r)
        return fail(r.error());
    Masked m;
    if (im.cands.empty()) {
        m.body.assign(body);
        return m;
    }
    std::vector<Candidate> found(im.cands.begin(), im.cands.end());
    const auto size = static_cast<std::uint32_t>(body.size());
    im.resolve(found);
    im.settle(found, body, 0, size);
    // Step 4c on one text (see propagate()).
    im.needles.clear();
    for (std::size_t i = 0; i < found.size(); ++i)
        im.addNeedle(body.substr(found[i].begin, found[i].end - found[i].begin), found[i].rule, im.plainTmp[i] != 0);
    if (!im.needles.empty()) {
        im.sealNeedles();
        im.findOccurrences(body.data(), body.size());
        im.textExtra.clear();
        for (const auto& [k, pos] : im.occ) {
            const Candidate x{im.needles[k].rule, pos, pos + static_cast<std::uint32_t>(im.needles[k].text.size())};
            auto it = std::upper_bound(found.begin(), found.end(), x.begin,
                                       [](std::uint32_t b, const Candidate& y) { return b < y.begin; });
            if ((it == found.begin() || (it - 1)->end < x.end) && wholeOccurrence(body.data(), 0, size, x.begin, x.end))
                im.textExtra.push_back({0, x});
        }
        std::sort(im.textExtra.begin(), im.textExtra.end(),
                  [](const auto& a, const auto& b) { return a.second.begin < b.second.begin; });
        im.settle(found, body, 0, size, im.textExtra.data(), im.textExtra.size());
    }
    im.sealExisting();
    im.mapping = &m.mapping;
    m.body.reserve(body.size());
    std::size_t p = 0;
    for (const Candidate& c : found) {
        m.body.append(body.substr(p, c.begin - p));
        const auto [at, len] = im.tokenFor(body.substr(c.begin, c.end - c.begin), im.rs.rules()[c.rule].type);
        m.body.append(im.tokText, at, len);
        p = c.end;
    }
    m.body.append(body.substr(p));
    im.mapping = nullptr;
    im.fillStats(m.stats);

    if (im.opts.residualCheck) {
        im.collectShapes = false;
        if (auto r = scanText(m.body); !r)
            return fail(r.error());
        if (!im.cands.empty()) {
            std::set<std::string> names;
            for (const Candidate& c : im.cands)
                names.insert(im.rs.rules()[c.rule].spec.name);
            return fail(MaskError{Unmaskable::Residual, "still matching after masking: " + join(names)});
        }
        if (!im.needles.empty()) {
            im.findOccurrences(m.body.data(), m.body.size());
            for (const auto& [k, pos] : im.occ)
                if (wholeOccurrence(m.body.data(), 0, m.body.size(), pos, pos + im.needles[k].text.size()))
                    return fail(MaskError{Unmaskable::Residual,
                                          "a value masked as " + im.rs.tokenTypes()[im.rs.rules()[im.needles[k].rule].type] +
                                              " still occurs unmasked after masking"});
        }
    }
    return m;
}

} // namespace veil::mask
