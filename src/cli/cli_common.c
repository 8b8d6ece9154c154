/* see cli.h */
#include "src/cli/cli.h"
#include "src/base/err.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int kv_cli_fail(int err, const char *what)
{
    fprintf(stderr, "kortvagt: %s: %s\n", what, kv_strerror(err));
    return kv_exit_code(err);
}

int kv_cli_usage_error(const char *group, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "kortvagt %s: ", group);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'kortvagt %s --help'.\n", group);
    return KV_EXIT_USAGE;
}

int kv_cli_group_help(int argc, char **argv, void (*usage)(FILE *f))
{
    if (argc < 2) {
        usage(stderr);
        return KV_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return KV_EXIT_OK;
    }
    return -1;
}

int kv_cli_read_input(const char *path, size_t max, char **out, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    size_t cap = 4096, n = 0;
    char *buf = NULL;
    int r = KV_ERR_NOMEM;

    *out = NULL;
    *len = 0;
    if (f == NULL)
        return KV_ERR_IO;
    if ((buf = malloc(cap)) == NULL)
        goto out;
    for (;;) {
        size_t got;
        if (cap - n < 2) {
            char *grown;
            if (cap > max) {
                r = KV_ERR_BUFFER;
                goto out;
            }
            if ((grown = realloc(buf, cap * 2)) == NULL)
                goto out;
            buf = grown;
            cap *= 2;
        }
        got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) {
                r = KV_ERR_IO;
                goto out;
            }
            break;
        }
    }
    if (n > max) {
        r = KV_ERR_BUFFER;
        goto out;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    buf = NULL; /* transferred */
    r = 0;
out:
    if (f != stdin)
        fclose(f);
    free(buf);
    return r;
}
