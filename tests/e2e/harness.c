/* harness.c - e2e test support: tripletd process control, libcurl requests, JSON helpers, checks. */
#include "harness.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "../tmpdir.h"
#include "tr_err.h"

int e2e_failures;
int e2e_checks;
static pthread_mutex_t check_mu = PTHREAD_MUTEX_INITIALIZER;

/* Every server we started, so that any exit path can kill it. */
#define MAX_SERVERS 16
static volatile pid_t live_pids[MAX_SERVERS];

double e2e_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int e2e_check(int cond, const char *file, int line, const char *fmt, ...) {
    pthread_mutex_lock(&check_mu);
    e2e_checks++;
    if (!cond) {
        e2e_failures++;
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "%s:%d: ", file, line);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
    }
    pthread_mutex_unlock(&check_mu);
    return cond;
}

int e2e_near(double got, double want, double rtol, double atol) {
    if (isnan(got) || isnan(want)) return 0;
    return fabs(got - want) <= atol + rtol * fabs(want);
}

/* Temp directories of started servers, removed at exit (KEEP_TMP=1 keeps them). */
static char tmp_dirs[MAX_SERVERS * 4][256];
static int n_tmp_dirs;

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static void remove_tmp_dirs(void) {
    const char *keep = getenv("KEEP_TMP");
    for (int i = 0; i < n_tmp_dirs; i++) {
        if (keep && strcmp(keep, "1") == 0)
            fprintf(stderr, "kept %s\n", tmp_dirs[i]);
        else
            nftw(tmp_dirs[i], rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    }
    n_tmp_dirs = 0;
}

static void kill_all(void) {
    for (int i = 0; i < MAX_SERVERS; i++) {
        pid_t p = live_pids[i];
        if (p > 0) {
            kill(p, SIGKILL);
            waitpid(p, NULL, 0);
            live_pids[i] = 0;
        }
    }
    remove_tmp_dirs();
}

static void on_fatal(int sig) {
    for (int i = 0; i < MAX_SERVERS; i++)
        if (live_pids[i] > 0) kill(live_pids[i], SIGKILL);
    signal(sig, SIG_DFL);
    raise(sig);
}

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static void init_global(void) {
    curl_global_init(CURL_GLOBAL_ALL);
    atexit(kill_all);
    int sigs[] = {SIGINT, SIGTERM, SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGHUP};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) signal(sigs[i], on_fatal);
    signal(SIGPIPE, SIG_IGN);
}
static void e2e_init(void) {
    pthread_once(&init_once, init_global);
}

int e2e_report(const char *suite) {
    kill_all();
    printf("%s: %d checks\n", suite, e2e_checks);
    if (e2e_checks == 0) {
        printf("no check ran\n");
        e2e_failures++;
    }
    int passed = e2e_checks > e2e_failures ? e2e_checks - e2e_failures : 0;
    printf("%d passed, %d failed\n", passed, e2e_failures);
    fflush(stdout);
    return e2e_failures ? 1 : 0;
}

void e2e_die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fatal: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    e2e_failures++;
    printf("%d passed, %d failed\n", e2e_checks - e2e_failures + 1, e2e_failures);
    exit(1); /* atexit kills the servers */
}

const char *e2e_root_path(const char *rel) {
    static __thread char buf[1024];
    const char *root = getenv("TRIPLET_ROOT");
    snprintf(buf, sizeof buf, "%s/%s", root && *root ? root : ".", rel);
    return buf;
}

int e2e_slow(void) {
    const char *s = getenv("SANITIZE");
    const char *d = getenv("TRIPLETD");
    return (s && strcmp(s, "1") == 0) || (d && strstr(d, "build-san"));
}

static void register_pid(pid_t p) {
    for (int i = 0; i < MAX_SERVERS; i++)
        if (live_pids[i] == 0) {
            live_pids[i] = p;
            return;
        }
}

static void unregister_pid(pid_t p) {
    for (int i = 0; i < MAX_SERVERS; i++)
        if (live_pids[i] == p) live_pids[i] = 0;
}

void e2e_server_log_tail(const e2e_server *s, int lines) {
    size_t len;
    char *t = e2e_read_file(s->log, &len);
    if (!t) return;
    size_t i = len;
    int n = 0;
    while (i > 0 && n <= lines)
        if (t[--i] == '\n') n++;
    fprintf(stderr, "--- tripletd log (%s), last lines:\n%s\n---\n", s->log, t + (i ? i + 1 : 0));
    free(t);
}

