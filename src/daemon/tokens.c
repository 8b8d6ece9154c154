/* see handler.h: the bearer tokens file */
#include "src/base/err.h"
#include "src/base/secure.h"
#include "src/daemon/handler.h"

#include <openssl/sha.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TOKEN_FILE_MAX 16384

static const struct {
    unsigned bit;
    const char *name;
} scope_names[] = {
    {KV_SCOPE_AUTHORIZE, "authorize"},
    {KV_SCOPE_VERIFY, "verify"},
    {KV_SCOPE_EVIDENCE_READ, "evidence:read"},
    {KV_SCOPE_BLOCKLIST_CHECK, "blocklist:check"},
    {KV_SCOPE_BLOCKLIST_WRITE, "blocklist:write"},
    {KV_SCOPE_REVERSE, "reverse"},
    {KV_SCOPE_LIABILITY, "liability"},
};

const char *kv_daemon_scope_name(unsigned scope)
{
    for (size_t i = 0; i < sizeof(scope_names) / sizeof(scope_names[0]); i++)
        if (scope_names[i].bit == scope)
            return scope_names[i].name;
    return "?";
}

int kv_daemon_scopes_parse(const char *s, size_t len, unsigned *out, const char **bad,
                           size_t *bad_len)
{
    const char *end = s + len;
    unsigned v = 0;
    *out = 0;
    while (s < end) {
        const char *comma = memchr(s, ',', (size_t)(end - s));
        size_t n = (size_t)((comma != NULL ? comma : end) - s);
        size_t i;
        for (i = 0; i < sizeof(scope_names) / sizeof(scope_names[0]); i++)
            if (strlen(scope_names[i].name) == n && memcmp(scope_names[i].name, s, n) == 0)
                break;
        if (i == sizeof(scope_names) / sizeof(scope_names[0])) {
            if (bad != NULL)
                *bad = s;
            if (bad_len != NULL)
                *bad_len = n;
            return KV_ERR_CONFIG;
        }
        v |= scope_names[i].bit;
        s += n + (comma != NULL ? 1 : 0);
        if (comma != NULL && s == end) { /* a trailing comma */
            if (bad != NULL)
                *bad = s;
            if (bad_len != NULL)
                *bad_len = 0;
            return KV_ERR_CONFIG;
        }
    }
    *out = v;
    return 0;
}

/* Only a word that looks like a scope name is quoted back (never what may be a token). */
static int scope_like(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == ':' || s[i] == '_'))
            return 0;
    return 1;
}

int kv_daemon_tokens_add_scoped(kv_daemon_tokens *t, const char *token, size_t len, unsigned scopes)
{
    if (len == 0 || t->n >= KV_DAEMON_MAX_TOKENS)
        return KV_ERR_CONFIG;
    SHA256((const unsigned char *)token, len, t->hash[t->n]);
    t->scopes[t->n] = scopes & KV_SCOPES_ALL;
    t->n++;
    return 0;
}

int kv_daemon_tokens_add(kv_daemon_tokens *t, const char *token, size_t len)
{
    return kv_daemon_tokens_add_scoped(t, token, len, KV_SCOPES_DEFAULT);
}

int kv_daemon_tokens_load(const char *path, kv_daemon_tokens *t, char *err, size_t errlen)
{
    int r = KV_ERR_INTERNAL, fd = -1;
    char *buf = NULL;
    size_t len = 0;
    struct stat st;
    int lineno = 0;

    memset(t, 0, sizeof(*t));
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &st) != 0) {
        snprintf(err, errlen, "tokens file %s: %s", path, strerror(errno));
        r = KV_ERR_IO;
        goto out;
    }
    if ((st.st_mode & 077) != 0) {
        snprintf(err, errlen, "tokens file %s is readable by group or others (chmod 600)", path);
        r = KV_ERR_CONFIG;
        goto out;
    }
    if ((buf = malloc(TOKEN_FILE_MAX + 1)) == NULL) {
        r = KV_ERR_NOMEM;
        goto out;
    }
    for (;;) {
        ssize_t n = read(fd, buf + len, TOKEN_FILE_MAX - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, errlen, "tokens file %s: %s", path, strerror(errno));
            r = KV_ERR_IO;
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len == TOKEN_FILE_MAX) {
            snprintf(err, errlen, "tokens file %s: larger than %d bytes", path, TOKEN_FILE_MAX);
            r = KV_ERR_CONFIG;
            goto out;
        }
    }
    buf[len] = '\0';
    for (char *line = buf, *next; line != NULL && *line != '\0'; line = next) {
        char *end, *tok_end;
        lineno++;
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        while (*line == ' ' || *line == '\t')
            line++;
        end = line + strlen(line);
        while (end > line && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
            *--end = '\0';
        if (*line == '\0' || *line == '#')
            continue;
        {
            /* TOKEN [scope,scope,...] */
            char *sp = line;
            const char *bad = NULL;
            size_t bad_len = 0;
            unsigned scopes = KV_SCOPES_DEFAULT;
            while (sp < end && *sp != ' ' && *sp != '\t')
                sp++;
            tok_end = sp;
            while (sp < end && (*sp == ' ' || *sp == '\t'))
                sp++;
            if (sp < end) {
                size_t n = (size_t)(end - sp);
                if (memchr(sp, ' ', n) != NULL || memchr(sp, '\t', n) != NULL ||
                    kv_daemon_scopes_parse(sp, n, &scopes, &bad, &bad_len) != 0) {
                    /* name the line and the scope, never the token */
                    if (bad != NULL && bad_len > 0 && bad_len <= 24 && scope_like(bad, bad_len))
                        snprintf(err, errlen,
                                 "tokens file %s, line %d: unknown scope '%.*s' (authorize, "
                                 "verify, evidence:read, blocklist:check, blocklist:write, "
                                 "reverse, liability)",
                                 path, lineno, (int)bad_len, bad);
                    else
                        snprintf(err, errlen,
                                 "tokens file %s, line %d: the scopes must be one "
                                 "comma-separated list of known scopes without spaces",
                                 path, lineno);
                    r = KV_ERR_CONFIG;
                    goto out;
                }
            }
            if (kv_daemon_tokens_add_scoped(t, line, (size_t)(tok_end - line), scopes) != 0) {
                snprintf(err, errlen, "tokens file %s: more than %d tokens", path,
                         KV_DAEMON_MAX_TOKENS);
                r = KV_ERR_CONFIG;
                goto out;
            }
        }
    }
    if (t->n == 0) {
        snprintf(err, errlen, "tokens file %s holds no token", path);
        r = KV_ERR_CONFIG;
        goto out;
    }
    r = 0;
out:
    if (buf != NULL) {
        kv_wipe(buf, TOKEN_FILE_MAX + 1);
        free(buf);
    }
    if (fd >= 0)
        close(fd);
    return r;
}
