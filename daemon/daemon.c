/* daemon.c: start-up, signals, timers and the shutdown sequence.
 *
 * Shutdown is two-phase. The first SIGTERM/SIGINT starts draining: the
 * listeners close (no new connections), new work is refused with
 * KILN_ESHUTDOWN, and a short timer polls until no request is between
 * receipt and reply, or DRAIN_GRACE_MS has passed. Then the loop stops and
 * the teardown runs in the order NNG and libuv need: close the socket and
 * stop every aio (srv_fini), close every libuv handle and let the loop
 * finish closing them, free the sessions, and finally nng_fini() so that
 * NNG's threads are gone before exit (leak checkers see nothing). A second
 * signal skips all that and exits at once. */
#include <malloc.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "kiln_err.h"
#include "dispatch.h"
#include "probe.h"
#include "rundir.h"
#include "server.h"
#include "watchdog.h"
#include "auth.h"
#include "cuda_dl.h"
#include "relay.h"
#include "spill.h"

#define DRAIN_GRACE_MS 2000
/* After the device failed, clients get this long to FETCH their failed
 * steps' DEVICE errors (a client usually FETCHes right after it SUBMITs)
 * before the daemon drains and exits. */
#define DEVICE_EXIT_GRACE_MS 1000
#define DRAIN_POLL_MS  10
#define PROBE_TIMEOUT_MS 1000 /* for a live daemon's handshake */

/* A session whose connection closed ends this long after (the client may
 * reconnect meanwhile), checked every SWEEP_MAX_MS at most: released
 * within 1.25 s of a crash. */
#define ORPHAN_GRACE_MS 1000
#define SWEEP_MAX_MS    250

struct kilnd {
    const struct cfg *cfg;
    struct log log;
    uv_loop_t loop;
    struct srv srv;
    struct sess_table sessions;
    struct stats stats;
    struct disp disp;
    struct exec exec;
    struct spill spill; /* the disk tier under the memory budget */
    uv_signal_t sig_term, sig_int;
    uv_timer_t sweep; /* ends idle sessions */
    uv_timer_t drain; /* polls for the end of draining */
    uv_timer_t device_exit; /* after a device failure: the grace before draining */
    struct wd watchdog; /* reopens ipc:// listeners NNG 1.5.2 wedges */
    struct auth auth;   /* users and tokens (--config) */
    struct jit_cuda *cuda; /* the CUDA driver and NVRTC if present (start_cuda) */
    uint64_t drain_started_ms;
    bool device_failed; /* a sticky CUDA error: exit with KILND_EXIT_DEVICE */
    uint64_t trim_closed, trim_in_use; /* sessions ended and bytes held at the last trim */
};

static const char *signal_name(int signum)
{
    return signum == SIGTERM ? "SIGTERM" : signum == SIGINT ? "SIGINT" : "signal";
}

static void on_drain_tick(uv_timer_t *h)
{
    struct kilnd *kd = h->data;
    bool idle = srv_idle(&kd->srv);
    if (!idle && uv_now(&kd->loop) - kd->drain_started_ms < DRAIN_GRACE_MS)
        return;
    struct log_line l;
    log_begin(&l, &kd->log, idle ? LOG_INFO : LOG_WARN,
              idle ? "drained" : "drain grace over: dropping requests in flight");
    log_u64(&l, "sessions", sess_count(&kd->sessions));
    log_end(&l);
    uv_stop(&kd->loop);
}

static void drain(struct kilnd *kd)
{
    kd->disp.draining = true;
    exec_drain(&kd->exec);
    wd_stop(&kd->watchdog);
    srv_stop_listening(&kd->srv);
    kd->drain_started_ms = uv_now(&kd->loop);
    uv_timer_start(&kd->drain, on_drain_tick, 0, DRAIN_POLL_MS);
}

static void on_device_exit(uv_timer_t *h)
{
    struct kilnd *kd = h->data;
    if (!kd->disp.draining)
        drain(kd);
}

