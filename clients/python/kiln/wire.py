"""wire.py: the messages of protocol v1 (protocol/PROTOCOL.md), as bytes.

Requests are encoded here and replies decoded and checked here, so the
wire format lives in one place, like protocol/ for the C client. Each
message is exactly one msgpack object: a request is ``[kind, session,
body]`` and a reply ``[code, body]``. Replies are read leniently (unknown
fields are skipped, as a daemon may add some within a version) but
everything the client relies on is checked; a reply that breaks the
protocol raises ProtocolError (code PROTO) naming the field, as the shared
test vectors in protocol/vectors/replies.txt expect.
"""
import msgpack

from . import errors

PROTO_VERSION_MIN = 1
PROTO_VERSION_MAX = 1

HELLO, PING, STATUS, SUBMIT, FETCH, RELEASE, BYE, CANCEL = 1, 2, 3, 4, 5, 6, 7, 8
KIND_NAMES = {HELLO: "HELLO", PING: "PING", STATUS: "STATUS", SUBMIT: "SUBMIT",
              FETCH: "FETCH", RELEASE: "RELEASE", BYE: "BYE", CANCEL: "CANCEL"}

# Version 1 limits (PROTOCOL.md section 6); a daemon announces its own in HELLO.
LIMITS = {
    "message_bytes": 268435456, "depth": 16, "container_items": 1048576,
    "objects": 1048576, "string": 4096, "name": 128, "token": 256, "nodes": 65536,
    "rank": 8, "dim": 1 << 40, "elements": 1 << 40, "var_ids": 65536, "node_inputs": 9,
    "expr_bytes": 1024, "expr_nodes": 256, "expr_depth": 32, "conds": 32,
}
# Limits a daemon reports once it has the feature that needs them.
OPTIONAL_LIMITS = {"grad_passes": 256}
FETCH_TIMEOUT_MAX_MS = 600000

# Element sizes of the wire dtypes this client knows (section 8).
DTYPE_SIZES = {1: 1, 2: 1, 3: 1, 4: 4, 5: 8, 6: 4, 7: 8}


def encode(kind, session, body):
    """One request message."""
    return msgpack.packb([kind, session, body], use_bin_type=True)


# ---- replies -------------------------------------------------------------


def _bad(field, message):
    return errors.ProtocolError(f"bad reply: {message}", field=field)


class _DupKey(Exception):
    pass


def _pairs(pairs):
    d = {}
    for k, v in pairs:
        if not isinstance(k, str):
            raise _DupKey("a reply map has a key that is not a string")
        if k in d:
            raise _DupKey(f"a reply map has the key {k!r} twice")
        d[k] = v
    return d


def _no_ext(code, data):
    raise _DupKey("a reply holds a msgpack ext type")


def _is_uint(v):
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _uint(body, key, field, maximum=(1 << 64) - 1):
    v = body.get(key)
    if not _is_uint(v) or v > maximum:
        raise _bad(field, f"{field} must be an unsigned integer")
    return v


def _str(body, key, field):
    v = body.get(key)
    if not isinstance(v, str):
        raise _bad(field, f"{field} must be a string")
    return v


def _map(body, key, field):
    v = body.get(key)
    if not isinstance(v, dict):
        raise _bad(field, f"{field} must be a map")
    return v


def _decode_hello(b):
    out = {
        "proto": _uint(b, "proto", "body.proto"),
        "session": _uint(b, "session", "body.session"),
        "server": _str(b, "server", "body.server"),
        "idle_timeout_ms": _uint(b, "idle_timeout_ms", "body.idle_timeout_ms"),
    }
    lim = _map(b, "limits", "body.limits")
    out["limits"] = {k: _uint(lim, k, "body.limits." + k) for k in LIMITS}
    for k in OPTIONAL_LIMITS:  # added after version 1 began: absent means unknown
        if k in lim:
            out["limits"][k] = _uint(lim, k, "body.limits." + k)
    if out["proto"] == 0 or out["proto"] > 0xFFFFFFFF:
        raise _bad("body.proto", f"HELLO reply names protocol version {out['proto']}")
    if out["session"] == 0:
        raise _bad("body.session", "HELLO reply carries session 0")
    return out


