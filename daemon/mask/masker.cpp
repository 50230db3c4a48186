#include "mask/masker.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <hs/hs.h>
#include <pcre2.h>

#include <algorithm>
#include <cassert>
#include <climits>
#include <cstring>
#include <functional>
#include <set>

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
//      out the same way (recursively, down to nestedJsonDepth).
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
// 3. Token-shaped runs (\b[A-Z][A-Z0-9_]*_[0-9]{3,}\b) in the same texts are
//    collected by a memchr pass for '_' (findShapes), so that a token already
//    in the body is never handed out; as a Vectorscan pattern this class-led
//    shape halved the scan's speed.
// 4. Per string, overlaps are resolved: lower priority number, then
//    leftmost, then longest. A span that would cut a UTF-8 character fails
//    closed.
// 5. The output is written in body order, which numbers tokens by first
//    occurrence. Bytes outside masked spans are copied unchanged; a masked
//    span inside an escaped string is spliced at the raw offsets of the escape
//    units it covers.
// 6. Residual check (residual()): the output must yield no candidate when
//    planned as in steps 2-4. See the comment there for what is rescanned.
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
    std::vector<Work> work;
    std::vector<Candidate> cands; // of work items
    // Residual check: which tokens masking changed (kEdited) or whose
    // context it changed (1); only those are decoded again. Empty: all.
    std::vector<std::uint8_t> dirty;
    std::uint32_t rawSeg = 0;
    bool blanked = false; // some string of its raw text is blanked in the scan buffer
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
        work.clear();
        cands.clear();
        dirty.clear();
        rawSeg = 0;
        blanked = false;
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
    std::vector<Candidate> candTmp;
    std::vector<std::uint32_t> order;
    bool collectShapes = false;
    std::vector<std::pair<std::uint32_t, std::uint32_t>> shapes; // token-shaped runs in scanBuf

    // Emission.
    std::string etext; // texts of edits
    std::string strTmp;
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
    std::vector<unsigned> nextNumber; // per token type
    std::vector<unsigned> perType;    // occurrences per token type
    Mapping* mapping = nullptr;

    Impl(const RuleSet& r, MaskOptions o) : rs(r), opts(o)
    {
        if (rs.database() && hs_alloc_scratch(rs.database(), &scratch) != HS_SUCCESS)
            scratch = nullptr;
        md = pcre2_match_data_create(4, nullptr);
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

    // Decodes string `ti` of document `di` and adds it: as a nested JSON
    // document, or as a segment `<sibling>","<key>": "<value>`.
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

    // Runs matching \b[A-Z][A-Z0-9_]*_[0-9]{3,}\b in scanBuf[begin, end).
    // Such a match is a whole run of word bytes (every byte of the pattern
    // is one, and \b holds at both ends), so it is found from the last '_' of
    // a run when that '_' is followed by 3 or more digits up to the run's end.
    // Separators and blanks are not word bytes: no run crosses a text.
    void findShapes(std::size_t begin, std::size_t end)
    {
        const char* p = scanBuf.data();
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
            bool shaped = p[b] >= 'A' && p[b] <= 'Z';
            for (std::size_t k = b; shaped && k < us; ++k)
                shaped = (p[k] >= 'A' && p[k] <= 'Z') || isDigit(p[k]) || p[k] == '_';
            if (shaped)
                shapes.push_back({static_cast<std::uint32_t>(b), static_cast<std::uint32_t>(q - b)});
            i = q;
        }
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
        auto tokAt = [&](std::uint32_t pos) -> std::int64_t {
            auto it = std::upper_bound(toks.begin(), toks.end(), pos,
                                       [](std::uint32_t p, const Tok& t) { return p < t.begin; });
            if (it == toks.begin())
                return -1;
            --it;
            return pos < it->end ? it - toks.begin() : -1;
        };
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

    // The work of document `di`: per token in order, its resolved
    // candidates. Nested documents are finalized first (they come later).
    Result<void, MaskError> finalize(std::uint32_t di)
    {
        Doc& d = *docs[di];
        std::stable_sort(d.fast.begin(), d.fast.end(),
                         [](const auto& a, const auto& b) { return a.first < b.first; });
        // Tokens with something to finalize, in order: those with raw
        // candidates, and the decoded ones.
        order.clear();
        for (const auto& [ti, c] : d.fast)
            if (order.empty() || order.back() != ti)
                order.push_back(ti);
        for (const Str& s : d.strs)
            order.push_back(s.tok);
        std::sort(order.begin(), order.end());
        order.erase(std::unique(order.begin(), order.end()), order.end());
        std::size_t fi = 0;
        for (const std::uint32_t ti : order) {
            candTmp.clear();
            while (fi < d.fast.size() && d.fast[fi].first == ti)
                candTmp.push_back(d.fast[fi++].second);
            const std::int32_t si = d.strOf[ti];
            Work w{Work::Fast, ti, si, 0, 0};
            if (si < 0) {
                resolve(candTmp);
                if (d.toks[ti].kind != Kind::Scalar)
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
                if (candTmp.empty())
                    continue;
                resolve(candTmp);
                if (auto r = checkBoundaries(s.decoded, candTmp); !r)
                    return r;
                w.type = Work::Slow;
            }
            w.cand = static_cast<std::uint32_t>(d.cands.size());
            w.ncand = static_cast<std::uint32_t>(candTmp.size());
            d.cands.insert(d.cands.end(), candTmp.begin(), candTmp.end());
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

    // Token-shaped runs found while scanning the input, for tokenFor.
    void sealExisting()
    {
        existing.clear();
        for (const auto& [b, n] : shapes)
            existing.push_back(std::string_view(scanBuf).substr(b, n));
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
    //
    // tests/unit/mask/masker_test.cpp plants what this must still catch: a
    // token completing a match, in every kind of string and in JSON text two
    // levels down; text joined across a token; a skipped key masked.

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
        if (docs[*top]->work.empty())
            return Ok{};
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
    im.resolve(found);
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
    }
    return m;
}

} // namespace veil::mask
