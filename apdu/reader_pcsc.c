/* see reader.h: the PC/SC backend and reader discovery (pcsc-lite) */
#include "apdu/reader.h"
#include "src/base/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <winscard.h>

/* SCARD_* -> KV_ERR_*, at the boundary: one error space (src/base/err.h). */
static const struct {
    LONG rv;
    int err;
} kv_pcsc_errors[] = {
    {SCARD_S_SUCCESS, 0},
    {SCARD_E_NO_SERVICE, KV_ERR_PCSC_NO_SERVICE},
    {SCARD_E_SERVICE_STOPPED, KV_ERR_PCSC_NO_SERVICE},
    {SCARD_F_COMM_ERROR, KV_ERR_PCSC_NO_SERVICE},
    {SCARD_E_NO_READERS_AVAILABLE, KV_ERR_PCSC_NO_READER},
    {SCARD_E_UNKNOWN_READER, KV_ERR_PCSC_NO_READER},
    {SCARD_E_READER_UNAVAILABLE, KV_ERR_PCSC_NO_READER},
    {SCARD_E_NO_SMARTCARD, KV_ERR_PCSC_NO_CARD},
    {SCARD_W_REMOVED_CARD, KV_ERR_PCSC_REMOVED},
    {SCARD_W_RESET_CARD, KV_ERR_PCSC_RESET},
    {SCARD_W_UNRESPONSIVE_CARD, KV_ERR_PCSC_UNRESPONSIVE},
    {SCARD_W_UNPOWERED_CARD, KV_ERR_PCSC_UNRESPONSIVE},
    {SCARD_W_UNSUPPORTED_CARD, KV_ERR_PCSC_UNRESPONSIVE},
    {SCARD_E_PROTO_MISMATCH, KV_ERR_PCSC_UNRESPONSIVE},
    {SCARD_E_CARD_UNSUPPORTED, KV_ERR_PCSC_UNRESPONSIVE},
    {SCARD_E_NOT_TRANSACTED, KV_ERR_PCSC_UNRESPONSIVE},
    {SCARD_E_SHARING_VIOLATION, KV_ERR_PCSC_SHARING},
    {SCARD_E_TIMEOUT, KV_ERR_TIMEOUT},
    {SCARD_E_CANCELLED, KV_ERR_INTERRUPTED},
    {SCARD_E_INSUFFICIENT_BUFFER, KV_ERR_BUFFER},
    {SCARD_E_NO_MEMORY, KV_ERR_NOMEM},
    {SCARD_E_UNSUPPORTED_FEATURE, KV_ERR_UNSUPPORTED},
    {SCARD_E_INVALID_PARAMETER, KV_ERR_INTERNAL},
    {SCARD_E_INVALID_VALUE, KV_ERR_INTERNAL},
    {SCARD_E_INVALID_HANDLE, KV_ERR_INTERNAL},
};

int kv_reader_pcsc_error(long rv)
{
    for (size_t i = 0; i < sizeof(kv_pcsc_errors) / sizeof(kv_pcsc_errors[0]); i++)
        if (kv_pcsc_errors[i].rv == (LONG)rv)
            return kv_pcsc_errors[i].err;
    return KV_ERR_PCSC;
}

typedef struct {
    SCARDCONTEXT ctx;
    int have_ctx;
    SCARDHANDLE h;
    int have_h;
    DWORD proto;
} pcsc_ctx;

static const SCARD_IO_REQUEST *pci_of(DWORD proto)
{
    return proto == SCARD_PROTOCOL_T0 ? SCARD_PCI_T0 : SCARD_PCI_T1;
}

/* After a failed exchange: was the card taken out? Then say so (exit 3, "card removed"). */
static int removal_or(pcsc_ctx *p, int err)
{
    DWORD state = 0, proto = 0, namelen = 0, atrlen = 0;
    LONG rv;
    if (err == KV_ERR_PCSC_REMOVED || err == KV_ERR_PCSC_NO_CARD)
        return KV_ERR_PCSC_REMOVED;
    rv = SCardStatus(p->h, NULL, &namelen, &state, &proto, NULL, &atrlen);
    if (rv == SCARD_W_REMOVED_CARD || rv == SCARD_E_NO_SMARTCARD ||
        (rv == SCARD_S_SUCCESS && (state & SCARD_ABSENT)))
        return KV_ERR_PCSC_REMOVED;
    return err;
}