/* The CUDA device failed (exec.h): the steps that were on it have failed
 * with DEVICE, and so does every later step that asks for the device.
 * Nothing more may run on a context that can no longer be trusted: after
 * DEVICE_EXIT_GRACE_MS, in which clients can still FETCH their DEVICE
 * errors, the daemon drains and exits with KILND_EXIT_DEVICE for its
 * supervisor to restart it. */
static void on_device_failed(void *arg, const char *why)
{
    struct kilnd *kd = arg;
    struct log_line l;
    log_begin(&l, &kd->log, LOG_ERROR, "the CUDA device failed: draining, then exiting for a restart");
    log_str(&l, "error", why);
    log_u64(&l, "exit_status", KILND_EXIT_DEVICE);
    log_end(&l);
    kd->device_failed = true;
    uv_timer_start(&kd->device_exit, on_device_exit, DEVICE_EXIT_GRACE_MS, 0);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct kilnd *kd = h->data;
    if (kd->disp.draining) {
        /* The operator insists: no clean-up, no atexit handlers. (libuv
         * runs this on the loop thread, so logging is safe here.) */
        struct log_line l;
        log_begin(&l, &kd->log, LOG_WARN, "second signal: exiting at once");
        log_str(&l, "signal", signal_name(signum));
        log_end(&l);
        _exit(1);
    }
    struct log_line l;
    log_begin(&l, &kd->log, LOG_INFO, "shutting down");
    log_str(&l, "signal", signal_name(signum));
    log_end(&l);
    drain(kd);
}

/* Memory freed since the last trim (sessions that ended, tensors
 * released) goes back to the OS: glibc keeps freed small blocks in its
 * arenas, and a long-running daemon's size should follow its clients. */
#define TRIM_FREED_BYTES (UINT64_C(1) << 20)

static void trim_if_freed(struct kilnd *kd)
{
    uint64_t closed = kd->sessions.opened_total - sess_count(&kd->sessions);
    uint64_t in_use = kd->sessions.mem_in_use;
    if (closed != kd->trim_closed || in_use + TRIM_FREED_BYTES < kd->trim_in_use) {
        malloc_trim(0);
        kd->trim_closed = closed;
        kd->trim_in_use = in_use;
    } else if (in_use > kd->trim_in_use) {
        kd->trim_in_use = in_use; /* the high-water mark since the last trim */
    }
}

static void on_sweep(uv_timer_t *h)
{
    struct kilnd *kd = h->data;
    sess_expire(&kd->sessions, uv_now(&kd->loop), kd->cfg->idle_timeout_ms);
    sess_reap_orphans(&kd->sessions, uv_now(&kd->loop), ORPHAN_GRACE_MS);
    trim_if_freed(kd);
}

/* A connection closed: its sessions end ORPHAN_GRACE_MS later unless the
 * client reconnects (NNG redials by itself) and speaks again. */
static void on_gone(void *arg, uint32_t pipe)
{
    struct kilnd *kd = arg;
    sess_orphan(&kd->sessions, pipe, uv_now(&kd->loop));
}

/* Sweep often enough that a session ends within a quarter of its timeout
 * after expiring, and an orphan within SWEEP_MAX_MS after its grace, but
 * at most once every 50 ms. */
static uint64_t sweep_interval_ms(uint64_t idle_ms)
{
    uint64_t ms = idle_ms / 4;
    return ms < 50 ? 50 : ms > SWEEP_MAX_MS ? SWEEP_MAX_MS : ms;
}

/* The default address, after making sure its directory is private. */
static bool default_address(struct kilnd *kd, char *addr, size_t size)
{
    char dir[256], why[512];
    if (kiln_runtime_dir(dir, sizeof(dir)) != KILN_OK || kiln_ipc_address(addr, size) != KILN_OK) {
        log_msg(&kd->log, LOG_ERROR, "the runtime directory path is too long: use --listen");
        return false;
    }
    if (rundir_prepare(dir, why, sizeof(why)) != 0) {
        struct log_line l;
        log_begin(&l, &kd->log, LOG_ERROR, "unsafe or unusable runtime directory");
        log_str(&l, "error", why);
        log_end(&l);
        return false;
    }
    return true;
}

