"""The wire layer against protocol/vectors/replies.txt and PROTOCOL.md's example."""
import os

import pytest

from conftest import ROOT
from kiln import errors, wire

VECTORS = os.path.join(ROOT, "protocol", "vectors", "replies.txt")
KINDS = {"HELLO": wire.HELLO, "PING": wire.PING, "STATUS": wire.STATUS,
         "SUBMIT": wire.SUBMIT, "FETCH": wire.FETCH, "RELEASE": wire.RELEASE, "BYE": wire.BYE}


def q(s):
    out = []
    for ch in s.encode("utf-8", "surrogateescape"):
        c = chr(ch)
        if c in '"\\':
            out.append("\\" + c)
        elif ch < 0x20 or ch >= 0x7f:
            out.append(f"\\x{ch:02x}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def describe(kind, r):
    """The canonical description of a decoded reply (PROTOCOL.md section 7)."""
    if r.code != 0:
        return (f"code={errors.code_name(r.code)} field={q(r.field)} node={r.node} "
                f"message={q(r.message)}")
    s = "code=OK"
    b = r.body
    if kind == wire.HELLO:
        s += f" proto={b['proto']} session={b['session']} server={q(b['server'])}"
    elif kind == wire.RELEASE:
        s += f" released={b['released']} unknown={b['unknown']}"
    elif kind == wire.SUBMIT:
        s += f" step={b['step']}"
        if b["warnings"]:
            s += f" warnings={len(b['warnings'])}"
    elif kind == wire.FETCH:
        s += f" vars={len(b['vars'])}"
        for t in b["vars"]:
            shape = ",".join(str(d) for d in t["shape"])
            s += f" {{id={t['id']} dtype={t['dtype']} shape=[{shape}] data=0x{t['data'].hex()}}}"
    return s


def load():
    rows = []
    with open(VECTORS) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            name, kind, hexdata, expected = line.split("\t")
            rows.append(pytest.param(int(kind) if kind.isdigit() else KINDS[kind], bytes.fromhex(hexdata), expected, id=name))
    return rows


@pytest.mark.parametrize("kind,data,expected", load())
def test_reply_vectors(kind, data, expected):
    if expected.startswith("error "):
        _, name, field = expected.split(" ")
        with pytest.raises(errors.ProtocolError) as e:
            wire.decode_reply(kind, data)
        assert e.value.code == errors.PROTO
        assert e.value.field == ("" if field == "-" else field)
    else:
        r = wire.decode_reply(kind, data)
        assert describe(kind, r) == expected[3:]


def test_hello_example_bytes():
    # PROTOCOL.md section 4: the HELLO of the example, byte for byte.
    want = bytes.fromhex("93 01 00 83 a9 70726f746f5f6d696e 01 a9 70726f746f5f6d6178 01 "
                         "a6 636c69656e74 a4 64656d6f".replace(" ", ""))
    got = wire.encode(wire.HELLO, 0, {"proto_min": 1, "proto_max": 1, "client": "demo"})
    assert got == want


def test_error_classes():
    e = errors.make_error(errors.VALUE, "bad", "body.nodes[3].shape", 3)
    assert isinstance(e, errors.InvalidValueError) and isinstance(e, ValueError)
    assert isinstance(e, errors.KilnError) and isinstance(e, RuntimeError)
    assert (e.code, e.name, e.field, e.node) == (6, "VALUE", "body.nodes[3].shape", 3)
    assert isinstance(errors.make_error(errors.TIMEDOUT, "t"), TimeoutError)
    assert isinstance(errors.make_error(errors.CONNECT, "c"), ConnectionError)
    u = errors.make_error(42, "future", name="FUTURE")
    assert type(u) is errors.KilnError and u.code == 42
