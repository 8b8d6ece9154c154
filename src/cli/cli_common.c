/* see cli.h */
#include "src/cli/cli.h"
#include "src/base/err.h"

#include <stdarg.h>

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