int e2e_server_start(e2e_server *s, const char *const *args) {
    e2e_init();
    memset(s, 0, sizeof *s);
    const char *bin = getenv("TRIPLETD");
    if (!bin || !*bin) bin = e2e_root_path("bin/tripletd");
    char binpath[1024];
    snprintf(binpath, sizeof binpath, "%s", bin);
    if (access(binpath, X_OK) != 0) {
        fprintf(stderr, "tripletd binary %s: %s (set TRIPLETD)\n", binpath, strerror(errno));
        return -1;
    }
    snprintf(s->dir, sizeof s->dir, "%s/tripletd-e2e.XXXXXX", e2e_tmpdir());
    if (!mkdtemp(s->dir)) {
        fprintf(stderr, "mkdtemp %s: %s\n", s->dir, strerror(errno));
        return -1;
    }
    pthread_mutex_lock(&check_mu);
    if (n_tmp_dirs < (int)(sizeof tmp_dirs / sizeof tmp_dirs[0]))
        snprintf(tmp_dirs[n_tmp_dirs++], sizeof tmp_dirs[0], "%s", s->dir);
    pthread_mutex_unlock(&check_mu);
    snprintf(s->log, sizeof s->log, "%s/tripletd.log", s->dir);
    char portfile[300];
    snprintf(portfile, sizeof portfile, "%s/port", s->dir);

    const char *argv[64];
    int argc = 0, has_model = 0;
    argv[argc++] = binpath;
    argv[argc++] = "--host";
    argv[argc++] = "127.0.0.1";
    argv[argc++] = "--port";
    argv[argc++] = "0";
    argv[argc++] = "--port-file";
    argv[argc++] = portfile;
    for (int i = 0; args && args[i] && argc < 60; i++) {
        if (strcmp(args[i], "--model") == 0) has_model = 1;
        argv[argc++] = args[i];
    }
    char model[1024];
    if (!has_model) {
        snprintf(model, sizeof model, "%s", e2e_root_path("tests/data/e2e-model.safetensors"));
        argv[argc++] = "--model";
        argv[argc++] = model;
    }
    argv[argc] = NULL;

    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        int fd = open(s->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0) dup2(nul, 0);
        signal(SIGPIPE, SIG_DFL);
        execv(binpath, (char *const *)argv);
        fprintf(stderr, "exec %s: %s\n", binpath, strerror(errno));
        _exit(127);
    }
    s->pid = pid;
    register_pid(pid);

    double limit = e2e_slow() ? 60 : 20, t0 = e2e_now();
    while (e2e_now() - t0 < limit) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            unregister_pid(pid);
            s->pid = 0;
            fprintf(stderr, "tripletd exited during startup (status %d)\n",
                    WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st));
            e2e_server_log_tail(s, 20);
            return -1;
        }
        if (s->port == 0) {
            char *p = e2e_read_file(portfile, NULL);
            if (p) {
                int port = atoi(p);
                if (port > 0 && port < 65536) s->port = port;
                free(p);
            }
        }
        if (s->port) {
            e2e_resp r;
            e2e_req rq = {.method = "GET", .path = "/healthz", .timeout_ms = 2000};
            int ok = e2e_request(s, &rq, &r) == 0 && r.status == 200;
            e2e_resp_free(&r);
            if (ok) return 0;
        }
        usleep(20000);
    }
    fprintf(stderr, "tripletd did not become healthy within %.0f s\n", limit);
    e2e_server_log_tail(s, 20);
    e2e_server_stop(s, SIGKILL, 1);
    return -1;
}

int e2e_server_wait(e2e_server *s, double timeout_s) {
    if (s->pid <= 0) return -1;
    double t0 = e2e_now();
    for (;;) {
        int st;
        pid_t r = waitpid(s->pid, &st, WNOHANG);
        if (r == s->pid) {
            unregister_pid(s->pid);
            s->pid = 0;
            return st;
        }
        if (r < 0 && errno != EINTR) {
            unregister_pid(s->pid);
            s->pid = 0;
            return -1;
        }
        if (e2e_now() - t0 > timeout_s) return -1;
        usleep(10000);
    }
}

