/* see handler.h */
#include "src/daemon/handler.h"
#include "hsm/cvv.h"
#include "hsm/emv_crypto.h"
#include "hsm/pin.h"
#include "src/authorize/authorize.h"
#include "src/base/err.h"
#include "src/base/hex.h"
#include "src/base/secure.h"
#include "src/blocklist/blocklist.h"
#include "src/evidence/evidence.h"
#include "src/liability/liability.h"
#include "src/liability/liability_evidence.h"

#include <jansson.h>
#include <openssl/sha.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TOKEN_FILE_MAX 16384

struct kv_daemon {
    kv_authz_session *session; /* may be NULL */
    int bl_ready;              /* bl below is set up (on the first block list request) */
    kv_hsm_mac bl_token_key;
    kv_bl_hsm_sealer bl_sealer;
    kv_blocklist bl;
    kv_daemon_tokens tokens;
    kv_daemon_metrics *metrics;
    size_t max_body;
};

void kv_http_response_clear(kv_http_response *r)
{
    if (r == NULL)
        return;
    free(r->body);
    memset(r, 0, sizeof(*r));
}

/* ---- tokens ---------------------------------------------------------------- */

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

/* ---- the handler object -------------------------------------------------------- */

int kv_daemon_new(kv_authz_session *session, const kv_daemon_tokens *tokens,
                  kv_daemon_metrics *metrics, size_t max_body, kv_daemon **out)
{
    kv_daemon *d = calloc(1, sizeof(*d));
    *out = NULL;
    if (d == NULL)
        return KV_ERR_NOMEM;
    d->session = session;
    if (tokens != NULL)
        d->tokens = *tokens;
    d->metrics = metrics;
    d->max_body = max_body != 0 ? max_body : KV_DAEMON_DEFAULT_MAX_BODY;
    *out = d;
    return 0;
}

void kv_daemon_free(kv_daemon *d)
{
    if (d == NULL)
        return;
    kv_wipe(&d->tokens, sizeof(d->tokens));
    free(d);
}

size_t kv_daemon_max_body(const kv_daemon *d)
{
    return d->max_body;
}

/* ---- responses -------------------------------------------------------------- */

static int set_body(kv_http_response *res, int status, const char *type, char *body, size_t len)
{
    free(res->body);
    res->status = status;
    res->content_type = type;
    res->body = body;
    res->body_len = len;
    return body != NULL ? 0 : KV_ERR_NOMEM;
}

/* Answer obj (consumed) as compact JSON. */
static int reply_json(kv_http_response *res, int status, json_t *obj)
{
    char *text = obj != NULL ? json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(obj);
    if (text == NULL) {
        res->error_code = "internal";
        return set_body(res, 500, "application/json", NULL, 0);
    }
    return set_body(res, status, "application/json", text, strlen(text));
}

static int reply_error(kv_http_response *res, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int reply_error(kv_http_response *res, int status, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    res->error_code = code;
    return reply_json(res, status,
                      json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg));
}

/* A decoder's message to its error code: the decoders name the field and the problem. */
static int reply_decode_error(kv_http_response *res, int r, const char *why)
{
    if (r == KV_ERR_NOMEM)
        return reply_error(res, 500, "internal", "out of memory");
    if (strstr(why, "unknown field") != NULL)
        return reply_error(res, 400, "unknown_field", "%s", why);
    if (strstr(why, "missing") != NULL)
        return reply_error(res, 400, "missing_field", "%s", why);
    return reply_error(res, 400, "invalid_field", "%s", why);
}

/* An engine, store or HSM error to its status and code (and the metrics). */
static int reply_failure(kv_daemon *d, kv_http_response *res, int r, const char *detail)
{
    const char *text = kv_strerror(r);
    if (r == KV_ERR_STORE_BUSY) {
        kv_daemon_metrics_store_error(d->metrics);
        return reply_error(res, 503, "store_busy", "the store is busy: retry");
    }
    if (r <= KV_ERR_STORE && r > KV_ERR_POLICY && r != KV_ERR_EVIDENCE_BROKEN) {
        kv_daemon_metrics_store_error(d->metrics);
        return reply_error(res, 503, "store_unavailable", "the store is unavailable: %s", text);
    }
    if (r == KV_ERR_HSM_KEY)
        return reply_error(res, 400, "unknown_key", "%s", detail[0] ? detail : text);
    if (r == KV_ERR_HSM_MECHANISM || r == KV_ERR_UNSUPPORTED)
        return reply_error(res, 400, "unsupported", "%s", detail[0] ? detail : text);
    if (r <= KV_ERR_HSM && r > KV_ERR_STORE) {
        kv_daemon_metrics_hsm_error(d->metrics);
        return reply_error(res, 503, "hsm_unavailable", "the HSM failed: %s", text);
    }
    if (r == KV_ERR_NOT_FOUND)
        return reply_error(res, 404, "not_found", "%s", detail[0] ? detail : text);
    if (r == KV_ERR_POLICY)
        return reply_error(res, 409, "conflict", "%s", detail[0] ? detail : text);
    if (r == KV_ERR_ARG || r == KV_ERR_JSON)
        return reply_error(res, 400, "invalid_field", "%s", detail[0] ? detail : text);
    return reply_error(res, 500, "internal", "%s", text);
}

