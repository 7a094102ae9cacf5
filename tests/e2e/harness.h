/* harness.h - e2e test support: start tripletd on port 0, libcurl requests, JSON helpers, checks. */
#ifndef E2E_HARNESS_H
#define E2E_HARNESS_H

#include <stddef.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

#include "membuf.h"

/* ---- checks ---------------------------------------------------------- */

/* Failure count and check count, shared by all threads of a test binary. */
extern int e2e_failures;
extern int e2e_checks;

/* Record one check; on failure print "file:line: message". Thread-safe.
 * Returns cond so callers can skip dependent checks. */
int e2e_check(int cond, const char *file, int line, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
#define CHECK(cond, ...) e2e_check(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define CHECK_EQ_INT(got, want, what)                                                                                  \
    e2e_check((long long)(got) == (long long)(want), __FILE__, __LINE__, "%s: got %lld, want %lld", (what),            \
              (long long)(got), (long long)(want))
#define CHECK_STR(got, want, what)                                                                                     \
    e2e_check((got) != NULL && strcmp((got), (want)) == 0, __FILE__, __LINE__, "%s: got \"%s\", want \"%s\"", (what),  \
              (got) ? (got) : "(null)", (want))
/* |got - want| <= atol + rtol * |want| */
#define CHECK_NEAR(got, want, rtol, atol, what)                                                                        \
    e2e_check(e2e_near((got), (want), (rtol), (atol)), __FILE__, __LINE__,                                             \
              "%s: got %.17g, want %.17g (rtol %g, atol %g)", (what), (double)(got), (double)(want), (double)(rtol),   \
              (double)(atol))
int e2e_near(double got, double want, double rtol, double atol);

/* Print "N passed, N failed" (checks) and return the exit status: 0 when
 * checks ran and none failed. Stops every server still running. */
int e2e_report(const char *suite);

/* Abort the whole binary (servers are killed by the exit hook). */
void e2e_die(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2), noreturn))
#endif
    ;

/* ---- the server under test ------------------------------------------ */

typedef struct {
    pid_t pid; /* 0 when not running */
    int port;
    char dir[256]; /* private temp directory (port file, log, models) */
    char log[300]; /* its stdout+stderr */
} e2e_server;

/* Path of a file under the repository root ($TRIPLET_ROOT, else "."):
 * returns a static per-thread buffer. */
const char *e2e_root_path(const char *rel);

/* 1 when the server binary is a sanitizer build (slower: scale timeouts). */
int e2e_slow(void);

/* Start $TRIPLETD --host 127.0.0.1 --port 0 --port-file DIR/port plus args
 * (NULL-terminated; "--model PATH" is added when args holds no "--model").
 * Waits (bounded) for the port file and GET /healthz 200. 0 on success;
 * on failure prints why (with the server log tail) and returns -1. */
int e2e_server_start(e2e_server *s, const char *const *args);

/* Send sig and wait up to timeout_s for the exit; SIGKILL after that.
 * Returns the exit status as from waitpid (or -1). Idempotent. */
int e2e_server_stop(e2e_server *s, int sig, double timeout_s);

/* Wait for the server to exit by itself (up to timeout_s). Returns the wait
 * status, or -1 on timeout (it is still running then). */
int e2e_server_wait(e2e_server *s, double timeout_s);

/* Print the last lines of the server's log to stderr. */
void e2e_server_log_tail(const e2e_server *s, int lines);

/* ---- HTTP ------------------------------------------------------------ */

typedef struct {
    const char *method;      /* "GET", "POST", ... */
    const char *path;        /* "/v1/embed?pretty=1" */
    const char *headers[12]; /* "Name: value", NULL-terminated */
    const char *body;        /* NULL: no body */
    size_t body_len;         /* 0 with body != NULL: strlen(body) */
    int chunked;             /* send the body with Transfer-Encoding: chunked */
    int no_content_type;     /* do not add "Content-Type: application/json" to bodies */
    long timeout_ms;         /* 0: 10 s (x4 under sanitizers) */
} e2e_req;

typedef struct {
    long status;   /* 0 when the transfer failed */
    char *headers; /* raw response header block */
    char *body;    /* NUL-terminated */
    size_t body_len;
    double seconds;
    char curl_err[256];
    cJSON *json; /* parsed body, or NULL */
} e2e_resp;

/* One request on a fresh connection. Returns 0 if an HTTP response arrived. */
int e2e_request(const e2e_server *s, const e2e_req *rq, e2e_resp *out);
void e2e_resp_free(e2e_resp *r);

