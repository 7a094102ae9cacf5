/* client.c - `tripletctl client ROUTE [JSON|@file|-]`: call a running tripletd and print its answer. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "cli.h"
#include "membuf.h"
#include "tr_err.h"

#define CLIENT_MAX_BODY ((size_t)1 << 30) /* bytes of a request or a response */

/* Exit statuses (cli.h: 0 ok, 1 failure, 2 usage); a connection failure is 2 as well. */
enum { EX_OK = 0, EX_HTTP = 1, EX_USAGE = 2, EX_CONNECT = 2 };

/* Routes read with GET; everything else is a POST of a JSON body. */
static const char *const get_routes[] = {"/healthz",  "/readyz",     "/metrics",  "/openapi.json",
                                         "/v1/model", "/v1/gallery", "/v1/stats", "/v1/gallery/projection"};

static void usage(FILE *f) {
    fprintf(f, "usage: tripletctl client [--url URL] [--api-key KEY] [--timeout S] [--method GET|POST] [--raw]\n"
               "                         ROUTE [JSON | @FILE | -]\n"
               "\n"
               "Call a running tripletd. ROUTE is a path (or a whole URL): healthz, readyz, metrics,\n"
               "v1/model, v1/gallery are read with GET; v1/embed, v1/distance, v1/loss/triplet,\n"
               "v1/mine, v1/search, v1/admin/reload ... are POSTed with the JSON body (inline,\n"
               "@FILE, or - for stdin; {} when none is given). The answer is printed on stdout,\n"
               "JSON indented.\n"
               "\n"
               "  --url URL        server base URL (default $TRIPLETD_URL, else http://127.0.0.1:8080)\n"
               "  --api-key KEY    send Authorization: Bearer KEY (default $TRIPLETD_API_KEY)\n"
               "  --timeout S      give up after S seconds (default 30; 0 = no limit)\n"
               "  --method M       GET or POST instead of the route's usual method\n"
               "  --raw            print the body exactly as received\n"
               "\n"
               "Exit status: 0 on a 2xx answer, 1 on an HTTP error (its JSON error is printed),\n"
               "2 when the server cannot be reached (or on a usage error).\n");
}

static size_t on_data(char *data, size_t size, size_t nmemb, void *userp) {
    size_t n = size * nmemb;
    return membuf_add(userp, data, n, CLIENT_MAX_BODY) == TR_OK ? n : 0; /* 0 makes curl stop with CURLE_WRITE_ERROR */
}

/* The body argument: inline JSON, @FILE or - (stdin) into b. */
static int read_body(const char *arg, membuf *b) {
    FILE *fp = NULL;
    const char *name = NULL;
    char chunk[65536];
    size_t got;
    if (strcmp(arg, "-") == 0) {
        fp = stdin;
        name = "stdin";
    } else if (arg[0] == '@') {
        name = arg + 1;
        if ((fp = fopen(name, "rb")) == NULL) {
            fprintf(stderr, "tripletctl client: %s: %s\n", name, strerror(errno));
            return -1;
        }
    } else {
        if (membuf_add(b, arg, strlen(arg), CLIENT_MAX_BODY) != TR_OK) goto toolarge;
        return 0;
    }
    while ((got = fread(chunk, 1, sizeof chunk, fp)) > 0)
        if (membuf_add(b, chunk, got, CLIENT_MAX_BODY) != TR_OK) goto toolarge;
    if (ferror(fp)) {
        fprintf(stderr, "tripletctl client: %s: read error\n", name);
        goto fail;
    }
    if (fp != stdin) fclose(fp);
    return 0;
toolarge:
    fprintf(stderr, "tripletctl client: %s: body over %zu bytes or out of memory\n", name ? name : "argument",
            CLIENT_MAX_BODY);
fail:
    if (fp && fp != stdin) fclose(fp);
    return -1;
}

