/*
 * fuzz_regress.c - replays files through a fuzz target without libFuzzer:
 * `inspect_fuzz_regress PATH...` (fuzz_inspect.c), `trace_fuzz_regress
 * PATH...` (fuzz_trace.c): files, or directories of files, each run through
 * LLVMFuzzerTestOneInput, so the corpus and the crashes the fuzzer found
 * stay regression tests in every build (and under ASan+UBSan in the
 * sanitizer build). Exit 0 when every input ran, 1 when one could not be read.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static const char *me = "fuzz_regress"; /* the program's name, for messages */

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    long n;

    if (!f || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fprintf(stderr, "%s: cannot read %s\n", me, path);
        if (f)
            fclose(f);
        return 1;
    }
    buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "%s: cannot read %s\n", me, path);
        free(buf);
        fclose(f);
        return 1;
    }
    fclose(f);
    LLVMFuzzerTestOneInput(buf, (size_t)n);
    free(buf);
    return 0;
}

int main(int argc, char **argv)
{
    int failed = 0, runs = 0, i;

    if (argc > 0 && argv[0][0]) {
        const char *slash = strrchr(argv[0], '/');
        me = slash ? slash + 1 : argv[0];
    }

    for (i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            DIR *d = opendir(argv[i]);
            struct dirent *e;
            while (d && (e = readdir(d)) != NULL) {
                char path[4096];
                if (e->d_name[0] == '.')
                    continue;
                snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
                failed |= run_file(path);
                runs++;
            }
            if (d)
                closedir(d);
        } else {
            failed |= run_file(argv[i]);
            runs++;
        }
    }
    printf("%s: %d inputs\n", me, runs);
    return failed || runs == 0;
}