STATUS_LIST_MAX = 32  # entries in STATUS's users and session_list (PROTO_STATUS_LIST_MAX)
TIER_KEYS = ("in_use", "limit", "moving", "spills", "spilled_bytes", "spill_ms", "restores",
             "restored_bytes", "restore_ms", "refused")
TIERS_MAX = 4


_TIER_FIELDS = {"name": str, **{k: int for k in TIER_KEYS}}


def _decode_tiers(mem):
    """memory.tiers, top tier first; [] from daemons that predate it."""
    if "tiers" not in mem:
        return []
    tiers = mem["tiers"]
    if not isinstance(tiers, list) or len(tiers) > TIERS_MAX:
        raise _bad("body.memory.tiers",
                   f"body.memory.tiers must be an array of at most {TIERS_MAX} tiers")
    return [_entry(f"body.memory.tiers[{i}]", t, _TIER_FIELDS) for i, t in enumerate(tiers)]


DEVICES_MAX = 16  # CUDA devices STATUS may list (PROTO_DEVICES_MAX)


def _decode_devices(b):
    """devices: the daemon's CUDA devices, or why none, and NVRTC; None from
    daemons that predate it."""
    if "devices" not in b:
        return None
    d = _map(b, "devices", "body.devices")
    cuda = d.get("cuda")
    if not isinstance(cuda, list) or len(cuda) > DEVICES_MAX:
        raise _bad("body.devices.cuda",
                   f"body.devices.cuda must be an array of at most {DEVICES_MAX} devices")
    out = {"cuda": []}
    for i, m in enumerate(cuda):
        path = f"body.devices.cuda[{i}]"
        if not isinstance(m, dict):
            raise _bad(path, f"{path} must be a map")
        dev = {"name": _str(m, "name", path + ".name")}
        for k in ("cc_major", "cc_minor", "memory"):
            dev[k] = _uint(m, k, f"{path}.{k}")
        out["cuda"].append(dev)
    out["cuda_why"] = _str(d, "cuda_why", "body.devices.cuda_why")
    out["cuda_driver"] = _uint(d, "cuda_driver", "body.devices.cuda_driver")
    out["nvrtc"] = _str(d, "nvrtc", "body.devices.nvrtc")
    out["nvrtc_why"] = _str(d, "nvrtc_why", "body.devices.nvrtc_why")
    # Newer fields: absent from older daemons.
    out["cuda_state"] = _str(d, "cuda_state", "body.devices.cuda_state") if "cuda_state" in d else ""
    for k in ("cuda_steps", "cuda_fallbacks"):
        out[k] = _uint(d, k, "body.devices." + k) if k in d else 0
    return out


