/*
 * test_runtime_env.c - cmocka units of the runtime's configuration and exec
 * handling: MEMSCOPE_BUDGET sizes, LD_PRELOAD clean-up, reading the
 * environment. Built from the runtime's own sources (env.c, process.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "runtime.h"

static void test_runtime_env_sizes(void **state)
{
    uint64_t v = 0;
    (void)state;
    assert_int_equal(ms_parse_size("4096", &v), 0);
    assert_int_equal(v, 4096);
    assert_int_equal(ms_parse_size("64K", &v), 0);
    assert_int_equal(v, 64 * 1024);
    assert_int_equal(ms_parse_size("256M", &v), 0);
    assert_int_equal(v, 256ull << 20);
    assert_int_equal(ms_parse_size("2g", &v), 0);
    assert_int_equal(v, 2ull << 30);
    assert_int_equal(ms_parse_size("16MiB", &v), 0);
    assert_int_equal(v, 16ull << 20);
    assert_int_equal(ms_parse_size("0", &v), 0);
    assert_int_equal(v, 0);
}

static void test_runtime_env_bad_sizes(void **state)
{
    uint64_t v = 77;
    (void)state;
    assert_int_equal(ms_parse_size("", &v), -1);
    assert_int_equal(ms_parse_size("M", &v), -1);
    assert_int_equal(ms_parse_size("-1", &v), -1);
    assert_int_equal(ms_parse_size("12Q", &v), -1);
    assert_int_equal(ms_parse_size("1T", &v), -1);
    assert_int_equal(ms_parse_size("99999999999999999999", &v), -1);
    assert_int_equal(ms_parse_size("17179869184G", &v), -1); /* overflows 64 bits */
    assert_int_equal(ms_parse_size(NULL, &v), -1);
    assert_int_equal(v, 77);
}

static void strip(const char *in, const char *want)
{
    char buf[256];
    strcpy(buf, in);
    ms_strip_preload(buf);
    assert_string_equal(buf, want);
}

static void test_runtime_env_strip_preload(void **state)
{
    (void)state;
    strip("/x/build/lib/libmemscope.so", "");
    strip("libmemscope.so", "");
    strip("/a/liba.so:/x/libmemscope.so:/b/libb.so", "/a/liba.so:/b/libb.so");
    strip("/x/libmemscope.so /b/libb.so", "/b/libb.so");
    strip("/a/liba.so", "/a/liba.so");
    strip("/a/libmemscope-engine.so", "/a/libmemscope-engine.so");
    strip("/a/notlibmemscope.so", "/a/notlibmemscope.so");
    strip("::/x/libmemscope.so.0::", "");
    strip("", "");
}

static void test_runtime_env_read(void **state)
{
    (void)state;
    setenv("MEMSCOPE_BUDGET", "1M", 1);
    setenv("MEMSCOPE_EXIT_IMAGE", "/tmp/some.image", 1);
    setenv("MEMSCOPE_EXIT_IMAGE_CHILDREN", "1", 1);
    setenv("MEMSCOPE_FOLLOW_EXEC", "yes", 1); /* only "1" turns it on */
    ms_env_read();
    assert_int_equal(ms_config.budget, 1 << 20);
    assert_string_equal(ms_config.exit_image, "/tmp/some.image");
    assert_int_equal(ms_config.exit_image_children, 1);
    assert_int_equal(ms_config.follow_exec, 0);
    setenv("MEMSCOPE_BUDGET", "lots", 1); /* ignored: the value stays */
    ms_env_read();
    assert_int_equal(ms_config.budget, 1 << 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runtime_env_sizes),
        cmocka_unit_test(test_runtime_env_bad_sizes),
        cmocka_unit_test(test_runtime_env_strip_preload),
        cmocka_unit_test(test_runtime_env_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
