/* fake_server.c: a stand-in daemon made of a bare NNG REP socket, for the
 * behaviour a well-behaved kilnd never shows: silence (timeouts), replies
 * that are not msgpack (protocol errors), refusals with any code and any
 * bytes in the text (error replies), and a minimal daemon whose HELLO
 * picks any protocol version and whose name is whatever a test wants.
 *
 * Error replies are packed by hand rather than with
 * proto_encode_reply_error(), which rightly refuses codes a kilnd must not
 * send: a client has to cope with them anyway. */
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
    uint32_t proto;
    int code;
    char server[KILN_LIMIT_NAME + 1];
    char field[PROTO_FIELD_MAX];
    char message[PROTO_MESSAGE_MAX];
    bool own_dir; /* dir was made here and is removed by stop */
    char dir[64];
    char address[256];
    pthread_mutex_t lock; /* guards the counters below */
    unsigned count[PROTO_KIND_END];
    uint64_t last_session[PROTO_KIND_END];
};

static int pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    return msgpack_pack_str(pk, n) | msgpack_pack_str_body(pk, s, n);
}

static int pack_error(msgpack_sbuffer *sb, const struct fake_server *f)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    int rc = msgpack_pack_array(&pk, 2) | msgpack_pack_int(&pk, f->code) | msgpack_pack_map(&pk, 4);
    rc |= pack_str(&pk, "name") | pack_str(&pk, kiln_err_name(f->code));
    rc |= pack_str(&pk, "message") | pack_str(&pk, f->message);
    rc |= pack_str(&pk, "field") | pack_str(&pk, f->field);
    rc |= pack_str(&pk, "node") | msgpack_pack_int64(&pk, -1);
    return rc == 0 ? KILN_OK : KILN_ENOMEM;
}

/* FAKE_SERVE: a reply to each kind, as a kilnd would give it. */
static int serve(msgpack_sbuffer *sb, const struct fake_server *f, int kind)
{
    if (kind == PROTO_HELLO) {
        struct proto_hello_reply h = {
            .proto = f->proto,
            .session = FAKE_SESSION,
            .idle_timeout_ms = 60000,
        };
        snprintf(h.server, sizeof(h.server), "%s", f->server);
        proto_limits_default(&h.limits);
        return proto_encode_reply_hello(sb, &h);
    }
    if (kind == PROTO_STATUS) {
        struct proto_status s = {.proto_min = 1, .proto_max = 1, .pid = getpid(), .workers = 1};
        snprintf(s.server, sizeof(s.server), "%s", f->server);
        /* A device and a reason in the daemon's own words: the name too. */
        s.has_devices = true;
        s.ndevices = 1;
        size_t n = strlen(f->server) < sizeof(s.devices[0].name) ? strlen(f->server)
                                                                 : sizeof(s.devices[0].name) - 1;
        memcpy(s.devices[0].name, f->server, n);
        s.devices[0].cc_major = 9;
        s.devices[0].memory = (uint64_t) 80 << 30;
        snprintf(s.nvrtc_why, sizeof(s.nvrtc_why), "%s", f->server);
        return proto_encode_reply_status(sb, &s);
    }
    if (kind == PROTO_PING && f->code != 0)
        return pack_error(sb, f);
    return proto_encode_reply_empty(sb);
}

/* Count the request in msg and replace it with the reply for f->mode;
 * false to send nothing. */
static bool fake_reply(struct fake_server *f, nng_msg *msg)
{
    struct proto_request req;
    struct proto_error pe;
    int kind = 0;
    if (proto_request_decode(&req, nng_msg_body(msg), nng_msg_len(msg), &pe) == KILN_OK) {
        kind = req.kind;
        pthread_mutex_lock(&f->lock);
        f->count[kind]++;
        f->last_session[kind] = req.session;
        pthread_mutex_unlock(&f->lock);
        proto_request_fini(&req);
    }
    nng_msg_clear(msg);
    if (f->mode == FAKE_SILENT)
        return false;
    if (f->mode == FAKE_GARBAGE)
        return nng_msg_append(msg, "\xc1\xc1garbage", 9) == 0;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    int rc = f->mode == FAKE_REFUSE ? pack_error(&sb, f) : serve(&sb, f, kind);
    bool ok = rc == KILN_OK && nng_msg_append(msg, sb.data, sb.size) == 0;
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
        if (!fake_reply(f, msg) || nng_sendmsg(f->sock, msg, 0) != 0)
            nng_msg_free(msg);
    }
}

static void fake_free(struct fake_server *f)
{
    if (f->own_dir)
        rmdir(f->dir);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

struct fake_server *fake_server_start_with(const struct fake_config *cfg)
{
    struct fake_server *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL;
    pthread_mutex_init(&f->lock, NULL);
    f->mode = cfg->mode;
    f->proto = cfg->proto ? cfg->proto : 1;
    f->code = cfg->code;
    snprintf(f->server, sizeof(f->server), "%s", cfg->server ? cfg->server : "fake kilnd");
    if (f->mode == FAKE_REFUSE && f->code == 0) {
        f->code = KILN_EAUTH;
        snprintf(f->field, sizeof(f->field), "body.token");
        snprintf(f->message, sizeof(f->message), "token refused by the fake daemon");
    }
    if (cfg->field != NULL)
        snprintf(f->field, sizeof(f->field), "%s", cfg->field);
    if (cfg->message != NULL)
        snprintf(f->message, sizeof(f->message), "%s", cfg->message);
    if (cfg->address != NULL) {
        snprintf(f->address, sizeof(f->address), "%s", cfg->address);
    } else {
        snprintf(f->dir, sizeof(f->dir), "/tmp/kiln-fake-XXXXXX");
        if (mkdtemp(f->dir) == NULL) {
            fake_free(f);
            return NULL;
        }
        f->own_dir = true;
        snprintf(f->address, sizeof(f->address), "ipc://%s/fake.sock", f->dir);
    }
    if (nng_rep0_open(&f->sock) != 0) {
        fake_free(f);
        return NULL;
    }
    if (nng_listen(f->sock, f->address, NULL, 0) != 0 ||
        pthread_create(&f->thread, NULL, fake_loop, f) != 0) {
        nng_close(f->sock);
        fake_free(f);
        return NULL;
    }
    return f;
}

struct fake_server *fake_server_start(enum fake_mode mode)
{
    return fake_server_start_with(&(struct fake_config){.mode = mode});
}

const char *fake_server_address(const struct fake_server *f)
{
    return f->address;
}

unsigned fake_server_requests(struct fake_server *f, int kind, uint64_t *session)
{
    if (kind <= 0 || kind >= PROTO_KIND_END)
        return 0;
    pthread_mutex_lock(&f->lock);
    unsigned n = f->count[kind];
    if (session != NULL)
        *session = f->last_session[kind];
    pthread_mutex_unlock(&f->lock);
    return n;
}

void fake_server_stop(struct fake_server *f)
{
    if (f == NULL)
        return;
    nng_close(f->sock); /* makes the loop's nng_recvmsg fail */
    pthread_join(f->thread, NULL);
    if (strncmp(f->address, "ipc://", 6) == 0)
        unlink(f->address + 6);
    fake_free(f);
}
