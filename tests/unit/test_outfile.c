/*
 * src/base/outfile.h: outputs are new 0600 files renamed over their target;
 * an aborted output leaves the target as it was; a device is written, never
 * replaced; a symlink at the target is replaced, its pointee never written.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/base/err.h"
#include "src/base/outfile.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/kv-outfile.XXXXXX");
    return mkdtemp(dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[sizeof(dir) + sizeof(e->d_name) + 2];
    (void)state;
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        unlink(p);
    }
    if (d != NULL)
        closedir(d);
    rmdir(dir);
    return 0;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

static void read_file(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    size_t n;
    assert_non_null(f);
    n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/* Files in dir (besides . and ..). */
static int count_files(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

static void test_replaces_0644_with_0600(void **state)
{
    char path[128], buf[64];
    struct stat before, after;
    kv_outfile o;

    (void)state;
    umask(022);
    snprintf(path, sizeof(path), "%s/profile.json", dir);
    write_file(path, "old\n", 0644);
    assert_int_equal(stat(path, &before), 0);
    assert_int_equal(kv_outfile_open(path, &o), 0);
    fputs("new\n", o.f);
    /* not visible before the commit */
    read_file(path, buf, sizeof(buf));
    assert_string_equal(buf, "old\n");
    assert_int_equal(count_files(), 2);
    assert_int_equal(kv_outfile_commit(&o), 0);
    assert_int_equal(stat(path, &after), 0);
    assert_int_equal(after.st_mode & 0777, 0600);
    assert_true(after.st_ino != before.st_ino);
    read_file(path, buf, sizeof(buf));
    assert_string_equal(buf, "new\n");
    assert_int_equal(count_files(), 1);
}

static void test_new_file_and_abort(void **state)
{
    char path[128], buf[64];
    struct stat st;
    kv_outfile o;

    (void)state;
    umask(0);
    snprintf(path, sizeof(path), "%s/new.trace", dir);
    assert_int_equal(kv_outfile_open(path, &o), 0);
    assert_int_equal(kv_outfile_publish(&o), 0); /* a stream: visible at once */
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    fputs("line\n", o.f);
    assert_int_equal(kv_outfile_commit(&o), 0);
    read_file(path, buf, sizeof(buf));
    assert_string_equal(buf, "line\n");

    /* an aborted document leaves the target and no temporary file */
    assert_int_equal(kv_outfile_open(path, &o), 0);
    fputs("half", o.f);
    kv_outfile_abort(&o);
    read_file(path, buf, sizeof(buf));
    assert_string_equal(buf, "line\n");
    assert_int_equal(count_files(), 1);
    unlink(path);
    umask(022);
}

static void test_device_and_symlink(void **state)
{
    char link[128], target[128], buf[64];
    struct stat st;
    kv_outfile o;

    (void)state;
    assert_int_equal(kv_outfile_open("/dev/null", &o), 0);
    fputs("discarded\n", o.f);
    assert_int_equal(kv_outfile_commit(&o), 0);
    assert_int_equal(stat("/dev/null", &st), 0);
    assert_true(S_ISCHR(st.st_mode));

    /* a symlink planted at the target: replaced, the file it names untouched */
    snprintf(target, sizeof(target), "%s/victim", dir);
    snprintf(link, sizeof(link), "%s/out.svg", dir);
    write_file(target, "victim\n", 0644);
    assert_int_equal(symlink(target, link), 0);
    assert_int_equal(kv_outfile_open(link, &o), 0);
    fputs("svg\n", o.f);
    assert_int_equal(kv_outfile_commit(&o), 0);
    read_file(target, buf, sizeof(buf));
    assert_string_equal(buf, "victim\n");
    assert_int_equal(lstat(link, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    unlink(link);
    unlink(target);
}

static void test_errors(void **state)
{
    kv_outfile o;
    (void)state;
    assert_int_equal(kv_outfile_open("/nonexistent-dir-kv/x.json", &o), KV_ERR_IO);
    assert_null(o.f);
    assert_int_equal(kv_outfile_open(dir, &o), KV_ERR_IO); /* a directory */
    assert_int_equal(kv_outfile_open("", &o), KV_ERR_IO);
    kv_outfile_abort(&o); /* a reset output: no-op */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_replaces_0644_with_0600, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_file_and_abort, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_and_symlink, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
    };
    return cmocka_run_group_tests_name("outfile", tests, NULL, NULL);
}
