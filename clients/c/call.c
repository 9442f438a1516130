/* call.c: one request and its reply.
 *
 * The request has already been encoded into the connection's buffer; this
 * file moves it through NNG and decodes what comes back. The reply is
 * decoded in place (proto_reply_decode points into the NNG message), so
 * the message lives as long as the decoded reply: client_reply_fini()
 * frees both. req0 matches replies to requests, so a reply that arrives
 * after its request timed out is dropped by NNG, never mistaken for the
 * reply to the next request. */
#include <string.h>

#include "client_impl.h"

int client_call(struct kiln_conn *c, int kind, struct client_reply *out, struct kiln_error *err)
{
    memset(out, 0, sizeof(*out));
    nng_msg *req;
    int rv = nng_msg_alloc(&req, 0);
    if (rv == 0 && (rv = nng_msg_append(req, c->sb.data, c->sb.size)) != 0)
        nng_msg_free(req);
    if (rv != 0)
        return client_error_from_nng(err, rv, "encode", c->address);
    /* On success NNG owns the request; on failure we still do. */
    if ((rv = nng_sendmsg(c->sock, req, 0)) != 0) {
        nng_msg_free(req);
        return client_error_from_nng(err, rv, "send", c->address);
    }
    if ((rv = nng_recvmsg(c->sock, &out->msg, 0)) != 0)
        return client_error_from_nng(err, rv, "receive", c->address);

    struct proto_error pe = {.code = KILN_EPROTO}; /* in case the decoder leaves it */
    int rc =
        proto_reply_decode(&out->rep, kind, nng_msg_body(out->msg), nng_msg_len(out->msg), &pe);
    if (rc != KILN_OK) {
        nng_msg_free(out->msg);
        out->msg = NULL;
        return client_error_from_decode(err, &pe);
    }
    if (out->rep.code != KILN_OK) {
        rc = client_error_from_proto(err, &out->rep.error);
        client_reply_fini(out);
        return rc;
    }
    return KILN_OK;
}

void client_reply_fini(struct client_reply *r)
{
    proto_reply_fini(&r->rep);
    if (r->msg != NULL)
        nng_msg_free(r->msg);
    r->msg = NULL;
}
