/*
 * The one search order of the CA key file (apdu/capk.h kv_capk_locate):
 * --capk, then a non-empty $KORTVAGT_CAPK (both taken as given, readable or
 * not), then the first readable of the source tree's file (uninstalled
 * builds), the administrator's, the installed one beside the binary and the
 * installed one at the configured data directory; NULL when there is none.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "apdu/capk.h"

static char dir[64];
static char f_source[128], f_sysconf[128], f_data[128], f_abs[128], f_missing[128];

static void touch(const char *path)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("{}\n", f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/kv-capk-locate-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(f_source, sizeof(f_source), "%s/source.json", dir);
    snprintf(f_sysconf, sizeof(f_sysconf), "%s/sysconf.json", dir);
    snprintf(f_data, sizeof(f_data), "%s/data.json", dir);
    snprintf(f_abs, sizeof(f_abs), "%s/abs.json", dir);
    snprintf(f_missing, sizeof(f_missing), "%s/missing.json", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(f_source);
    unlink(f_sysconf);
    unlink(f_data);
    unlink(f_abs);
    return rmdir(dir);
}

static void test_flag_and_env_win_as_given(void **state)
{
    kv_capk_search s = {f_missing, f_sysconf, f_source, f_sysconf, f_data, f_abs};
    (void)state;
    touch(f_source);
    touch(f_sysconf);
    /* the flag is used even when it cannot be read: the load then names it */
    assert_string_equal(kv_capk_locate(&s), f_missing);
    s.flag = NULL;
    s.env = f_missing;
    assert_string_equal(kv_capk_locate(&s), f_missing);
    /* an empty variable counts as unset */
    s.env = "";
    assert_string_equal(kv_capk_locate(&s), f_source);
    unlink(f_source);
    unlink(f_sysconf);
}

static void test_first_readable_in_order(void **state)
{
    kv_capk_search s = {NULL, NULL, f_source, f_sysconf, f_data, f_abs};
    (void)state;
    assert_null(kv_capk_locate(&s));
    touch(f_abs);
    assert_string_equal(kv_capk_locate(&s), f_abs);
    touch(f_data);
    assert_string_equal(kv_capk_locate(&s), f_data);
    touch(f_sysconf);
    assert_string_equal(kv_capk_locate(&s), f_sysconf);
    touch(f_source);
    assert_string_equal(kv_capk_locate(&s), f_source);
    /* an installed binary passes no source file */
    s.source = NULL;
    assert_string_equal(kv_capk_locate(&s), f_sysconf);
    s.sysconf = "";
    assert_string_equal(kv_capk_locate(&s), f_data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flag_and_env_win_as_given),
        cmocka_unit_test(test_first_readable_in_order),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