/* A reusable connection (a libcurl easy handle): requests through it share
 * one keep-alive TCP connection. One thread at a time. */
void *e2e_conn_new(void);
void e2e_conn_free(void *conn);
int e2e_request_conn(void *conn, const e2e_server *s, const e2e_req *rq, e2e_resp *out);

/* Send raw bytes on a new TCP connection and read one response (until its
 * Content-Length is complete, the peer closes, or timeout_ms). Fills status,
 * headers, body and json as e2e_request does. 0 if a status line arrived. */
int e2e_raw_request(const e2e_server *s, const char *bytes, size_t len, long timeout_ms, e2e_resp *out);

/* Convenience: GET path; POST path with a JSON body (Content-Type set). */
int e2e_get(const e2e_server *s, const char *path, e2e_resp *out);
int e2e_post(const e2e_server *s, const char *path, const char *body, e2e_resp *out);

/* Value of a response header (case-insensitive name), copied into buf;
 * NULL when absent. */
const char *e2e_header(const e2e_resp *r, const char *name, char *buf, size_t cap);

/* Check that r is an error reply: status, {"error":{"code":status,"type":
 * type,"message":non-empty,"field":field}}; field NULL means "not checked",
 * "" means absent or empty. Returns 1 if all matched. what labels messages. */
int e2e_check_error(const e2e_resp *r, long status, const char *type, const char *field, const char *what,
                    const char *file, int line);
#define CHECK_ERROR(r, status, type, field, what)                                                                      \
    e2e_check_error((r), (status), (type), (field), (what), __FILE__, __LINE__)

/* A growable byte string, always NUL-terminated once something was added
 * (it may hold NULs too). Zero-initialise; free(p) when done. */
typedef membuf e2e_buf;
/* Append n bytes, or a string; 0, or -1 when out of memory. */
int e2e_buf_add(e2e_buf *b, const void *data, size_t n);
int e2e_buf_str(e2e_buf *b, const char *s);

/* ---- JSON helpers ---------------------------------------------------- */

/* Object member by dotted path ("config.metric", "data.0.embedding"). */
const cJSON *e2e_jget(const cJSON *root, const char *path);
/* Number at path, or NAN. String at path, or NULL. */
double e2e_jnum(const cJSON *root, const char *path);
const char *e2e_jstr(const cJSON *root, const char *path);
/* Copy a numeric array (n entries) into a malloc'd double array; NULL if the
 * item is not an array of numbers. *n receives the count. */
double *e2e_jarray(const cJSON *arr, size_t *n);
/* Flatten an array of numeric arrays (rows x cols) into malloc'd doubles;
 * NULL if ragged or not numeric. */
double *e2e_jmatrix(const cJSON *arr, size_t *rows, size_t *cols);

/* The directory for temporary files: $TMPDIR when set and not empty, else /tmp. */
const char *e2e_tmpdir(void);
/* Create a private directory e2e_tmpdir()/NAME.XXXXXX; its path goes to dir
 * (cap bytes). Dies when it cannot. */
void e2e_mkdtemp(char *dir, size_t cap, const char *name);
/* Read a whole file into a malloc'd NUL-terminated buffer (NULL on error). */
char *e2e_read_file(const char *path, size_t *len);
/* 1 once the file holds every string of needles (NULL-terminated), polled
 * for up to timeout_s; 0 after that. */
int e2e_wait_file(const char *path, const char *const *needles, double timeout_s);
/* Write a buffer to a file; 0 on success. */
int e2e_write_file(const char *path, const void *buf, size_t len);
/* Replace dst by the contents of src atomically (through dst.tmp and
 * rename, what a deploy does); 0 on success. */
int e2e_install_file(const char *src, const char *dst);
/* A root-relative JSON file (tests/golden/...), parsed; dies when it cannot. */
cJSON *e2e_read_json(const char *rel);
/* The e2e fixture (tests/data/e2e-model.safetensors) with 0.5 added to its
 * last layer's bias ("2.bias"): a second model whose embeddings differ.
 * 0 on success. */
int e2e_write_shifted_model(const char *path);
/* Value of the sample line `name` + ' ' in Prometheus text, or NAN. */
double e2e_metric(const char *text, const char *name);

/* Base64 (standard alphabet, padded) of n little-endian float32 values; malloc'd. */
char *e2e_b64_floats(const float *v, size_t n);
/* Decode a base64 float32 string; malloc'd floats, *n count; NULL on error. */
float *e2e_b64_decode_floats(const char *s, size_t *n);

/* Monotonic clock in seconds. */
double e2e_now(void);

#endif
