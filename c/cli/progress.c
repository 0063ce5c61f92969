/*
 * progress.c - a progress bar on stderr for long reads (a big core), drawn
 * only when stderr is a terminal, at most ten times a second, and wiped
 * when done, so pipelines never see it. It first shows after 100 ms (a
 * short read shows nothing); MEMSCOPE_PROGRESS_DELAY_MS changes that delay
 * (the tests set 0).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core.h"

struct ms_progress {
    const char *what;   /* "reading core" */
    uint64_t total;     /* bytes expected (the bar is capped at 100%) */
    uint64_t last_ns;   /* when it was last drawn */
    uint64_t delay_ns;  /* between two drawings (and before the first) */
    int drawn;          /* something is on the line */
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct ms_progress *ms_progress_start(const char *what, uint64_t total)
{
    struct ms_progress *p;

    if (!isatty(STDERR_FILENO) || total == 0)
        return NULL;
    p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->what = what;
    p->total = total;
    p->delay_ns = 100000000u;
    {
        const char *env = getenv("MEMSCOPE_PROGRESS_DELAY_MS");
        char *end = NULL;
        unsigned long ms = env ? strtoul(env, &end, 10) : 0;
        if (env && *env && end && *end == '\0' && ms <= 60000)
            p->delay_ns = (uint64_t)ms * 1000000u;
    }
    p->last_ns = now_ns();
    return p;
}

void ms_progress_update(struct ms_progress *p, uint64_t done)
{
    char bar[31];
    unsigned pct, i, fill;
    uint64_t t;

    if (!p)
        return;
    t = now_ns();
    if (t - p->last_ns < p->delay_ns)
        return;
    p->last_ns = t;
    pct = done >= p->total ? 100u : (unsigned)(done * 100 / p->total);
    fill = pct * 30 / 100;
    for (i = 0; i < 30; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[30] = '\0';
    fprintf(stderr, "\r%s [%s] %3u%% %llu MiB", p->what, bar, pct, (unsigned long long)(done >> 20));
    fflush(stderr);
    p->drawn = 1;
}

void ms_progress_end(struct ms_progress *p)
{
    if (!p)
        return;
    if (p->drawn)
        fputs("\r\033[K", stderr);
    free(p);
}