def _decode_status(b):
    out = {"server": _str(b, "server", "body.server")}
    for k in ("proto_min", "proto_max", "uptime_ms", "sessions", "sessions_total",
              "requests", "workers"):
        out[k] = _uint(b, k, "body." + k)
    pid = b.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool):
        raise _bad("body.pid", "body.pid must be an integer")
    out["pid"] = pid
    errs = _map(b, "errors", "body.errors")
    for k, v in errs.items():
        if not _is_uint(v):
            raise _bad("body.errors", "body.errors maps names to counts")
    out["errors"] = dict(errs)
    mem = _map(b, "memory", "body.memory")
    out["memory"] = {k: _uint(mem, k, "body.memory." + k) for k in ("in_use", "budget", "rss")}
    out["memory"]["tiers"] = _decode_tiers(mem)
    draining = b.get("draining")
    if not isinstance(draining, bool):
        raise _bad("body.draining", "body.draining must be a bool")
    out["draining"] = draining
    steps = {"done": 0, "failed": 0, "running": 0, "queued": 0, "run_ms": 0}
    if "steps" in b:
        s = _map(b, "steps", "body.steps")
        steps = {k: _uint(s, k, "body.steps." + k) for k in steps}
        # Newer than the map: absent from older daemons.
        steps["merged"] = _uint(s, "merged", "body.steps.merged") if "merged" in s else 0
    else:
        steps["merged"] = 0
    out["steps"] = steps
    jit = {"enabled": False, "kernels_compiled": 0, "kernel_hits": 0, "compile_us": 0,
           "plans": 0, "plan_hits": 0, "kernels_run": 0, "kernels_cached": 0, "fallbacks": 0}
    if "jit" in b:
        j = _map(b, "jit", "body.jit")
        for k in jit:
            if k == "enabled":
                if k in j:
                    if not isinstance(j[k], bool):
                        raise _bad("body.jit.enabled", "body.jit.enabled must be a bool")
                    jit[k] = j[k]
            elif k in j:
                jit[k] = _uint(j, k, "body.jit." + k)
        if "relays" in j:
            r = _map(j, "relays", "body.jit.relays")
            jit["relays"] = {k: _uint(r, k, "body.jit.relays." + k)
                             for k in ("runs", "library_runs") if k in r}
            jit["relays"]["library"] = bool(r.get("library", False))
    out["jit"] = jit
    devices = _decode_devices(b)
    if devices is not None:
        out["devices"] = devices
    # Users and sessions: sent to clients on the daemon's local socket only.
    if "users" in b or "session_list" in b:
        out["users_total"] = _uint(b, "users_total", "body.users_total")
        out["users"] = [_entry(f"body.users[{i}]", m, _USER_FIELDS)
                        for i, m in enumerate(_list(b, "users"))]
        out["session_list"] = [_entry(f"body.session_list[{i}]", m, _SESSION_FIELDS)
                               for i, m in enumerate(_list(b, "session_list"))]
    return out


_USER_FIELDS = {"name": str, "weight": int, "sessions": int, "queued": int, "running": int,
                "steps": int, "kernel_ms": int, "memory": int, "kernels": int,
                "compile_ms": int, "refused": int}
_SESSION_FIELDS = {"number": int, "user": str, "client": str, "queued": int, "running": bool,
                   "steps": int, "kernel_ms": int, "memory": int, "vars": int, "idle_ms": int}


def _list(b, key):
    v = b.get(key)
    if not isinstance(v, list) or len(v) > STATUS_LIST_MAX:
        raise _bad("body." + key, f"body.{key} must be an array of at most {STATUS_LIST_MAX}")
    return v


_TYPE_NAMES = {str: "a string", bool: "a bool"}


def _entry(path, m, fields):
    """One map of a STATUS list at `path`: `fields` maps each key to its
    type (int: an unsigned integer)."""
    if not isinstance(m, dict):
        raise _bad(path, f"{path} must be a map")
    out = {}
    for k, t in fields.items():
        v = m.get(k)
        if t is int:
            out[k] = _uint(m, k, f"{path}.{k}")
        elif not isinstance(v, t):
            raise _bad(f"{path}.{k}", f"{path}.{k} must be {_TYPE_NAMES[t]}")
        else:
            out[k] = v
    return out


def _decode_tensor(m, i):
    path = f"body.vars[{i}]"
    if not isinstance(m, dict):
        raise _bad(path, f"{path} must be a map")
    t = {"id": _uint(m, "id", path + ".id"),
         "dtype": _uint(m, "dtype", path + ".dtype", 0xFFFFFFFF)}
    f = path + ".shape"
    shape = m.get("shape")
    if not isinstance(shape, list) or len(shape) > LIMITS["rank"]:
        raise _bad(f, f"{f} must be an array of at most {LIMITS['rank']} dims")
    for d in shape:
        if not _is_uint(d) or d > LIMITS["dim"]:
            raise _bad(f, f"{f} holds a size that is not in 0..dim")
    t["shape"] = tuple(shape)
    f = path + ".data"
    data = m.get("data")
    if not isinstance(data, bytes):
        raise _bad(f, f"{f} must be bin")
    t["data"] = data
    size = DTYPE_SIZES.get(t["dtype"])
    if size is not None:
        n = 1
        for d in shape:
            n *= d
        if n > LIMITS["elements"] or n * size != len(data):
            raise _bad(f, f"{f} holds {len(data)} bytes, not the {n} elements of dtype "
                          f"{t['dtype']}")
    return t