int e2e_server_stop(e2e_server *s, int sig, double timeout_s) {
    if (s->pid <= 0) return -1;
    kill(s->pid, sig);
    int st = e2e_server_wait(s, timeout_s);
    if (st == -1 && s->pid > 0) {
        fprintf(stderr, "tripletd (pid %d) did not exit within %.1f s of signal %d; killing\n", (int)s->pid, timeout_s,
                sig);
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        unregister_pid(s->pid);
        s->pid = 0;
        return -1;
    }
    return st;
}

/* ---- HTTP ------------------------------------------------------------ */

int e2e_buf_add(e2e_buf *b, const void *data, size_t n) {
    return membuf_add(b, data, n, 0) == TR_OK ? 0 : -1;
}

int e2e_buf_str(e2e_buf *b, const char *s) {
    return e2e_buf_add(b, s, strlen(s));
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud) {
    return e2e_buf_add(ud, data, size * nmemb) ? 0 : size * nmemb;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ud) {
    e2e_buf *b = ud;
    size_t n = size * nmemb;
    if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) b->n = 0; /* 100 Continue, then the real one */
    return e2e_buf_add(b, data, n) ? 0 : n;
}

typedef struct {
    const char *p;
    size_t left;
} upload_t;

static size_t on_read(char *dst, size_t size, size_t nmemb, void *ud) {
    upload_t *u = ud;
    size_t n = size * nmemb;
    if (n > 16384) n = 16384; /* several chunks when chunked */
    if (n > u->left) n = u->left;
    memcpy(dst, u->p, n);
    u->p += n;
    u->left -= n;
    return n;
}

void *e2e_conn_new(void) {
    e2e_init();
    return curl_easy_init();
}

void e2e_conn_free(void *conn) {
    if (conn) curl_easy_cleanup(conn);
}

int e2e_request(const e2e_server *s, const e2e_req *rq, e2e_resp *out) {
    e2e_init();
    memset(out, 0, sizeof *out);
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(out->curl_err, sizeof out->curl_err, "curl_easy_init failed");
        return -1;
    }
    int rc = e2e_request_conn(c, s, rq, out);
    curl_easy_cleanup(c);
    return rc;
}

int e2e_request_conn(void *conn, const e2e_server *s, const e2e_req *rq, e2e_resp *out) {
    CURL *c = conn;
    memset(out, 0, sizeof *out);
    curl_easy_reset(c); /* keeps the connection cache: keep-alive across calls */
    char url[1200];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", s->port, rq->path);
    e2e_buf body = {0}, hdr = {0};
    struct curl_slist *hl = NULL;
    upload_t up = {0};
    int has_ct = 0;
    for (int i = 0; i < 12 && rq->headers[i]; i++) {
        hl = curl_slist_append(hl, rq->headers[i]);
        if (strncasecmp(rq->headers[i], "Content-Type:", 13) == 0) has_ct = 1;
    }
    hl = curl_slist_append(hl, "Expect:");
    if (rq->body && !has_ct)
        hl = curl_slist_append(hl, rq->no_content_type ? "Content-Type:" : "Content-Type: application/json");
    if (rq->chunked) hl = curl_slist_append(hl, "Transfer-Encoding: chunked");

    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, rq->method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &hdr);
    long tmo = rq->timeout_ms ? rq->timeout_ms : 10000;
    if (e2e_slow()) tmo *= 4;
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, tmo);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, out->curl_err);
    if (strcmp(rq->method, "HEAD") == 0) curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    if (rq->body) {
        size_t len = rq->body_len ? rq->body_len : strlen(rq->body);
        if (rq->chunked) {
            up.p = rq->body;
            up.left = len;
            curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
            curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
            curl_easy_setopt(c, CURLOPT_READDATA, &up);
            curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, rq->method);
        } else {
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, rq->body);
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        }
    }
    double t0 = e2e_now();
    CURLcode rc = curl_easy_perform(c);
    out->seconds = e2e_now() - t0;
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
    else if (!out->curl_err[0])
        snprintf(out->curl_err, sizeof out->curl_err, "%s", curl_easy_strerror(rc));
    curl_slist_free_all(hl);
    out->headers = hdr.p ? hdr.p : strdup("");
    out->body = body.p ? body.p : strdup("");
    out->body_len = body.n;
    out->json = cJSON_ParseWithLength(out->body, out->body_len);
    return rc == CURLE_OK ? 0 : -1;
}

