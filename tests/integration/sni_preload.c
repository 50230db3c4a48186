/* LD_PRELOAD shim for the slow-client tests: slowhttptest (1.8) sets no TLS
 * server name, and veild intercepts by SNI. Every SSL_set_fd also sets the
 * name in VEIL_TEST_SNI. Built by test_adv_slow.py with the system cc, so it
 * never carries the sanitizer runtime of the build under test. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <openssl/ssl.h>

int SSL_set_fd(SSL *ssl, int fd)
{
    static int (*real)(SSL *, int);
    const char *name = getenv("VEIL_TEST_SNI");
    if (!real)
        real = (int (*)(SSL *, int))dlsym(RTLD_NEXT, "SSL_set_fd");
    if (name)
        SSL_set_tlsext_host_name(ssl, name);
    return real(ssl, fd);
}
