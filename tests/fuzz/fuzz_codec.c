/* fuzz_codec.c: libFuzzer target for the protocol decoder.
 *
 * Every input is decoded as a request and as the reply to each request
 * kind. Nothing may crash, leak or read out of bounds (the sanitizers
 * check), every failure must carry a defined code, and a decoded request
 * must describe itself without trouble. Built with -Dfuzz=true under
 * clang; tests/fuzz/replay.c runs the saved corpus in every CI build. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct proto_request req;
    struct proto_error err;
    int rc = proto_request_decode(&req, data, size, &err);
    if (rc == KILN_OK) {
        char d[256];
        proto_request_describe(&req, d, sizeof(d));
        proto_request_fini(&req);
    } else if (rc != err.code || rc <= 0 || rc >= KILN_ERR_WIRE_COUNT || rc == KILN_EINTERNAL) {
        abort();
    }
    for (int kind = 1; kind < PROTO_KIND_END; kind++) {
        struct proto_reply rep;
        if (proto_reply_decode(&rep, kind, data, size, &err) == KILN_OK)
            proto_reply_fini(&rep);
        else if (err.code != KILN_EPROTO && err.code != KILN_ENOMEM)
            abort();
    }
    return 0;
}
