#include "tls/ossl.h"

#include <openssl/err.h>

namespace veil::tls {

/**
 * Empties the calling thread's OpenSSL error queue and returns its reasons,
 * oldest first, after `what`. With an empty queue the result is `what` alone,
 * so callers can always use it as the error message.
 */
std::string takeSslErrors(std::string_view what)
{
    std::string out(what);
    bool first = true;
    while (unsigned long e = ERR_get_error()) {
        const char* reason = ERR_reason_error_string(e);
        char buf[256];
        if (!reason) {
            ERR_error_string_n(e, buf, sizeof buf);
            reason = buf;
        }
        out += first ? ": " : "; ";
        out += reason;
        first = false;
    }
    return out;
}

} // namespace veil::tls
