#!/usr/bin/env python3
"""Regenerate the kiln protocol v1 test vectors (requests.txt, replies.txt).

The .txt files are the source of truth that every client's tests read; this
script only documents how each vector was made. Run it after changing the
protocol and review the diff:  python3 protocol/vectors/gen.py

Format (both files): one vector per line, fields separated by a single TAB,
'#' starts a comment line.
  requests.txt: name, hex bytes, expected
  replies.txt:  name, request kind, hex bytes, expected
expected is either
  ok <canonical description>     (requests: see PROTOCOL.md "Test vectors")
  ok code=<NAME> [key=value ...] (replies)
  error <CODE NAME> <field or ->
"""
import os
import struct

import msgpack

HERE = os.path.dirname(os.path.abspath(__file__))
HELLO, PING, STATUS, SUBMIT, FETCH, RELEASE, BYE = range(1, 8)


def pk(obj):
    return msgpack.packb(obj, use_bin_type=True)


def hello(**over):
    body = {"proto_min": 1, "proto_max": 1, "client": "demo"}
    body.update(over)
    return pk([HELLO, 0, body])


def arr32(n):
    return b"\xdd" + struct.pack(">I", n)


def map32(n):
    return b"\xdf" + struct.pack(">I", n)


def nested(depth):
    """`depth` levels of one-element arrays around a 0."""
    return b"\x91" * (depth - 1) + b"\x00"


