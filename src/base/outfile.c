/* see outfile.h */
#include "src/base/outfile.h"
#include "src/base/err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void reset(kv_outfile *o)
{
    free(o->path);
    free(o->tmp);
    memset(o, 0, sizeof(*o));
}

/* Twelve characters of [a-z0-9] for a temporary name. */
static void random_suffix(char out[13], unsigned attempt)
{
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    uint8_t b[12];
    if (getrandom(b, sizeof(b), GRND_NONBLOCK) != (ssize_t)sizeof(b)) {
        /* no entropy yet: O_EXCL still makes the name ours or fails */
        uint64_t x = (uint64_t)getpid() * 2654435761u ^ (uint64_t)time(NULL) ^
                     ((uint64_t)attempt << 32) ^ (uint64_t)(uintptr_t)out;
        for (size_t i = 0; i < sizeof(b); i++) {
            x = x * 6364136223846793005u + 1442695040888963407u;
            b[i] = (uint8_t)(x >> 56);
        }
    }
    for (size_t i = 0; i < sizeof(b); i++)
        out[i] = alphabet[b[i] % (sizeof(alphabet) - 1)];
    out[12] = '\0';
}

int kv_outfile_open(const char *path, kv_outfile *o)
{
    struct stat st;
    const char *slash;
    size_t dlen, cap;
    int fd = -1, err;

    memset(o, 0, sizeof(*o));
    if (path == NULL || path[0] == '\0') {
        errno = EINVAL;
        return KV_ERR_IO;
    }
    if ((o->path = strdup(path)) == NULL)
        return KV_ERR_NOMEM;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        /* a device, FIFO or terminal: write to it, never replace it */
        if (S_ISDIR(st.st_mode)) {
            reset(o);
            errno = EISDIR;
            return KV_ERR_IO;
        }
        if ((fd = open(path, O_WRONLY | O_NOCTTY | O_CLOEXEC)) < 0 ||
            (o->f = fdopen(fd, "w")) == NULL) {
            err = errno;
            if (fd >= 0)
                close(fd);
            reset(o);
            errno = err;
            return KV_ERR_IO;
        }
        o->published = 1;
        return 0;
    }
    /* "<dir>/.<name>.<12 random>.tmp" beside the target (rename stays in one file system) */
    slash = strrchr(path, '/');
    dlen = slash != NULL ? (size_t)(slash - path) + 1 : 0;
    cap = strlen(path) + 32;
    if ((o->tmp = malloc(cap)) == NULL) {
        reset(o);
        return KV_ERR_NOMEM;
    }
    for (unsigned attempt = 0; attempt < 100; attempt++) {
        char sfx[13];
        random_suffix(sfx, attempt);
        snprintf(o->tmp, cap, "%.*s.%s.%s.tmp", (int)dlen, path, path + dlen, sfx);
        fd = open(o->tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, 0600);
        if (fd >= 0 || errno != EEXIST)
            break;
    }
    if (fd < 0) {
        err = errno;
        reset(o);
        errno = err;
        return KV_ERR_IO;
    }
    /* the umask may only have taken bits away; owner read+write, nothing else */
    if (fchmod(fd, 0600) != 0 || (o->f = fdopen(fd, "w")) == NULL) {
        err = errno;
        close(fd);
        unlink(o->tmp);
        reset(o);
        errno = err;
        return KV_ERR_IO;
    }
    return 0;
}

int kv_outfile_publish(kv_outfile *o)
{
    if (o->f == NULL)
        return KV_ERR_IO;
    if (o->published)
        return 0;
    if (rename(o->tmp, o->path) != 0)
        return KV_ERR_IO;
    o->published = 1;
    return 0;
}

int kv_outfile_commit(kv_outfile *o)
{
    int r = 0, err = 0;

    if (o->f == NULL) {
        reset(o);
        return KV_ERR_IO;
    }
    if (fflush(o->f) != 0)
        r = KV_ERR_IO;
    /* a device or FIFO need not sync */
    if (r == 0 && o->tmp != NULL && fsync(fileno(o->f)) != 0)
        r = KV_ERR_IO;
    if (r != 0)
        err = errno;
    if (fclose(o->f) != 0 && r == 0) {
        r = KV_ERR_IO;
        err = errno;
    }
    o->f = NULL;
    if (r == 0 && !o->published && rename(o->tmp, o->path) != 0) {
        r = KV_ERR_IO;
        err = errno;
    }
    if (r == 0)
        o->published = 1;
    if (r != 0 && !o->published && o->tmp != NULL)
        unlink(o->tmp);
    reset(o);
    if (r != 0)
        errno = err;
    return r;
}

void kv_outfile_abort(kv_outfile *o)
{
    if (o == NULL)
        return;
    if (o->f != NULL)
        fclose(o->f);
    if (o->tmp != NULL && !o->published)
        unlink(o->tmp);
    reset(o);
}
