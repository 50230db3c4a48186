#include "mask/masker.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <hs/hs.h>
#include <pcre2.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstring>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "mask/json.h"

// How a JSON body is masked
// -------------------------
// 1. simdjson validates the body; the span walker lists every key, string and
//    scalar with its raw byte span.
// 2. Fast path: one Vectorscan scan of the raw body. A candidate whose masked
//    span lies inside a string without escapes is taken as is (raw bytes ==
//    decoded bytes there). Key context ("SecretAccessKey": "…") is visible
//    because key and value are adjacent in the raw body.
// 3. Slow path, per string that has escapes (or that a candidate crossed, or
//    whose key has escapes): decode it, scan `<key>": "<value>` so key
//    context still works, and, if the decoded text is itself JSON, mask it
//    recursively as JSON.
// 4. Per string, overlaps are resolved: lower priority number, then leftmost,
//    then longest.
// 5. The output is written in body order, which numbers tokens by first
//    occurrence. Bytes outside masked spans are copied unchanged; a masked
//    span inside an escaped string is spliced at the raw offsets of the escape
//    units it covers (a span that would cut a unit fails closed).
// 6. Residual check: the output goes through steps 1-4 again and must yield
//    no candidate.

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

struct Hit {
    std::uint32_t id;
    std::uint32_t to;
};

// A masked span (value span) found by a rule, in the coordinates of the text scanned.
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
    bool rescan = false; // a fast-path candidate crossed its edge
};

struct DocPlan;

// Work on one token of a document.
struct StrPlan {
    std::uint32_t tok;
    bool decodedCoords = false;      // repls are in `decoded`, not raw, coordinates
    std::string decoded;
    std::vector<std::uint32_t> rawPos;
    std::vector<Candidate> repls;     // resolved, sorted by begin
    std::unique_ptr<DocPlan> nested;  // the decoded text is JSON, masked as such
};

struct DocPlan {
    std::vector<Tok> toks;
    std::vector<StrPlan> work; // sorted by tok
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
    std::vector<Frame> frames;
    std::int32_t pendingKey = -1;

    Collector(std::string_view t, std::vector<Tok>& out) : text(t), toks(out) {}

    std::string_view raw(const Tok& t) const { return text.substr(t.begin, t.end - t.begin); }

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
            std::string_view k = raw(toks[static_cast<std::size_t>(pendingKey)]);
            if (k == "type" && raw(toks.back()) == "base64")
                frames.back().base64 = true;
            else if (k == "data")
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

int onMatch(unsigned id, unsigned long long, unsigned long long to, unsigned, void* ctx)
{
    static_cast<std::vector<Hit>*>(ctx)->push_back({id, static_cast<std::uint32_t>(to)});
    return 0;
}

// Token numbers handed out and the mapping being built, for one body.
struct Alloc {
    std::unordered_set<std::string> existing; // token-shaped runs already in the input
    std::unordered_map<std::string, std::string> byOriginal;
    std::unordered_map<std::string, unsigned> next;
    Mapping mapping;
    MaskStats stats;

    const std::string& tokenFor(std::string_view original, const std::string& type)
    {
        auto it = byOriginal.find(std::string(original));
        if (it == byOriginal.end()) {
            unsigned& n = next[type];
            std::string token;
            do {
                char num[16];
                std::snprintf(num, sizeof num, "%03u", ++n);
                token = type + "_" + num;
            } while (existing.count(token));
            mapping.add(token, std::string(original));
            it = byOriginal.emplace(std::string(original), std::move(token)).first;
        }
        ++stats.perType[type];
        ++stats.total;
        return it->second;
    }
};

} // namespace

struct Masker::Impl {
    const RuleSet& rs;
    MaskOptions opts;
    hs_scratch_t* scratch = nullptr;
    pcre2_match_data* md = nullptr;
    std::vector<Hit> hits;
    std::vector<std::pair<std::uint32_t, std::uint32_t>> shapes; // token-shaped runs of the last scan

