/* see secure.h */
#include "src/base/secure.h"
#include "src/base/err.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <termios.h>
#include <unistd.h>

struct kv_secbuf {
    uint8_t *mem;
    size_t cap;
    size_t maplen;
};

void kv_wipe(void *p, size_t len)
{
    if (len == 0)
        return;
    explicit_bzero(p, len);
}

int kv_ct_equal(const void *a, const void *b, size_t len)
{
    const volatile uint8_t *x = a;
    const volatile uint8_t *y = b;
    uint8_t d = 0;
    for (size_t i = 0; i < len; i++)
        d |= (uint8_t)(x[i] ^ y[i]);
    return (int)(1 & ((d - 1) >> 8));
}

kv_secbuf *kv_secbuf_new(size_t cap)
{
    kv_secbuf *b = NULL;
    long page = sysconf(_SC_PAGESIZE);
    size_t maplen;

    if (cap == 0 || page <= 0)
        return NULL;
    maplen = ((cap + (size_t)page - 1) / (size_t)page) * (size_t)page;
    if ((b = calloc(1, sizeof(*b))) == NULL)
        return NULL;
    b->mem = mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (b->mem == MAP_FAILED) {
        free(b);
        return NULL;
    }
    if (mlock(b->mem, maplen) != 0 || madvise(b->mem, maplen, MADV_DONTDUMP) != 0) {
        munmap(b->mem, maplen);
        free(b);
        return NULL;
    }
    b->cap = cap;
    b->maplen = maplen;
    return b;
}

void kv_secbuf_free(kv_secbuf *b)
{
    if (b == NULL)
        return;
    kv_wipe(b->mem, b->maplen);
    munlock(b->mem, b->maplen);
    munmap(b->mem, b->maplen);
    free(b);
}

uint8_t *kv_secbuf_ptr(kv_secbuf *b)
{
    return b->mem;
}

size_t kv_secbuf_cap(const kv_secbuf *b)
{
    return b->cap;
}

int kv_secret_read_line(int fd, const char *prompt, kv_secbuf *b)
{
    struct termios old, quiet;
    int tty = isatty(fd) && tcgetattr(fd, &old) == 0;
    size_t n = 0;
    int r = KV_ERR_IO;
    int got_any = 0;
    uint8_t *p = kv_secbuf_ptr(b);
    size_t cap = kv_secbuf_cap(b);

    if (tty && prompt != NULL) {
        ssize_t w = write(STDERR_FILENO, prompt, strlen(prompt));
        (void)w;
    }
    if (tty) {
        quiet = old;
        quiet.c_lflag &= (tcflag_t) ~(ECHO | ECHONL);
        quiet.c_lflag |= ICANON;
        if (tcsetattr(fd, TCSAFLUSH, &quiet) != 0)
            tty = 0;
    }
    for (;;) {
        char c;
        ssize_t got = read(fd, &c, 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            goto out;
        if (got == 0)
            break;
        got_any = 1;
        if (c == '\n')
            break;
        if (n + 1 >= cap) {
            r = KV_ERR_BUFFER;
            goto out;
        }
        p[n++] = (uint8_t)c;
    }
    if (!got_any) {
        r = KV_ERR_NOT_FOUND;
        goto out;
    }
    if (n > 0 && p[n - 1] == '\r')
        n--;
    p[n] = 0;
    r = (int)n;
out:
    if (r < 0)
        kv_wipe(p, cap);
    if (tty) {
        tcsetattr(fd, TCSAFLUSH, &old);
        if (prompt != NULL) {
            ssize_t w = write(STDERR_FILENO, "\n", 1);
            (void)w;
        }
    }
    return r;
}

void kv_disable_core_dumps(void)
{
    struct rlimit rl = {0, 0};
    setrlimit(RLIMIT_CORE, &rl);
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}
