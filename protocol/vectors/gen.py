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


# --- SUBMIT and FETCH (PROTOCOL.md §3, §8) ---
F32_1_2 = struct.pack("<2f", 1.0, 2.0)


def submit(nodes, keep=(), session=7, **over):
    body = {"nodes": nodes, "keep": list(keep)}
    body.update(over)
    return pk([SUBMIT, session, body])


def node(id, op, **fields):
    n = {"id": id, "op": op}
    n.update(fields)
    return n


def single(obj):
    """msgpack with floats as float32."""
    return msgpack.packb(obj, use_bin_type=True, use_single_float=True)


# An array, a const and their sum: the smallest useful graph.
ADD_GRAPH = [node(1, 1, dtype=6, shape=[2], data=F32_1_2),
             node(2, 2, dtype=6, shape=[2], value=1.5),
             node(3, 48, **{"in": [1, 2]})]
ADD_DESC = ("nodes=3 keep=[3] {id=1 op=1 dtype=6 shape=[2] data=0x0000803f00000040}"
            " {id=2 op=2 dtype=6 shape=[2] value=float:1.5} {id=3 op=48 in=[1,2]}")

# One node of every source op and of the structural ops, with every field.
OPS_GRAPH = [
    node(10, 3, dtype=5, shape=[2, 3], dim=1),                             # index
    node(11, 4, dtype=7, shape=[2, 3], dist=2, seed=2**64 - 1, offset=5),  # random
    node(12, 8, **{"in": [10]}, shape=[3, 2]),                             # reshape
    node(13, 34, **{"in": [12]}, dtype=7),                                 # cast
    node(14, 98, **{"in": [11]}, reduce_op=1, dims=[1], keepdims=True),    # reduce
    node(15, 96, **{"in": [14]}, shape=[4, 2, 1], dims=[0]),               # broadcast_to
    node(16, 97, **{"in": [11, 10]}, shape=[3, 2], exprs=["i1", "@e0(i1, i0)"],
         conds=["i0 >= xshape1"], overflow_value=-1),                      # reindex
    node(17, 99, **{"in": [16]}, shape=[3], reduce_op=4, exprs=["i0"], conds=[]),
    node(18, 80, **{"in": [17, 17, 17]}),                                  # where
]
OPS_DESC = ("nodes=9 keep=[15,18]"
            " {id=10 op=3 dtype=5 shape=[2,3] dim=1}"
            " {id=11 op=4 dtype=7 shape=[2,3] dist=2 seed=18446744073709551615 offset=5}"
            " {id=12 op=8 in=[10] shape=[3,2]}"
            " {id=13 op=34 in=[12] dtype=7}"
            " {id=14 op=98 in=[11] dims=[1] keepdims=true reduce_op=1}"
            " {id=15 op=96 in=[14] shape=[4,2,1] dims=[0]}"
            " {id=16 op=97 in=[11,10] shape=[3,2] exprs=[\"i1\",\"@e0(i1, i0)\"]"
            " conds=[\"i0 >= xshape1\"] overflow_value=-1}"
            " {id=17 op=99 in=[16] shape=[3] reduce_op=4 exprs=[\"i0\"] conds=[]}"
            " {id=18 op=80 in=[17,17,17]}")


# One node of each lowered op, with every field it takes.
LOWERED_GRAPH = [
    node(20, 3, dtype=5, shape=[2, 3], dim=1),                              # index
    node(21, 112, **{"in": [20]}, dims=[1, 0]),                             # transpose
    node(22, 113, **{"in": [21]}, starts=[-1, 0], stops=[-2**63, 2**63 - 1],
         steps=[-1, 2]),                                                    # slice
    node(23, 114, **{"in": [20, 20]}, dim=0, shape=[4, 3]),                 # concat
    node(24, 115, **{"in": [23]}, pads=[1, 0, -1, 2], value=-5),            # pad
    node(25, 116, **{"in": [24]}, dims=[0, 1], dtype=5),                    # flip
]
LOWERED_DESC = ("nodes=6 keep=[25]"
                " {id=20 op=3 dtype=5 shape=[2,3] dim=1}"
                " {id=21 op=112 in=[20] dims=[1,0]}"
                " {id=22 op=113 in=[21] starts=[-1,0] stops=[-9223372036854775808,"
                "9223372036854775807] steps=[-1,2]}"
                " {id=23 op=114 in=[20,20] shape=[4,3] dim=0}"
                " {id=24 op=115 in=[23] value=-5 pads=[1,0,-1,2]}"
                " {id=25 op=116 in=[24] dtype=5 dims=[0,1]}")