static bool listen_on(struct kilnd *kd, const char *addr)
{
    struct log_line l;
    if (strncmp(addr, "tcp://", 6) == 0) {
        log_begin(&l, &kd->log, LOG_WARN,
                  "tcp has no authentication yet: anyone who can reach this address can use "
                  "the daemon");
        log_str(&l, "address", addr);
        log_end(&l);
    }
    if (strncmp(addr, "ipc://", 6) == 0) {
        char why[256];
        switch (probe_ipc(addr + 6, PROBE_TIMEOUT_MS, NULL, why, sizeof(why))) {
        case PROBE_ABSENT:
            break;
        case PROBE_LIVE:
        case PROBE_SILENT: /* bound by a process that does not answer: still in use */
            log_begin(&l, &kd->log, LOG_ERROR,
                      "address in use: another daemon is already listening there");
            log_str(&l, "address", addr);
            log_end(&l);
            return false;
        case PROBE_ERROR:
            log_begin(&l, &kd->log, LOG_WARN, "cannot tell whether the address is in use");
            log_str(&l, "address", addr);
            log_str(&l, "error", why);
            log_end(&l);
            break;
        }
    }
    int rv = srv_listen(&kd->srv, addr);
    if (rv == 0)
        return true;
    if (rv == NNG_EADDRINUSE) {
        log_begin(&l, &kd->log, LOG_ERROR,
                  "address in use: another daemon is already listening there");
    } else {
        log_begin(&l, &kd->log, LOG_ERROR, "cannot listen");
        log_str(&l, "error", nng_strerror(rv));
    }
    log_str(&l, "address", addr);
    log_end(&l);
    return false;
}

/* Where cc-compiled kernels are kept unless --cache-dir says: the XDG
 * cache directory, else ~/.cache, else the private runtime directory;
 * NULL when none can be named. jit/cc.c makes it 0700. */
static const char *default_cache_dir(char *buf, size_t n)
{
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    int len = -1;
    char run[256];
    if (xdg != NULL && xdg[0] == '/')
        len = snprintf(buf, n, "%s/kiln", xdg);
    else if (home != NULL && home[0] == '/')
        len = snprintf(buf, n, "%s/.cache/kiln", home);
    else if (kiln_runtime_dir(run, sizeof run) == KILN_OK)
        len = snprintf(buf, n, "%s/cache", run);
    return len > 0 && (size_t) len < n ? buf : NULL;
}

/* Where tensors spill unless --spill-dir says: a private directory under
 * $TMPDIR, else /var/tmp (a disk on most systems, where /tmp and the
 * runtime directory are often tmpfs, which is memory). */
static const char *default_spill_dir(char *buf, size_t n)
{
    const char *tmp = getenv("TMPDIR");
    int len = snprintf(buf, n, "%s/kiln-spill-%u", tmp != NULL && tmp[0] == '/' ? tmp : "/var/tmp",
                       (unsigned) geteuid());
    return len > 0 && (size_t) len < n ? buf : NULL;
}

/* Users from --config, and the rule that a tcp:// listener without them
 * needs --allow-anonymous. */
static bool start_auth(struct kilnd *kd)
{
    const struct cfg *cfg = kd->cfg;
    auth_init_open(&kd->auth);
    if (cfg->config_path != NULL) {
        char why[512];
        if (auth_load(cfg->config_path, &kd->auth, why, sizeof why) != 0) {
            struct log_line l;
            log_begin(&l, &kd->log, LOG_ERROR, "bad configuration file");
            log_str(&l, "error", why);
            log_end(&l);
            return false;
        }
        struct log_line l;
        log_begin(&l, &kd->log, LOG_INFO, "configuration loaded");
        log_str(&l, "file", cfg->config_path);
        log_u64(&l, "users", kd->auth.nusers);
        log_end(&l);
    }
    for (size_t i = 0; i < cfg->nlisten; i++) {
        const char *a = cfg->listen[i];
        bool remote = strncmp(a, "ipc://", 6) != 0 && strncmp(a, "inproc://", 9) != 0;
        if (remote && !cfg->allow_anonymous && (!kd->auth.configured || kd->auth.nusers == 0)) {
            struct log_line l;
            log_begin(&l, &kd->log, LOG_ERROR,
                      "a network listener needs users with tokens (--config FILE) or "
                      "--allow-anonymous");
            log_str(&l, "address", a);
            log_end(&l);
            return false;
        }
    }
    return true;
}