int e2e_raw_request(const e2e_server *s, const char *bytes, size_t len, long timeout_ms, e2e_resp *out) {
    e2e_init();
    memset(out, 0, sizeof *out);
    e2e_buf in = {0};
    int fd = socket(AF_INET, SOCK_STREAM, 0), rc = -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (e2e_slow()) timeout_ms *= 4;
    double t0 = e2e_now();
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        snprintf(out->curl_err, sizeof out->curl_err, "connect: %s", strerror(errno));
        goto done;
    }
    for (size_t off = 0; off < len;) {
        ssize_t n = send(fd, bytes + off, len - off, MSG_NOSIGNAL);
        if (n <= 0) break; /* the server may answer before reading everything */
        off += (size_t)n;
    }
    for (;;) {
        double left = (double)timeout_ms - (e2e_now() - t0) * 1e3;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, (int)left) <= 0) break;
        char tmp[16384];
        ssize_t n = recv(fd, tmp, sizeof tmp, 0);
        if (n <= 0) break;
        e2e_buf_add(&in, tmp, (size_t)n);
        char *end = strstr(in.p, "\r\n\r\n");
        if (end) { /* complete once Content-Length bytes of body are here */
            char cl[32];
            e2e_resp tmp_r = {.headers = in.p};
            if (e2e_header(&tmp_r, "Content-Length", cl, sizeof cl) &&
                in.n >= (size_t)(end + 4 - in.p) + strtoul(cl, NULL, 10))
                break;
        }
    }
    out->seconds = e2e_now() - t0;
    if (in.p && sscanf(in.p, "HTTP/%*d.%*d %ld", &out->status) == 1)
        rc = 0;
    else
        snprintf(out->curl_err, sizeof out->curl_err, "no HTTP status line in %zu bytes", in.n);
done:
    if (fd >= 0) close(fd);
    char *end = in.p ? strstr(in.p, "\r\n\r\n") : NULL;
    if (end) {
        out->body = strdup(end + 4);
        out->body_len = in.n - (size_t)(end + 4 - in.p);
        end[2] = '\0';
        out->headers = in.p;
    } else {
        out->headers = in.p ? in.p : strdup("");
        out->body = strdup("");
    }
    out->json = cJSON_ParseWithLength(out->body, out->body_len);
    return rc;
}

void e2e_resp_free(e2e_resp *r) {
    free(r->headers);
    free(r->body);
    cJSON_Delete(r->json);
    memset(r, 0, sizeof *r);
}

int e2e_get(const e2e_server *s, const char *path, e2e_resp *out) {
    e2e_req rq = {.method = "GET", .path = path};
    return e2e_request(s, &rq, out);
}

int e2e_post(const e2e_server *s, const char *path, const char *body, e2e_resp *out) {
    e2e_req rq = {.method = "POST", .path = path, .body = body};
    return e2e_request(s, &rq, out);
}

const char *e2e_header(const e2e_resp *r, const char *name, char *buf, size_t cap) {
    size_t nl = strlen(name);
    for (const char *p = r->headers; p && *p;) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ' || *v == '\t') v++;
            size_t vl = len - (size_t)(v - p);
            while (vl && (v[vl - 1] == '\r' || v[vl - 1] == ' ')) vl--;
            if (vl >= cap) vl = cap - 1;
            memcpy(buf, v, vl);
            buf[vl] = '\0';
            return buf;
        }
        p = e ? e + 1 : p + len;
    }
    return NULL;
}

int e2e_check_error(const e2e_resp *r, long status, const char *type, const char *field, const char *what,
                    const char *file, int line) {
    int ok = 1;
    char brief[161];
    snprintf(brief, sizeof brief, "%s", r->body ? r->body : "");
    ok &= e2e_check(r->status == status, file, line, "%s: status %ld, want %ld (body %s%s)", what, r->status, status,
                    brief, r->curl_err[0] ? r->curl_err : "");
    const cJSON *e = r->json ? cJSON_GetObjectItemCaseSensitive(r->json, "error") : NULL;
    if (!e2e_check(cJSON_IsObject(e), file, line, "%s: body is not {\"error\":{...}}: %s", what, brief)) return 0;
    double code = e2e_jnum(e, "code");
    ok &= e2e_check(code == (double)status, file, line, "%s: error.code %g, want %ld", what, code, status);
    const char *t = e2e_jstr(e, "type");
    ok &= e2e_check(t && strcmp(t, type) == 0, file, line, "%s: error.type \"%s\", want \"%s\"", what, t ? t : "(none)",
                    type);
    const char *m = e2e_jstr(e, "message");
    ok &= e2e_check(m && *m, file, line, "%s: error.message missing or empty", what);
    if (field) {
        const char *f = e2e_jstr(e, "field");
        if (!*field)
            ok &= e2e_check(!f || !*f, file, line, "%s: error.field \"%s\", want none", what, f);
        else
            ok &= e2e_check(f && strcmp(f, field) == 0, file, line, "%s: error.field \"%s\", want \"%s\" (message: %s)",
                            what, f ? f : "(none)", field, m ? m : "");
    }
    return ok;
}

