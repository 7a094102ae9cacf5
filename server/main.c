/* main.c - tripletd entry point: options, model load, signals (sigwait), drain and exit. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "atomic_file.h"
#include "fmap.h"
#include "http.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "state.h"

void openblas_set_num_threads(int n); /* OpenBLAS; one thread per request handler */

static pthread_t g_main_thread;

/* The kernel sends it when another process opens or truncates the mapped
 * gallery file (a lease break, fmap.h); it goes to the main thread. */
#define LEASE_SIG (SIGRTMIN + 1)

/* The main thread takes TERM, INT, HUP and the lease signals with
 * sigwaitinfo, and every thread we start blocks them; a thread a library
 * started before main (OpenBLAS's pool) does not, and a process-directed
 * signal may land there while the main thread is busy (a reload). Forward it
 * to the main thread, where it stays pending until sigwaitinfo takes it,
 * instead of letting the default action end the process without a drain
 * (a forwarded lease signal loses its si_fd: every lease is checked). */
static void forward_to_main(int sig) {
    (void)pthread_kill(g_main_thread, sig);
}

static int write_port_file(const char *path, int port) {
    af_file f;
    if (af_open(&f, path, NULL) != TR_OK) return -1;
    fprintf(f.fp, "%d\n", port);
    return af_commit(&f, NULL) == TR_OK ? 0 : -1;
}

/* Block the signals before any thread of ours starts (the log writer is the
 * first): this thread sigwaits for them, and a signal delivered to another
 * thread is forwarded here. Lease breaks are sent to this thread; SIGIO
 * stands for them when the real-time signal queue is full. */
static void block_signals(sigset_t *sigs) {
    const int take[] = {SIGTERM, SIGINT, SIGHUP, LEASE_SIG, SIGIO};
    g_main_thread = pthread_self();
    sigemptyset(sigs);
    struct sigaction fwd;
    memset(&fwd, 0, sizeof fwd);
    fwd.sa_handler = forward_to_main;
    sigemptyset(&fwd.sa_mask);
    for (size_t i = 0; i < sizeof take / sizeof take[0]; i++) {
        sigaddset(sigs, take[i]);
        sigaction(take[i], &fwd, NULL);
    }
    pthread_sigmask(SIG_BLOCK, sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    fmap_lease_setup(LEASE_SIG, gettid());
}

/* A process is opening or truncating the mapped gallery file: serve a
 * private copy of what was loaded, then let the writer go on. fd is the
 * lease's (si_fd), or -1 to check every lease (SIGIO, a forwarded signal). */
static void on_lease_break(int fd) {
    char moved[600];
    tr_err err;
    tr_clearerr(&err);
    int rc = fmap_lease_break(fd, moved, sizeof moved, &err);
    if (moved[0])
        srv_log_msg(
            "warn",
            "gallery file %s is being written: serving a private copy of the old one; reload to map the new file",
            moved);
    if (rc != TR_OK) srv_log_msg("error", "gallery file being written: %s", err.msg);
}

/* SIGHUP: reload the model and gallery, the API keys and the TLS
 * certificate; each failure keeps the old one. */
static void on_sighup(const srv_config *cfg, srv_http *http) {
    tr_err err;
    tr_clearerr(&err);
    int rc = srv_state_reload(cfg, NULL, NULL, &err);
    srv_metrics_reload(rc == TR_OK);
    if (rc == TR_OK) {
        srv_state *now = srv_state_acquire();
        srv_log_msg("info", "SIGHUP: reloaded %s (%s)", now->model_path, now->model->sha256);
        srv_state_unref(now);
    } else
        srv_log_msg("error", "SIGHUP: reload failed, keeping the old model: %s", err.msg);
    if (cfg->api_keys_file) {
        tr_clearerr(&err);
        if (srv_keys_reload(cfg, &err) == TR_OK)
            srv_log_msg("info", "SIGHUP: reloaded the API keys");
        else
            srv_log_msg("error", "SIGHUP: API keys reload failed, keeping the old keys: %s", err.msg);
    }
    if (srv_http_has_tls(http)) {
        tr_clearerr(&err);
        if (srv_http_tls_reload(http, cfg, &err) == TR_OK)
            srv_log_msg("info", "SIGHUP: reloaded the TLS certificate and key");
        else
            srv_log_msg("error", "SIGHUP: TLS reload failed, keeping the old certificate: %s", err.msg);
    }
}

/* Serve until SIGTERM or SIGINT, then drain. */
static void serve(const srv_config *cfg, srv_http *http, int port, const sigset_t *sigs) {
    srv_state *st = srv_state_acquire(); /* install gave our reference away: a reload may already have freed it */
    printf("tripletd %s listening on http://%s:%d (model %s, %d -> %d, %s)\n", SRV_VERSION, cfg->host, port,
           st->model->name, mdl_input_dim(st->model), mdl_output_dim(st->model), st->model->sha256);
    fflush(stdout);
    srv_log_msg("info", "listening on %s:%d with %d threads; model %s (%s)", cfg->host, port, cfg->threads, cfg->model,
                st->model->sha256);
    srv_state_unref(st);
    int sig;
    for (;;) {
        siginfo_t si;
        if ((sig = sigwaitinfo(sigs, &si)) < 0) continue;
        if (sig == LEASE_SIG || sig == SIGIO)
            on_lease_break(sig == LEASE_SIG && si.si_code == POLL_MSG ? si.si_fd : -1);
        else if (sig == SIGHUP)
            on_sighup(cfg, http);
        else
            break;
    }
    srv_log_msg("info", "%s: draining (up to %gs)", sig == SIGINT ? "SIGINT" : "SIGTERM", cfg->drain_timeout);
    srv_http_quiesce(http);
    int left = srv_http_drain(http, cfg->drain_timeout);
    if (left > 0) srv_log_msg("warn", "drain timeout: %d requests still in flight are cut", left);
}

int main(int argc, char **argv) {
    srv_config cfg;
    tr_err err;
    srv_state *st = NULL;
    srv_http *http = NULL;
    sigset_t sigs;
    char warn[300];
    int port = 0, rc = srv_config_parse(&cfg, argc, argv, &err);
    if (rc > 0) return 0;
    if (rc < 0) {
        fprintf(stderr, "tripletd: %s\n", err.msg);
        return 2;
    }
    block_signals(&sigs);
    if (srv_log_init(cfg.log_format, cfg.log_flush_ms) != 0)
        fprintf(stderr, "tripletd: cannot start the log writer thread; writing each access line at once\n");
    srv_alloc_install();
    openblas_set_num_threads(1);
    rc = 2;
    if (srv_state_load(&cfg, cfg.model, cfg.gallery, &st, &err) != TR_OK) goto done;
    srv_state_install(st);
    if (srv_keys_init(&cfg, warn, sizeof warn, &err) != TR_OK) goto done;
    if (warn[0]) srv_log_msg("warn", "%s", warn);
    if (srv_http_start(&cfg, &http, &port, &err) != TR_OK) goto done;
    if (cfg.port_file && write_port_file(cfg.port_file, port) != 0) {
        tr_seterr(&err, TR_EIO, "port-file", "--port-file %s: %s", cfg.port_file, strerror(errno));
        goto done;
    }
    serve(&cfg, http, port, &sigs);
    rc = 0;
done:
    if (rc) fprintf(stderr, "tripletd: %s\n", err.msg);
    srv_http_stop(http);
    srv_keys_free();
    srv_state_install(NULL);
    if (rc == 0) srv_log_msg("info", "stopped");
    srv_log_close();
    srv_config_free(&cfg);
    srv_alloc_thread_release();
    return rc;
}
