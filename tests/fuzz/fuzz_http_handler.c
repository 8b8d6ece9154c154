/*
 * libFuzzer target: kortvagtd's request handler in process (handler.h), no
 * HTTP server, no HSM session, no store. Input: one byte of flags (method in
 * the low two bits, bit 2: the server saw a too-large body, bit 3: send the
 * valid token), then the path up to '\n', the Authorization header up to
 * '\n', the body. Every request must get a status and a JSON error body with
 * a code (or the metrics text), and never crash.
 */
#include "src/base/err.h"
#include "src/daemon/handler.h"
#include "src/daemon/metrics.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static kv_daemon *handler(void)
{
    static kv_daemon *d;
    static kv_daemon_metrics m;
    if (d == NULL) {
        kv_daemon_tokens t;
        memset(&t, 0, sizeof(t));
        if (kv_daemon_tokens_add(&t, "fuzz-token", 10) != 0 ||
            kv_daemon_new(NULL, &t, &m, 4096, &d) != 0)
            abort();
    }
    return d;
}

/* Copy up to '\n' into a new NUL-terminated string; advance *p. */
static char *take_line(const uint8_t **p, const uint8_t *end)
{
    const uint8_t *nl = memchr(*p, '\n', (size_t)(end - *p));
    size_t n = nl != NULL ? (size_t)(nl - *p) : (size_t)(end - *p);
    char *s = malloc(n + 1);
    if (s == NULL)
        abort();
    memcpy(s, *p, n);
    s[n] = '\0';
    *p += n + (nl != NULL ? 1 : 0);
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const methods[4] = {"GET", "POST", "DELETE", "PUT"};
    const uint8_t *p = data, *end = data + size;
    kv_http_request req;
    kv_http_response res;
    char *path, *auth;

    if (size < 1 || size > 128 * 1024)
        return 0;
    memset(&req, 0, sizeof(req));
    req.method = methods[data[0] & 3];
    req.body_too_large = (data[0] >> 2) & 1;
    p++;
    path = take_line(&p, end);
    auth = take_line(&p, end);
    req.path = path;
    req.authorization = (data[0] & 8) ? "Bearer fuzz-token" : (auth[0] ? auth : NULL);
    req.body = (const char *)p;
    req.body_len = (size_t)(end - p);
    if (kv_daemon_handle(handler(), &req, &res) == 0) {
        /* a status, and a body: JSON with "error" for every failure */
        if (res.status < 200 || res.status > 599 || res.body == NULL)
            abort();
        if (res.status >= 400 &&
            (res.error_code == NULL || strstr(res.body, "\"error\":{\"code\":\"") == NULL))
            abort();
    }
    kv_http_response_clear(&res);
    free(path);
    free(auth);
    return 0;
}