/* ---- JSON ------------------------------------------------------------ */

const cJSON *e2e_jget(const cJSON *root, const char *path) {
    const cJSON *cur = root;
    char key[128];
    while (cur && *path) {
        size_t n = strcspn(path, ".");
        if (n >= sizeof key) return NULL;
        memcpy(key, path, n);
        key[n] = '\0';
        path += n + (path[n] == '.');
        if (cJSON_IsArray(cur) && isdigit((unsigned char)key[0]))
            cur = cJSON_GetArrayItem(cur, atoi(key));
        else if (cJSON_IsObject(cur))
            cur = cJSON_GetObjectItemCaseSensitive(cur, key);
        else
            return NULL;
    }
    return cur;
}

double e2e_jnum(const cJSON *root, const char *path) {
    const cJSON *it = e2e_jget(root, path);
    return cJSON_IsNumber(it) ? it->valuedouble : NAN;
}

const char *e2e_jstr(const cJSON *root, const char *path) {
    const cJSON *it = e2e_jget(root, path);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

double *e2e_jarray(const cJSON *arr, size_t *n) {
    *n = 0;
    if (!cJSON_IsArray(arr)) return NULL;
    size_t len = (size_t)cJSON_GetArraySize(arr);
    double *v = malloc((len ? len : 1) * sizeof *v);
    if (!v) return NULL;
    size_t i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        if (!cJSON_IsNumber(it)) {
            free(v);
            return NULL;
        }
        v[i++] = it->valuedouble;
    }
    *n = len;
    return v;
}

double *e2e_jmatrix(const cJSON *arr, size_t *rows, size_t *cols) {
    *rows = *cols = 0;
    if (!cJSON_IsArray(arr)) return NULL;
    size_t r = (size_t)cJSON_GetArraySize(arr), c = 0, k = 0;
    if (r == 0) return NULL;
    c = (size_t)cJSON_GetArraySize(cJSON_GetArrayItem(arr, 0));
    double *v = malloc((r * c > 0 ? r * c : 1) * sizeof *v);
    if (!v) return NULL;
    const cJSON *row, *it;
    cJSON_ArrayForEach(row, arr) {
        if (!cJSON_IsArray(row) || (size_t)cJSON_GetArraySize(row) != c) goto fail;
        cJSON_ArrayForEach(it, row) {
            if (!cJSON_IsNumber(it)) goto fail;
            v[k++] = it->valuedouble;
        }
    }
    *rows = r;
    *cols = c;
    return v;
fail:
    free(v);
    return NULL;
}

const char *e2e_tmpdir(void) {
    return test_tmpdir();
}

void e2e_mkdtemp(char *dir, size_t cap, const char *name) {
    if ((size_t)snprintf(dir, cap, "%s/%s.XXXXXX", e2e_tmpdir(), name) >= cap)
        e2e_die("temp dir name for %s too long", name);
    if (!mkdtemp(dir)) e2e_die("mkdtemp %s: %s", dir, strerror(errno));
}

char *e2e_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    e2e_buf b = {0};
    char tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
        if (e2e_buf_add(&b, tmp, n)) {
            free(b.p);
            fclose(f);
            return NULL;
        }
    fclose(f);
    if (!b.p) b.p = calloc(1, 1);
    if (len) *len = b.n;
    return b.p;
}

int e2e_wait_file(const char *path, const char *const *needles, double timeout_s) {
    double until = e2e_now() + timeout_s;
    for (;;) {
        char *t = e2e_read_file(path, NULL);
        int all = t != NULL;
        for (size_t i = 0; all && needles[i]; i++) all = strstr(t, needles[i]) != NULL;
        free(t);
        if (all) return 1;
        if (e2e_now() >= until) return 0;
        usleep(20000);
    }
}

