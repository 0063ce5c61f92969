/*
 * report.c - reads a store through the engine and prints its snapshot.
 *
 * The engine does all parsing, replay and rendering; this file only wires a
 * memory source to it, writes the results where the user asked, and turns
 * engine errors into one-sentence messages.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "core.h"
#include "memscope/trace.h"
#include "report.h"

int ms_report_open_json(struct ms_report_options *options, const char *path)
{
    if (strcmp(path, "-") == 0) {
        options->json_file = stdout;
        options->json_name = "standard output";
        options->json_only = 1;
        return 0;
    }
    /* 'e': close-on-exec, so the recorded program does not inherit it. */
    options->json_file = fopen(path, "we");
    if (options->json_file == NULL) {
        int rc = -errno;
        ms_error("cannot write %s: %s", path, strerror(errno));
        return rc;
    }
    options->json_name = path;
    return 0;
}

int ms_report_close_json(struct ms_report_options *options)
{
    FILE *f = options->json_file;

    options->json_file = NULL;
    if (f == NULL || f == stdout)
        return 0;
    if (fclose(f) != 0) {
        int rc = -errno;
        ms_error("cannot write %s: %s", options->json_name, strerror(errno));
        return rc;
    }
    return 0;
}

/* Writes len bytes of text to out (named name in messages). Returns 0 or -errno (message printed). */
static int write_text(FILE *out, const char *name, const char *text, size_t len)
{
    int rc = 0;

    errno = 0;
    if (fwrite(text, 1, len, out) != len || fflush(out) != 0)
        rc = -(errno != 0 ? errno : EIO);
    if (rc < 0)
        ms_error("cannot write %s: %s", name, strerror(-rc));
    return rc;
}

int ms_report_history(const struct memscope_history *history, const struct ms_report_options *options)
{
    struct memscope_snapshot *snapshot = NULL;
    struct memscope_history_info info;
    char *text = NULL;
    size_t len = 0;
    int rc;

    rc = memscope_history_snapshot(history, NULL, &snapshot);
    if (rc < 0) {
        ms_error("cannot rebuild the snapshot: %s", strerror(-rc));
        goto out;
    }
    if (options->json_file != NULL) {
        rc = memscope_snapshot_render_json(snapshot, &options->render, &text, &len);
        if (rc < 0) {
            ms_error("cannot render the snapshot as JSON: %s", strerror(-rc));
            goto out;
        }
        rc = write_text(options->json_file, options->json_name, text, len);
        memscope_text_free(text);
        text = NULL;
        if (rc < 0)
            goto out;
    }
    if (!options->json_only) {
        rc = memscope_snapshot_render_text(snapshot, &options->render, &text, &len);
        if (rc < 0) {
            ms_error("cannot render the snapshot: %s", strerror(-rc));
            goto out;
        }
        if (options->title != NULL)
            printf("%s\n", options->title);
        rc = write_text(stdout, "standard output", text, len);
        if (rc < 0)
            goto out;
    }
    /* The figures are only a lower bound when the store could not keep up; say so where it is seen. */
    if (memscope_history_info(history, &info) == 0 && info.dropped_events > 0)
        ms_error("warning: %llu events were not recorded (the store's budget of %llu bytes was reached); "
                 "the figures are a lower bound. Raise the budget with --budget.",
                 (unsigned long long)info.dropped_events, (unsigned long long)info.budget_bytes);
    rc = 0;
out:
    memscope_text_free(text);
    memscope_snapshot_free(snapshot);
    return rc;
}

/*
 * A symbolizer over the mappings the process wrote beside its exit image
 * (FILE.modules, exit_image.c), or NULL: none, or unreadable (sites then
 * show addresses; the figures do not depend on it).
 */
static struct ms_symbolizer *image_symbolizer(const char *image)
{
    struct memscope_modules *set = NULL;
    struct ms_symbolizer *sym = NULL;
    char path[4096];
    uint8_t *buf = NULL;
    struct stat st;
    int fd;

    if ((size_t)snprintf(path, sizeof(path), "%s.modules", image) >= sizeof(path))
        return NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    if (fstat(fd, &st) == 0 && st.st_size > 0 && st.st_size <= (64 << 20) && (buf = malloc((size_t)st.st_size)) &&
        read(fd, buf, (size_t)st.st_size) == st.st_size && memscope_modules_add(&set, buf, (size_t)st.st_size, NULL) == 0)
        ms_symbolizer_for_modules("the exit image", set, &sym);
    close(fd);
    free(buf);
    memscope_modules_free(set); /* the symbolizer keeps its own copy */
    return sym;
}

int ms_report_image(const char *path, const char *what, const struct ms_report_options *options)
{
    struct memscope_image *image = NULL;
    struct memscope_history *history = NULL;
    struct memscope_source source;
    struct memscope_error err;
    uint64_t root = 0;
    int rc;

    memset(&err, 0, sizeof(err));
    rc = memscope_image_open(path, &image, &source, &root, &err);
    if (rc < 0) {
        if (rc == -EBADMSG)
            ms_error("%s is damaged: %s", what, err.message[0] ? err.message : "not a memscope image");
        else if (rc == -EPROTO)
            ms_error("%s has a format this memscope does not know: %s", what,
                     err.message[0] ? err.message : strerror(-rc));
        else
            ms_error("cannot open %s: %s", what, err.message[0] ? err.message : strerror(-rc));
        goto out;
    }
    memset(&err, 0, sizeof(err));
    rc = memscope_history_open(&source, root, &history, &err);
    if (rc < 0) {
        const char *why = err.message[0] ? err.message : strerror(-rc);
        if (rc == -EBADMSG || rc == -EFAULT || rc == -ENOENT)
            ms_error("%s holds a damaged store: %s", what, why);
        else if (rc == -EPROTO)
            ms_error("%s holds a store this memscope cannot read: %s", what, why);
        else
            ms_error("cannot read the store in %s: %s", what, why);
        goto out;
    }
    {
        struct ms_report_options named = *options;
        struct ms_symbolizer *sym = image_symbolizer(path);
        if (sym) {
            ms_symbolizer_set_alloc_fns(sym, options->alloc_fns);
            named.render.symbolizer = ms_symbolizer_engine(sym);
        }
        rc = ms_report_history(history, &named);
        if (rc == 0 && sym && ms_symbolizer_warning(sym) && (named.render.group_by == MEMSCOPE_GROUP_SITE || named.render.group_by == MEMSCOPE_GROUP_STACK))
            ms_error("warning: %s; frames in it show module+offset", ms_symbolizer_warning(sym));
        ms_symbolizer_free(sym);
    }
out:
    memscope_history_close(history);
    memscope_image_close(image);
    return rc;
}