/* Loads the CUDA driver and NVRTC if this machine has them and logs what
 * was found; STATUS reports it (devices). Nothing here can stop the
 * daemon: without them it runs on the CPU. */
static bool start_cuda(struct kilnd *kd)
{
    if (jit_cuda_open(JIT_CUDA_DRIVER | JIT_CUDA_NVRTC, &kd->cuda) != KILN_OK) {
        log_msg(&kd->log, LOG_ERROR, "out of memory probing for CUDA");
        return false;
    }
    const struct jit_cuda_info *in = jit_cuda_info(kd->cuda);
    kd->disp.cuda = in;
    struct log_line l;
    for (uint32_t k = 0; k < in->ndevices; k++) {
        log_begin(&l, &kd->log, LOG_INFO, "CUDA device");
        log_u64(&l, "index", k);
        log_str(&l, "name", in->devices[k].name);
        log_u64(&l, "cc_major", (uint64_t) in->devices[k].cc_major);
        log_u64(&l, "cc_minor", (uint64_t) in->devices[k].cc_minor);
        log_u64(&l, "memory", in->devices[k].mem_total);
        log_end(&l);
    }
    if (in->ndevices == 0) {
        log_begin(&l, &kd->log, LOG_INFO, "no CUDA devices");
        log_str(&l, "why", in->why);
        log_end(&l);
    }
    log_begin(&l, &kd->log, LOG_INFO, in->nvrtc ? "NVRTC loaded" : "no NVRTC");
    if (in->nvrtc) {
        log_u64(&l, "major", (uint64_t) in->nvrtc_major);
        log_u64(&l, "minor", (uint64_t) in->nvrtc_minor);
    } else {
        log_str(&l, "why", in->nvrtc_why);
    }
    log_end(&l);
    return true;
}

/* Opens the first CUDA device for steps that ask for it. Without one
 * (none found, --cuda off, the driver refusing) steps run on the CPU:
 * logged, never fatal. */
static void start_gpu(struct kilnd *kd, const char *cache_dir)
{
    const struct jit_cuda_info *in = jit_cuda_info(kd->cuda);
    if (kd->cfg->no_cuda || in->ndevices == 0)
        return;
    char dir[600] = "";
    if (cache_dir != NULL)
        snprintf(dir, sizeof dir, "%s/cuda", cache_dir);
    struct jit_gpu_opts o = {.ordinal = 0, .mem_limit = kd->cfg->device_memory,
                             .cache_dir = dir[0] ? dir : NULL};
    char why[256] = "";
    int rc = exec_gpu_start(&kd->exec, kd->cuda, &o, why, sizeof why);
    struct log_line l;
    if (rc != KILN_OK) {
        log_begin(&l, &kd->log, LOG_WARN, "the CUDA device is not used: steps run on the CPU");
        log_str(&l, "why", rc == KILN_ENOMEM ? "out of memory" : why);
        log_end(&l);
        return;
    }
    kd->exec.device_failed = on_device_failed;
    kd->exec.device_failed_arg = kd;
    struct jit_gpu_stats st;
    jit_gpu_stats(kd->exec.gpu, &st);
    log_begin(&l, &kd->log, LOG_INFO, "steps that ask for CUDA run on the device");
    log_str(&l, "name", st.name);
    log_u64(&l, "multiprocessors", (uint64_t) st.sms);
    log_str(&l, "arch", st.arch);
    log_u64(&l, "pool_limit", st.pool_limit);
    log_end(&l);
}