def one_node(**fields):
    """A SUBMIT whose only node has id 1, op 2 and `fields`."""
    return submit([node(1, 2, **fields)])


def bad_second(**fields):
    """A SUBMIT whose second node (position 1) has id 2, op 97 and `fields`."""
    return submit([node(1, 2, dtype=6, shape=[]), node(2, 97, **fields)])


EXPR_MAX = "1+" * 511 + "0"  # 1023 bytes
assert len(EXPR_MAX) == 1023

requests += [
    ("submit_add", submit(ADD_GRAPH, keep=[3]), "ok SUBMIT session=7 " + ADD_DESC),
    ("submit_ops", submit(OPS_GRAPH, keep=[15, 18]), "ok SUBMIT session=7 " + OPS_DESC),
    ("submit_keep_empty", submit([node(1, 2, dtype=1, shape=[], value=True)]),
     "ok SUBMIT session=7 nodes=1 keep=[] {id=1 op=2 dtype=1 shape=[] value=1}"),
    ("submit_value_kinds", submit([node(1, 2, value=-3), node(2, 2, value=0.1),
                                   node(3, 2, value=False), node(4, 2, value=float("nan")),
                                   node(5, 2, value=float("-inf")), node(6, 2, value=-0.0),
                                   node(7, 2, value=2**63 - 1), node(8, 2, value=-2**63)]),
     "ok SUBMIT session=7 nodes=8 keep=[] {id=1 op=2 value=-3}"
     " {id=2 op=2 value=float:0.10000000000000001} {id=3 op=2 value=0}"
     " {id=4 op=2 value=float:nan} {id=5 op=2 value=float:-inf} {id=6 op=2 value=float:-0}"
     " {id=7 op=2 value=9223372036854775807} {id=8 op=2 value=-9223372036854775808}"),
    ("submit_value_float32", single([SUBMIT, 7, {"nodes": [node(1, 2, value=0.1)], "keep": []}]),
     "ok SUBMIT session=7 nodes=1 keep=[] {id=1 op=2 value=float:0.10000000149011612}"),
    ("submit_shape_limits", one_node(shape=[2**40, 1, 0, 1, 1, 1, 1, 1]),
     "ok SUBMIT session=7 nodes=1 keep=[] {id=1 op=2 shape=[1099511627776,1,0,1,1,1,1,1]}"),
    ("submit_in_at_limit", submit([node(1, 2), node(2, 97, **{"in": [1] * 9})]),
     "ok SUBMIT session=7 nodes=2 keep=[] {id=1 op=2} {id=2 op=97 in=[1,1,1,1,1,1,1,1,1]}"),
    ("submit_dims_at_limit", one_node(dims=list(range(8))),
     "ok SUBMIT session=7 nodes=1 keep=[] {id=1 op=2 dims=[0,1,2,3,4,5,6,7]}"),
    ("submit_expr_near_limit", one_node(exprs=[EXPR_MAX + "0"], conds=["0"] * 32),
     "ok SUBMIT session=7 nodes=1 keep=[] {id=1 op=2 exprs=[\"" + EXPR_MAX + "0\"] conds=["
     + ",".join(["\"0\""] * 32) + "]}"),
    ("submit_expr_escapes", one_node(exprs=["a\"b\\\n"]),
     "ok SUBMIT session=7 nodes=1 keep=[] {id=1 op=2 exprs=[\"a\\\"b\\\\\\x0a\"]}"),
    # The codec checks types and limits; op rules are the daemon's (§8).
    ("submit_unknown_op_and_fields", submit([node(1, 999, data=b"", keepdims=False)]),
     "ok SUBMIT session=7 nodes=1 keep=[] {id=1 op=999 data=0x keepdims=false}"),
    ("submit_duplicate_ids_pass_codec", submit([node(5, 2), node(5, 2)], keep=[5, 5]),
     "ok SUBMIT session=7 nodes=2 keep=[5,5] {id=5 op=2} {id=5 op=2}"),
    # The lowered ops (112-116) and their fields, at their limits.
    ("submit_lowered", submit(LOWERED_GRAPH, keep=[25]), "ok SUBMIT session=7 " + LOWERED_DESC),
    # grad (128) and stop_grad (129) are ordinary nodes to the codec (§8 "Gradients").
    ("submit_grad", submit([node(1, 2, dtype=7, shape=[], value=2.0), node(2, 50, **{"in": [1, 1]}),
                            node(3, 129, **{"in": [1]}), node(4, 128, **{"in": [2, 1]}),
                            node(5, 128, dtype=7, shape=[], **{"in": [4, 1, 3]})], keep=[4, 5]),
     "ok SUBMIT session=7 nodes=5 keep=[4,5] {id=1 op=2 dtype=7 shape=[] value=float:2} "
     "{id=2 op=50 in=[1,1]} {id=3 op=129 in=[1]} {id=4 op=128 in=[2,1]} "
     "{id=5 op=128 in=[4,1,3] dtype=7 shape=[]}"),
    ("submit_int_lists_at_limit", one_node(starts=[-2**63] * 8, stops=[2**63 - 1] * 8,
                                           steps=[], pads=list(range(-8, 8))),
     "ok SUBMIT session=7 nodes=1 keep=[] {id=1 op=2 starts=[" + ",".join(["-9223372036854775808"] * 8)
     + "] stops=[" + ",".join(["9223372036854775807"] * 8) + "] steps=[] pads=["
     + ",".join(str(v) for v in range(-8, 8)) + "]}"),
    ("fetch", pk([FETCH, 7, {"vars": [3, 2**64 - 1]}]),
     "ok FETCH session=7 vars=[3,18446744073709551615] timeout_ms=60000"),
    ("fetch_timeout", pk([FETCH, 7, {"vars": [3], "timeout_ms": 600000}]),
     "ok FETCH session=7 vars=[3] timeout_ms=600000"),
    ("fetch_timeout_zero", pk([FETCH, 7, {"timeout_ms": 0, "vars": []}]),
     "ok FETCH session=7 vars=[] timeout_ms=0"),
    # --- SUBMIT refused: the body ---
    ("submit_missing_nodes", pk([SUBMIT, 7, {"keep": []}]), "error MISSING body.nodes"),
    ("submit_missing_keep", pk([SUBMIT, 7, {"nodes": [node(1, 2)]}]), "error MISSING body.keep"),
    ("submit_unknown_field", submit([node(1, 2)], grads=[1]), "error FIELD body.grads"),
    ("submit_nodes_map", pk([SUBMIT, 7, {"nodes": {}, "keep": []}]), "error TYPE body.nodes"),
    ("submit_nodes_empty", submit([]), "error VALUE body.nodes"),
    ("submit_nodes_over_limit", submit([0] * 65537), "error LIMIT body.nodes"),
    ("submit_keep_map", pk([SUBMIT, 7, {"nodes": [node(1, 2)], "keep": {}}]),
     "error TYPE body.keep"),
    ("submit_keep_over_limit", submit([node(1, 2)], keep=[1] * 65537), "error LIMIT body.keep"),
    ("submit_keep_zero", submit([node(1, 2)], keep=[1, 0]), "error VALUE body.keep[1]"),
    ("submit_keep_negative", submit([node(1, 2)], keep=[-1]), "error VALUE body.keep[0]"),
    ("submit_keep_string", submit([node(1, 2)], keep=["1"]), "error TYPE body.keep[0]"),
    # --- SUBMIT refused: a node (the error's node is its position) ---
    ("submit_node_not_map", submit([node(1, 2), [1, 2]]), "error TYPE body.nodes[1]"),
    ("submit_node_unknown_field", submit([node(1, 2), node(2, 2, colour=1)]),
     "error FIELD body.nodes[1].colour"),
    ("submit_node_int_key", submit([{1: 1}]), "error TYPE body.nodes[0]"),
    ("submit_node_duplicate_field",
     b"\x93\x04\x07\x82" + pk("nodes") + b"\x91\x83" + pk("id") + b"\x01" + pk("op") +
     b"\x02" + pk("id") + b"\x03" + pk("keep") + b"\x90", "error FIELD body.nodes[0].id"),
    ("submit_node_missing_id", submit([{"op": 2}]), "error MISSING body.nodes[0].id"),
    ("submit_node_missing_op", submit([node(1, 2), {"id": 2}]), "error MISSING body.nodes[1].op"),
    ("submit_node_id_zero", submit([node(0, 2)]), "error VALUE body.nodes[0].id"),
    ("submit_node_id_negative", submit([node(-4, 2)]), "error VALUE body.nodes[0].id"),
    ("submit_node_id_string", submit([node("a", 2)]), "error TYPE body.nodes[0].id"),
    ("submit_node_op_huge", submit([node(1, 2**32)]), "error VALUE body.nodes[0].op"),
    ("submit_node_op_float", submit([node(1, 2.0)]), "error TYPE body.nodes[0].op"),
    ("submit_in_over_limit", bad_second(**{"in": [1] * 10}), "error LIMIT body.nodes[1].in"),
    ("submit_in_not_array", bad_second(**{"in": 1}), "error TYPE body.nodes[1].in"),
    ("submit_in_zero", bad_second(**{"in": [1, 0]}), "error VALUE body.nodes[1].in[1]"),
    ("submit_in_string", bad_second(**{"in": ["x"]}), "error TYPE body.nodes[1].in[0]"),
    ("submit_dtype_negative", one_node(dtype=-6), "error VALUE body.nodes[0].dtype"),
    ("submit_dtype_huge", one_node(dtype=2**32), "error VALUE body.nodes[0].dtype"),
    ("submit_shape_not_array", one_node(shape=4), "error TYPE body.nodes[0].shape"),
    ("submit_rank_over_limit", one_node(shape=[1] * 9), "error LIMIT body.nodes[0].shape"),
    ("submit_dim_over_limit", one_node(shape=[1, 2**40 + 1]),
     "error LIMIT body.nodes[0].shape[1]"),
    ("submit_dim_negative", one_node(shape=[-2]), "error VALUE body.nodes[0].shape[0]"),
    ("submit_dim_float", one_node(shape=[2.0]), "error TYPE body.nodes[0].shape[0]"),
    ("submit_data_str", one_node(data="abc"), "error TYPE body.nodes[0].data"),
    ("submit_value_str", one_node(value="1"), "error TYPE body.nodes[0].value"),
    ("submit_value_nil", one_node(value=None), "error TYPE body.nodes[0].value"),
    ("submit_value_huge", one_node(value=2**63), "error VALUE body.nodes[0].value"),
    ("submit_dim_field_negative", one_node(dim=-1), "error VALUE body.nodes[0].dim"),
    ("submit_dist_string", one_node(dist="normal"), "error TYPE body.nodes[0].dist"),
    ("submit_seed_negative", one_node(seed=-1), "error VALUE body.nodes[0].seed"),
    ("submit_offset_float", one_node(offset=0.5), "error TYPE body.nodes[0].offset"),
    ("submit_dims_over_limit", bad_second(dims=[0] * 9), "error LIMIT body.nodes[1].dims"),
    ("submit_dims_entry_over", bad_second(dims=[0, 8]), "error VALUE body.nodes[1].dims[1]"),
    ("submit_keepdims_int", bad_second(keepdims=1), "error TYPE body.nodes[1].keepdims"),
    ("submit_reduce_op_negative", bad_second(reduce_op=-1),
     "error VALUE body.nodes[1].reduce_op"),
    ("submit_exprs_not_array", bad_second(exprs="i0"), "error TYPE body.nodes[1].exprs"),
    ("submit_exprs_over_limit", bad_second(exprs=["i0"] * 9), "error LIMIT body.nodes[1].exprs"),
    ("submit_expr_over_bytes", bad_second(exprs=["i0", EXPR_MAX + "00"]),
     "error LIMIT body.nodes[1].exprs[1]"),
    ("submit_expr_bin", bad_second(exprs=[b"i0"]), "error TYPE body.nodes[1].exprs[0]"),
    ("submit_conds_over_limit", bad_second(conds=["0"] * 33), "error LIMIT body.nodes[1].conds"),
    ("submit_cond_over_bytes", bad_second(conds=[EXPR_MAX + "00"]),
     "error LIMIT body.nodes[1].conds[0]"),
    ("submit_cond_int", bad_second(conds=[0]), "error TYPE body.nodes[1].conds[0]"),
    ("submit_overflow_value_str", bad_second(overflow_value="0"),
     "error TYPE body.nodes[1].overflow_value"),
    ("submit_overflow_value_huge", bad_second(overflow_value=2**64 - 1),
     "error VALUE body.nodes[1].overflow_value"),
    ("submit_starts_not_array", bad_second(starts=1), "error TYPE body.nodes[1].starts"),
    ("submit_starts_over_limit", bad_second(starts=[0] * 9), "error LIMIT body.nodes[1].starts"),
    ("submit_stops_float", bad_second(stops=[0, 1.0]), "error TYPE body.nodes[1].stops[1]"),
    ("submit_stops_bool", bad_second(stops=[True]), "error TYPE body.nodes[1].stops[0]"),
    ("submit_steps_huge", bad_second(steps=[2**63]), "error VALUE body.nodes[1].steps[0]"),
    ("submit_steps_nil", bad_second(steps=[None]), "error TYPE body.nodes[1].steps[0]"),
    ("submit_pads_over_limit", bad_second(pads=[0] * 17), "error LIMIT body.nodes[1].pads"),
    ("submit_pads_str", bad_second(pads=["1"]), "error TYPE body.nodes[1].pads[0]"),
    # Fields are checked in the node table's order, whatever the map's order.
    ("submit_int_lists_field_order",
     submit([node(1, 2, dtype=6, shape=[]), {"pads": "x", "starts": [0.5], "id": 2, "op": 113}]),
     "error TYPE body.nodes[1].starts[0]"),
    # --- FETCH refused ---
    ("fetch_without_session", pk([FETCH, 0, {"vars": [1]}]), "error SESSION session"),
    ("fetch_missing_vars", pk([FETCH, 7, {"timeout_ms": 5}]), "error MISSING body.vars"),
    ("fetch_vars_map", pk([FETCH, 7, {"vars": {}}]), "error TYPE body.vars"),
    ("fetch_vars_over_limit", pk([FETCH, 7, {"vars": [1] * 65537}]), "error LIMIT body.vars"),
    ("fetch_var_zero", pk([FETCH, 7, {"vars": [0]}]), "error VALUE body.vars[0]"),
    ("fetch_var_string", pk([FETCH, 7, {"vars": [1, "2"]}]), "error TYPE body.vars[1]"),
    ("fetch_timeout_over", pk([FETCH, 7, {"vars": [1], "timeout_ms": 600001}]),
     "error VALUE body.timeout_ms"),
    ("fetch_timeout_negative", pk([FETCH, 7, {"vars": [1], "timeout_ms": -1}]),
     "error VALUE body.timeout_ms"),
    ("fetch_timeout_float", pk([FETCH, 7, {"vars": [1], "timeout_ms": 1.0}]),
     "error TYPE body.timeout_ms"),
    ("fetch_unknown_field", pk([FETCH, 7, {"vars": [1], "wait": True}]), "error FIELD body.wait"),
]