    Impl(const RuleSet& r, MaskOptions o) : rs(r), opts(o)
    {
        if (hs_alloc_scratch(rs.database(), &scratch) != HS_SUCCESS)
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

    // Scans `text`; appends candidates whose masked span starts at or after
    // `from` (shifted by -from), and records token-shaped runs into `existing`.
    Result<void, MaskError> scan(std::string_view text, std::uint32_t from, std::vector<Candidate>& out,
                                 std::unordered_set<std::string>* existing)
    {
        if (!scratch)
            return fail(MaskError{Unmaskable::Internal, "could not allocate Vectorscan scratch"});
        hits.clear();
        shapes.clear();
        if (hs_scan(rs.database(), text.data(), static_cast<unsigned>(text.size()), 0, scratch, onMatch, &hits) !=
            HS_SUCCESS)
            return fail(MaskError{Unmaskable::Internal, "Vectorscan scan failed"});
        if (hits.empty())
            return Ok{};
        // Per rule, longest end first. Vectorscan reports ends only; the
        // rule's finder gives the leftmost start of a match ending there (and
        // its group). An end inside a span already taken for the same rule is
        // skipped: its match could only overlap that span.
        std::sort(hits.begin(), hits.end(), [](const Hit& a, const Hit& b) {
            return a.id != b.id ? a.id < b.id : a.to > b.to;
        });
        const auto& rules = rs.rules();
        const unsigned shape = rs.tokenShapeId();
        std::uint32_t takenFrom = 0, takenTo = 0, takenRule = UINT32_MAX;
        for (const Hit& h : hits) {
            if (h.id != takenRule) {
                takenRule = h.id;
                takenFrom = takenTo = 0;
            }
            if (h.to > takenFrom && h.to < takenTo)
                continue;
            const RuleSet::Compiled& rule = h.id == shape ? rs.tokenShape() : rules[h.id];
            std::uint32_t begin = 0, vb = 0, ve = 0;
            if (!locate(rule, text, h.to, begin, vb, ve))
                continue;
            if (h.id == shape) {
                shapes.push_back({begin, h.to});
                if (existing)
                    existing->emplace(text.substr(begin, h.to - begin));
                takenFrom = begin;
                takenTo = h.to;
                continue;
            }
            if (begin > 0 && rule.notBefore[static_cast<unsigned char>(text[begin - 1])])
                continue;
            if (h.to < text.size() && rule.notAfter[static_cast<unsigned char>(text[h.to])])
                continue;
            if (ve <= vb || vb < from)
                continue;
            if (rule.spec.validate && !rule.spec.validate(text.substr(vb, ve - vb)))
                continue;
            out.push_back({h.id, vb - from, ve - from});
            takenFrom = begin;
            takenTo = h.to;
        }
        return Ok{};
    }

    // Where the match of `rule` that Vectorscan saw end at `end` starts
    // (leftmost), and the span to mask (its group, or all of it). The search
    // window is the rule's longest possible match; for unbounded rules it
    // grows until a match is found whose start is not pinned to its edge.
    bool locate(const RuleSet::Compiled& rule, std::string_view text, std::uint32_t end, std::uint32_t& begin,
                std::uint32_t& vb, std::uint32_t& ve)
    {
        std::uint32_t window = rule.maxWidth == UINT_MAX ? 256u : rule.maxWidth;
        for (;;) {
            const std::uint32_t ws = end > window ? end - window : 0;
            int rc = pcre2_match(rule.finder, reinterpret_cast<PCRE2_SPTR>(text.data()), end, ws, 0, md, nullptr);
            // Vectorscan saw a match end here: none in the window, or one
            // starting at its edge, means the window is too short.
            const bool pinned = rc >= 1 && pcre2_get_ovector_pointer(md)[0] == ws;
            if (ws > 0 && rule.maxWidth == UINT_MAX && (rc < 1 || pinned)) {
                window = window >= (1u << 30) ? UINT32_MAX : window * 4;
                continue;
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
    }

    // Overlaps: lower priority number wins, then leftmost, then longest.
    // Result sorted by begin.
    void resolve(std::vector<Candidate>& c) const
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
        std::vector<Candidate> kept;
        kept.reserve(c.size());
        for (const Candidate& x : c) {
            auto it = std::lower_bound(kept.begin(), kept.end(), x.begin,
                                       [](const Candidate& k, std::uint32_t b) { return k.end <= b; });
            if (it != kept.end() && it->begin < x.end)
                continue; // overlaps an accepted span
            kept.insert(it, x);
        }
        c.swap(kept);
    }

    // Steps 1-4 for a JSON text (see the top of this file).
    //
    // `dirty` (the residual check) lists the tokens whose text or context
    // masking changed. Strings outside it are byte for byte what the first
    // pass saw, in the same context, and it found nothing in them; so their
    // decoded re-scan is skipped (the raw scan still covers every byte).
    Result<void, MaskError> planJson(std::string_view text, unsigned depth, DocPlan& plan,
                                     std::unordered_set<std::string>* existing,
                                     const std::vector<bool>* dirty = nullptr)
    {
        Collector col(text, plan.toks);
        json::walk(text, col);
        auto& toks = plan.toks;

        // The raw scan does not need the contents of strings with escapes
        // (they are scanned decoded below) or of skipped base64 data:
        // blanked, they cost Vectorscan next to nothing and are not read twice.
        std::string_view rawScan = text;
        std::string blanked;
        for (const Tok& t : toks) {
            if (t.kind == Kind::Scalar || !(t.escaped || t.skip))
                continue;
            if (blanked.empty())
                blanked.assign(text);
            std::memset(blanked.data() + t.begin, ' ', t.end - t.begin);
        }
        if (!blanked.empty())
            rawScan = blanked;
        std::vector<Candidate> raw;
        if (auto r = scan(rawScan, 0, raw, nullptr); !r)
            return r;

        // Assign fast-path candidates to the token they fall in.
        std::vector<std::pair<std::uint32_t, Candidate>> fast;
        auto tokAt = [&](std::uint32_t pos) -> std::int64_t {
            auto it = std::upper_bound(toks.begin(), toks.end(), pos,
                                       [](std::uint32_t p, const Tok& t) { return p < t.begin; });
            if (it == toks.begin())
                return -1;
            --it;
            return pos < it->end ? it - toks.begin() : -1;
        };
        for (const Candidate& c : raw) {
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
                    fast.push_back({static_cast<std::uint32_t>(ti), c});
                continue;
            }
            if (c.end <= t.end)
                fast.push_back({static_cast<std::uint32_t>(ti), c});
            else
                t.rescan = true;
        }
        // Token-shaped runs in clean strings (escaped ones are found when decoded).
        if (existing) {
            for (const auto& [b, e] : shapes) {
                std::int64_t ti = tokAt(b);
                if (ti >= 0 && !toks[static_cast<std::size_t>(ti)].escaped)
                    existing->emplace(text.substr(b, e - b));
            }
        }
        // A value whose context (its key, or the sibling value before the key,
        // as in ECS's {"name": "AWS_SECRET_ACCESS_KEY", "value": "…"}) has
        // escapes lost that context in the raw scan.
        if (dirty && dirty->size() != toks.size())
            dirty = nullptr; // not the structure of the first pass: check everything
        for (std::size_t ti = 0; ti < toks.size(); ++ti) {
            Tok& t = toks[ti];
            if (t.kind == Kind::String && t.key >= 0 && !t.skip && contextEscaped(toks, t) &&
                (!dirty || (*dirty)[ti]))
                t.rescan = true;
        }

        std::stable_sort(fast.begin(), fast.end(),
                         [](const auto& a, const auto& b) { return a.first < b.first; });

        std::size_t fi = 0;
        std::vector<Candidate> cands;
        std::string ctx;
        for (std::uint32_t ti = 0; ti < toks.size(); ++ti) {
            Tok& t = toks[ti];
            cands.clear();
            while (fi < fast.size() && fast[fi].first == ti)
                cands.push_back(fast[fi++].second);
            bool slow = !t.skip && t.kind != Kind::Scalar && ((t.escaped && (!dirty || (*dirty)[ti])) || t.rescan);
            if (!slow) {
                if (cands.empty())
                    continue;
                resolve(cands);
                StrPlan sp;
                sp.tok = ti;
                sp.repls = cands;
                plan.work.push_back(std::move(sp));
                continue;
            }

            StrPlan sp;
            sp.tok = ti;
            sp.decodedCoords = true;
            std::string_view rawText = text.substr(t.begin, t.end - t.begin);
            if (!json::unescape(rawText, sp.decoded, &sp.rawPos))
                return fail(MaskError{Unmaskable::InvalidJson,
                                      "string at byte " + std::to_string(t.begin) + " has an invalid escape"});
            if (t.kind == Kind::String && depth < opts.nestedJsonDepth && json::looksLikeContainer(sp.decoded) &&
                json::validate(sp.decoded)) {
                auto nested = std::make_unique<DocPlan>();
                if (auto r = planJson(sp.decoded, depth + 1, *nested, existing); !r)
                    return r;
                if (!nested->work.empty()) {
                    sp.nested = std::move(nested);
                    plan.work.push_back(std::move(sp));
                }
                continue;
            }
            // Scan `<sibling>","<key>": "<value>` so context rules see what the
            // raw body shows around an unescaped value.
            std::uint32_t off = 0;
            std::string_view scanText = sp.decoded;
            if (t.kind == Kind::String && t.key >= 0) {
                auto ki = static_cast<std::size_t>(t.key);
                const Tok& k = toks[ki];
                ctx.clear();
                if (ki > 0 && toks[ki - 1].kind == Kind::String) {
                    const Tok& prev = toks[ki - 1];
                    if (!json::unescape(text.substr(prev.begin, prev.end - prev.begin), ctx))
                        return fail(MaskError{Unmaskable::InvalidJson, "string at byte " +
                                                                           std::to_string(prev.begin) +
                                                                           " has an invalid escape"});
                    ctx += "\",\"";
                }
                if (!json::unescape(text.substr(k.begin, k.end - k.begin), ctx))
                    return fail(MaskError{Unmaskable::InvalidJson,
                                          "key at byte " + std::to_string(k.begin) + " has an invalid escape"});
                ctx += "\": \"";
                off = static_cast<std::uint32_t>(ctx.size());
                ctx += sp.decoded;
                scanText = ctx;
            }
            std::vector<Candidate> found;
            if (auto r = scan(scanText, off, found, existing); !r)
                return r;
            if (found.empty())
                continue;
            resolve(found);
            // A span that ends inside an escape unit would cut a multi-byte
            // character (only a rule matching partial UTF-8 can do that).
            for (const Candidate& c : found)
                if (!unitBoundary(sp, c.begin) || !unitBoundary(sp, c.end))
                    return fail(MaskError{Unmaskable::Residual, "rule " + rs.rules()[c.rule].spec.name +
                                                                    " matches part of a multi-byte character"});
            sp.repls = std::move(found);
            plan.work.push_back(std::move(sp));
        }
        return Ok{};
    }

    static bool contextEscaped(const std::vector<Tok>& toks, const Tok& value)
    {
        auto ki = static_cast<std::size_t>(value.key);
        if (toks[ki].escaped)
            return true;
        return ki > 0 && toks[ki - 1].kind == Kind::String && toks[ki - 1].escaped;
    }

    static bool unitBoundary(const StrPlan& sp, std::uint32_t d)
    {
        return d == 0 || d >= sp.decoded.size() || sp.rawPos[d] != sp.rawPos[d - 1];
    }

    // Step 5: the plan as edits of `text` (raw offsets, in order), tokens
    // allocated in order of appearance.
    struct Edit {
        std::size_t begin;
        std::size_t end;
        std::string text;
    };

    void planEdits(std::string_view text, const DocPlan& plan, Alloc& alloc, std::vector<Edit>& edits)
    {
        for (const StrPlan& sp : plan.work) {
            const Tok& t = plan.toks[sp.tok];
            if (t.kind == Kind::Scalar) {
                // A number in account context: becomes a string token.
                const Candidate& c = sp.repls.front();
                const std::string& token = alloc.tokenFor(text.substr(c.begin, c.end - c.begin), typeOf(c));
                edits.push_back({t.begin, t.end, '"' + token + '"'});
                continue;
            }
            if (sp.nested) {
                // JSON inside the string: its edits are in decoded
                // coordinates. Where they start and end on escape-unit
                // boundaries they map back to raw offsets, so the client's
                // own escapes elsewhere in the string (\u2192, \/, \u003e)
                // stay byte for byte; otherwise the string is re-escaped whole.
                std::vector<Edit> inner;
                planEdits(sp.decoded, *sp.nested, alloc, inner);
                bool aligned = std::all_of(inner.begin(), inner.end(), [&](const Edit& e) {
                    return unitBoundary(sp, static_cast<std::uint32_t>(e.begin)) &&
                           unitBoundary(sp, static_cast<std::uint32_t>(e.end));
                });
                if (aligned) {
                    for (const Edit& e : inner) {
                        std::string escaped;
                        json::escape(e.text, escaped);
                        edits.push_back({t.begin + sp.rawPos[e.begin], t.begin + sp.rawPos[e.end], std::move(escaped)});
                    }
                } else {
                    std::string masked, escaped;
                    applyEdits(sp.decoded, inner, masked);
                    json::escape(masked, escaped);
                    edits.push_back({t.begin, t.end, std::move(escaped)});
                }
                continue;
            }
            if (!sp.decodedCoords) {
                for (const Candidate& c : sp.repls)
                    edits.push_back({c.begin, c.end, alloc.tokenFor(text.substr(c.begin, c.end - c.begin), typeOf(c))});
                continue;
            }
            // Escaped string: every masked span starts and ends on an escape
            // unit boundary (checked when planned), so splice at raw offsets.
            std::string_view dec = sp.decoded;
            for (const Candidate& c : sp.repls)
                edits.push_back({t.begin + sp.rawPos[c.begin], t.begin + sp.rawPos[c.end],
                                 alloc.tokenFor(dec.substr(c.begin, c.end - c.begin), typeOf(c))});
        }
    }

    static void applyEdits(std::string_view text, const std::vector<Edit>& edits, std::string& out)
    {
        std::size_t pos = 0;
        for (const Edit& e : edits) {
            out.append(text.substr(pos, e.begin - pos));
            out += e.text;
            pos = e.end;
        }
        out.append(text.substr(pos));
    }

    void emitJson(std::string_view text, const DocPlan& plan, Alloc& alloc, std::string& out)
    {
        std::vector<Edit> edits;
        planEdits(text, plan, alloc, edits);
        applyEdits(text, edits, out);
    }

    const std::string& typeOf(const Candidate& c) const { return rs.rules()[c.rule].spec.tokenType; }

    std::string residualRules(const DocPlan& plan) const
    {
        std::set<std::string> names;
        collectRules(plan, names);
        return join(names);
    }
    void collectRules(const DocPlan& plan, std::set<std::string>& names) const
    {
        for (const StrPlan& sp : plan.work) {
            for (const Candidate& c : sp.repls)
                names.insert(rs.rules()[c.rule].spec.name);
            if (sp.nested)
                collectRules(*sp.nested, names);
        }
    }
    static std::string join(const std::set<std::string>& names)
    {
        std::string s;
        for (const auto& n : names)
            s += (s.empty() ? "" : ", ") + n;
        return s;
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
    std::string why;
    if (!json::validate(body, &why))
        return fail(MaskError{Unmaskable::InvalidJson, why});

    Alloc alloc;
    DocPlan plan;
    if (auto r = impl_->planJson(body, 0, plan, &alloc.existing); !r)
        return fail(r.error());

    Masked m;
    if (plan.work.empty()) {
        m.body.assign(body);
        return m; // nothing matched: the residual check would scan the same bytes
    }
    m.body.reserve(body.size());
    impl_->emitJson(body, plan, alloc, m.body);
    // Tokens the residual check must decode again: those masking changed,
    // and values whose key or preceding sibling it changed (context rules).
    std::vector<bool> dirty(plan.toks.size());
    for (const StrPlan& sp : plan.work)
        dirty[sp.tok] = true;
    for (std::size_t ti = 0; ti < plan.toks.size(); ++ti) {
        const std::int32_t k = plan.toks[ti].key;
        if (k >= 0 && (dirty[static_cast<std::size_t>(k)] || (k > 0 && dirty[static_cast<std::size_t>(k) - 1])))
            dirty[ti] = true;
    }
    m.mapping = std::move(alloc.mapping);
    m.stats = std::move(alloc.stats);

    if (impl_->opts.residualCheck) {
        if (!json::validate(m.body, &why))
            return fail(MaskError{Unmaskable::Internal, "masked body is not valid JSON: " + why});
        DocPlan again;
        if (auto r = impl_->planJson(m.body, 0, again, nullptr, &dirty); !r)
            return fail(r.error());
        if (!again.work.empty())
            return fail(MaskError{Unmaskable::Residual,
                                  "still matching after masking: " + impl_->residualRules(again)});
    }
    return m;
}

Result<Masked, MaskError> Masker::maskText(std::string_view body)
{
    if (body.size() >= kMaxBody)
        return fail(MaskError{Unmaskable::TooLarge, "body of " + std::to_string(body.size()) + " bytes"});
    Alloc alloc;
    std::vector<Candidate> found;
    if (auto r = impl_->scan(body, 0, found, &alloc.existing); !r)
        return fail(r.error());
    Masked m;
    if (found.empty()) {
        m.body.assign(body);
        return m;
    }
    impl_->resolve(found);
    m.body.reserve(body.size());
    std::size_t p = 0;
    for (const Candidate& c : found) {
        m.body.append(body.substr(p, c.begin - p));
        m.body += alloc.tokenFor(body.substr(c.begin, c.end - c.begin), impl_->typeOf(c));
        p = c.end;
    }
    m.body.append(body.substr(p));
    m.mapping = std::move(alloc.mapping);
    m.stats = std::move(alloc.stats);

    if (impl_->opts.residualCheck) {
        std::vector<Candidate> again;
        if (auto r = impl_->scan(m.body, 0, again, nullptr); !r)
            return fail(r.error());
        if (!again.empty()) {
            std::set<std::string> names;
            for (const Candidate& c : again)
                names.insert(impl_->rs.rules()[c.rule].spec.name);
            return fail(MaskError{Unmaskable::Residual, "still matching after masking: " + Impl::join(names)});
        }
    }
    return m;
}

} // namespace veil::mask
