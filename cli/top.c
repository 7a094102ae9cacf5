/* top.c - `tripletctl top`: the live figures of GET /v1/stats in a terminal, refreshed in place like top. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "cli.h"
#include "membuf.h"
#include "tr_err.h"

#define TOP_MAX_BODY ((size_t)16 << 20)

static void usage(FILE *f) {
    fprintf(f, "usage: tripletctl top [--url URL] [--api-key KEY] [--interval S] [--count N]\n"
               "\n"
               "Show a running tripletd's live figures (GET /v1/stats, the last minute): requests\n"
               "per second, p50/p99 latency overall and by route, in-flight requests, errors by\n"
               "status, batch sizes and the triplets scored by category. On a terminal the screen\n"
               "is redrawn in place; otherwise one line of key=value pairs per refresh.\n"
               "\n"
               "  --url URL        server base URL (default $TRIPLETD_URL, else http://127.0.0.1:8080)\n"
               "  --api-key KEY    send Authorization: Bearer KEY (default $TRIPLETD_API_KEY)\n"
               "  --interval S     seconds between refreshes (default 2)\n"
               "  --count N        stop after N refreshes (default 0: until interrupted)\n"
               "\n"
               "Exit status: 0, 1 on an HTTP error (the server's message is printed), 2 when the\n"
               "server cannot be reached or on a usage error.\n");
}

static size_t on_data(char *data, size_t size, size_t nmemb, void *userp) {
    size_t n = size * nmemb;
    return membuf_add(userp, data, n, TOP_MAX_BODY) == TR_OK ? n : 0;
}

/* GET url into a parsed JSON document; *status gets the HTTP status (0: no answer, with the reason in why). */
static cJSON *get_json(CURL *c, const char *url, struct curl_slist *hdr, long *status, char *why, size_t cap) {
    membuf b = {0};
    cJSON *j = NULL;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    CURLcode rc = curl_easy_perform(c);
    *status = 0;
    if (rc != CURLE_OK)
        snprintf(why, cap, "%s", curl_easy_strerror(rc));
    else {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
        j = b.p ? cJSON_Parse(b.p) : NULL;
        if (!j) snprintf(why, cap, "the answer is not JSON");
    }
    free(b.p);
    return j;
}

static double num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* "0.123" style milliseconds, "-" for null. */
static const char *ms(const cJSON *o, const char *k, char *b, size_t cap) {
    double v = num(o, k);
    if (isnan(v)) return "-";
    snprintf(b, cap, v < 10 ? "%.3f" : v < 1000 ? "%.1f" : "%.0f", v);
    return b;
}

static void status_list(const cJSON *s, const char *sep, char *out, size_t cap) {
    const cJSON *it;
    size_t n = 0;
    out[0] = 0;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(s, "status")) {
        if (n < cap) n += (size_t)snprintf(out + n, cap - n, "%s%s:%.0f", n ? sep : "", it->string, it->valuedouble);
    }
    if (!n) snprintf(out, cap, "-");
}

/* One line of key=value pairs without spaces in values (not a terminal). */
static void print_line(const cJSON *s) {
    char t[32], a[32], b[32], st[512];
    time_t now = (time_t)num(s, "now");
    const cJSON *tr = cJSON_GetObjectItemCaseSensitive(s, "triplets");
    strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    status_list(s, ",", st, sizeof st);
    printf("%s rps=%g p50_ms=%s p99_ms=%s in_flight=%.0f requests=%.0f errors=%.0f batch_mean=%g easy=%.0f "
           "semi_hard=%.0f hard=%.0f status=%s\n",
           t, num(s, "rps"), ms(s, "p50_ms", a, sizeof a), ms(s, "p99_ms", b, sizeof b), num(s, "in_flight"),
           num(s, "requests"), num(s, "errors"), num(cJSON_GetObjectItemCaseSensitive(s, "batch"), "mean"),
           num(tr, "easy"), num(tr, "semi_hard"), num(tr, "hard"), st);
    fflush(stdout);
}

/* Requests per second of the last 60 seconds as a sparkline of block characters. */
static void sparkline(const cJSON *s, char *out, size_t cap) {
    static const char *const BLK[] = {" ",      "\u2581", "\u2582", "\u2583", "\u2584",
                                      "\u2585", "\u2586", "\u2587", "\u2588"};
    const cJSON *req = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(s, "series"), "requests");
    int n = cJSON_GetArraySize(req), from = n > 60 ? n - 60 : 0;
    double max = 0;
    size_t k = 0;
    for (int i = from; i < n; i++) max = fmax(max, cJSON_GetArrayItem(req, i)->valuedouble);
    out[0] = 0;
    for (int i = from; i < n && k + 4 < cap; i++) {
        double v = cJSON_GetArrayItem(req, i)->valuedouble;
        int lvl = max > 0 ? (int)ceil(v / max * 8) : 0;
        k += (size_t)snprintf(out + k, cap - k, "%s", BLK[lvl < 0 ? 0 : lvl > 8 ? 8 : lvl]);
    }
}