/* The body as a JSON object; answers 400 bad_json itself when it is not one. */
static json_t *body_object(const kv_http_request *req, kv_http_response *res)
{
    json_error_t je;
    json_t *j;
    if (req->body_len == 0) {
        reply_error(res, 400, "bad_json", "the request body is empty; a JSON object is expected");
        return NULL;
    }
    j = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &je);
    if (j == NULL) {
        reply_error(res, 400, "bad_json", "line %d column %d: %s", je.line, je.column, je.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        reply_error(res, 400, "bad_json", "the request body must be a JSON object");
        return NULL;
    }
    return j;
}

static int need_session(kv_daemon *d, kv_http_response *res)
{
    if (d->session != NULL)
        return 0;
    kv_daemon_metrics_hsm_error(d->metrics);
    reply_error(res, 503, "hsm_unavailable", "this worker has no HSM session");
    return -1;
}

/* ---- a small strict decoder for the verify bodies ----------------------------------- */

typedef enum { FT_STR, FT_DIGITS, FT_INT, FT_HEX } field_type;

typedef struct {
    const char *name;
    field_type type;
    int required;
    size_t min, max; /* string / digit length, hex byte count, integer range */
    void *out;       /* char[max + 1], int64_t, uint8_t[max] */
    size_t *len;     /* hex: bytes written (may be NULL) */
    int *present;    /* may be NULL */
} field;

/* Decode obj strictly by fields; 0 or a reply already made (-1). */
static int decode_fields(json_t *obj, const field *f, size_t n, kv_http_response *res)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        size_t i;
        for (i = 0; i < n && strcmp(f[i].name, key) != 0; i++)
            ;
        if (i == n) {
            reply_error(res, 400, "unknown_field", "%.64s: unknown field", key);
            return -1;
        }
    }
    for (size_t i = 0; i < n; i++) {
        v = json_object_get(obj, f[i].name);
        if (f[i].present != NULL)
            *f[i].present = v != NULL;
        if (v == NULL) {
            if (f[i].required) {
                reply_error(res, 400, "missing_field", "%s: missing required field", f[i].name);
                return -1;
            }
            continue;
        }
        if (f[i].type == FT_INT) {
            json_int_t x;
            if (!json_is_integer(v) || (x = json_integer_value(v)) < (json_int_t)f[i].min ||
                x > (json_int_t)f[i].max) {
                reply_error(res, 400, "invalid_field", "%s: an integer %zu..%zu is expected",
                            f[i].name, f[i].min, f[i].max);
                return -1;
            }
            *(int64_t *)f[i].out = (int64_t)x;
            continue;
        }
        const char *s = json_string_value(v);
        size_t sl = s != NULL ? json_string_length(v) : 0;
        if (s == NULL || strlen(s) != sl) {
            reply_error(res, 400, "invalid_field", "%s: a string is expected", f[i].name);
            return -1;
        }
        if (f[i].type == FT_HEX) {
            int nb = (sl % 2 == 0 && sl / 2 >= f[i].min && sl / 2 <= f[i].max)
                         ? kv_hex_decode(s, f[i].out, f[i].max)
                         : -1;
            if (nb < 0 || (size_t)nb < f[i].min) {
                reply_error(res, 400, "invalid_field", "%s: %zu..%zu bytes of hex are expected",
                            f[i].name, f[i].min, f[i].max);
                return -1;
            }
            if (f[i].len != NULL)
                *f[i].len = (size_t)nb;
            continue;
        }
        if (sl < f[i].min || sl > f[i].max ||
            (f[i].type == FT_DIGITS && !kv_is_digits(s, f[i].min, f[i].max))) {
            reply_error(res, 400, "invalid_field", "%s: %s of %zu..%zu characters expected",
                        f[i].name, f[i].type == FT_DIGITS ? "digits" : "a string", f[i].min,
                        f[i].max);
            return -1;
        }
        memcpy(f[i].out, s, sl + 1);
    }
    return 0;
}

#define KEYNAME 256

/* Find a key by label or URI; answers 400 unknown_key / 503 itself. */
static int find_key(kv_daemon *d, kv_http_response *res, const char *name, kv_hsm_key *k)
{
    kv_hsm *h = kv_authz_session_hsm(d->session);
    int r = kv_hsm_key_find(h, name, k);
    if (r == 0)
        return 0;
    if (r == KV_ERR_HSM_KEY || r == KV_ERR_NOT_FOUND || r == KV_ERR_ARG)
        reply_error(res, 400, "unknown_key", "key '%.200s' is not in the token", name);
    else
        reply_failure(d, res, r, "");
    return -1;
}

