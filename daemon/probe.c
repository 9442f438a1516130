/* probe.c: a polite check for a live daemon on a Unix socket (see probe.h).
 *
 * The SP handshake is 8 bytes each way: 0x00 'S' 'P' 0x00, the 16-bit
 * protocol number, two reserved zero bytes. We speak as a REQ peer (0x30),
 * send our header, and wait (bounded) for the peer's before closing. */
#include <errno.h>
#include <stdbool.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "probe.h"

static const unsigned char req0_header[8] = {0x00, 'S', 'P', 0x00, 0x00, 0x30, 0x00, 0x00};

/* Wait for the peer's 8-byte header; false on EOF or the timeout. */
static bool await_header(int fd, int timeout_ms)
{
    unsigned char got[8];
    size_t have = 0;
    while (have < sizeof(got)) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int n = poll(&p, 1, timeout_ms);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        ssize_t r = recv(fd, got + have, sizeof(got) - have, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        have += (size_t) r;
    }
    return got[0] == 0x00 && got[1] == 'S' && got[2] == 'P' && got[3] == 0x00;
}

/* Poll wait->done for up to timeout_ms, holding the connection open. */
static bool await_done(const struct probe_wait *wait, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited++) {
        if (wait->done(wait->arg))
            return true;
        struct timespec ms = {.tv_sec = 0, .tv_nsec = 1000000};
        nanosleep(&ms, NULL);
    }
    return false;
}

enum probe_result probe_ipc(const char *path, int timeout_ms, const struct probe_wait *wait,
                            char *why, size_t why_size)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) {
        snprintf(why, why_size, "socket path too long: %s", path);
        return PROBE_ERROR;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);

    /* Non-blocking: a live daemon with a full backlog must not stall us. */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        snprintf(why, why_size, "socket: %s", strerror(errno));
        return PROBE_ERROR;
    }
    enum probe_result res;
    if (connect(fd, (const struct sockaddr *) &sa, sizeof(sa)) == 0) {
        /* MSG_NOSIGNAL: the peer may be gone already. */
        bool sent = send(fd, req0_header, sizeof(req0_header), MSG_NOSIGNAL) ==
                    (ssize_t) sizeof(req0_header);
        res = sent && await_header(fd, timeout_ms) ? PROBE_LIVE : PROBE_SILENT;
        if (res == PROBE_LIVE && wait != NULL && !await_done(wait, timeout_ms))
            res = PROBE_SILENT;
    } else if (errno == EAGAIN) {
        res = PROBE_SILENT; /* bound, with a backlog nobody drains */
    } else if (errno == ENOENT || errno == ECONNREFUSED) {
        res = PROBE_ABSENT;
    } else {
        snprintf(why, why_size, "connect %s: %s", path, strerror(errno));
        res = PROBE_ERROR;
    }
    close(fd);
    return res;
}
