/* train_history.c - `tripletctl train`'s per-epoch history as CSV and as an SVG learning curve. */
#include "train_history.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic_file.h"

int history_add(history *h, const epoch_row *r) {
    if (h->n == h->cap) {
        size_t cap = h->cap ? 2 * h->cap : 16;
        epoch_row *p = realloc(h->rows, cap * sizeof *p);
        if (p == NULL) return -1;
        h->rows = p;
        h->cap = cap;
    }
    h->rows[h->n++] = *r;
    return 0;
}

#define CSV_HEADER "epoch,loss,active,easy,semi_hard,hard,mean_d_ap,mean_d_an,collapsed,recall_at_1,seconds"

static void row_csv(const epoch_row *r, char *buf, size_t len) {
    snprintf(buf, len, "%d,%.6f,%.4f,%.4f,%.4f,%.4f,%.5f,%.5f,%d,%.4f,%.2f", r->epoch + 1, r->loss, r->active,
             r->share[LOSS_CAT_EASY], r->share[LOSS_CAT_SEMI_HARD], r->share[LOSS_CAT_HARD], r->d_ap, r->d_an,
             r->collapsed, r->recall1, r->seconds);
}

/* The history as CSV text (malloc'd), also the checkpoint note. */
char *history_csv(const history *h) {
    size_t cap = 128 + h->n * 160, o = 0;
    char *s = malloc(cap);
    if (s == NULL) return NULL;
    o += (size_t)snprintf(s, cap, "%s\n", CSV_HEADER);
    for (size_t i = 0; i < h->n && o < cap; i++) {
        char line[256];
        row_csv(&h->rows[i], line, sizeof line);
        o += (size_t)snprintf(s + o, cap - o, "%s\n", line);
    }
    return s;
}

int history_parse(history *h, const char *s) {
    const char *line = strchr(s, '\n');
    if (*s == '\0') return 0;
    if (line == NULL || strncmp(s, CSV_HEADER, strlen(CSV_HEADER)) != 0) return -1;
    for (line++; *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : line + strlen(line)) {
        epoch_row r;
        memset(&r, 0, sizeof r);
        if (sscanf(line, "%d,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%d,%lf,%lf", &r.epoch, &r.loss, &r.active,
                   &r.share[LOSS_CAT_EASY], &r.share[LOSS_CAT_SEMI_HARD], &r.share[LOSS_CAT_HARD], &r.d_ap, &r.d_an,
                   &r.collapsed, &r.recall1, &r.seconds) != 11)
            return -1;
        r.epoch--;
        if (history_add(h, &r)) return -1;
    }
    return 0;
}

/* Open path for writing through atomic_file.h; NULL (and a message) on failure. */
static FILE *hist_open(af_file *a, const char *path) {
    tr_err err;
    if (af_open(a, path, &err) == TR_OK) return a->fp;
    fprintf(stderr, "tripletctl train: %s\n", err.msg);
    return NULL;
}

/* Rename the finished file into place; 0 or -1 (and a message). */
static int hist_commit(af_file *a) {
    tr_err err;
    if (af_commit(a, &err) == TR_OK) return 0;
    fprintf(stderr, "tripletctl train: %s\n", err.msg);
    return -1;
}

int history_write_text(const char *path, const char *text) {
    af_file a;
    FILE *f = hist_open(&a, path);
    if (f == NULL) return -1;
    fputs(text, f);
    return hist_commit(&a);
}

static void svg_escape(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '<')
            fputs("&lt;", f);
        else if (*s == '>')
            fputs("&gt;", f);
        else if (*s == '&')
            fputs("&amp;", f);
        else
            fputc(*s, f);
    }
}

