/* hub_progress.c — the download bar drawn on stderr when it is a terminal:
 *
 *   model.safetensors   42% |########            | 0.7/1.6 GB  45.3 MB/s  ETA 0:21
 *
 * One line per file, redrawn in place with \r; the speed counts only bytes
 * received since the file started (a resumed prefix does not inflate it).
 * The caller (hub_fetch) already throttles updates to ~10 a second. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "formats/hub_internal.h"

struct hub_bar {
    char file[256];
    bool active;    /* a line is on screen, not yet ended by '\n' */
    bool ended;     /* this file's line was drawn complete */
    double t0;      /* when this file's first update came */
    uint64_t done0; /* bytes it had then (resumed) */
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void hub_format_bytes(double b, char *buf, size_t len) {
    static const char *const units[] = {"B", "kB", "MB", "GB", "TB"};
    int u = 0;
    while (b >= 1000 && u < 4)
        b /= 1000, u++;
    if (u == 0)
        snprintf(buf, len, "%.0f %s", b, units[u]);
    else
        snprintf(buf, len, "%.1f %s", b, units[u]);
}

static void format_duration(double s, char *buf, size_t len) {
    if (s < 0 || s > 359999) {
        snprintf(buf, len, "--:--");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, len, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, len, "%ld:%02ld", t / 60, t % 60);
}

static int term_width(void) {
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40) return ws.ws_col;
    return 80;
}

hub_bar *hub_bar_new(void) {
    return calloc(1, sizeof(hub_bar));
}

void hub_bar_free(hub_bar *b) {
    if (b && b->active) fputc('\n', stderr);
    free(b);
}

void hub_bar_update(void *bar, const char *file, uint64_t done, uint64_t total) {
    hub_bar *b = bar;
    if (total == 0 && done == 0) return; /* an empty file: nothing to show */
    bool same = strncmp(b->file, file, sizeof b->file - 1) == 0;
    if (same && b->ended && total > 0 && done >= total) return; /* already shown whole */
    double t = now_s();
    if (!same || !b->active) {
        if (b->active) fputc('\n', stderr);
        snprintf(b->file, sizeof b->file, "%s", file);
        b->t0 = t;
        b->done0 = done;
        b->active = true;
        b->ended = false;
    }
    if (done < b->done0) { /* the file restarted from zero */
        b->t0 = t;
        b->done0 = done;
    }
    double el = t - b->t0;
    double rate = el > 0.05 ? (double)(done - b->done0) / el : 0;
    char dbuf[32], tbuf[32], rbuf[32], ebuf[32];
    hub_format_bytes((double)done, dbuf, sizeof dbuf);
    hub_format_bytes((double)total, tbuf, sizeof tbuf);
    hub_format_bytes(rate, rbuf, sizeof rbuf);
    bool finished = total > 0 && done >= total;
    if (finished)
        format_duration(el, ebuf, sizeof ebuf);
    else if (total > 0 && rate > 0)
        format_duration((double)(total - done) / rate, ebuf, sizeof ebuf);
    else
        snprintf(ebuf, sizeof ebuf, "--:--");

    char tail[192];
    snprintf(tail, sizeof tail, " %s/%s  %s/s  %s %s", dbuf, total ? tbuf : "?",
             rate > 0 ? rbuf : "--", finished ? "in" : "ETA", ebuf);
    /* Fixed columns, so the bars of successive files line up. */
    int width = term_width();
    int name_w = width / 3 < 16 ? 16 : width / 3 > 40 ? 40 : width / 3;
    int bar_w = width - name_w - 6 - 2 - 44;
    if (bar_w > 30) bar_w = 30;
    int pct = total ? (int)((double)done * 100 / (double)total) : 0;
    if (pct > 100) pct = 100;

    /* A long name keeps its end (the shard number), not its start. */
    char name[sizeof b->file + 4];
    size_t len = strlen(b->file);
    if (len > (size_t)name_w)
        snprintf(name, sizeof name, "...%s", b->file + len - (size_t)name_w + 3);
    else
        snprintf(name, sizeof name, "%s", b->file);

    char line[512];
    int o = snprintf(line, sizeof line, "\r%-*s %3d%% ", name_w, name, pct);
    if (bar_w >= 5) {
        int fill = total ? (int)((double)bar_w * (double)done / (double)total) : 0;
        if (fill > bar_w) fill = bar_w;
        line[o++] = '|';
        for (int i = 0; i < bar_w; i++)
            line[o++] = i < fill ? '#' : ' ';
        line[o++] = '|';
        line[o] = 0;
    }
    fprintf(stderr, "%s%s\033[K", line, tail);
    if (finished) {
        fputc('\n', stderr);
        b->active = false;
        b->ended = true;
    }
    fflush(stderr);
}
