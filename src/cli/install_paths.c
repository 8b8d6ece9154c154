/* see install_paths.h */
#include "src/cli/install_paths.h"

#include "apdu/capk.h"
#include "kv_build_config.h"
#include "src/app/settings.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The directory of the running executable into dir; 0, or -1 when unknown. */
static int exe_dir(char *dir, size_t cap)
{
    ssize_t n = readlink("/proc/self/exe", dir, cap - 1);
    char *slash;

    if (n <= 0 || (size_t)n >= cap - 1)
        return -1;
    dir[n] = '\0';
    if ((slash = strrchr(dir, '/')) == NULL)
        return -1;
    *slash = '\0';
    return 0;
}

/* see install_paths.h */
int kv_cli_uninstalled(void)
{
    char dir[PATH_MAX], build[PATH_MAX];

    return exe_dir(dir, sizeof(dir)) == 0 && realpath(KV_BUILD_BINDIR, build) != NULL &&
           strcmp(dir, build) == 0;
}

/* see install_paths.h */
const char *kv_cli_capk_path(const char *flag, char *buf, size_t cap)
{
    /* static: the path returned may be the variable's value ($KORTVAGT_CAPK, src/app/settings.h) */
    static kv_settings set;
    char dir[PATH_MAX];
    kv_capk_search s = {0};
    int n;

    s.flag = flag;
    if (kv_settings_init(&set, NULL, NULL, 0) == 0)
        s.env = kv_settings_opt(set.terminal.capk);
    if (kv_cli_uninstalled())
        s.source = KV_SOURCE_DIR "/tests/data/capk/capk.json";
    s.sysconf = KV_INSTALL_SYSCONFDIR "/capk.json";
    if (exe_dir(dir, sizeof(dir)) == 0 &&
        (n = snprintf(buf, cap, "%s/" KV_BINDIR_TO_DATADIR "/capk.json", dir)) > 0 &&
        (size_t)n < cap)
        s.data = buf;
    s.data_abs = KV_INSTALL_DATADIR "/capk.json";
    return kv_capk_locate(&s);
}
