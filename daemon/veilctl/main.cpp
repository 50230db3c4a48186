// veilctl: the masking engine, the lab CA and config checks on the command
// line. See veilctl(1).
//
// Exit status: 0 success, 1 the input could not be masked/unmasked (invalid
// JSON, unmaskable body, bad mapping), 2 usage or configuration error.

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "base/io.h"
#include "config/config.h"
#include "mask/json.h"
#include "mask/masker.h"
#include "mask/restore.h"
#include "mask/sse.h"
#include "tls/ca.h"

namespace {

using namespace veil;

constexpr int kOk = 0;
constexpr int kBadInput = 1;
constexpr int kUsage = 2;

const char* kUsageText =
    "usage: veilctl mask [--config FILE] [--rules FILE]... [--text] [--mapping-out FILE] < body > masked\n"
    "       veilctl unmask --mapping FILE [--sse | --text] < response > restored\n"
    "       veilctl rules [--config FILE] [--rules FILE]...\n"
    "       veilctl ca init --out DIR [--permit DOMAIN]...\n"
    "       veilctl help\n";

int usage(const std::string& why)
{
    if (!why.empty())
        std::fprintf(stderr, "veilctl: %s\n", why.c_str());
    std::fputs(kUsageText, stderr);
    return kUsage;
}

int error(int code, const std::string& msg)
{
    std::fprintf(stderr, "veilctl: %s\n", msg.c_str());
    return code;
}

struct Args {
    std::vector<std::string> list;
    std::size_t i = 0;
    bool more() const { return i < list.size(); }
    const std::string& next() { return list[i++]; }
    // The value of an option: "--opt VALUE" or "--opt=VALUE".
    bool value(const std::string& arg, const char* name, std::string& out, std::string& err)
    {
        std::string n(name);
        if (arg == n) {
            if (!more()) {
                err = n + " needs a value";
                return true;
            }
            out = next();
            return true;
        }
        if (arg.rfind(n + "=", 0) == 0) {
            out = arg.substr(n.size() + 1);
            return true;
        }
        return false;
    }
};

// Masking options shared by `mask` and `rules`.
struct RuleArgs {
    std::string config;
    std::vector<std::string> ruleFiles;
};

Result<std::vector<mask::RuleSpec>> rulesFrom(const RuleArgs& a)
{
    config::Masking masking;
    if (!a.config.empty()) {
        auto c = config::load(a.config);
        if (!c)
            return fail(c.error().message);
        masking = c->masking;
    }
    for (const auto& f : a.ruleFiles) {
        auto more = config::loadRuleFile(f);
        if (!more)
            return fail(more.error().message);
        masking.rules.insert(masking.rules.end(), more->begin(), more->end());
    }
    return config::effectiveRules(masking);
}

int cmdMask(Args& args)
{
    RuleArgs ra;
    std::string mappingOut, v, err;
    bool text = false;
    while (args.more()) {
        const std::string& a = args.next();
        if (args.value(a, "--config", ra.config, err) || args.value(a, "--mapping-out", mappingOut, err)) {
        } else if (args.value(a, "--rules", v, err)) {
            ra.ruleFiles.push_back(v);
        } else if (a == "--text") {
            text = true;
        } else {
            return usage("mask: unknown argument '" + a + "'");
        }
        if (!err.empty())
            return usage(err);
    }
    auto specs = rulesFrom(ra);
    if (!specs)
        return error(kUsage, specs.error().message);
    auto rules = mask::RuleSet::compile(std::move(specs.value()));
    if (!rules)
        return error(kUsage, rules.error().message);
    auto body = readAll("-");
    if (!body)
        return error(kBadInput, body.error().message);

    mask::Masker masker(rules.value());
    auto r = text ? masker.maskText(*body) : masker.maskJson(*body);
    if (!r)
        return error(kBadInput, std::string("body is unmaskable (") + mask::unmaskableName(r.error().reason) +
                                    "): " + r.error().detail);
    if (!mappingOut.empty()) {
        // The mapping holds the originals: readable by its owner only.
        if (auto w = writeFileAtomic(mappingOut, r->mapping.toJson(), 0600); !w)
            return error(kUsage, w.error().message);
    }
    if (auto w = writeAll(STDOUT_FILENO, r->body); !w)
        return error(kBadInput, w.error().message);
    std::string summary;
    for (const auto& [type, n] : r->stats.perType)
        summary += " " + type + "=" + std::to_string(n);
    std::fprintf(stderr, "veilctl: masked %u value(s) as %zu token(s)%s\n", r->stats.total, r->mapping.size(),
                 summary.c_str());
    return kOk;
}

int cmdUnmask(Args& args)
{
    std::string mappingFile, err;
    bool sse = false, text = false;
    while (args.more()) {
        const std::string& a = args.next();
        if (args.value(a, "--mapping", mappingFile, err)) {
        } else if (a == "--sse") {
            sse = true;
        } else if (a == "--text") {
            text = true;
        } else {
            return usage("unmask: unknown argument '" + a + "'");
        }
        if (!err.empty())
            return usage(err);
    }
    if (mappingFile.empty())
        return usage("unmask needs --mapping FILE");
    if (sse && text)
        return usage("unmask: --sse and --text exclude each other");
    auto mapText = readAll(mappingFile);
    if (!mapText)
        return error(kUsage, mapText.error().message);
    auto mapping = mask::Mapping::fromJson(*mapText);
    if (!mapping)
        return error(kUsage, mappingFile + ": " + mapping.error().message);

    if (sse) {
        // Incremental: events go out as soon as they are safe, as veild does.
        mask::SseUnmasker un(*mapping);
        std::string out;
        char buf[16384];
        for (;;) {
            ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                return error(kBadInput, std::string("standard input: ") + std::strerror(errno));
            if (n == 0)
                break;
            out.clear();
            if (auto r = un.feed(std::string_view(buf, static_cast<std::size_t>(n)), out); !r)
                return error(kBadInput, r.error().message);
            if (auto w = writeAll(STDOUT_FILENO, out); !w)
                return error(kBadInput, w.error().message);
        }
        out.clear();
        un.finish(out);
        if (auto w = writeAll(STDOUT_FILENO, out); !w)
            return error(kBadInput, w.error().message);
        return kOk;
    }

    auto body = readAll("-");
    if (!body)
        return error(kBadInput, body.error().message);
    std::string why;
    if (!text && !mask::json::validate(*body, &why))
        return error(kBadInput, "response is not valid JSON (" + why + "); use --text for other bodies");
    std::string out = mask::TokenRestorer::restoreAll(*mapping, *body, text ? mask::Escape::None : mask::Escape::Json);
    if (auto w = writeAll(STDOUT_FILENO, out); !w)
        return error(kBadInput, w.error().message);
    return kOk;
}

int cmdRules(Args& args)
{
    RuleArgs ra;
    std::string v, err;
    while (args.more()) {
        const std::string& a = args.next();
        if (args.value(a, "--config", ra.config, err)) {
        } else if (args.value(a, "--rules", v, err)) {
            ra.ruleFiles.push_back(v);
        } else {
            return usage("rules: unknown argument '" + a + "'");
        }
        if (!err.empty())
            return usage(err);
    }
    auto specs = rulesFrom(ra);
    if (!specs)
        return error(kUsage, specs.error().message);
    if (auto rs = mask::RuleSet::compile(specs.value()); !rs)
        return error(kUsage, rs.error().message);
    std::printf("%-36s %-16s %8s  %s\n", "RULE", "TYPE", "PRIORITY", "STATE");
    for (const auto& r : specs.value())
        std::printf("%-36s %-16s %8d  %s\n", r.name.c_str(), r.tokenType.c_str(), r.priority,
                    r.enabled ? "on" : (r.heuristic ? "off (heuristic)" : "off"));
    return kOk;
}

int cmdCa(Args& args)
{
    if (!args.more() || args.next() != "init")
        return usage("ca: the only subcommand is 'init'");
    std::string out, v, err;
    std::vector<std::string> permit;
    while (args.more()) {
        const std::string& a = args.next();
        if (args.value(a, "--out", out, err)) {
        } else if (args.value(a, "--permit", v, err)) {
            permit.push_back(v);
        } else {
            return usage("ca init: unknown argument '" + a + "'");
        }
        if (!err.empty())
            return usage(err);
    }
    if (out.empty())
        return usage("ca init needs --out DIR");
    auto files = tls::createCa(out, permit);
    if (!files)
        return error(kBadInput, files.error().message);
    // The key is written 0600 and never printed.
    std::printf("certificate: %s\nkey:         %s (mode 0600)\nsha256:      %s\n", files->certPath.c_str(),
                files->keyPath.c_str(), files->sha256Fingerprint.c_str());
    if (permit.empty())
        std::printf("warning: no --permit given; the CA is not name-constrained\n");
    return kOk;
}

} // namespace

int main(int argc, char** argv)
{
    Args args;
    for (int i = 1; i < argc; ++i)
        args.list.emplace_back(argv[i]);
    if (!args.more())
        return usage("");
    std::string cmd = args.next();
    if (cmd == "mask")
        return cmdMask(args);
    if (cmd == "unmask")
        return cmdUnmask(args);
    if (cmd == "rules")
        return cmdRules(args);
    if (cmd == "ca")
        return cmdCa(args);
    if (cmd == "help" || cmd == "--help" || cmd == "-h") {
        std::fputs(kUsageText, stdout);
        return kOk;
    }
    return usage("unknown command '" + cmd + "'");
}
