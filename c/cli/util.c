/*
 * util.c - error messages and option value parsing shared by the
 * subcommands of the memscope command.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cli.h"

void ms_error(const char *fmt, ...)
{
    va_list ap;

    fputs("memscope: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int ms_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;

    fputs("memscope: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (cmd != NULL)
        fprintf(stderr, "\nTry 'memscope %s --help'.\n", cmd);
    else
        fputs("\nTry 'memscope --help'.\n", stderr);
    return MS_EXIT_USAGE;
}

/* Parses the leading digits of text into *out; *end points past them. */
static int parse_digits(const char *text, uint64_t *out, const char **end)
{
    uint64_t value = 0;
    const char *p = text;

    if (!isdigit((unsigned char)*p))
        return -EINVAL;
    for (; isdigit((unsigned char)*p); p++) {
        unsigned digit = (unsigned)(*p - '0');
        if (value > (UINT64_MAX - digit) / 10)
            return -ERANGE;
        value = value * 10 + digit;
    }
    *out = value;
    *end = p;
    return 0;
}

int ms_parse_uint(const char *text, uint64_t *out)
{
    const char *end = NULL;
    uint64_t value = 0;
    int rc;

    if (text == NULL)
        return -EINVAL;
    rc = parse_digits(text, &value, &end);
    if (rc < 0)
        return rc;
    if (*end != '\0')
        return -EINVAL;
    *out = value;
    return 0;
}

int ms_parse_size(const char *text, uint64_t *out)
{
    static const char units[] = "KMGT";
    const char *end = NULL;
    const char *unit = NULL;
    uint64_t value = 0;
    unsigned shift = 0;
    int rc;

    if (text == NULL)
        return -EINVAL;
    rc = parse_digits(text, &value, &end);
    if (rc < 0)
        return rc;
    if (strcasecmp(end, "B") == 0) {
        shift = 0;
    } else if (*end != '\0') {
        unit = strchr(units, toupper((unsigned char)*end));
        if (unit == NULL)
            return -EINVAL;
        shift = 10u * (unsigned)(unit - units + 1);
        end++;
        if (strcasecmp(end, "") != 0 && strcasecmp(end, "B") != 0 && strcasecmp(end, "iB") != 0)
            return -EINVAL;
    }
    if (shift != 0 && value > (UINT64_MAX >> shift))
        return -ERANGE;
    *out = value << shift;
    return 0;
}