/*
 * An exchange answered with no bytes at all: vpcd does that when its card
 * (our virtual card, or its process) went away mid-command, and drops the
 * card; pcscd sees the slot empty only at its next presence poll (every
 * 400 ms), so an immediate SCardStatus still says "present". Wait up to
 * 1.5 s for the reader to report the card gone (EMPTY, or a new card
 * event) before calling the card unresponsive.
 */
static int empty_answer(pcsc_ctx *p)
{
    char name[MAX_READERNAME + 1];
    DWORD namelen = sizeof(name), state = 0, proto = 0, atrlen = 0, events;
    SCARD_READERSTATE st;
    struct timespec t0, now;
    long waited = 0;
    int r = removal_or(p, KV_ERR_PCSC_UNRESPONSIVE);

    if (r != KV_ERR_PCSC_UNRESPONSIVE ||
        SCardStatus(p->h, name, &namelen, &state, &proto, NULL, &atrlen) != SCARD_S_SUCCESS)
        return r;
    memset(&st, 0, sizeof(st));
    st.szReader = name;
    st.dwCurrentState = SCARD_STATE_UNAWARE;
    if (SCardGetStatusChange(p->ctx, 0, &st, 1) != SCARD_S_SUCCESS)
        return r;
    events = st.dwEventState >> 16;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (waited < 1500) {
        LONG rv;
        st.dwCurrentState = st.dwEventState & ~(DWORD)SCARD_STATE_CHANGED;
        rv = SCardGetStatusChange(p->ctx, (DWORD)(1500 - waited), &st, 1);
        if (rv == SCARD_S_SUCCESS &&
            ((st.dwEventState & SCARD_STATE_EMPTY) || (st.dwEventState >> 16) != events))
            return KV_ERR_PCSC_REMOVED;
        if (rv != SCARD_S_SUCCESS)
            break; /* timeout: still there */
        clock_gettime(CLOCK_MONOTONIC, &now);
        waited = (long)(now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
    }
    return r;
}

static int pcsc_transmit(void *ctx, const uint8_t *capdu, size_t len, uint8_t *out, size_t cap,
                         size_t *outlen)
{
    pcsc_ctx *p = ctx;
    DWORD rl = (DWORD)(cap > KV_RAPDU_MAX ? KV_RAPDU_MAX : cap);
    LONG rv = SCardTransmit(p->h, pci_of(p->proto), capdu, (DWORD)len, NULL, out, &rl);

    if (rv == SCARD_W_RESET_CARD) {
        /* another application reset the card: reconnect and retry once */
        if ((rv = SCardReconnect(p->h, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1,
                                 SCARD_LEAVE_CARD, &p->proto)) != SCARD_S_SUCCESS)
            return removal_or(p, kv_reader_pcsc_error(rv));
        rl = (DWORD)(cap > KV_RAPDU_MAX ? KV_RAPDU_MAX : cap);
        rv = SCardTransmit(p->h, pci_of(p->proto), capdu, (DWORD)len, NULL, out, &rl);
    }
    if (rv != SCARD_S_SUCCESS)
        return removal_or(p, kv_reader_pcsc_error(rv));
    /* No status word at all: the card (or the virtual card's process) went away
     * during the exchange; vpcd reports that as an empty answer. */
    if (rl < 2)
        return empty_answer(p);
    *outlen = rl;
    return 0;
}

static int pcsc_atr(void *ctx, uint8_t *out, size_t cap, size_t *len)
{
    pcsc_ctx *p = ctx;
    BYTE atr[MAX_ATR_SIZE];
    DWORD state = 0, proto = 0, namelen = 0, atrlen = sizeof(atr);
    LONG rv = SCardStatus(p->h, NULL, &namelen, &state, &proto, atr, &atrlen);
    if (rv != SCARD_S_SUCCESS)
        return removal_or(p, kv_reader_pcsc_error(rv));
    if (atrlen > cap)
        return KV_ERR_BUFFER;
    memcpy(out, atr, atrlen);
    *len = atrlen;
    return 0;
}

static int pcsc_reset(void *ctx)
{
    pcsc_ctx *p = ctx;
    LONG rv = SCardReconnect(p->h, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1,
                             SCARD_RESET_CARD, &p->proto);
    return rv == SCARD_S_SUCCESS ? 0 : removal_or(p, kv_reader_pcsc_error(rv));
}

static void pcsc_close(void *ctx)
{
    pcsc_ctx *p = ctx;
    if (p == NULL)
        return;
    if (p->have_h)
        SCardDisconnect(p->h, SCARD_LEAVE_CARD);
    if (p->have_ctx)
        SCardReleaseContext(p->ctx);
    free(p);
}

static const kv_transport_ops pcsc_ops = {
    .name = "pcsc",
    .transmit = pcsc_transmit,
    .atr = pcsc_atr,
    .reset = pcsc_reset,
    .close = pcsc_close,
};

int kv_reader_open_pcsc(const char *name, kv_reader **out)
{
    int r = KV_ERR_NOMEM;
    pcsc_ctx *p = NULL;
    kv_reader *rd = NULL;
    char chosen[KV_READER_NAME_MAX];
    LONG rv;

    if ((r = kv_reader_pick(name, chosen, sizeof(chosen))) != 0)
        goto out;
    if ((p = calloc(1, sizeof(*p))) == NULL) {
        r = KV_ERR_NOMEM;
        goto out;
    }
    if ((rv = SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &p->ctx)) != SCARD_S_SUCCESS) {
        r = kv_reader_pcsc_error(rv);
        goto out;
    }
    p->have_ctx = 1;
    rv = SCardConnect(p->ctx, chosen, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T0 | SCARD_PROTOCOL_T1,
                      &p->h, &p->proto);
    if (rv != SCARD_S_SUCCESS) {
        r = kv_reader_pcsc_error(rv);
        if (r == KV_ERR_PCSC_REMOVED)
            r = KV_ERR_PCSC_NO_CARD;
        goto out;
    }
    p->have_h = 1;
    r = kv_reader_new(&pcsc_ops, p, &rd);
    p = NULL; /* transferred (closed by kv_reader_new on failure) */
    if (r != 0)
        goto out;
    if ((r = kv_reader_set_name(rd, chosen)) != 0)
        goto out;
    *out = rd;
    rd = NULL; /* transferred */
out:
    pcsc_close(p);
    kv_reader_free(rd);
    return r;
}