/* Print the answer: JSON indented unless raw, anything else as it came. */
static void print_body(const membuf *b, int raw) {
    cJSON *j = raw || b->n == 0 ? NULL : cJSON_ParseWithLength(b->p, b->n);
    char *s = j ? cJSON_Print(j) : NULL;
    if (s) {
        fputs(s, stdout);
        fputc('\n', stdout);
    } else if (b->n) {
        fwrite(b->p, 1, b->n, stdout);
        if (b->p[b->n - 1] != '\n') fputc('\n', stdout);
    }
    free(s);
    cJSON_Delete(j);
}

/* Add one header line; on failure the list built so far is kept in *l and -1 returned. */
static int add_header(struct curl_slist **l, const char *line) {
    struct curl_slist *n = curl_slist_append(*l, line);
    if (n == NULL) return -1;
    *l = n;
    return 0;
}

/* Is the path (ignoring any query string) one of the routes read with GET? */
static int is_get_route(const char *path) {
    size_t n = strcspn(path, "?#");
    for (size_t i = 0; i < sizeof get_routes / sizeof get_routes[0]; i++)
        if (strlen(get_routes[i]) == n && strncmp(path, get_routes[i], n) == 0) return 1;
    return 0;
}

typedef struct {
    const char *url, *key, *method, *route, *body;
    long timeout;
    int raw;
} client_opts;

/* Options and arguments into o (defaults set by the caller); 0, 1 after
 * --help, or -1 after printing a usage error. */
static int parse_opts(int argc, char **argv, client_opts *o) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_val = i + 1 < argc;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 1;
        } else if (strcmp(a, "--url") == 0 && has_val) {
            o->url = argv[++i];
        } else if (strcmp(a, "--api-key") == 0 && has_val) {
            o->key = argv[++i];
        } else if (strcmp(a, "--method") == 0 && has_val) {
            o->method = argv[++i];
            if (strcmp(o->method, "GET") != 0 && strcmp(o->method, "POST") != 0) {
                fprintf(stderr, "tripletctl client: --method: \"%s\" is not GET or POST\n", o->method);
                return -1;
            }
        } else if (strcmp(a, "--timeout") == 0 && has_val) {
            char *end;
            errno = 0;
            o->timeout = strtol(argv[++i], &end, 10);
            if (end == argv[i] || *end != '\0' || errno || o->timeout < 0 || o->timeout > 86400) {
                fprintf(stderr, "tripletctl client: --timeout: \"%s\" is not a number of seconds in 0..86400\n",
                        argv[i]);
                return -1;
            }
        } else if (strcmp(a, "--raw") == 0) {
            o->raw = 1;
        } else if (a[0] == '-' && a[1] == '-') {
            fprintf(stderr, "tripletctl client: %s: unknown option or missing value (see --help)\n", a);
            return -1;
        } else if (o->route == NULL) {
            o->route = a;
        } else if (o->body == NULL) {
            o->body = a;
        } else {
            fprintf(stderr, "tripletctl client: unexpected argument \"%s\" (one ROUTE and one body)\n", a);
            return -1;
        }
    }
    return 0;
}

/* One request with libcurl: POST body unless get, the API key as a bearer
 * token; prints the answer. The exit status: EX_OK for 2xx, EX_HTTP for
 * other statuses, EX_CONNECT when no answer came. */
