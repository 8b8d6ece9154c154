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

int kv_daemon_tokens_add(kv_daemon_tokens *t, const char *token, size_t len)
{
    if (len == 0 || t->n >= KV_DAEMON_MAX_TOKENS)
        return KV_ERR_CONFIG;
    SHA256((const unsigned char *)token, len, t->hash[t->n]);
    t->n++;
    return 0;
}

int kv_daemon_tokens_load(const char *path, kv_daemon_tokens *t, char *err, size_t errlen)
{
    int r = KV_ERR_INTERNAL, fd = -1;
    char *buf = NULL;
    size_t len = 0;
    struct stat st;

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
        char *end;
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
        if (kv_daemon_tokens_add(t, line, (size_t)(end - line)) != 0) {
            snprintf(err, errlen, "tokens file %s: more than %d tokens", path,
                     KV_DAEMON_MAX_TOKENS);
            r = KV_ERR_CONFIG;
            goto out;
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