/* The whole screen (a terminal): home, clear, figures, routes. */
static void print_screen(const cJSON *s, const char *url) {
    char t[32], a[32], b[32], st[512], spark[512];
    time_t now = (time_t)num(s, "now");
    const cJSON *tr = cJSON_GetObjectItemCaseSensitive(s, "triplets"), *r;
    strftime(t, sizeof t, "%H:%M:%S", localtime(&now));
    status_list(s, "  ", st, sizeof st);
    sparkline(s, spark, sizeof spark);
    printf("\033[H\033[2J");
    printf("tripletd %s  %s  (last %.0f s; Ctrl-C quits)\n\n", url, t, num(s, "window_seconds"));
    printf("requests/s %-9g p50 %s ms   p99 %s ms   in flight %.0f   requests %.0f   errors %.0f\n", num(s, "rps"),
           ms(s, "p50_ms", a, sizeof a), ms(s, "p99_ms", b, sizeof b), num(s, "in_flight"), num(s, "requests"),
           num(s, "errors"));
    printf("last 60 s  [%s]\n", spark);
    printf("statuses   %s\n", st);
    printf("batches    %.0f requests, %.0f vectors, mean %g\n",
           num(cJSON_GetObjectItemCaseSensitive(s, "batch"), "requests"),
           num(cJSON_GetObjectItemCaseSensitive(s, "batch"), "vectors"),
           num(cJSON_GetObjectItemCaseSensitive(s, "batch"), "mean"));
    printf("triplets   easy %.0f   semi-hard %.0f   hard %.0f\n\n", num(tr, "easy"), num(tr, "semi_hard"),
           num(tr, "hard"));
    printf("%-32s %9s %9s %7s %9s %9s\n", "ROUTE", "REQ", "REQ/S", "ERR", "P50 ms", "P99 ms");
    cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(s, "routes")) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(r, "route");
        printf("%-32.32s %9.0f %9.3g %7.0f %9s %9s\n", cJSON_IsString(name) ? name->valuestring : "?",
               num(r, "requests"), num(r, "rps"), num(r, "errors"), ms(r, "p50_ms", a, sizeof a),
               ms(r, "p99_ms", b, sizeof b));
    }
    fflush(stdout);
}

int cmd_top(int argc, char **argv) {
    const char *url = getenv("TRIPLETD_URL"), *key = getenv("TRIPLETD_API_KEY");
    double interval = 2;
    long count = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        char *end = NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--url") && has)
            url = argv[++i];
        else if (!strcmp(a, "--api-key") && has)
            key = argv[++i];
        else if (!strcmp(a, "--interval") && has) {
            errno = 0;
            interval = strtod(argv[++i], &end);
            if (errno || *end || !(interval >= 0.1 && interval <= 3600)) {
                fprintf(stderr, "tripletctl top: --interval: expected seconds in 0.1..3600, got \"%s\"\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(a, "--count") && has) {
            errno = 0;
            count = strtol(argv[++i], &end, 10);
            if (errno || *end || count < 0) {
                fprintf(stderr, "tripletctl top: --count: expected a whole number >= 0, got \"%s\"\n", argv[i]);
                return 2;
            }
        } else {
            fprintf(stderr, "tripletctl top: unknown option or missing value \"%s\" (see --help)\n", a);
            return 2;
        }
    }
    if (!url || !url[0]) url = "http://127.0.0.1:8080";
    char full[2048], auth[1100];
    size_t ul = strlen(url);
    while (ul > 0 && url[ul - 1] == '/') ul--;
    snprintf(full, sizeof full, "%.*s/v1/stats?window=60", (int)(ul < 1900 ? ul : 1900), url);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) return 2;
    CURL *c = curl_easy_init();
    struct curl_slist *hdr = NULL;
    int rc = 0, tty = isatty(STDOUT_FILENO);
    if (key && key[0]) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %.1000s", key);
        hdr = curl_slist_append(hdr, auth);
    }
    for (long n = 0; c && (count == 0 || n < count); n++) {
        long status;
        char why[256] = "";
        cJSON *s = get_json(c, full, hdr, &status, why, sizeof why);
        if (status == 0) {
            fprintf(stderr, "tripletctl top: %s: %s\n", full, why);
            rc = 2;
        } else if (status != 200) {
            const cJSON *e = cJSON_GetObjectItemCaseSensitive(s, "error"),
                        *m = cJSON_GetObjectItemCaseSensitive(e, "message");
            fprintf(stderr, "tripletctl top: %s: HTTP %ld: %s\n", full, status,
                    cJSON_IsString(m) ? m->valuestring : why);
            rc = 1;
        } else if (tty)
            print_screen(s, url);
        else
            print_line(s);
        cJSON_Delete(s);
        if (rc) break;
        if (count == 0 || n + 1 < count) {
            struct timespec ts = {(time_t)interval, (long)((interval - floor(interval)) * 1e9)};
            nanosleep(&ts, NULL);
        }
    }
    curl_slist_free_all(hdr);
    if (c) curl_easy_cleanup(c);
    curl_global_cleanup();
    return c ? rc : 2;
}