requests = [
    # --- well-formed ---
    ("hello_min", hello(), "ok HELLO session=0 proto_min=1 proto_max=1 client=\"demo\" token=-"),
    ("hello_token", hello(token="s3cret", proto_max=3),
     "ok HELLO session=0 proto_min=1 proto_max=3 client=\"demo\" token=\"s3cret\""),
    ("hello_quotes", hello(client='a"b\\c\n'),
     "ok HELLO session=0 proto_min=1 proto_max=1 client=\"a\\\"b\\\\c\\x0a\" token=-"),
    ("hello_name_at_limit", hello(client="n" * 128),
     "ok HELLO session=0 proto_min=1 proto_max=1 client=\"" + "n" * 128 + "\" token=-"),
    ("ping_nosession", pk([PING, 0, {}]), "ok PING session=0"),
    ("ping_session", pk([PING, 2**64 - 1, {}]), "ok PING session=18446744073709551615"),
    ("status", pk([STATUS, 0, {}]), "ok STATUS session=0"),
    ("bye", pk([BYE, 7, {}]), "ok BYE session=7"),
    ("release", pk([RELEASE, 7, {"vars": [1, 2, 2**40]}]),
     "ok RELEASE session=7 vars=[1,2,1099511627776]"),
    ("release_empty", pk([RELEASE, 7, {"vars": []}]), "ok RELEASE session=7 vars=[]"),
    ("submit_opaque_body", pk([SUBMIT, 7, {"nodes": []}]), "ok SUBMIT session=7"),
    ("fetch_opaque_body", pk([FETCH, 7, {"vars": [1]}]), "ok FETCH session=7"),
    ("ping_wide_ints", b"\x93\xce\x00\x00\x00\x02\xcf" + b"\x00" * 7 + b"\x05\x80",
     "ok PING session=5"),
    # --- structure ---
    ("empty", b"", "error MALFORMED -"),
    ("truncated_array", pk([PING, 0, {}])[:-1], "error MALFORMED -"),
    ("truncated_str", hello()[:-2], "error MALFORMED -"),
    ("trailing_byte", pk([PING, 0, {}]) + b"\x00", "error MALFORMED -"),
    ("two_messages", pk([PING, 0, {}]) * 2, "error MALFORMED -"),
    ("reserved_c1", b"\x93\x02\x00\xc1", "error MALFORMED -"),
    ("ext_type", b"\x93\x02\x00\xd4\x01\x00", "error TYPE -"),
    ("huge_array_header", arr32(0xFFFFFFFF), "error LIMIT -"),
    ("lying_array_header", arr32(1000) + b"\x00" * 10, "error MALFORMED -"),
    ("huge_map_header", map32(0x7FFFFFFF), "error LIMIT -"),
    ("huge_str_header", b"\x93\x01\x00\x81\xa6client\xdb\xff\xff\xff\xff", "error LIMIT -"),
    ("lying_bin_header", b"\xc6\x00\x10\x00\x00" + b"\x00" * 8, "error MALFORMED -"),
    ("depth_at_limit", pk([PING, 0, {}])[:-1] + b"\x81\xa1k" + nested(14), "error FIELD body.k"),
    ("depth_over_limit", pk([PING, 0, {}])[:-1] + b"\x81\xa1k" + nested(15), "error LIMIT -"),
    ("deep_nesting_1000", nested(1000), "error LIMIT -"),
    ("string_over_limit", pk([PING, 0, {"x" * 4097: 1}]), "error LIMIT -"),
    # --- envelope ---
    ("not_array", pk({"kind": 2}), "error TYPE -"),
    ("short_array", pk([PING, 0]), "error VALUE -"),
    ("long_array", pk([PING, 0, {}, 1]), "error VALUE -"),
    ("kind_string", pk(["PING", 0, {}]), "error TYPE kind"),
    ("kind_zero", pk([0, 0, {}]), "error KIND kind"),
    ("kind_unknown", pk([99, 0, {}]), "error KIND kind"),
    ("kind_negative", pk([-1, 0, {}]), "error VALUE kind"),
    ("kind_huge", pk([2**32, 0, {}]), "error KIND kind"),
    ("session_negative", pk([PING, -5, {}]), "error VALUE session"),
    ("session_float", pk([PING, 1.5, {}]), "error TYPE session"),
    ("body_array", pk([PING, 0, []]), "error TYPE body"),
    ("body_nil", pk([PING, 0, None]), "error TYPE body"),
    # --- bodies ---
    ("ping_extra_field", pk([PING, 0, {"x": 1}]), "error FIELD body.x"),
    ("ping_int_key", pk([PING, 0, {1: 1}]), "error TYPE body"),
    ("hello_missing_client", pk([HELLO, 0, {"proto_min": 1, "proto_max": 1}]),
     "error MISSING body.client"),
    ("hello_missing_min", pk([HELLO, 0, {"proto_max": 1, "client": "x"}]),
     "error MISSING body.proto_min"),
    ("hello_client_int", hello(client=5), "error TYPE body.client"),
    ("hello_client_bin", hello(client=b"demo"), "error TYPE body.client"),
    ("hello_client_empty", hello(client=""), "error VALUE body.client"),
    ("hello_client_over_limit", hello(client="n" * 129), "error LIMIT body.client"),
    ("hello_client_nul", hello(client="a\0b"), "error VALUE body.client"),
    ("hello_token_over_limit", hello(token="t" * 257), "error LIMIT body.token"),
    ("hello_min_zero", hello(proto_min=0), "error VALUE body.proto_min"),
    ("hello_max_below_min", hello(proto_min=3, proto_max=2), "error VALUE body.proto_max"),
    ("hello_version_huge", hello(proto_max=2**32), "error VALUE body.proto_max"),
    ("hello_with_session", pk([HELLO, 9, {"proto_min": 1, "proto_max": 1, "client": "x"}]),
     "error VALUE session"),
    ("hello_unknown_field", hello(colour="red"), "error FIELD body.colour"),
    ("hello_duplicate_field",
     b"\x93\x01\x00\x84" + pk("proto_min")[0:] + b"\x01" + pk("proto_max") + b"\x01" +
     pk("client") + pk("x") + pk("client") + pk("y"), "error FIELD body.client"),
    ("bye_without_session", pk([BYE, 0, {}]), "error SESSION session"),
    ("release_without_session", pk([RELEASE, 0, {"vars": []}]), "error SESSION session"),
    ("submit_without_session", pk([SUBMIT, 0, {}]), "error SESSION session"),
    ("release_missing_vars", pk([RELEASE, 3, {}]), "error MISSING body.vars"),
    ("release_vars_map", pk([RELEASE, 3, {"vars": {}}]), "error TYPE body.vars"),
    ("release_var_negative", pk([RELEASE, 3, {"vars": [1, -2]}]), "error VALUE body.vars[1]"),
    ("release_var_string", pk([RELEASE, 3, {"vars": [1, 2, "3"]}]), "error TYPE body.vars[2]"),
    ("release_vars_at_limit", pk([RELEASE, 3, {"vars": [0] * 65536}]), None),
    ("release_vars_over_limit", pk([RELEASE, 3, {"vars": [0] * 65537}]),
     "error LIMIT body.vars"),
]