static bool start(struct kilnd *kd)
{
    const struct cfg *cfg = kd->cfg;
    if (!start_auth(kd) || !start_cuda(kd))
        return false;
    char spill_dir[512];
    struct spill_opts so = {
        .dir = cfg->spill_dir ? cfg->spill_dir : default_spill_dir(spill_dir, sizeof spill_dir),
        .private_dir = cfg->spill_dir == NULL,
        .max = cfg->spill_max == CFG_SPILL_MAX_AUTO ? SPILL_MAX_AUTO : cfg->spill_max,
    };
    if (spill_init(&kd->spill, &kd->sessions, &kd->loop, &kd->log, &so) != 0)
        return false;
    if (srv_init(&kd->srv, &kd->loop, &kd->log, cfg->max_message, disp_request, &kd->disp) != 0)
        return false;
    srv_on_gone(&kd->srv, on_gone, kd);
    if (exec_init(&kd->exec, &kd->loop, &kd->sessions, &kd->srv, &kd->stats, &kd->log,
                  cfg->max_message) != 0) {
        log_msg(&kd->log, LOG_ERROR, "cannot create the executor's timer");
        return false;
    }
    kd->exec.workers = cfg->workers;
    kd->exec.look_ahead = cfg->look_ahead;
    if (!cfg->interpret) {
        /* The caller of each kernel works too: workers - 1 helpers fill
         * the machine. */
        char cache[512];
        struct exec_jit_opts jo = {
            .threads = cfg->workers > 1 ? cfg->workers - 1 : 0,
            .cc = !cfg->no_cc,
            .cache_dir = cfg->cache_dir ? cfg->cache_dir : default_cache_dir(cache, sizeof cache),
            .cc_threshold_ns = cfg->cc_threshold_ms * UINT64_C(1000000),
            .cache_max_bytes = cfg->cache_max,
        };
        int rc = exec_jit_start(&kd->exec, &jo);
        if (rc == KILN_EUNSUPPORTED) {
            log_msg(&kd->log, LOG_WARN,
                    "this host forbids writable+executable pages, which libtcc needs: "
                    "steps run on the reference interpreter (slow)");
        } else if (rc != KILN_OK) {
            log_msg(&kd->log, LOG_ERROR, "cannot start the JIT");
            return false;
        }
        if (rc == KILN_OK)
            start_gpu(kd, jo.cache_dir);
    }

    char def[256];
    const char *const *addrs = cfg->listen;
    size_t naddrs = cfg->nlisten;
    const char *one[1] = {def};
    if (naddrs == 0) {
        if (!default_address(kd, def, sizeof(def)))
            return false;
        addrs = one;
        naddrs = 1;
    }
    for (size_t i = 0; i < naddrs; i++) {
        if (!listen_on(kd, addrs[i]))
            return false;
    }

    if (uv_signal_start(&kd->sig_term, on_signal, SIGTERM) != 0 ||
        uv_signal_start(&kd->sig_int, on_signal, SIGINT) != 0) {
        log_msg(&kd->log, LOG_ERROR, "cannot install signal handlers");
        return false;
    }
    uint64_t every = sweep_interval_ms(cfg->idle_timeout_ms);
    uv_timer_start(&kd->sweep, on_sweep, every, every);
    srv_start(&kd->srv);
    wd_start(&kd->watchdog, WD_EVERY_MS_DEFAULT);

    struct log_line l;
    log_begin(&l, &kd->log, LOG_INFO, "kilnd started");
    log_str(&l, "version", KILN_VERSION);
    log_i64(&l, "pid", (int64_t) getpid());
    log_u64(&l, "workers", cfg->workers);
    log_u64(&l, "idle_timeout_ms", cfg->idle_timeout_ms);
    log_u64(&l, "memory_budget", cfg->mem_budget);
    log_u64(&l, "max_message", cfg->max_message);
    log_u64(&l, "look_ahead", cfg->look_ahead);
    log_end(&l);
    for (size_t i = 0; i < naddrs; i++) {
        log_begin(&l, &kd->log, LOG_INFO, "listening");
        log_str(&l, "address", addrs[i]);
        log_end(&l);
    }
    return true;
}

