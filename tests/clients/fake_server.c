/* fake_server.c: a stand-in daemon made of a bare NNG REP socket, for the
 * failures a well-behaved kilnd never shows: silence (timeouts), replies
 * that are not msgpack (protocol errors) and refusals (error replies). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>

#include "fixture.h"
#include "proto.h"

struct fake_server {
    nng_socket sock;
    pthread_t thread;
    enum fake_mode mode;
    char dir[64];
    char address[128];
};

/* Fill msg with the reply for f->mode; false to send nothing. */
static bool fake_reply(const struct fake_server *f, nng_msg *msg)
{
    nng_msg_clear(msg);
    if (f->mode == FAKE_GARBAGE)
        return nng_msg_append(msg, "\xc1\xc1garbage", 9) == 0;
    struct proto_error e;
    proto_error_set(&e, KILN_EAUTH, "body.token", "token refused by the fake daemon");
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    bool ok =
        proto_encode_reply_error(&sb, &e) == KILN_OK && nng_msg_append(msg, sb.data, sb.size) == 0;
    msgpack_sbuffer_destroy(&sb);
    return ok;
}

static void *fake_loop(void *arg)
{
    struct fake_server *f = arg;
    for (;;) {
        nng_msg *msg;
        if (nng_recvmsg(f->sock, &msg, 0) != 0)
            return NULL; /* closed: we are being stopped */
        if (f->mode == FAKE_SILENT || !fake_reply(f, msg) || nng_sendmsg(f->sock, msg, 0) != 0)
            nng_msg_free(msg);
    }
}

struct fake_server *fake_server_start(enum fake_mode mode)
{
    struct fake_server *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL;
    f->mode = mode;
    snprintf(f->dir, sizeof(f->dir), "/tmp/kiln-fake-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return NULL;
    }
    snprintf(f->address, sizeof(f->address), "ipc://%s/fake.sock", f->dir);
    if (nng_rep0_open(&f->sock) != 0) {
        rmdir(f->dir);
        free(f);
        return NULL;
    }
    if (nng_listen(f->sock, f->address, NULL, 0) != 0 ||
        pthread_create(&f->thread, NULL, fake_loop, f) != 0) {
        nng_close(f->sock);
        rmdir(f->dir);
        free(f);
        return NULL;
    }
    return f;
}

const char *fake_server_address(const struct fake_server *f)
{
    return f->address;
}

void fake_server_stop(struct fake_server *f)
{
    if (f == NULL)
        return;
    nng_close(f->sock); /* makes the loop's nng_recvmsg fail */
    pthread_join(f->thread, NULL);
    char path[128];
    snprintf(path, sizeof(path), "%s/fake.sock", f->dir);
    unlink(path);
    rmdir(f->dir);
    free(f);
}