# The at-limit RELEASE is described by its canonical text, built here.
requests = [(n, b, e if e is not None else
             "ok RELEASE session=3 vars=[" + ",".join(["0"] * 65536) + "]")
            for n, b, e in requests]

LIMITS = {"message_bytes": 268435456, "depth": 16, "container_items": 1048576,
          "objects": 1048576, "string": 4096, "name": 128, "token": 256,
          "nodes": 65536, "rank": 8, "dim": 2**40, "elements": 2**40, "var_ids": 65536,
          "node_inputs": 9, "expr_bytes": 1024, "expr_nodes": 256, "expr_depth": 32,
          "conds": 32}


def tensor(id, dtype, shape, data, **extra):
    t = {"id": id, "dtype": dtype, "shape": shape, "data": data}
    t.update(extra)
    return t


def fetch_reply(*vars):
    return pk([0, {"vars": list(vars)}])


replies = [
    ("ping_ok", PING, pk([0, {}]), "ok code=OK"),
    ("ping_ok_extra_field", PING, pk([0, {"later": [1, 2]}]), "ok code=OK"),
    ("hello_ok", HELLO, pk([0, {
        "proto": 1, "session": 0x1234, "server": "kilnd 0.1.0", "idle_timeout_ms": 600000,
        "limits": LIMITS}]),
     "ok code=OK proto=1 session=4660 server=\"kilnd 0.1.0\""),
    ("hello_ok_grad_passes", HELLO, pk([0, {
        "proto": 1, "session": 0x1234, "server": "kilnd 0.2.0", "idle_timeout_ms": 600000,
        "limits": dict(LIMITS, grad_passes=256)}]),
     "ok code=OK proto=1 session=4660 server=\"kilnd 0.2.0\""),
    ("hello_grad_passes_str", HELLO, pk([0, {
        "proto": 1, "session": 1, "server": "k", "idle_timeout_ms": 1,
        "limits": dict(LIMITS, grad_passes="256")}]),
     "error PROTO body.limits.grad_passes"),
    ("hello_missing_limits", HELLO, pk([0, {"proto": 1, "session": 1, "server": "k",
                                            "idle_timeout_ms": 1}]),
     "error PROTO body.limits"),
    ("hello_proto_huge", HELLO, pk([0, {
        "proto": 2**32, "session": 1, "server": "k", "idle_timeout_ms": 1,
        "limits": {k: 1 for k in LIMITS}}]),
     "error PROTO body.proto"),
    ("hello_session_zero", HELLO, pk([0, {
        "proto": 1, "session": 0, "server": "k", "idle_timeout_ms": 1,
        "limits": {k: 1 for k in LIMITS}}]),
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
    ("hello_missing_conds_limit", HELLO, pk([0, {
        "proto": 1, "session": 1, "server": "k", "idle_timeout_ms": 1,
        "limits": {k: v for k, v in LIMITS.items() if k != "conds"}}]),
     "error PROTO body.limits.conds"),
    ("submit_ok", SUBMIT, pk([0, {"step": 1}]), "ok code=OK step=1"),
    ("submit_ok_wide", SUBMIT, pk([0, {"step": 2**64 - 1, "queued": 3}]),
     "ok code=OK step=18446744073709551615"),
    ("submit_ok_warnings", SUBMIT, pk([0, {"step": 3, "warnings": [
        {"node": 4, "field": "body.nodes[4].in[1]",
         "message": "node 4: the loss does not depend on target 7: its gradient is zeros"},
        {"node": -1, "field": "", "message": "m", "later": True}]}]),
     "ok code=OK step=3 warnings=2"),
    ("submit_warnings_empty", SUBMIT, pk([0, {"step": 3, "warnings": []}]), "ok code=OK step=3"),
    ("submit_warnings_map", SUBMIT, pk([0, {"step": 3, "warnings": {}}]),
     "error PROTO body.warnings"),
    ("submit_warnings_over_limit", SUBMIT,
     pk([0, {"step": 3, "warnings": [{"node": 1, "field": "", "message": "m"}] * 65}]),
     "error PROTO body.warnings"),
    ("submit_warning_node_str", SUBMIT,
     pk([0, {"step": 3, "warnings": [{"node": "1", "field": "", "message": "m"}]}]),
     "error PROTO body.warnings[0].node"),
    ("submit_warning_no_message", SUBMIT,
     pk([0, {"step": 3, "warnings": [{"node": 1, "field": ""}]}]),
     "error PROTO body.warnings[0].message"),
    ("submit_step_zero", SUBMIT, pk([0, {"step": 0}]), "error PROTO body.step"),
    ("submit_missing_step", SUBMIT, pk([0, {}]), "error PROTO body.step"),
    ("submit_refused", SUBMIT, pk([6, {"name": "VALUE", "message": "node 3: bad shape",
                                       "field": "body.nodes[3].shape", "node": 3}]),
     "ok code=VALUE field=\"body.nodes[3].shape\" node=3 message=\"node 3: bad shape\""),
    ("fetch_ok", FETCH, fetch_reply(tensor(3, 6, [2], F32_1_2), tensor(4, 1, [], b"\x01"),
                                    tensor(5, 5, [0, 3], b"")),
     "ok code=OK vars=3 {id=3 dtype=6 shape=[2] data=0x0000803f00000040}"
     " {id=4 dtype=1 shape=[] data=0x01} {id=5 dtype=5 shape=[0,3] data=0x}"),
    ("fetch_ok_empty", FETCH, fetch_reply(), "ok code=OK vars=0"),
    ("fetch_ok_extra_fields", FETCH,
     pk([0, {"vars": [tensor(3, 3, [1], b"\x07", strides=[1])], "waited_ms": 4}]),
     "ok code=OK vars=1 {id=3 dtype=3 shape=[1] data=0x07}"),
    ("fetch_ok_unknown_dtype", FETCH, fetch_reply(tensor(3, 42, [2], b"abc")),
     "ok code=OK vars=1 {id=3 dtype=42 shape=[2] data=0x616263}"),
    ("fetch_data_short", FETCH, fetch_reply(tensor(3, 6, [2], b"\x00" * 7)),
     "error PROTO body.vars[0].data"),
    ("fetch_data_long", FETCH, fetch_reply(tensor(3, 4, [], b"\x00" * 4),
                                           tensor(4, 4, [], b"\x00" * 5)),
     "error PROTO body.vars[1].data"),
    ("fetch_data_str", FETCH, fetch_reply(tensor(3, 3, [1], "a")), "error PROTO body.vars[0].data"),
    ("fetch_missing_vars", FETCH, pk([0, {}]), "error PROTO body.vars"),
    ("fetch_var_not_map", FETCH, fetch_reply([3, 6, [], b""]), "error PROTO body.vars[0]"),
    ("fetch_missing_id", FETCH, pk([0, {"vars": [{"dtype": 1, "shape": [], "data": b"\x00"}]}]),
     "error PROTO body.vars[0].id"),
    ("fetch_rank_over_limit", FETCH, fetch_reply(tensor(3, 3, [1] * 9, b"\x00")),
     "error PROTO body.vars[0].shape"),
    ("fetch_dim_over_limit", FETCH, fetch_reply(tensor(3, 42, [2**40 + 1], b"")),
     "error PROTO body.vars[0].shape"),
    ("fetch_notready", FETCH, pk([18, {"name": "NOTREADY", "message": "var 3 is not ready",
                                       "field": "body.vars[0]", "node": -1}]),
     "ok code=NOTREADY field=\"body.vars[0]\" node=-1 message=\"var 3 is not ready\""),
    ("fetch_exec_failed", FETCH, pk([17, {"name": "EXEC", "message": "node 2 (log) failed",
                                          "field": "body.vars[0]", "node": 2}]),
     "ok code=EXEC field=\"body.vars[0]\" node=2 message=\"node 2 (log) failed\""),
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