static json_t *verdict(int match)
{
    return json_pack("{s:s}", "result", match ? "match" : "mismatch");
}

static int ep_verify_pin(kv_daemon *d, const kv_http_request *req, kv_http_response *res)
{
    char pan[20], pin_key[KEYNAME], pvk[KEYNAME], pvv[5], offset[13], vdata[17], dec[17], pad[2];
    uint8_t block[16];
    size_t block_len = 0;
    int64_t format = 0, pvki = 0;
    int has_pvv = 0, has_pvki = 0, has_offset = 0, has_vdata = 0, has_dec = 0, has_pad = 0;
    int match = 0, r;
    kv_hsm_key kp, kk;
    json_t *j;
    const field f[] = {
        {"pan", FT_DIGITS, 1, 12, 19, pan, NULL, NULL},
        {"pin_block", FT_HEX, 1, 8, 16, block, &block_len, NULL},
        {"format", FT_INT, 1, 0, 4, &format, NULL, NULL},
        {"pin_key", FT_STR, 1, 1, KEYNAME - 1, pin_key, NULL, NULL},
        {"pvk", FT_STR, 1, 1, KEYNAME - 1, pvk, NULL, NULL},
        {"pvki", FT_INT, 0, 0, 9, &pvki, NULL, &has_pvki},
        {"pvv", FT_DIGITS, 0, 4, 4, pvv, NULL, &has_pvv},
        {"offset", FT_DIGITS, 0, 4, 12, offset, NULL, &has_offset},
        {"vdata", FT_STR, 0, 1, 16, vdata, NULL, &has_vdata},
        {"dec_table", FT_DIGITS, 0, 16, 16, dec, NULL, &has_dec},
        {"pad", FT_STR, 0, 1, 1, pad, NULL, &has_pad},
    };
    if ((j = body_object(req, res)) == NULL)
        return 0;
    r = decode_fields(j, f, sizeof(f) / sizeof(f[0]), res);
    json_decref(j);
    if (r != 0)
        goto out;
    if (kv_pinblock_size((int)format) != (int)block_len) {
        reply_error(res, 400, "invalid_field", "pin_block: format %d needs %d bytes", (int)format,
                    kv_pinblock_size((int)format));
        goto out;
    }
    if (has_pvv != has_pvki || (has_pvv && has_offset) || (!has_pvv && !has_offset) ||
        has_offset != has_vdata) {
        reply_error(res, 400, has_pvv || has_offset ? "invalid_field" : "missing_field",
                    "either pvki and pvv (Visa PVV) or offset and vdata (IBM 3624) are needed");
        goto out;
    }
    if (need_session(d, res) != 0 || find_key(d, res, pvk, &kp) != 0 ||
        find_key(d, res, pin_key, &kk) != 0)
        goto out;
    if (has_offset)
        r = kv_hsm_ibm3624_verify_pinblock(
            kv_authz_session_hsm(d->session), &kp, &kk, (int)format, block, block_len, pan,
            has_dec ? dec : "0123456789012345", vdata, has_pad ? pad[0] : 'F', offset, &match);
    else
        r = kv_hsm_pvv_verify_pinblock(kv_authz_session_hsm(d->session), &kp, &kk, (int)format,
                                       block, block_len, pan, (int)pvki, pvv, &match);
    if (r != 0) {
        reply_failure(d, res, r, "");
        goto out;
    }
    reply_json(res, 200, verdict(match));
out:
    kv_wipe(block, sizeof(block));
    kv_wipe(pvv, sizeof(pvv));
    kv_wipe(offset, sizeof(offset));
    return 0;
}

static int ep_verify_cvc(kv_daemon *d, const kv_http_request *req, kv_http_response *res)
{
    char pan[20], expiry[5], cvk[KEYNAME], value[4], sc[4] = "000";
    int match = 0, r;
    kv_hsm_key k;
    json_t *j;
    const field f[] = {
        {"pan", FT_DIGITS, 1, 12, 19, pan, NULL, NULL},
        {"expiry", FT_DIGITS, 1, 4, 4, expiry, NULL, NULL},
        {"cvk", FT_STR, 1, 1, KEYNAME - 1, cvk, NULL, NULL},
        {"value", FT_DIGITS, 1, 3, 3, value, NULL, NULL},
        {"service_code", FT_DIGITS, 0, 3, 3, sc, NULL, NULL},
    };
    if ((j = body_object(req, res)) == NULL)
        return 0;
    r = decode_fields(j, f, sizeof(f) / sizeof(f[0]), res);
    json_decref(j);
    if (r != 0 || need_session(d, res) != 0 || find_key(d, res, cvk, &k) != 0)
        goto out;
    if ((r = kv_hsm_cvv_verify(kv_authz_session_hsm(d->session), &k, pan, expiry, sc, value,
                               &match)) != 0) {
        reply_failure(d, res, r, "");
        goto out;
    }
    reply_json(res, 200, verdict(match));
out:
    kv_wipe(value, sizeof(value));
    return 0;
}

