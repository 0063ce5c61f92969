/*
 * fuzz_regress.c - replays files through the fuzz target without libFuzzer:
 * `inspect_fuzz_regress PATH...` (files, or directories of files) runs
 * LLVMFuzzerTestOneInput on each, so the corpus and the crashes the fuzzer
 * found stay regression tests in every build (and under ASan+UBSan in the
 * sanitizer build). Exit 0 when every input ran, 1 when one could not be read.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    long n;

    if (!f || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fprintf(stderr, "inspect_fuzz_regress: cannot read %s\n", path);
        if (f)
            fclose(f);
        return 1;
    }
    buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "inspect_fuzz_regress: cannot read %s\n", path);
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
    printf("inspect_fuzz_regress: %d inputs\n", runs);
    return failed || runs == 0;
}