/* ---- discovery ---- */

static int list_names(SCARDCONTEXT ctx, char **names)
{
    DWORD len = 0;
    LONG rv = SCardListReaders(ctx, NULL, NULL, &len);
    if (rv != SCARD_S_SUCCESS)
        return kv_reader_pcsc_error(rv);
    if ((*names = calloc(1, (size_t)len + 1)) == NULL)
        return KV_ERR_NOMEM;
    if ((rv = SCardListReaders(ctx, NULL, *names, &len)) != SCARD_S_SUCCESS)
        return kv_reader_pcsc_error(rv);
    return 0;
}

int kv_reader_list(kv_reader_info **out, size_t *n)
{
    int r;
    SCARDCONTEXT ctx;
    int have_ctx = 0;
    char *names = NULL;
    SCARD_READERSTATE *st = NULL;
    kv_reader_info *info = NULL;
    size_t count = 0, i;
    LONG rv;

    if ((rv = SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &ctx)) != SCARD_S_SUCCESS) {
        r = kv_reader_pcsc_error(rv);
        goto out;
    }
    have_ctx = 1;
    if ((r = list_names(ctx, &names)) != 0)
        goto out;
    for (const char *s = names; *s != '\0'; s += strlen(s) + 1)
        count++;
    if (count == 0) {
        r = KV_ERR_PCSC_NO_READER;
        goto out;
    }
    if ((st = calloc(count, sizeof(*st))) == NULL ||
        (info = calloc(count, sizeof(*info))) == NULL) {
        r = KV_ERR_NOMEM;
        goto out;
    }
    i = 0;
    for (const char *s = names; *s != '\0'; s += strlen(s) + 1, i++) {
        st[i].szReader = s;
        st[i].dwCurrentState = SCARD_STATE_UNAWARE;
    }
    rv = SCardGetStatusChange(ctx, 0, st, (DWORD)count);
    if (rv != SCARD_S_SUCCESS && rv != SCARD_E_TIMEOUT) {
        r = kv_reader_pcsc_error(rv);
        goto out;
    }
    for (i = 0; i < count; i++) {
        snprintf(info[i].name, sizeof(info[i].name), "%s", st[i].szReader);
        info[i].card_present = (st[i].dwEventState & SCARD_STATE_PRESENT) != 0 &&
                               (st[i].dwEventState & SCARD_STATE_MUTE) == 0;
        if (info[i].card_present && st[i].cbAtr <= KV_ATR_MAX) {
            memcpy(info[i].atr, st[i].rgbAtr, st[i].cbAtr);
            info[i].atr_len = st[i].cbAtr;
        }
    }
    *out = info;
    *n = count;
    info = NULL; /* transferred */
    r = 0;