static int ep_verify_arqc(kv_daemon *d, const kv_http_request *req, kv_http_response *res)
{
    char pan[20], psn[3] = "", imk[KEYNAME], hex[17];
    uint8_t arqc[8], data[1024], atc[2], un[4], arc[2] = {0x30, 0x30}, csu[4] = {0};
    size_t data_len = 0;
    int64_t cvn = 0;
    int has_psn = 0, has_un = 0, match = 0, r;
    kv_emv_params p;
    kv_emv_txn t;
    kv_emv_arpc_in in;
    uint8_t arpc[8];
    size_t arpc_len = 0;
    kv_hsm_key k;
    json_t *j, *out;
    const field f[] = {
        {"pan", FT_DIGITS, 1, 12, 19, pan, NULL, NULL},
        {"psn", FT_DIGITS, 0, 2, 2, psn, NULL, &has_psn},
        {"imk", FT_STR, 1, 1, KEYNAME - 1, imk, NULL, NULL},
        {"cvn", FT_INT, 1, 0, 255, &cvn, NULL, NULL},
        {"arqc", FT_HEX, 1, 8, 8, arqc, NULL, NULL},
        {"data", FT_HEX, 1, 1, 1024, data, &data_len, NULL},
        {"atc", FT_HEX, 1, 2, 2, atc, NULL, NULL},
        {"un", FT_HEX, 0, 4, 4, un, NULL, &has_un},
        {"arc", FT_HEX, 0, 2, 2, arc, NULL, NULL},
        {"csu", FT_HEX, 0, 4, 4, csu, NULL, NULL},
    };
    if ((j = body_object(req, res)) == NULL)
        return 0;
    r = decode_fields(j, f, sizeof(f) / sizeof(f[0]), res);
    json_decref(j);
    if (r != 0)
        return 0;
    if (kv_emv_params_for_cvn((int)cvn, &p) != 0)
        return reply_error(res, 400, "unsupported", "cvn %d is not supported", (int)cvn);
    if (need_session(d, res) != 0 || find_key(d, res, imk, &k) != 0)
        return 0;
    memset(&t, 0, sizeof(t));
    t.pan = pan;
    t.psn = has_psn ? psn : NULL;
    memcpy(t.atc, atc, 2);
    t.has_un = has_un;
    if (has_un)
        memcpy(t.un, un, 4);
    t.data = data;
    t.data_len = data_len;
    r = kv_hsm_arqc_verify(kv_authz_session_hsm(d->session), &k, &p, &t, arqc, &match);
    if (r == KV_ERR_ARG)
        return reply_error(res, 400, "invalid_field",
                           "the inputs do not fit cvn %d (an un is needed for Mastercard "
                           "session keys)",
                           (int)cvn);
    if (r != 0)
        return reply_failure(d, res, r, "");
    out = verdict(match);
    if (match) {
        /* EMV Book 2 §8.2: the ARPC answers the ARQC that was verified */
        memset(&in, 0, sizeof(in));
        memcpy(in.arqc, arqc, 8);
        memcpy(in.arc, arc, 2);
        memcpy(in.csu, csu, 4);
        r = kv_hsm_arpc_generate(kv_authz_session_hsm(d->session), &k, &p, &t, &in, arpc,
                                 &arpc_len);
        if (r != 0) {
            json_decref(out);
            return reply_failure(d, res, r, "");
        }
        kv_hex_encode(arpc, arpc_len, hex);
        json_object_set_new(out, "arpc", json_string(hex));
    }
    return reply_json(res, 200, out);
}

static int ep_authorize(kv_daemon *d, const kv_http_request *req, kv_http_response *res)
{
    kv_auth_request *ar = NULL;
    kv_authz_result out;
    char why[512];
    json_t *j;
    char *text;
    size_t len = 0;
    int r;

    if ((j = body_object(req, res)) == NULL)
        return 0;
    if ((ar = calloc(1, sizeof(*ar))) == NULL) {
        json_decref(j);
        return reply_error(res, 500, "internal", "out of memory");
    }
    why[0] = '\0';
    r = kv_auth_request_from_json(j, ar, why, sizeof(why));
    json_decref(j);
    if (r != 0) {
        reply_decode_error(res, r, why);
        goto out;
    }
    if (need_session(d, res) != 0)
        goto out;
    if ((r = kv_authz_decide(kv_authz_session_authz(d->session), ar, &out)) != 0) {
        const char *e = kv_authz_last_error(kv_authz_session_authz(d->session));
        if (r <= KV_ERR_HSM)
            fprintf(stderr, "kortvagtd: authorize: %s: %s\n", kv_strerror(r), e);
        reply_failure(d, res, r, e);
        goto out;
    }
    kv_daemon_metrics_decision(d->metrics, out.decision == KV_DECISION_APPROVE        ? 0
                                           : out.decision == KV_DECISION_SCA_REQUIRED ? 1
                                                                                      : 2);
    text = kv_authz_result_text(&out, 1, &len);
    if (text == NULL)
        reply_error(res, 500, "internal", "out of memory");
    else
        set_body(res, 200, "application/json", text, len);
out:
    kv_auth_request_wipe(ar);
    free(ar);
    return 0;
}

