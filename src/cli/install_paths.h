/*
 * Where the front end finds the files kortvagt ships (the CA key file):
 * through the install prefix for an installed binary, the source tree only
 * for an uninstalled build. The locations come from the CMake-generated
 * kv_build_config.h.
 */
#ifndef KV_CLI_INSTALL_PATHS_H
#define KV_CLI_INSTALL_PATHS_H

#include <stddef.h>

/* 1 when this binary runs from the build tree it was built in, else 0. */
int kv_cli_uninstalled(void);

/*
 * The CA key file in the order of kv_capk_locate (apdu/capk.h): flag
 * (--capk), $KORTVAGT_CAPK, the source tree's tests/data/capk/capk.json for
 * an uninstalled build, SYSCONFDIR/kortvagt/capk.json, DATADIR/kortvagt/
 * capk.json beside the binary's install prefix, then at the configured
 * DATADIR. NULL when there is none; the result may point into buf (cap bytes).
 */
const char *kv_cli_capk_path(const char *flag, char *buf, size_t cap);

#endif