/* Learning curve: loss (left axis) and Recall@1 (right axis) per epoch. */
int history_write_svg(const char *path, const history *h, const char *title) {
    af_file a;
    FILE *f = hist_open(&a, path);
    if (f == NULL) return -1;
    const double W = 720, H = 420, L = 70, R = 70, T = 50, B = 60, pw = W - L - R, ph = H - T - B;
    double lmax = 0, rmin = 1, rmax = 0;
    for (size_t i = 0; i < h->n; i++) {
        if (h->rows[i].loss > lmax) lmax = h->rows[i].loss;
        if (h->rows[i].recall1 < rmin) rmin = h->rows[i].recall1;
        if (h->rows[i].recall1 > rmax) rmax = h->rows[i].recall1;
    }
    lmax = lmax > 0 ? lmax * 1.1 : 1;
    rmin = floor(rmin * 20) / 20;
    rmax = ceil(rmax * 20) / 20;
    if (rmax <= rmin) rmax = rmin + 0.05;
    int ne = h->n ? h->rows[h->n - 1].epoch + 1 : 1;
    double xs = ne > 1 ? pw / (ne - 1) : 0;
#define XP(e) (L + (ne > 1 ? (e)*xs : pw / 2))
    fprintf(f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
            "font-family=\"sans-serif\" font-size=\"12\">\n",
            W, H, W, H);
    fprintf(f,
            "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n<text x=\"%.0f\" y=\"28\" text-anchor=\"middle\" "
            "font-size=\"15\">",
            W / 2);
    svg_escape(f, title);
    fprintf(f, "</text>\n<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" stroke=\"#888\"/>\n",
            L, T, pw, ph);
    for (int k = 0; k <= 5; k++) {
        double y = T + ph - k * ph / 5;
        fprintf(f, "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>\n", L, L + pw, y, y);
        fprintf(f, "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\" fill=\"#c0392b\">%.3f</text>\n", L - 6, y + 4,
                lmax * k / 5);
        fprintf(f, "<text x=\"%.0f\" y=\"%.1f\" fill=\"#2471a3\">%.3f</text>\n", L + pw + 6, y + 4,
                rmin + (rmax - rmin) * k / 5);
    }
    for (int e = 0; e < ne; e++)
        if (ne <= 20 || e % ((ne + 19) / 20) == 0)
            fprintf(f, "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">%d</text>\n", XP(e), T + ph + 18, e + 1);
    fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">epoch</text>\n", L + pw / 2, H - 18);
    fprintf(f,
            "<text transform=\"translate(18 %.0f) rotate(-90)\" text-anchor=\"middle\" fill=\"#c0392b\">training loss "
            "(epoch mean)</text>\n",
            T + ph / 2);
    fprintf(f,
            "<text transform=\"translate(%.0f %.0f) rotate(90)\" text-anchor=\"middle\" fill=\"#2471a3\">Recall@1 "
            "(held-out subset)</text>\n",
            W - 14, T + ph / 2);
    for (int s = 0; s < 2; s++) {
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", s ? "#2471a3" : "#c0392b");
        for (size_t i = 0; i < h->n; i++) {
            double v = s ? (h->rows[i].recall1 - rmin) / (rmax - rmin) : h->rows[i].loss / lmax;
            fprintf(f, "%.1f,%.1f ", XP(h->rows[i].epoch), T + ph - v * ph);
        }
        fprintf(f, "\"/>\n");
        for (size_t i = 0; i < h->n; i++) {
            double v = s ? (h->rows[i].recall1 - rmin) / (rmax - rmin) : h->rows[i].loss / lmax;
            fprintf(f,
                    "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"><title>epoch %d: %s %.4f</title></circle>\n",
                    XP(h->rows[i].epoch), T + ph - v * ph, s ? "#2471a3" : "#c0392b", h->rows[i].epoch + 1,
                    s ? "Recall@1" : "loss", s ? h->rows[i].recall1 : h->rows[i].loss);
        }
    }
    fprintf(f,
            "<g transform=\"translate(%.0f %.0f)\"><line x1=\"0\" x2=\"20\" y1=\"0\" y2=\"0\" stroke=\"#c0392b\" "
            "stroke-width=\"2\"/>"
            "<text x=\"26\" y=\"4\">loss</text><line x1=\"80\" x2=\"100\" y1=\"0\" y2=\"0\" stroke=\"#2471a3\" "
            "stroke-width=\"2\"/>"
            "<text x=\"106\" y=\"4\">Recall@1</text></g>\n</svg>\n",
            L + 10, T + 14);
#undef XP
    return hist_commit(&a);
}