out:
    free(info);
    free(st);
    free(names);
    if (have_ctx)
        SCardReleaseContext(ctx);
    return r;
}

int kv_reader_pick(const char *flag, char *out, size_t cap)
{
    int r;
    kv_reader_info *info = NULL;
    size_t n = 0, i, plen;
    const char *want = flag != NULL && flag[0] != '\0' ? flag : NULL;

    if ((r = kv_reader_list(&info, &n)) != 0)
        goto out;
    r = want != NULL ? KV_ERR_PCSC_NO_READER : KV_ERR_PCSC_NO_CARD;
    for (i = 0; i < n; i++) {
        if (want == NULL ? info[i].card_present : strcmp(info[i].name, want) == 0)
            break;
    }
    if (i == n && want != NULL) { /* no exact name: a prefix of one reader name */
        plen = strlen(want);
        for (i = 0; i < n; i++)
            if (plen > 0 && strncmp(info[i].name, want, plen) == 0)
                break;
    }
    if (i == n)
        goto out;
    if (strlen(info[i].name) >= cap) {
        r = KV_ERR_BUFFER;
        goto out;
    }
    memcpy(out, info[i].name, strlen(info[i].name) + 1);
    r = 0;
out:
    free(info);
    return r;
}

int kv_reader_wait(const char *name, int present, unsigned timeout_ms)
{
    int r;
    SCARDCONTEXT ctx;
    int have_ctx = 0;
    SCARD_READERSTATE st;
    struct timespec start, now;
    LONG rv;

    if ((rv = SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &ctx)) != SCARD_S_SUCCESS) {
        r = kv_reader_pcsc_error(rv);
        goto out;
    }
    have_ctx = 1;
    memset(&st, 0, sizeof(st));
    st.szReader = name;
    st.dwCurrentState = SCARD_STATE_UNAWARE;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        DWORD wait = INFINITE;
        if (timeout_ms != 0) {
            long el;
            clock_gettime(CLOCK_MONOTONIC, &now);
            el = (long)(now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
            if (el >= (long)timeout_ms && st.dwCurrentState != SCARD_STATE_UNAWARE) {
                r = KV_ERR_TIMEOUT;
                goto out;
            }
            wait = el >= (long)timeout_ms ? 0 : (DWORD)((long)timeout_ms - el);
        }
        rv = SCardGetStatusChange(ctx, wait, &st, 1);
        if (rv == SCARD_E_TIMEOUT && st.dwCurrentState != SCARD_STATE_UNAWARE) {
            r = KV_ERR_TIMEOUT;
            goto out;
        }
        if (rv != SCARD_S_SUCCESS && rv != SCARD_E_TIMEOUT) {
            r = kv_reader_pcsc_error(rv);
            goto out;
        }
        if (st.dwEventState & SCARD_STATE_UNKNOWN) {
            r = KV_ERR_PCSC_NO_READER;
            goto out;
        }
        if (present ? (st.dwEventState & SCARD_STATE_PRESENT) != 0
                    : (st.dwEventState & SCARD_STATE_EMPTY) != 0) {
            r = 0;
            goto out;
        }
        st.dwCurrentState = st.dwEventState & ~(DWORD)SCARD_STATE_CHANGED;
    }
out:
    if (have_ctx)
        SCardReleaseContext(ctx);
    return r;
}