/* A positive decimal id of at most 18 digits, or 0. */
static int64_t parse_id(const char *s, size_t n)
{
    int64_t v = 0;
    if (n == 0 || n > 18 || s[0] == '0')
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static int ep_reverse(kv_daemon *d, const kv_http_request *req, kv_http_response *res, int64_t id)
{
    kv_authz_reversal rv;
    int r;
    /* the body is empty or {} */
    if (req->body_len > 0) {
        json_t *j = body_object(req, res);
        if (j == NULL)
            return 0;
        if (json_object_size(j) > 0) {
            const char *k = json_object_iter_key(json_object_iter(j));
            reply_error(res, 400, "unknown_field", "%.64s: unknown field", k);
            json_decref(j);
            return 0;
        }
        json_decref(j);
    }
    if (need_session(d, res) != 0)
        return 0;
    if ((r = kv_authz_reverse(kv_authz_session_authz(d->session), id, &rv)) != 0) {
        if (r == KV_ERR_NOT_FOUND)
            return reply_error(res, 404, "not_found", "no authorization %lld", (long long)id);
        return reply_failure(d, res, r, kv_authz_last_error(kv_authz_session_authz(d->session)));
    }
    return reply_json(res, 200, kv_authz_reversal_json(&rv));
}

static int ep_liability(kv_daemon *d, const kv_http_request *req, kv_http_response *res)
{
    struct kv_liability_case *c = NULL;
    struct kv_liability_result *lr = NULL;
    struct kv_liability_evidence_store es;
    char why[512];
    json_t *j, *out = NULL;
    int r, wants = 0;

    if ((j = body_object(req, res)) == NULL)
        return 0;
    why[0] = '\0';
    r = kv_liability_case_from_json(j, &c, why, sizeof(why));
    json_decref(j);
    if (r != 0)
        return reply_decode_error(res, r, why);
    for (size_t i = 0; i < c->n_txns; i++)
        wants |= c->txns[i].has_evidence;
    if (wants && need_session(d, res) != 0)
        goto out;
    es.store = d->session != NULL ? kv_authz_session_store(d->session) : NULL;
    es.mac = d->session != NULL ? kv_authz_session_evidence_mac(d->session) : NULL;
    if ((r = kv_liability_assess(c, wants ? kv_liability_evidence_from_store : NULL, &es, &lr)) !=
        0) {
        reply_failure(d, res, r, "");
        goto out;
    }
    if ((r = kv_liability_result_to_json(c, lr, &out)) != 0) {
        reply_error(res, 500, "internal", "out of memory");
        goto out;
    }
    reply_json(res, 200, out);
out:
    kv_liability_result_free(lr);
    kv_liability_case_free(c);
    return 0;
}

static int ep_evidence(kv_daemon *d, kv_http_response *res, int64_t id)
{
    kv_evidence_record rec;
    char hash[65], mac[65];
    json_t *out;
    int r;
    if (need_session(d, res) != 0)
        return 0;
    memset(&rec, 0, sizeof(rec));
    r = kv_evidence_load(kv_authz_session_store(d->session),
                         kv_authz_session_evidence_mac(d->session), id, &rec);
    if (r == KV_ERR_NOT_FOUND)
        return reply_error(res, 404, "not_found", "no evidence record %lld", (long long)id);
    if (r != 0)
        return reply_failure(d, res, r, "");
    kv_hex_encode(rec.hash, 32, hash);
    kv_hex_encode(rec.mac, 32, mac);
    out = json_pack("{s:I,s:b,s:s,s:s}", "id", (json_int_t)rec.id, "intact", rec.intact, "hash",
                    hash, "mac", mac);
    if (out != NULL && !rec.intact)
        json_object_set_new(out, "why", json_string(rec.why));
    if (out != NULL)
        json_object_set(out, "record", rec.body != NULL ? rec.body : json_null());
    kv_evidence_record_clear(&rec);
    return reply_json(res, 200, out);
}

static int ep_healthz(kv_daemon *d, kv_http_response *res)
{
    kv_hsm_key k;
    kv_store *s;
    int64_t head = 0;
    uint8_t hash[32];
    int r;
    if (need_session(d, res) != 0)
        return 0;
    /* the PKCS#11 session answers a key search */
    if ((r = kv_hsm_key_find(kv_authz_session_hsm(d->session), "evidence", &k)) != 0) {
        kv_daemon_metrics_hsm_error(d->metrics);
        return reply_error(res, 503, "hsm_unavailable", "the PKCS#11 session failed: %s",
                           kv_strerror(r));
    }
    s = kv_authz_session_store(d->session);
    if ((r = kv_store_begin(s, 0)) == 0) {
        r = kv_store_evidence_head(s, &head, hash);
        kv_store_rollback(s);
    }
    if (r != 0) {
        kv_daemon_metrics_store_error(d->metrics);
        return reply_error(res, 503, "store_unavailable", "the store failed: %s", kv_strerror(r));
    }
    return reply_json(res, 200,
                      json_pack("{s:s,s:s,s:s,s:I}", "status", "ok", "hsm", "ok", "store",
                                kv_store_backend(s), "evidence_head", (json_int_t)head));
}

static int ep_metrics(kv_daemon *d, kv_http_response *res)
{
    static kv_daemon_metrics empty;
    size_t len = 0;
    char *text = kv_daemon_metrics_text(d->metrics != NULL ? d->metrics : &empty, &len);
    if (text == NULL)
        return reply_error(res, 500, "internal", "out of memory");
    return set_body(res, 200, "text/plain; version=0.0.4", text, len);
}

/* ---- block list (RULES.md §3) ------------------------------------------------ */

static int bl_setup(kv_daemon *d, kv_http_response *res)
{
    const kv_config *c;
    kv_hsm *h;
    int r;
    if (need_session(d, res) != 0)
        return -1;
    if (d->bl_ready)
        return 0;
    h = kv_authz_session_hsm(d->session);
    if ((r = kv_hsm_mac_init(&d->bl_token_key, h, KV_KEY_LABEL_TOKEN)) != 0 ||
        (r = kv_bl_hsm_sealer_init(&d->bl_sealer, h)) != 0) {
        kv_daemon_metrics_hsm_error(d->metrics);
        reply_error(res, 503, "hsm_unavailable", "the block list keys: %s", kv_strerror(r));
        return -1;
    }
    c = kv_authz_session_config(d->session);
    memset(&d->bl, 0, sizeof(d->bl));
    d->bl.store = kv_authz_session_store(d->session);
    d->bl.token_mac = kv_hsm_mac_get(&d->bl_token_key);
    d->bl.seal = kv_bl_hsm_sealer_get(&d->bl_sealer);
    d->bl.permission = kv_config_get(c, "blocklist", "permission");
    d->bl.issuer_name = kv_config_get(c, "blocklist", "issuer_name");
    d->bl.issuer_address = kv_config_get(c, "blocklist", "issuer_address");
    d->bl.recipients = kv_config_get(c, "blocklist", "recipients");
    d->bl.authority = kv_config_get(c, "blocklist", "authority");
    d->bl_ready = 1;
    return 0;
}

static int bl_failure(kv_daemon *d, kv_http_response *res, int r, const char *why)
{
    if (r == KV_ERR_PERMISSION)
        return reply_error(res, 403, "permission",
                           "issuer-initiated listing needs the authority's permission "
                           "([blocklist] permission)");
    if (r == KV_ERR_ARG || r == KV_ERR_FORMAT)
        return reply_error(res, 400, "invalid_field", "%s", why[0] ? why : "bad PAN");
    return reply_failure(d, res, r, why);
}

/* POST /v1/blocklist: list a card. The answer holds no reason (RULES.md §3). */
static int ep_blocklist_add(kv_daemon *d, const kv_http_request *req, kv_http_response *res)
{
    static const char *const reports[] = {"none", "lost", "stolen", "defective", "destroyed"};
    char pan[20], reason[32], expiry[5], source[16], report[16], why[256];
    int64_t reminders = 0;
    int has_source = 0, has_report = 0, has_expiry = 0, r;
    kv_bl_add_req ar;
    kv_bl_entry e;
    json_t *j, *wallets;
    const field f[] = {
        {"pan", FT_DIGITS, 1, 12, 19, pan, NULL, NULL},
        {"reason", FT_STR, 1, 1, 31, reason, NULL, NULL},
        {"expiry", FT_DIGITS, 0, 4, 4, expiry, NULL, &has_expiry},
        {"source", FT_STR, 0, 1, 15, source, NULL, &has_source},
        {"reminders", FT_INT, 0, 0, 100, &reminders, NULL, NULL},
        {"report", FT_STR, 0, 1, 15, report, NULL, &has_report},
    };
    if ((j = body_object(req, res)) == NULL)
        return 0;
    /* wallet_tokens is an array: take it out before the flat decoder */
    wallets = json_incref(json_object_get(j, "wallet_tokens"));
    json_object_del(j, "wallet_tokens");
    r = decode_fields(j, f, sizeof(f) / sizeof(f[0]), res);
    json_decref(j);
    if (r != 0)
        goto out;
    memset(&ar, 0, sizeof(ar));
    ar.pan = pan;
    if (kv_bl_reason_parse(reason, &ar.reason) != 0) {
        reply_error(res, 400, "invalid_field", "reason: unknown reason");
        goto out;
    }
    ar.source = kv_bl_default_source(ar.reason);
    if (has_source) {
        if (strcmp(source, "cardholder") == 0)
            ar.source = KV_BL_SOURCE_CARDHOLDER;
        else if (strcmp(source, "issuer") == 0)
            ar.source = KV_BL_SOURCE_ISSUER;
        else {
            reply_error(res, 400, "invalid_field", "source: cardholder or issuer");
            goto out;
        }
    }
    ar.report = KV_BL_REPORT_NONE;
    if (has_report) {
        size_t i;
        for (i = 0; i < sizeof(reports) / sizeof(reports[0]) && strcmp(reports[i], report); i++)
            ;
        if (i == sizeof(reports) / sizeof(reports[0])) {
            reply_error(res, 400, "invalid_field",
                        "report: none, lost, stolen, defective or destroyed");
            goto out;
        }
        ar.report = (kv_bl_report)i;
    }
    ar.reminders = (int)reminders;
    if (has_expiry && kv_bl_expiry_parse(expiry, &ar.expiry_yymm) != 0) {
        reply_error(res, 400, "invalid_field", "expiry: YYMM");
        goto out;
    }
    if (wallets != NULL) {
        size_t i;
        json_t *w;
        if (!json_is_array(wallets) || json_array_size(wallets) > KV_BL_WALLET_MAX) {
            reply_error(res, 400, "invalid_field", "wallet_tokens: an array of at most %d numbers",
                        KV_BL_WALLET_MAX);
            goto out;
        }
        json_array_foreach(wallets, i, w)
        {
            if ((ar.wallet_tokens[i] = json_string_value(w)) == NULL) {
                reply_error(res, 400, "invalid_field", "wallet_tokens[%zu]: a string", i);
                goto out;
            }
        }
        ar.n_wallet = json_array_size(wallets);
    }
    if (bl_setup(d, res) != 0)
        goto out;
    why[0] = '\0';
    if ((r = kv_bl_add(&d->bl, &ar, (int64_t)time(NULL), &e, why, sizeof(why))) != 0) {
        bl_failure(d, res, r, why);
        goto out;
    }
    reply_json(res, 200, json_pack("{s:b}", "listed", 1));
out:
    json_decref(wallets);
    return 0;
}

static int ep_blocklist_pan(kv_daemon *d, const kv_http_request *req, kv_http_response *res)
{
    const char *pan = req->path + 14; /* after "/v1/blocklist/" */
    int blocked = 0, r;
    if (!kv_is_digits(pan, 12, 19))
        return reply_error(res, 400, "invalid_field", "the path must end in a PAN (12-19 digits)");
    if (bl_setup(d, res) != 0)
        return 0;
    if (strcmp(req->method, "DELETE") == 0) {
        /* a wrong entry: deleted, and the correction goes to every recipient */
        if ((r = kv_bl_remove(&d->bl, pan, (int64_t)time(NULL), NULL)) != 0) {
            if (r == KV_ERR_NOT_FOUND)
                return reply_error(res, 404, "not_found", "the card is not listed");
            return bl_failure(d, res, r, "");
        }
        return reply_json(res, 200, json_pack("{s:b}", "deleted", 1));
    }
    /* the hot-card check answers blocked or not, nothing else */
    if ((r = kv_bl_check(&d->bl, pan, &blocked)) != 0)
        return bl_failure(d, res, r, "");
    return reply_json(res, 200, json_pack("{s:b}", "blocked", blocked));
}

/* ---- routing ---------------------------------------------------------------- */

enum { M_GET = 1, M_POST = 2, M_DELETE = 4 };

typedef struct {
    kv_endpoint ep;
    unsigned methods;
    int64_t id; /* reverse, evidence */
} route;

/* 0 and rt filled, or -1 (404). */
static int route_of(const char *path, route *rt)
{
    size_t n = strlen(path);
    memset(rt, 0, sizeof(*rt));
    if (strcmp(path, "/healthz") == 0) {
        rt->ep = KV_EP_HEALTHZ;
        rt->methods = M_GET;
    } else if (strcmp(path, "/metrics") == 0) {
        rt->ep = KV_EP_METRICS;
        rt->methods = M_GET;
    } else if (strcmp(path, "/v1/authorize") == 0) {
        rt->ep = KV_EP_AUTHORIZE;
        rt->methods = M_POST;
    } else if (strncmp(path, "/v1/authorize/", 14) == 0 && n > 22 &&
               strcmp(path + n - 8, "/reverse") == 0 &&
               (rt->id = parse_id(path + 14, n - 22)) > 0) {
        rt->ep = KV_EP_REVERSE;
        rt->methods = M_POST;
    } else if (strcmp(path, "/v1/verify/pin") == 0) {
        rt->ep = KV_EP_VERIFY_PIN;
        rt->methods = M_POST;
    } else if (strcmp(path, "/v1/verify/cvc") == 0) {
        rt->ep = KV_EP_VERIFY_CVC;
        rt->methods = M_POST;
    } else if (strcmp(path, "/v1/verify/arqc") == 0) {
        rt->ep = KV_EP_VERIFY_ARQC;
        rt->methods = M_POST;
    } else if (strcmp(path, "/v1/liability/assess") == 0) {
        rt->ep = KV_EP_LIABILITY;
        rt->methods = M_POST;
    } else if (strcmp(path, "/v1/blocklist") == 0) {
        rt->ep = KV_EP_BLOCKLIST;
        rt->methods = M_POST;
    } else if (strncmp(path, "/v1/blocklist/", 14) == 0 && n > 14) {
        rt->ep = KV_EP_BLOCKLIST;
        rt->methods = M_GET | M_DELETE;
    } else if (strncmp(path, "/v1/evidence/", 13) == 0 &&
               (rt->id = parse_id(path + 13, n - 13)) > 0) {
        rt->ep = KV_EP_EVIDENCE;
        rt->methods = M_GET;
    } else {
        rt->ep = KV_EP_OTHER;
        return -1;
    }
    return 0;
}

static unsigned method_bit(const char *m)
{
    if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0)
        return M_GET;
    if (strcmp(m, "POST") == 0)
        return M_POST;
    if (strcmp(m, "DELETE") == 0)
        return M_DELETE;
    return 0;
}

