/*
 * test_errors.c - memscope_strerror: a sentence for every code any memscope
 * call returns, never NULL, for negative, positive and unknown codes.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "memscope/memscope.h"

static void test_errors_known_codes(void **state)
{
    static const int codes[] = {EINVAL, ENOMEM, ENOENT, EPROTO, EBADMSG, EFAULT, ERANGE, ENODATA, ENOSPC};
    size_t i;

    for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        const char *s = memscope_strerror(-codes[i]);
        assert_non_null(s);
        assert_true(strlen(s) > 5);
        assert_string_not_equal(s, "unknown error");
        assert_string_equal(s, memscope_strerror(codes[i])); /* either sign */
    }
    assert_non_null(strstr(memscope_strerror(-EPROTO), "version"));
    assert_non_null(strstr(memscope_strerror(-EBADMSG), "damaged"));
    assert_non_null(strstr(memscope_strerror(-ERANGE), "past the end"));
}

static void test_errors_unknown_code(void **state)
{
    assert_string_equal(memscope_strerror(0), "success");
    assert_string_equal(memscope_strerror(-123456), "unknown error");
    assert_non_null(memscope_strerror(INT32_MIN));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors_known_codes),
        cmocka_unit_test(test_errors_unknown_code),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
