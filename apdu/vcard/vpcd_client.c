/* see vpcd.h: the socket side of the vpcd client */
#include "apdu/vcard/vpcd.h"
#include "src/base/err.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

enum {
    CONNECT_RETRY_MS = 200, /* vpcd may not listen yet: pcscd loads it after its port check */
    RECONNECT_DELAY_MS = 500,
    POLL_STOP_MS = 500, /* longest wait before a stop request is seen */
    /*
     * After a "tear" fault the card stays out of the reader this long: pcscd
     * polls the vpcd slot every 400 ms, and vpcd accepts a new connection at
     * its next poll, so a quicker return could be seen as no removal at all.
     */
    TEAR_AWAY_MS = 1200,
};

static int stopping(const kv_vpcd_opts *o)
{
    return o->stop != NULL && *o->stop;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL); /* a signal cuts it short, which is what a stop wants */
}

static void set_timeouts(int fd)
{
    struct timeval tv = {POLL_STOP_MS / 1000, (POLL_STOP_MS % 1000) * 1000};
    struct timeval connect_tv = {2, 0};
    /* a read timeout lets the loop look at the stop flag; a send timeout bounds connect */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &connect_tv, sizeof(connect_tv));
}

/* One pass over the addresses of the host; 0 and *fd when one accepts. */
static int try_connect(const struct addrinfo *list, int *fd)
{
    int one = 1;
    for (const struct addrinfo *ai = list; ai != NULL; ai = ai->ai_next) {
        int s = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (s < 0)
            continue;
        set_timeouts(s);
        if (connect(s, ai->ai_addr, ai->ai_addrlen) == 0) {
            /* one segment per frame, now: without it pcscd waits on delayed ACKs */
            setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            *fd = s;
            return 0;
        }
        close(s);
    }
    return KV_ERR_IO;
}

/* Connect, retrying until vpcd listens or a stop is asked for (then 1). */
static int connect_retry(const struct addrinfo *list, const kv_vpcd_opts *o, const char *host,
                         unsigned port, int *fd)
{
    int said = 0;
    while (!stopping(o)) {
        if (try_connect(list, fd) == 0) {
            if (o->log != NULL)
                fprintf(o->log, "kortvagt vcard: connected to vpcd at %s:%u\n", host, port);
            return 0;
        }
        if (!said && o->log != NULL)
            fprintf(o->log, "kortvagt vcard: waiting for vpcd at %s:%u\n", host, port);
        said = 1;
        sleep_ms(CONNECT_RETRY_MS);
    }
    return 1;
}

static int send_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return KV_ERR_IO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/*
 * Answer frames on fd until the peer closes (0), a stop (1), or a protocol
 * or socket error (< 0).
 */
static int serve_connection(kv_vcard *vc, int fd, const kv_vpcd_opts *o, uint8_t *buf, size_t cap)
{
    uint8_t reply[KV_VPCD_REPLY_MAX];
    size_t have = 0;
    int one = 1;

    for (;;) {
        kv_cursor c;
        kv_vpcd_frame f;
        ssize_t got;
        size_t used;
        int r;

        if (stopping(o))
            return 1;
        /* Linux clears TCP_QUICKACK by itself: re-arm it before every read */
        setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
        got = recv(fd, buf + have, cap - have, 0);
        if (got < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
            continue;
        if (got < 0)
            return errno == ECONNRESET ? 0 : KV_ERR_IO;
        if (got == 0)
            return 0;
        have += (size_t)got;

        kv_cursor_init(&c, buf, have);
        while ((r = kv_vpcd_frame_parse(&c, &f)) == 1) {
            size_t n;
            if ((r = kv_vpcd_frame_handle(vc, &f, reply, sizeof(reply), &n)) != 0)
                return r;
            if (!f.is_ctrl && o->delay_ms > 0)
                sleep_ms(o->delay_ms);
            if (n > 0 && (r = send_all(fd, reply, n)) != 0)
                return errno == EPIPE || errno == ECONNRESET ? 0 : r;
        }
        if (r < 0)
            return r;
        used = have - kv_cursor_left(&c);
        memmove(buf, buf + used, have - used);
        have -= used;
    }
}

/* see vpcd.h */
int kv_vpcd_serve(kv_vcard *vc, const kv_vpcd_opts *o)
{
    const char *host = o->host != NULL ? o->host : "127.0.0.1";
    unsigned port = o->port != 0 ? o->port : KV_VPCD_DEFAULT_PORT;
    struct addrinfo hints, *list = NULL;
    char service[8];
    uint8_t *buf = NULL;
    int fd = -1, r;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(service, sizeof(service), "%u", port);
    if (getaddrinfo(host, service, &hints, &list) != 0) {
        r = KV_ERR_ARG;
        goto out;
    }
    if ((buf = malloc(KV_VPCD_FRAME_MAX)) == NULL) {
        r = KV_ERR_NOMEM;
        goto out;
    }
    for (;;) {
        if (connect_retry(list, o, host, port, &fd) != 0) {
            r = 0; /* stopped while waiting */
            goto out;
        }
        r = serve_connection(vc, fd, o, buf, KV_VPCD_FRAME_MAX);
        /* a torn command (fault "tear"): no answer, the connection closed at once; vpcd
           answers the pending SCardTransmit with no bytes and reports the card absent */
        if (r == KV_ERR_PCSC_REMOVED)
            shutdown(fd, SHUT_RDWR);
        close(fd);
        fd = -1;
        kv_vcard_power_off(vc); /* the card left the reader */
        if (r == KV_ERR_PCSC_REMOVED) {
            if (o->log != NULL)
                fprintf(o->log, "kortvagt vcard: fault: card torn out; back in %d ms\n",
                        TEAR_AWAY_MS);
            sleep_ms(TEAR_AWAY_MS);
            continue;
        }
        if (r == 1) {
            r = 0;
            goto out;
        }
        if (o->log != NULL)
            fprintf(o->log, "kortvagt vcard: connection to vpcd %s%s\n",
                    r == 0 ? "closed" : "dropped: ", r == 0 ? "" : kv_strerror(r));
        if (o->once) {
            r = r < 0 ? r : 0;
            goto out;
        }
        sleep_ms(RECONNECT_DELAY_MS);
    }
out:
    if (fd >= 0)
        close(fd);
    free(buf);
    if (list != NULL)
        freeaddrinfo(list);
    return r;
}