/* "Bearer <token>" checked against every configured token in constant time. */
static const char *check_token(const kv_daemon *d, const char *auth)
{
    uint8_t h[32];
    int ok = 0;
    size_t n;
    if (auth == NULL)
        return "no_token";
    if (strncmp(auth, "Bearer ", 7) != 0)
        return "no_token";
    auth += 7;
    while (*auth == ' ')
        auth++;
    n = strlen(auth);
    while (n > 0 && auth[n - 1] == ' ')
        n--;
    if (n == 0)
        return "no_token";
    SHA256((const unsigned char *)auth, n, h);
    /* compare with all of them, whatever matched before */
    for (size_t i = 0; i < d->tokens.n; i++)
        ok |= kv_ct_equal(h, d->tokens.hash[i], 32);
    kv_wipe(h, sizeof(h));
    return ok ? NULL : "wrong_token";
}

static int dispatch(kv_daemon *d, const kv_http_request *req, kv_http_response *res, route *rt)
{
    const char *tok;
    if (req->method == NULL || req->path == NULL)
        return reply_error(res, 400, "bad_request", "no method or path");
    if (route_of(req->path, rt) != 0 && strcmp(req->path, "/healthz") != 0) {
        /* unknown paths need a token too: no probing without one */
        if ((tok = check_token(d, req->authorization)) != NULL)
            return reply_error(res, 401, tok, "a valid bearer token is required");
        return reply_error(res, 404, "not_found", "no such endpoint");
    }
    if (rt->ep != KV_EP_HEALTHZ && (tok = check_token(d, req->authorization)) != NULL)
        return reply_error(res, 401, tok,
                           strcmp(tok, "no_token") == 0
                               ? "an Authorization: Bearer <token> header is required"
                               : "the bearer token is not valid");
    if ((method_bit(req->method) & rt->methods) == 0)
        return reply_error(res, 405, "method_not_allowed", "method %.16s is not allowed here",
                           req->method);
    if (req->body_too_large || req->body_len > d->max_body)
        return reply_error(res, 413, "too_large", "the request body is larger than %zu bytes",
                           d->max_body);
    switch (rt->ep) {
    case KV_EP_AUTHORIZE:
        return ep_authorize(d, req, res);
    case KV_EP_REVERSE:
        return ep_reverse(d, req, res, rt->id);
    case KV_EP_VERIFY_PIN:
        return ep_verify_pin(d, req, res);
    case KV_EP_VERIFY_CVC:
        return ep_verify_cvc(d, req, res);
    case KV_EP_VERIFY_ARQC:
        return ep_verify_arqc(d, req, res);
    case KV_EP_LIABILITY:
        return ep_liability(d, req, res);
    case KV_EP_BLOCKLIST:
        return rt->methods == M_POST ? ep_blocklist_add(d, req, res)
                                     : ep_blocklist_pan(d, req, res);
    case KV_EP_EVIDENCE:
        return ep_evidence(d, res, rt->id);
    case KV_EP_HEALTHZ:
        return ep_healthz(d, res);
    case KV_EP_METRICS:
        return ep_metrics(d, res);
    default:
        return reply_error(res, 404, "not_found", "no such endpoint");
    }
}

int kv_daemon_handle(kv_daemon *d, const kv_http_request *req, kv_http_response *res)
{
    struct timespec t0, t1;
    route rt;
    uint64_t us;

    memset(res, 0, sizeof(*res));
    memset(&rt, 0, sizeof(rt));
    rt.ep = KV_EP_OTHER;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    dispatch(d, req, res, &rt);
    if (res->status == 0) {
        res->status = 500;
        res->error_code = "internal";
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    us = (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000LL + (t1.tv_nsec - t0.tv_nsec) / 1000);
    kv_daemon_metrics_request(d->metrics, rt.ep, res->status, us);
    return res->body != NULL ? 0 : KV_ERR_NOMEM;
}
