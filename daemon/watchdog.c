/* watchdog.c: probe ipc:// listeners and reopen one that stopped
 * accepting (see watchdog.h for the NNG bug this works around). */
#include <string.h>

#include "watchdog.h"

static bool is_ipc(const char *addr)
{
    return strncmp(addr, "ipc://", 6) == 0;
}

/* Worker thread: has the socket attached our probe's connection? The
 * transport may accept and handshake while the socket above it no longer
 * takes connections in; only the attach proves the listener is well. */
static bool wd_attached(void *arg)
{
    struct wd *wd = arg;
    return srv_own_pipes(wd->srv) > wd->own_before;
}

/* Worker thread: the blocking probe. */
static void wd_work(uv_work_t *req)
{
    struct wd *wd = req->data;
    char why[256];
    struct probe_wait wait = {.done = wd_attached, .arg = wd};
    wd->result = probe_ipc(wd->path, WD_PROBE_TIMEOUT_MS, &wait, why, sizeof(why));
}

/* Loop thread: act on the probe's result. */
static void wd_after(uv_work_t *req, int status)
{
    struct wd *wd = req->data;
    wd->busy = false;
    if (status != 0 || wd->stopped || wd->probing >= wd->srv->nlisteners)
        return;
    if (wd->result == PROBE_LIVE || wd->result == PROBE_ERROR)
        return; /* healthy, or a local problem (no fds) that reopening would not fix */
    const char *addr = wd->srv->listeners[wd->probing].addr;
    struct log_line l;
    log_begin(&l, wd->log, LOG_WARN,
              "ipc listener stopped accepting (a peer hung up mid-handshake): reopening it");
    log_str(&l, "address", addr);
    log_end(&l);
    int rv = srv_relisten(wd->srv, wd->probing);
    wd->restarts++;
    if (rv != 0) {
        log_begin(&l, wd->log, LOG_ERROR, "cannot reopen the listener");
        log_str(&l, "address", addr);
        log_str(&l, "error", nng_strerror(rv));
        log_end(&l);
    }
}

static void wd_tick(uv_timer_t *h)
{
    struct wd *wd = h->data;
    struct srv *srv = wd->srv;
    if (wd->busy || wd->stopped || srv->nlisteners == 0)
        return;
    /* Find the next ipc:// listener, round robin. */
    for (size_t n = 0; n < srv->nlisteners; n++) {
        size_t i = (wd->next + n) % srv->nlisteners;
        const char *addr = srv->listeners[i].addr;
        if (!is_ipc(addr) || strlen(addr + 6) >= sizeof(wd->path))
            continue;
        memcpy(wd->path, addr + 6, strlen(addr + 6) + 1);
        wd->probing = i;
        wd->next = i + 1;
        wd->own_before = srv_own_pipes(srv);
        wd->work.data = wd;
        if (uv_queue_work(wd->loop, &wd->work, wd_work, wd_after) == 0)
            wd->busy = true;
        return;
    }
}

int wd_init(struct wd *wd, uv_loop_t *loop, struct srv *srv, const struct log *log)
{
    memset(wd, 0, sizeof(*wd));
    wd->loop = loop;
    wd->srv = srv;
    wd->log = log;
    int rv = uv_timer_init(loop, &wd->timer);
    if (rv == 0) {
        wd->timer.data = wd;
        wd->timer_init = true;
    }
    return rv;
}

void wd_start(struct wd *wd, uint64_t every_ms)
{
    if (wd->timer_init)
        uv_timer_start(&wd->timer, wd_tick, every_ms, every_ms);
}

void wd_stop(struct wd *wd)
{
    wd->stopped = true;
    if (wd->timer_init)
        uv_timer_stop(&wd->timer);
}
