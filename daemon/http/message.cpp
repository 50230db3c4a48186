#include "http/message.h"

namespace veil::http {

std::string_view framingName(Framing framing)
{
    switch (framing) {
    case Framing::None: return "none";
    case Framing::ContentLength: return "content-length";
    case Framing::Chunked: return "chunked";
    case Framing::UntilClose: return "until-close";
    }
    return "none";
}

std::string_view RequestHead::host() const
{
    return headers.find("host").value_or(std::string_view{});
}

std::string_view RequestHead::path() const
{
    std::string_view t(target);
    if (t.empty())
        return {};
    if (t.front() != '/') {
        // absolute-form: scheme "://" authority [path-abempty] [ "?" query ]
        std::size_t scheme = t.find("://");
        if (scheme == std::string_view::npos || t.front() == '*')
            return {};
        t.remove_prefix(scheme + 3);
        std::size_t pathStart = t.find_first_of("/?");
        if (pathStart == std::string_view::npos || t[pathStart] == '?')
            return "/";
        t.remove_prefix(pathStart);
    }
    return t.substr(0, t.find('?'));
}

void RequestHead::clear()
{
    method.clear();
    target.clear();
    version = 11;
    headers.clear();
    framing = Framing::None;
    contentLength = 0;
    keepAlive = true;
    expectContinue = false;
    upgrade = false;
}

std::string_view ResponseHead::contentType() const
{
    return headers.find("content-type").value_or(std::string_view{});
}

std::string_view ResponseHead::contentEncoding() const
{
    return headers.find("content-encoding").value_or(std::string_view{});
}

void ResponseHead::clear()
{
    status = 200;
    reason.clear();
    version = 11;
    headers.clear();
    framing = Framing::None;
    contentLength.reset();
    keepAlive = true;
}

} // namespace veil::http