# The at-limit RELEASE is described by its canonical text, built here.
requests = [(n, b, e if e is not None else
             "ok RELEASE session=3 vars=[" + ",".join(["0"] * 65536) + "]")
            for n, b, e in requests]

replies = [
    ("ping_ok", PING, pk([0, {}]), "ok code=OK"),
    ("ping_ok_extra_field", PING, pk([0, {"later": [1, 2]}]), "ok code=OK"),
    ("hello_ok", HELLO, pk([0, {
        "proto": 1, "session": 0x1234, "server": "kilnd 0.1.0", "idle_timeout_ms": 600000,
        "limits": {"message_bytes": 268435456, "depth": 16, "container_items": 1048576,
                   "objects": 1048576, "string": 4096, "name": 128, "token": 256,
                   "nodes": 65536, "rank": 8, "dim": 2**40, "elements": 2**40,
                   "var_ids": 65536}}]),
     "ok code=OK proto=1 session=4660 server=\"kilnd 0.1.0\""),
    ("hello_missing_limits", HELLO, pk([0, {"proto": 1, "session": 1, "server": "k",
                                            "idle_timeout_ms": 1}]),
     "error PROTO body.limits"),
    ("hello_proto_huge", HELLO, pk([0, {
        "proto": 2**32, "session": 1, "server": "k", "idle_timeout_ms": 1,
        "limits": {k: 1 for k in ["message_bytes", "depth", "container_items", "objects",
                                  "string", "name", "token", "nodes", "rank", "dim",
                                  "elements", "var_ids"]}}]),
     "error PROTO body.proto"),
    ("hello_session_zero", HELLO, pk([0, {
        "proto": 1, "session": 0, "server": "k", "idle_timeout_ms": 1,
        "limits": {k: 1 for k in ["message_bytes", "depth", "container_items", "objects",
                                  "string", "name", "token", "nodes", "rank", "dim",
                                  "elements", "var_ids"]}}]),
     "error PROTO body.session"),
    ("error_reply", PING, pk([5, {"name": "LIMIT", "message": "too big", "field": "body.x",
                                  "node": 3}]),
     "ok code=LIMIT field=\"body.x\" node=3 message=\"too big\""),
    ("error_reply_unknown_code", PING, pk([42, {"name": "FUTURE", "message": "m", "field": "",
                                               "node": -1}]),
     "ok code=UNKNOWN field=\"\" node=-1 message=\"m\""),
    ("error_reply_client_code", PING, pk([100, {"message": "m"}]), "error PROTO code"),
    ("release_ok", RELEASE, pk([0, {"released": 2, "unknown": 1}]),
     "ok code=OK released=2 unknown=1"),
    ("reply_not_array", PING, pk({}), "error PROTO -"),
    ("reply_trailing", PING, pk([0, {}]) + b"\xc0", "error PROTO -"),
]


def write(path, header, rows):
    with open(path, "w") as f:
        f.write(header)
        for row in rows:
            for field in row:
                assert "\t" not in str(field) and "\n" not in str(field), row
            f.write("\t".join(str(x) for x in row) + "\n")


def main():
    write(os.path.join(HERE, "requests.txt"),
          "# kiln protocol v1 request vectors, made by gen.py; format in PROTOCOL.md.\n"
          "# name\thex\texpected\n",
          [(n, b.hex(), e) for n, b, e in requests])
    write(os.path.join(HERE, "replies.txt"),
          "# kiln protocol v1 reply vectors, made by gen.py; format in PROTOCOL.md.\n"
          "# name\trequest kind\thex\texpected\n",
          [(n, k, b.hex(), e) for n, k, b, e in replies])


if __name__ == "__main__":
    main()