static int send_request(const char *full, int get, const membuf *body, const char *key, long timeout, int raw) {
    membuf resp = {0};
    char *auth = NULL, errbuf[CURL_ERROR_SIZE] = "";
    CURL *c = NULL;
    struct curl_slist *hdr = NULL;
    int rc;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || (c = curl_easy_init()) == NULL) goto nomem;
    if (add_header(&hdr, "Accept: application/json") || (!get && add_header(&hdr, "Content-Type: application/json")))
        goto nomem;
    if (key && key[0]) {
        if ((auth = malloc(strlen(key) + 32)) == NULL) goto nomem;
        sprintf(auth, "Authorization: Bearer %s", key);
        if (add_header(&hdr, auth)) goto nomem;
    }
    curl_easy_setopt(c, CURLOPT_URL, full);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, timeout);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "tripletctl/" TRIPLETCTL_VERSION);
    if (!get) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body->p);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body->n);
    }
    CURLcode cr = curl_easy_perform(c);
    if (cr != CURLE_OK) {
        fprintf(stderr, "tripletctl client: %s %s: %s\n", get ? "GET" : "POST", full,
                errbuf[0] ? errbuf : curl_easy_strerror(cr));
        rc = cr == CURLE_WRITE_ERROR ? EX_HTTP : EX_CONNECT;
        goto done;
    }
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    print_body(&resp, raw);
    fflush(stdout);
    if (status >= 200 && status < 300) {
        rc = EX_OK;
    } else {
        fprintf(stderr, "tripletctl client: %s %s: HTTP %ld\n", get ? "GET" : "POST", full, status);
        rc = EX_HTTP;
    }
    goto done;
nomem:
    fprintf(stderr, "tripletctl client: out of memory or libcurl failed to start\n");
    rc = EX_HTTP;
done:
    if (c) curl_easy_cleanup(c);
    curl_slist_free_all(hdr);
    curl_global_cleanup();
    free(auth);
    free(resp.p);
    return rc;
}

int cmd_client(int argc, char **argv) {
    const char *url = getenv("TRIPLETD_URL"), *key = getenv("TRIPLETD_API_KEY"), *method = NULL;
    const char *route = NULL, *body_arg = NULL;
    long timeout = 30;
    int raw = 0, rc = EX_USAGE;
    membuf body = {0};
    char *full = NULL;
    if (url == NULL || url[0] == '\0') url = "http://127.0.0.1:8080";
    client_opts o = {url, key, NULL, NULL, NULL, 30, 0};
    int pr = parse_opts(argc, argv, &o);
    if (pr) return pr > 0 ? EX_OK : EX_USAGE;
    url = o.url;
    key = o.key;
    method = o.method;
    route = o.route;
    body_arg = o.body;
    timeout = o.timeout;
    raw = o.raw;
    if (route == NULL || route[0] == '\0') {
        usage(stderr);
        return EX_USAGE;
    }
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
        fprintf(stderr, "tripletctl client: --url: \"%s\" must start with http:// or https://\n", url);
        return EX_USAGE;
    }
    /* base URL + "/" + route, without doubled or missing slashes; or ROUTE is a whole URL */
    size_t ul = strlen(url);
    const char *path;
    if (strncmp(route, "http://", 7) == 0 || strncmp(route, "https://", 8) == 0) {
        if ((full = strdup(route)) == NULL) goto nomem;
        path = strchr(full + (route[4] == 's' ? 8 : 7), '/');
        if (path == NULL) path = "/";
    } else {
        while (ul > 0 && url[ul - 1] == '/') ul--;
        while (route[0] == '/') route++;
        if ((full = malloc(ul + strlen(route) + 2)) == NULL) goto nomem;
        sprintf(full, "%.*s/%s", (int)ul, url, route);
        path = full + ul;
    }
    int get = method ? strcmp(method, "GET") == 0 : body_arg == NULL && is_get_route(path);
    if (get && body_arg) {
        fprintf(stderr, "tripletctl client: a GET request takes no body\n");
        goto done;
    }
    if (!get) {
        if (read_body(body_arg ? body_arg : "{}", &body) != 0) goto done;
        const char *end = NULL;
        cJSON *j = cJSON_ParseWithLengthOpts(body.p, body.n, &end, 0);
        if (j == NULL) {
            size_t at = end && end >= body.p ? (size_t)(end - body.p) : 0;
            fprintf(stderr, "tripletctl client: the body is not valid JSON (near byte %zu)\n", at);
            goto done;
        }
        cJSON_Delete(j);
    }
    rc = send_request(full, get, &body, key, timeout, raw);
    goto done;
nomem:
    fprintf(stderr, "tripletctl client: out of memory or libcurl failed to start\n");
    rc = EX_HTTP;
done:
    free(full);
    free(body.p);
    return rc;
}