static void close_handle(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* Tear down in order; safe after a start that failed part way. */
/* During teardown the libuv signal handles are gone; a signal then still
 * means "exit at once", as documented. Async-signal-safe: only _exit. */
static void exit_at_once(int signum)
{
    (void) signum;
    _exit(1);
}

static void stop(struct kilnd *kd)
{
    wd_stop(&kd->watchdog);
    if (kd->exec.sessions != NULL) /* a start that failed before exec_init left it zeroed */
        exec_stop(&kd->exec);
    srv_fini(&kd->srv);
    uv_walk(&kd->loop, close_handle, NULL);
    signal(SIGTERM, exit_at_once);
    signal(SIGINT, exit_at_once);
    if (kd->exec.running > 0) {
        struct log_line l;
        log_begin(&l, &kd->log, LOG_INFO, "waiting for running steps to finish");
        log_u64(&l, "steps", kd->exec.running);
        log_end(&l);
    }
    uv_run(&kd->loop, UV_RUN_DEFAULT); /* close callbacks, and steps on workers */
    exec_jit_stop(&kd->exec);
    sess_table_fini(&kd->sessions);
    spill_fini(&kd->spill); /* after the vars: they give their extents back */
    auth_fini(&kd->auth);
    kd->disp.cuda = NULL;
    jit_cuda_close(kd->cuda);
    kd->cuda = NULL;
    if (uv_loop_close(&kd->loop) != 0)
        log_msg(&kd->log, LOG_ERROR, "libuv handles left open at exit");
    nng_fini();
}

/* Steps run on libuv's thread pool, which reads its size from the
 * environment when first used: one thread per worker, plus one for the
 * watchdog's probes, which may block for a second. An operator's own
 * UV_THREADPOOL_SIZE wins. */
static void size_thread_pool(const struct cfg *cfg)
{
    if (getenv("UV_THREADPOOL_SIZE") != NULL)
        return;
    char n[16];
    snprintf(n, sizeof(n), "%u", cfg->workers + 1);
    setenv("UV_THREADPOOL_SIZE", n, 0);
}

int kilnd_run(const struct cfg *cfg)
{
    struct kilnd kd;
    memset(&kd, 0, sizeof(kd));
    size_thread_pool(cfg);
    kd.cfg = cfg;
    log_init(&kd.log, cfg->log_level, STDERR_FILENO);
    int rv = uv_loop_init(&kd.loop);
    if (rv != 0) {
        log_msg(&kd.log, LOG_ERROR, "cannot create the event loop");
        return 1;
    }
    stats_init(&kd.stats, uv_now(&kd.loop));
    sess_table_init(&kd.sessions, cfg->mem_budget, &kd.log);
    /* The interpreter runs relays by their reference loops; the JIT needs
     * oneDNN for them to pay off, else their meta-op kernels are faster. */
    kd.sessions.lower_relays = cfg->no_relays || (!cfg->interpret && !jit_relay_has_library());
    kd.disp = (struct disp){
        .cfg = cfg,
        .log = &kd.log,
        .sessions = &kd.sessions,
        .stats = &kd.stats,
        .exec = &kd.exec,
        .loop = &kd.loop,
        .srv = &kd.srv,
        .auth = &kd.auth,
    };
    /* Handles first: initialising them cannot fail in a way that matters,
     * and stop() can then close whatever exists. */
    uv_signal_init(&kd.loop, &kd.sig_term);
    uv_signal_init(&kd.loop, &kd.sig_int);
    uv_timer_init(&kd.loop, &kd.sweep);
    uv_timer_init(&kd.loop, &kd.drain);
    uv_timer_init(&kd.loop, &kd.device_exit);
    kd.sig_term.data = kd.sig_int.data = kd.sweep.data = kd.drain.data = &kd;
    kd.device_exit.data = &kd;
    wd_init(&kd.watchdog, &kd.loop, &kd.srv, &kd.log);

    int status = 1;
    if (start(&kd)) {
        uv_run(&kd.loop, UV_RUN_DEFAULT);
        status = kd.device_failed ? KILND_EXIT_DEVICE : 0;
    }
    stop(&kd);
    if (status == 0)
        log_msg(&kd.log, LOG_INFO, "kilnd stopped");
    return status;
}
