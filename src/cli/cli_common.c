/* see cli.h */
#include "src/cli/cli.h"
#include "src/base/err.h"

#include <stdarg.h>
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