def _decode_fetch(b):
    vars_ = b.get("vars")
    if not isinstance(vars_, list):
        raise _bad("body.vars", "body.vars must be an array")
    if len(vars_) > LIMITS["var_ids"]:
        raise _bad("body.vars", "body.vars holds more vars than var_ids")
    return {"vars": [_decode_tensor(m, i) for i, m in enumerate(vars_)]}


MAX_WARNINGS = 64


def _decode_warnings(b):
    """SUBMIT's optional `warnings`: maps node, field, message."""
    if "warnings" not in b:
        return []
    ws = b["warnings"]
    if not isinstance(ws, list) or len(ws) > MAX_WARNINGS:
        raise _bad("body.warnings", f"body.warnings must be an array of at most {MAX_WARNINGS}")
    out = []
    for i, w in enumerate(ws):
        path = f"body.warnings[{i}]"
        if not isinstance(w, dict):
            raise _bad(path, f"{path} must be a map")
        node = w.get("node", -1)
        if not isinstance(node, int) or isinstance(node, bool):
            raise _bad(path + ".node", f"{path}.node must be an integer")
        out.append({"node": node, "field": _str(w, "field", path + ".field"),
                    "message": _str(w, "message", path + ".message")})
    return out


def _decode_ok(kind, b):
    if kind == HELLO:
        return _decode_hello(b)
    if kind == STATUS:
        return _decode_status(b)
    if kind == RELEASE:
        return {"released": _uint(b, "released", "body.released"),
                "unknown": _uint(b, "unknown", "body.unknown")}
    if kind == CANCEL:
        return {"cancelled": _uint(b, "cancelled", "body.cancelled")}
    if kind == SUBMIT:
        step = _uint(b, "step", "body.step")
        if step == 0:
            raise _bad("body.step", "SUBMIT reply names step 0")
        return {"step": step, "warnings": _decode_warnings(b)}
    if kind == FETCH:
        return _decode_fetch(b)
    return {}  # PING, BYE: empty (extra fields ignored)


class Reply:
    """A decoded reply: `code` 0 and `body` the checked fields, or an error
    code with `name`, `message`, `field` and `node` from the error body."""

    __slots__ = ("code", "body", "name", "message", "field", "node")

    def error(self, prefix=""):
        return errors.make_error(self.code, prefix + self.message, self.field, self.node,
                                 errors.code_name(self.code))


def decode_reply(kind, data):
    """Decode the reply to a request of `kind`. Raises ProtocolError for a
    reply that breaks the protocol; returns a Reply (error replies too)."""
    try:
        top = msgpack.unpackb(data, raw=False, object_pairs_hook=_pairs, ext_hook=_no_ext,
                              strict_map_key=False, unicode_errors="surrogateescape")
    except _DupKey as e:
        raise _bad("", str(e)) from None
    except msgpack.ExtraData:
        raise _bad("", "trailing bytes after the reply") from None
    except Exception as e:  # truncated, reserved byte, ...
        raise _bad("", f"not one msgpack object ({type(e).__name__}: {e})") from None
    if not isinstance(top, list) or len(top) != 2:
        raise _bad("", "a reply must be the array [code, body]")
    code, body = top
    if not _is_uint(code) or code >= errors.CONNECT:
        raise _bad("code", "the code of a reply must be an unsigned integer below 100")
    if not isinstance(body, dict):
        raise _bad("body", "the body of a reply must be a map")
    r = Reply()
    r.code = code
    if code == 0:
        r.body = _decode_ok(kind, body)
        r.name, r.message, r.field, r.node = "OK", "", "", -1
        return r
    r.body = body
    r.name = errors.code_name(code)
    msg = body.get("message")
    if not isinstance(msg, str):
        raise _bad("body.message", "body.message must be a string")
    r.message = msg
    field = body.get("field", "")
    if not isinstance(field, str):
        raise _bad("body.field", "body.field must be a string")
    r.field = field
    node = body.get("node", -1)
    if not isinstance(node, int) or isinstance(node, bool):
        raise _bad("body.node", "body.node must be an integer")
    r.node = node
    return r
