/*
 * Token PIN input (see p11_admin.h, kv_hsm_pin_read): a value the caller
 * already has, else the first line of a file, else one line of stdin. The
 * caller says where each comes from; this file reads no environment.
 */
#include "hsm/p11.h"
#include "hsm/p11_admin.h"
#include "hsm/p11_internal.h"
#include "src/base/err.h"
#include "src/base/secure.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *or_default(const char *s, const char *dflt)
{
    return s != NULL && s[0] != '\0' ? s : dflt;
}

int kv_hsm_pin_read(const kv_hsm_pin_source *src, kv_secbuf **out, size_t *len)
{
    kv_secbuf *b = NULL;
    const char *v = src->value, *file = src->file;
    const char *vname = or_default(src->value_name, "the PIN value");
    const char *fname = or_default(src->file_name, "the PIN file");
    int fd = -1, n, r = KV_ERR_INTERNAL;

    *out = NULL;
    *len = 0;
    if ((b = kv_secbuf_new(KV_HSM_PIN_MAX + 1)) == NULL) {
        r = kv_p11_fail_msg(NULL, KV_ERR_NOMEM, "cannot allocate locked memory for the PIN");
        goto out;
    }
    if (v != NULL && v[0] != '\0') {
        size_t l = strlen(v);
        if (l > KV_HSM_PIN_MAX) {
            r = kv_p11_fail_msg(NULL, KV_ERR_HSM_LOGIN, "the PIN in %s is longer than %d bytes",
                                vname, KV_HSM_PIN_MAX);
            goto out;
        }
        memcpy(kv_secbuf_ptr(b), v, l + 1);
        n = (int)l;
    } else if (file != NULL && file[0] != '\0') {
        if ((fd = open(file, O_RDONLY | O_CLOEXEC)) < 0) {
            r = kv_p11_fail_msg(NULL, KV_ERR_IO, "cannot open the PIN file %s (%s): %s", file,
                                fname, strerror(errno));
            goto out;
        }
        if ((n = kv_secret_read_line(fd, NULL, b)) < 0) {
            r = kv_p11_fail_msg(NULL, n == KV_ERR_NOT_FOUND ? KV_ERR_HSM_LOGIN : n,
                                "cannot read a PIN from %s (%s)%s", file, fname,
                                n == KV_ERR_NOT_FOUND ? ": the file is empty" : "");
            goto out;
        }
    } else {
        if ((n = kv_secret_read_line(STDIN_FILENO, src->prompt, b)) < 0) {
            if (src->value_name != NULL && src->file_name != NULL)
                r = kv_p11_fail_msg(NULL, n == KV_ERR_NOT_FOUND ? KV_ERR_HSM_LOGIN : n,
                                    "no PIN: set %s or %s or give it as a line on stdin",
                                    src->value_name, src->file_name);
            else if (src->value_name != NULL)
                r = kv_p11_fail_msg(NULL, n == KV_ERR_NOT_FOUND ? KV_ERR_HSM_LOGIN : n,
                                    "no PIN: set %s or give it as a line on stdin",
                                    src->value_name);
            else
                r = kv_p11_fail_msg(NULL, n == KV_ERR_NOT_FOUND ? KV_ERR_HSM_LOGIN : n,
                                    "no PIN: give it as a line on stdin");
            goto out;
        }
    }
    if (n == 0) {
        r = kv_p11_fail_msg(NULL, KV_ERR_HSM_LOGIN, "the PIN is empty");
        goto out;
    }
    *out = b;
    b = NULL; /* transferred */
    *len = (size_t)n;
    r = 0;
out:
    if (fd >= 0)
        close(fd);
    kv_secbuf_free(b);
    return r;
}