int e2e_install_file(const char *src, const char *dst) {
    char tmp[600];
    size_t len;
    char *raw = e2e_read_file(src, &len);
    snprintf(tmp, sizeof tmp, "%s.tmp", dst);
    int rc = raw && e2e_write_file(tmp, raw, len) == 0 ? rename(tmp, dst) : -1;
    free(raw);
    return rc;
}

cJSON *e2e_read_json(const char *rel) {
    size_t len;
    char *text = e2e_read_file(e2e_root_path(rel), &len);
    if (!text) e2e_die("cannot read %s (set TRIPLET_ROOT)", rel);
    cJSON *j = cJSON_ParseWithLength(text, len);
    free(text);
    if (!j) e2e_die("%s is not JSON", rel);
    return j;
}

int e2e_write_shifted_model(const char *path) {
    size_t len;
    char *raw = e2e_read_file(e2e_root_path("tests/data/e2e-model.safetensors"), &len);
    if (!raw || len < 8) {
        free(raw);
        return -1;
    }
    uint64_t hlen = 0;
    for (int k = 7; k >= 0; k--) hlen = hlen << 8 | (unsigned char)raw[k];
    cJSON *hdr = hlen < (uint64_t)len ? cJSON_ParseWithLength(raw + 8, (size_t)hlen) : NULL;
    const cJSON *bias = cJSON_GetObjectItemCaseSensitive(hdr, "2.bias"); /* a dotted name: no e2e_jget */
    const cJSON *off = e2e_jget(bias, "data_offsets");
    const char *dtype = e2e_jstr(bias, "dtype");
    int rc = -1;
    if (cJSON_GetArraySize(off) == 2 && dtype && strcmp(dtype, "F32") == 0) {
        size_t lo = (size_t)cJSON_GetArrayItem(off, 0)->valuedouble,
               hi = (size_t)cJSON_GetArrayItem(off, 1)->valuedouble;
        for (size_t p = 8 + hlen + lo; p + 4 <= 8 + hlen + hi && p + 4 <= len; p += 4) {
            float f;
            memcpy(&f, raw + p, 4); /* little-endian host, as the fixture */
            f += 0.5f;
            memcpy(raw + p, &f, 4);
        }
        rc = e2e_write_file(path, raw, len);
    }
    cJSON_Delete(hdr);
    free(raw);
    return rc;
}

double e2e_metric(const char *text, const char *name) {
    size_t n = strlen(name);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, name, n) == 0 && p[n] == ' ') return strtod(p + n + 1, NULL);
    return NAN;
}

int e2e_write_file(const char *path, const void *buf, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int ok = fwrite(buf, 1, len, f) == len;
    ok &= fclose(f) == 0;
    return ok ? 0 : -1;
}

char *e2e_b64_floats(const float *v, size_t n) {
    unsigned char *raw = malloc(n * 4 + 1);
    char *out = malloc((n * 4 + 2) / 3 * 4 + 1);
    if (!raw || !out) {
        free(raw);
        free(out);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) { /* little-endian regardless of host */
        unsigned u;
        memcpy(&u, &v[i], 4);
        for (int k = 0; k < 4; k++) raw[4 * i + (size_t)k] = (unsigned char)(u >> (8 * k));
    }
    EVP_EncodeBlock((unsigned char *)out, raw, (int)(n * 4));
    free(raw);
    return out;
}

float *e2e_b64_decode_floats(const char *s, size_t *n) {
    size_t len = strlen(s);
    if (len % 4) return NULL;
    unsigned char *raw = malloc(len / 4 * 3 + 1);
    if (!raw) return NULL;
    int got = EVP_DecodeBlock(raw, (const unsigned char *)s, (int)len);
    if (got < 0) {
        free(raw);
        return NULL;
    }
    size_t pad = (len >= 1 && s[len - 1] == '=') + (len >= 2 && s[len - 2] == '=');
    size_t bytes = (size_t)got - pad;
    if (bytes % 4) {
        free(raw);
        return NULL;
    }
    float *v = malloc((bytes ? bytes : 4));
    if (!v) {
        free(raw);
        return NULL;
    }
    for (size_t i = 0; i < bytes / 4; i++) {
        unsigned u = 0;
        for (int k = 0; k < 4; k++) u |= (unsigned)raw[4 * i + (size_t)k] << (8 * k);
        memcpy(&v[i], &u, 4);
    }
    free(raw);
    *n = bytes / 4;
    return v;
}
