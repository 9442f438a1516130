"""graph.py: the lazy graph on the client and the session it runs in.

Every op makes a Node: one var of the wire graph (PROTOCOL.md section 8),
named by an id this client chooses (1, 2, ... per session), with its op,
inputs, attributes and the dtype and shape inferred here. Nodes wait in
`pending` until a sync point (a fetched value, jt.sync, or a threshold of
pending nodes or bytes), when every pending node reachable from a live Var
is sent in one SUBMIT, in id order (ids grow as nodes are made, so id
order is a topological order).

Which vars the daemon keeps: a node that some Python Var refers to at the
time of the SUBMIT (`nvars` > 0) is kept; the rest are temporaries of that
step. A kept node is released when its Node object dies: Vars and pending
consumers hold Nodes, a submitted node drops its inputs, so a Node dies
once no Var and no unsent consumer needs it. Its id then goes on a list
that is sent as RELEASE batches before the next SUBMIT or FETCH (never
from __del__, which may run in the middle of another request).

Definitions outlive the SUBMIT (replay): the daemon keeps values, not
graphs, so a kept var is a leaf of later steps. To let jt.grad and
optimizer.step differentiate through a var whose value was already
computed (`loss.item()` before `optimizer.step(loss)`), a submitted node
keeps its op, inputs and attributes while Python holds it, and jt.grad
re-emits the forward subgraph between the loss and the targets as fresh
pending nodes (`Runtime.replay`). What bounds the memory: a definition
lives only as long as its Node (a Var or a live consumer's definition
holds it); it is cut (the node becomes a leaf) at stop_grad (so at
Var.update: optimizer state, parameters, running statistics), at grad
nodes, at uploaded arrays, under jt.no_grad, and for every node of a
step once HISTORY_STEPS more SUBMITs have gone by, so neither an
accumulator carried across training steps nor a list of old losses drags
earlier steps (and their parameters) along. An input that a kept definition
names but the daemon would have dropped (a temporary that is itself cut)
is kept by the daemon instead, so a replayed node can always name it.

Gradients (autograd.py) constrain where a threshold flush may fall: the
daemon differentiates within one SUBMIT, so once a `grad` node has been
made the node threshold waits for a safe point (the end of jt.grad or of
an optimizer step) up to a hard bound, and the pending backward passes are
kept within the daemon's `grad_passes` limit. SUBMIT warnings (a gradient
that is zero) become KilnWarnings that name the user's line.

The Runtime owns the connection (to KILN_ADDRESS, or to an embedded
daemon it starts) and is made on first use; jt.sync_all, the atexit hook
and errors all go through it. jt.fetch callbacks run on a background
thread that fetches over a second socket of the same session, so the
main thread keeps building and submitting while it waits.
"""
import atexit
import collections
import os
import sys
import threading
import weakref

import numpy as np

from . import dtypes as dt
from . import errors, wire
from .connection import Connection
from .flags import flags

OPS = {
    "array": 1, "const": 2, "index": 3, "random": 4, "reshape": 8,
    "neg": 16, "abs": 17, "exp": 18, "log": 19, "sqrt": 20, "rsqrt": 21, "sin": 22,
    "cos": 23, "tan": 24, "tanh": 25, "sigmoid": 26, "erf": 27, "floor": 28, "ceil": 29,
    "round": 30, "sign": 31, "logical_not": 32, "bitwise_not": 33, "cast": 34,
    "add": 48, "sub": 49, "mul": 50, "div": 51, "floor_div": 52, "mod": 53, "pow": 54,
    "maximum": 55, "minimum": 56, "eq": 57, "ne": 58, "lt": 59, "le": 60, "gt": 61,
    "ge": 62, "logical_and": 63, "logical_or": 64, "logical_xor": 65, "bitwise_and": 66,
    "bitwise_or": 67, "bitwise_xor": 68, "shl": 69, "shr": 70, "where": 80,
    "broadcast_to": 96, "reindex": 97, "reduce": 98, "reindex_reduce": 99,
    "matmul": 104, "conv2d": 105, "conv2d_bwd_data": 106, "conv2d_bwd_weight": 107,
    "transpose": 112, "slice": 113, "concat": 114, "pad": 115, "flip": 116,
    "grad": 128, "stop_grad": 129,
}
REDUCE_OPS = {"add": 1, "mul": 2, "max": 3, "min": 4, "mean": 5}

PENDING, KEPT, TEMP, FAILED = 0, 1, 2, 3


class KilnWarning(UserWarning):
    """Something the daemon or the client thinks the user should know:
    a gradient that comes out as zeros, a graph cut by a flush."""

FLUSH_NODES = 4096            # pending nodes that trigger a SUBMIT
HARD_FLUSH_NODES = 32768      # ... even between a loss and its jt.grad (see Runtime.add)
FLUSH_BYTES = 64 << 20        # pending array bytes that trigger a SUBMIT
RELEASE_BATCH = 256           # dead kept vars that make the next SUBMIT or FETCH release
RELEASE_BYTES = 64 << 20      # ... or that many bytes of them
FETCH_WAIT_MS = 2000          # one FETCH's wait (short, so Ctrl-C is seen); NOTREADY is retried
STEP_MEMORY = 32              # steps whose node descriptions are kept for EXEC errors
HISTORY_STEPS = 8             # SUBMITs after which a step's definitions are cut (replay)
NO_DEFINITION = frozenset(("array", "stop_grad", "grad"))  # ops whose definitions are cut
LEAF_OPS = frozenset(("const", "index", "random"))  # no inputs; replayed from their attributes

_PKG = os.path.dirname(os.path.abspath(__file__))


def _user_frame():
    """(filename, line) of the innermost caller outside this package."""
    f = sys._getframe(2)
    while f is not None and f.f_code.co_filename.startswith(_PKG):
        f = f.f_back
    if f is None:
        return None
    return (f.f_code.co_filename, f.f_lineno)


def user_stacklevel():
    """The warnings.warn stacklevel, called from inside the package, that
    names the innermost caller outside it."""
    f = sys._getframe(1)
    level = 1
    while f is not None and f.f_code.co_filename.startswith(_PKG):
        f = f.f_back
        level += 1
    return level


def _numel(shape):
    n = 1
    for s in shape:
        n *= s
    return n


def _where_str(where):
    return f"{where[0]}:{where[1]}" if where else "?"


class Node:
    """One var of the lazy graph. See the module comment."""

    __slots__ = ("rt", "id", "op", "dtype", "shape", "inputs", "attrs", "state", "nvars",
                 "value", "error", "where", "step", "nograd", "twin", "__weakref__")

    def __init__(self, rt, op, dtype, shape, inputs, attrs):
        self.rt = rt
        self.id = rt.new_id()
        self.op = op
        self.dtype = dtype
        self.shape = shape
        self.inputs = inputs
        self.attrs = attrs
        self.state = PENDING
        self.nvars = 0
        self.value = None
        self.error = None
        self.where = _user_frame()
        self.step = 0
        self.nograd = False  # made under jt.no_grad(): read through a stop_grad twin
        self.twin = None     # weakref to that twin, made once

    def describe(self):
        return f"{self.op} (var {self.id}, made at {_where_str(self.where)})"

    def wire(self):
        n = {"id": self.id, "op": OPS[self.op]}
        if self.inputs:
            n["in"] = [i.id for i in self.inputs]
        n["dtype"] = self.dtype.code
        n["shape"] = list(self.shape)
        n.update(self.attrs)
        return n

    def __del__(self):
        try:
            if self.state == KEPT:
                rt = self.rt
                rt.dead.append(self.id)
                rt.dead_bytes += self.dtype.itemsize * _numel(self.shape)
        except Exception:
            pass


def _inputs(n):
    return n.inputs


def _grad_inputs(n):
    """The inputs a gradient flows back to (replay's traversal)."""
    return () if n.op in ("stop_grad", "grad") or n.state == FAILED else n.inputs


def _topo_order(seen, inputs_of):
    """The nodes of `seen` (id -> node), inputs before their consumers:
    id order (the order they were made), unless a replay made a node read
    a newer copy; then the stable topological order nearest to it."""
    if all(i.id < n.id for n in seen.values() for i in inputs_of(n)):
        return [seen[k] for k in sorted(seen)]
    import heapq
    indeg = dict.fromkeys(seen, 0)
    users = collections.defaultdict(list)
    for n in seen.values():
        for k in {i.id for i in inputs_of(n) if i.id in seen}:
            indeg[n.id] += 1
            users[k].append(n.id)
    heap = [k for k, d in indeg.items() if d == 0]
    heapq.heapify(heap)
    out = []
    while heap:
        k = heapq.heappop(heap)
        out.append(seen[k])
        for u in users[k]:
            indeg[u] -= 1
            if indeg[u] == 0:
                heapq.heappush(heap, u)
    return out


class Runtime:
    """The session graphs run in, and the client's half of the graph."""

    def __init__(self, conn, daemon=None):
        self.conn = conn
        self.daemon = daemon
        self.pid = os.getpid()
        self.lock = threading.RLock()
        self.next_id = 1
        self.pending = weakref.WeakValueDictionary()
        self.pending_bytes = 0
        self.dead = collections.deque()  # appended from __del__, any thread
        self.dead_bytes = 0
        self.steps = {}
        self.defined = weakref.WeakSet()  # submitted nodes that keep their definitions
        self.kept = weakref.WeakSet()     # submitted nodes the daemon keeps
        self.replays = {}                 # submitted node id -> its pending copy (replay)
        self.generations = collections.deque()  # (flush number, weakrefs of its definitions)
        self.flushes = 0
        self.grad_targets = set()         # ids of the pending grad nodes' targets
        self.fetch_timeout_s = float(os.environ.get("KILN_FETCH_TIMEOUT", "3600"))
        # Uploads and steps sized to the daemon's message limit.
        mb = conn.limits.get("message_bytes") or wire.LIMITS["message_bytes"]
        self.message_bytes = mb
        self.chunk_bytes = min(32 << 20, mb // 4)
        self.flush_bytes = min(FLUSH_BYTES, mb // 2)
        self.flush_nodes = min(FLUSH_NODES, conn.limits.get("nodes") or FLUSH_NODES)
        self.hard_flush_nodes = max(self.flush_nodes, min(
            HARD_FLUSH_NODES, (conn.limits.get("nodes") or HARD_FLUSH_NODES) // 2))
        self.grads_used = False   # a grad node was ever made in this session
        self.grad_losses = set()  # losses of the pending grad nodes (backward passes)
        self.grad_passes = conn.limits.get("grad_passes") or wire.OPTIONAL_LIMITS["grad_passes"]
        if daemon is not None:
            conn.failure_hook = self._daemon_failure
        self.autodiff = None  # unknown until the first gradient needs it
        self.any_nograd = False  # a node was made under jt.no_grad()
        self.fetcher = None   # the background thread of jt.fetch callbacks
        self.fetch_queue = None
        self.async_errors = []

    @classmethod
    def start(cls):
        addr = os.environ.get("KILN_ADDRESS", "")
        if addr:
            return cls(Connection(addr))
        from .embedded import EmbeddedDaemon
        d = EmbeddedDaemon()
        return cls(d.connect(), d)

    def _daemon_failure(self, err):
        """Say so when a transport failure is the embedded daemon's death."""
        gone = self.daemon.describe_exit() if self.daemon else None
        if gone is None:
            return err
        return errors.ConnectError(f"{err.message}: {gone}")

    def new_id(self):
        i = self.next_id
        self.next_id += 1
        return i

    # ---- making nodes ----------------------------------------------------

    def add(self, op, dtype, shape, inputs, attrs, nbytes=0):
        """A new pending node. A threshold flush happens before it exists,
        so that it and its inputs (held by live Vars) are never lost."""
        with self.lock:
            n = len(self.pending)
            # Once gradients are in use, a flush between a loss and its
            # jt.grad would make the loss a leaf (zero gradients), so the
            # node threshold waits for a safe point (the end of jt.grad or
            # of an optimizer step) up to a hard bound.
            if ((n >= self.flush_nodes and (not self.grads_used or n >= self.hard_flush_nodes))
                    or self.pending_bytes + nbytes > self.flush_bytes
                    or len(self.dead) >= 16 * RELEASE_BATCH):
                self.flush()
            n = Node(self, op, dtype, shape, inputs, attrs)
            self.pending[n.id] = n
            self.pending_bytes += nbytes
            return n

    # ---- submitting ------------------------------------------------------

    def _collect(self):
        roots = [n for n in list(self.pending.values()) if n.nvars > 0]
        seen = {}
        stack = roots
        while stack:
            n = stack.pop()
            if n.id in seen or n.state != PENDING:
                continue
            seen[n.id] = n
            for i in n.inputs:
                if i.state == PENDING and i.id not in seen:
                    stack.append(i)
        return _topo_order(seen, _inputs)

    def _fail(self, nodes, err):
        for n in nodes:
            n.state = FAILED
            n.error = err
            n.inputs = ()
            n.attrs = {}
            self.pending.pop(n.id, None)

    def safe_point(self, passes_needed=0):
        """Where a flush cuts no gradient path: flush if the node threshold
        has passed, or if the pending backward passes would exceed the
        daemon's grad_passes limit with `passes_needed` more."""
        with self.lock:
            if (len(self.pending) >= self.flush_nodes
                    or len(self.grad_losses) + passes_needed > self.grad_passes):
                self.flush()

    def flush(self):
        """Submit every pending node a live Var needs, as one step."""
        with self.lock:
            nodes = self._collect()
            self.pending.clear()
            self.pending_bytes = 0
            self.grad_losses.clear()
            # Failures propagate: a node with a failed input cannot run.
            ok = []
            for n in nodes:
                bad = next((i for i in n.inputs if i.state == FAILED), None)
                if bad is not None:
                    self._fail([n], bad.error)
                else:
                    ok.append(n)
            nodes = ok
            self.replays.clear()
            self.grad_targets.clear()
            self.release_dead(force=False)
            if not nodes:
                return
            defined, keep_ids = self._definitions(nodes)
            try:
                reply = self.conn.submit_step([n.wire() for n in nodes], sorted(keep_ids),
                                              "cuda" if flags.use_cuda else None,
                                              bool(flags.allow_tf32))
            except errors.KilnError as e:
                self._submit_failed(nodes, e)
                raise
            step = reply["step"]
            for w in reply.get("warnings", ()):
                self._warn(nodes, w)
            for n in nodes:
                n.step = step
                if n.id in keep_ids:
                    n.state = KEPT
                    self.kept.add(n)
                else:
                    n.state = TEMP
                if n.id in defined:
                    self.defined.add(n)
                else:
                    n.inputs = ()
                    n.attrs = {}
            self._age([n for n in nodes if n.id in defined])
            self.steps[step] = [(n.op, n.id, n.where) for n in nodes]
            if len(self.steps) > STEP_MEMORY:
                for k in sorted(self.steps)[:-STEP_MEMORY]:
                    del self.steps[k]

    def _definitions(self, nodes):
        """Which nodes of a step keep their definitions after it, and which
        the daemon keeps: those a live Var holds, and the cut inputs of
        kept definitions (a replay names them). Nodes come in
        topological order, so inputs are decided before their consumers."""
        defined = set()
        keep = {n.id for n in nodes if n.nvars > 0}
        this = {n.id for n in nodes}
        for n in nodes:
            if n.op in NO_DEFINITION or n.nograd:
                continue
            if not n.inputs:
                if n.op in LEAF_OPS:  # attributes only: cheap to send again
                    defined.add(n.id)
                continue
            defined.add(n.id)
            for i in n.inputs:
                if i.id in this and i.id not in defined:
                    keep.add(i.id)
        return defined, keep

    def _age(self, defined):
        """Cut the definitions of the step HISTORY_STEPS SUBMITs back, all
        its nodes at once: later steps only name its kept vars, which
        become leaves, never its temporaries."""
        self.flushes += 1
        if defined:
            self.generations.append((self.flushes, [weakref.ref(n) for n in defined]))
        gens = self.generations
        while gens and gens[0][0] <= self.flushes - HISTORY_STEPS:
            for ref in gens.popleft()[1]:
                n = ref()
                if n is not None:
                    n.inputs = ()
                    n.attrs = {}
                    self.defined.discard(n)

    def replay(self, root, targets):
        """The node to differentiate in place of `root` so that gradients
        reach `targets` (node ids) through vars already submitted: each
        submitted node on a path from root to a target is re-emitted as a
        pending copy (down to kept leaves), and pending nodes on such a
        path read the copies. Returns (node, cut): `cut` says a path
        ended at a node whose definition was no longer kept."""
        with self.lock:
            order, reach, cut = self._reach(root, targets)
            if not any(reach.values()):
                return root, cut
            repl = {}
            protect = self.grad_targets | targets
            for n in order:
                if not reach[n.id]:
                    continue
                if n.state == PENDING:
                    self._relink(n, repl, protect)
                elif n.id not in protect and n.inputs:
                    repl[n.id] = self._copy(n, repl, protect)
            self.grad_targets |= targets
            return repl.get(root.id, root), cut

    def _reach(self, root, targets):
        """Nodes below root (through pending nodes and kept definitions,
        not through stop_grad or grad), in id order, and which of them
        lead to a target."""
        seen = {}
        stack = [root]
        cut = False
        while stack:
            n = stack.pop()
            if n.id in seen:
                continue
            seen[n.id] = n
            if n.op in ("stop_grad", "grad") or n.state == FAILED:
                continue
            if not n.inputs and n.state != PENDING and n.op not in LEAF_OPS and n.op != "array":
                cut = True
            stack.extend(i for i in n.inputs if i.id not in seen)
        order = _topo_order(seen, _grad_inputs)
        reach = {}
        for n in order:
            reach[n.id] = n.id in targets or any(reach.get(i.id, False)
                                                 for i in _grad_inputs(n))
        return order, reach, cut

    @staticmethod
    def _relink(n, repl, protect):
        """A pending node reads the copies of its inputs."""
        if any(i.id in repl and i.id not in protect for i in n.inputs):
            n.inputs = tuple(repl[i.id] if i.id in repl and i.id not in protect else i
                             for i in n.inputs)

    def _copy(self, n, repl, protect):
        """The pending copy of submitted node n (one per node until the
        next SUBMIT), reading the copies in repl; an input the daemon did
        not keep is copied too (it kept its definition: see _definitions)."""
        c = self.replays.get(n.id)
        if c is not None:
            self._relink(c, repl, protect)
            return c
        # Copy n and the dropped temporaries below it, inputs first.
        todo = [n]
        while todo:
            m = todo[-1]
            if m.id in self.replays:
                todo.pop()
                continue
            need = [i for i in m.inputs if i.state == TEMP and i.id not in repl
                    and i.id not in self.replays]
            if need:
                todo.extend(need)
                continue
            todo.pop()
            ins = tuple(repl[i.id] if i.id in repl and i.id not in protect
                        else self.replays[i.id] if i.state == TEMP else i for i in m.inputs)
            c = Node(self, m.op, m.dtype, m.shape, ins, m.attrs)
            c.where = m.where
            self.pending[c.id] = c
            self.replays[m.id] = c
        return self.replays[n.id]

    def _warn(self, nodes, w):
        """A SUBMIT warning (a gradient that is zero, ...) as a Python
        warning that names the node as the user made it."""
        import warnings
        msg = w["message"]
        k = w["node"]
        if 0 <= k < len(nodes):
            msg = f"{nodes[k].describe()}: {msg}"
        warnings.warn(f"kilnd: {msg}", KilnWarning, stacklevel=user_stacklevel())

    def _submit_failed(self, nodes, e):
        """A refused graph changes nothing in the daemon. The node at fault
        and everything after it that uses it fail; the rest go back to
        pending. A failure not about one node fails the whole step."""
        if 0 <= e.node < len(nodes):
            bad = nodes[e.node]
            e.message = f"{bad.describe()}: {e.message}"
            e.args = (e.message,)
            e.var_id = bad.id
            failed = {bad.id}
            for n in nodes[e.node + 1:]:
                if any(i.id in failed for i in n.inputs):
                    failed.add(n.id)
            self._fail([n for n in nodes if n.id in failed], e)
            for n in nodes:
                if n.id not in failed:
                    self.pending[n.id] = n
        else:
            self._fail(nodes, e)

    def release_dead(self, force=True):
        """Send RELEASE for kept vars Python dropped: always when forced,
        else once RELEASE_BATCH of them or RELEASE_BYTES have gathered."""
        with self.lock:
            if not self.dead or not force and (len(self.dead) < RELEASE_BATCH
                                               and self.dead_bytes < RELEASE_BYTES):
                return
            self.dead_bytes = 0
            ids = []
            while self.dead:
                ids.append(self.dead.popleft())
            limit = self.conn.limits.get("var_ids") or wire.LIMITS["var_ids"]
            for k in range(0, len(ids), limit):
                self.conn.release(ids[k:k + limit])

    # ---- fetching --------------------------------------------------------

    def fetch(self, nodes):
        """Values of nodes (numpy arrays, read-only), cached on the nodes."""
        with self.lock:
            if any(n.state == PENDING for n in nodes):
                self.flush()
            else:
                self.release_dead(force=False)
            for n in nodes:
                if n.state == FAILED:
                    raise n.error
            need, seen = [], set()
            for n in nodes:
                if n.value is None and n.id not in seen:
                    seen.add(n.id)
                    need.append(n)
            limit = self.message_bytes
            group, size = [], 0
            for n in need:
                b = n.dtype.itemsize * int(np.prod(n.shape, dtype=np.int64)) + 256
                if b > limit // 2:
                    self._fetch_big(n, limit // 4)
                    continue
                if group and (size + b > limit - 4096 or len(group) >= 4096):
                    self._fetch_group(group)
                    group, size = [], 0
                group.append(n)
                size += b
            if group:
                self._fetch_group(group)
            return [n.value for n in nodes]

    def _fetch_group(self, group):
        import time
        deadline = time.monotonic() + self.fetch_timeout_s
        ids = [n.id for n in group]
        while True:
            wait = int(min(FETCH_WAIT_MS, max(0.0, deadline - time.monotonic()) * 1000))
            try:
                got = self.conn.fetch(ids, wait)
                break
            except errors.NotReadyError:
                if time.monotonic() >= deadline:
                    raise
            except errors.ExecError as e:
                self._exec_failed(group, e)
                raise
        for n, t in zip(group, got):
            d = dt.BY_CODE.get(t["dtype"])
            if d is not n.dtype or t["shape"] != tuple(n.shape):
                raise errors.ProtocolError(
                    f"var {n.id} came back as dtype {t['dtype']} shape {list(t['shape'])}, "
                    f"not {n.dtype} {list(n.shape)} as {n.describe()} should give")
            n.value = np.frombuffer(t["data"], dtype=d.np.newbyteorder("<")).reshape(n.shape)

    def _fetch_big(self, node, piece_bytes):
        """A value too large for one reply, fetched as flat pieces."""
        from . import lowered, ops
        from .var import Var
        flat = ops.reshape(Var._wrap(node), (-1,))
        step = max(1, piece_bytes // node.dtype.itemsize)
        out = np.empty(flat.shape[0], dtype=node.dtype.np)
        for a in range(0, out.size, step):
            piece = lowered.getitem(flat, slice(a, a + step))
            out[a:a + step] = self.fetch([piece._node])[0]
        out.flags.writeable = False
        node.value = out.reshape(node.shape)

    def _exec_failed(self, group, e):
        """Name the node that failed, as the user made it."""
        i = int(e.field[len("body.vars["):-1]) if e.field.startswith("body.vars[") else -1
        n = group[i] if 0 <= i < len(group) else None
        descs = self.steps.get(n.step) if n is not None else None
        if descs is not None and 0 <= e.node < len(descs):
            op, vid, where = descs[e.node]
            e.message = f"{op} (var {vid}, made at {_where_str(where)}): {e.message}"
            e.args = (e.message,)
        if n is not None:
            n.error = e
            n.state = FAILED

    # ---- capabilities ----------------------------------------------------

    def has_autodiff(self):
        """Whether the daemon takes `grad` and `stop_grad` nodes, found
        once per session with a three-node probe that keeps nothing."""
        with self.lock:
            if self.autodiff is None:
                a, b, c = self.new_id(), self.new_id(), self.new_id()
                nodes = [{"id": a, "op": OPS["const"], "dtype": dt.float32.code, "shape": [],
                          "value": 1.0},
                         {"id": b, "op": OPS["stop_grad"], "in": [a]},
                         {"id": c, "op": OPS["grad"], "in": [b, a]}]
                try:
                    self.conn.submit_step(nodes, [])
                    self.autodiff = True
                except (errors.InvalidValueError, errors.UnsupportedError,
                        errors.DaemonTypeError, errors.ProtocolError) as e:
                    self.autodiff_why = str(e)
                    self.autodiff = False
            return self.autodiff

    # ---- jt.fetch callbacks ------------------------------------------------

    def fetch_async(self, nodes, callback):
        """Submit now; a background thread on a second socket of this
        session fetches the nodes' values and calls callback(values), in
        the order of the calls. Errors are raised by the next wait_async."""
        import queue
        with self.lock:
            if any(n.state == PENDING for n in nodes):
                self.flush()
            for n in nodes:
                if n.state == FAILED:
                    raise n.error
            if self.fetcher is None:
                self.fetch_queue = queue.Queue()
                self.fetcher = threading.Thread(target=self._fetch_loop, name="kiln-fetch",
                                                daemon=True)
                self.fetcher.start()
        self.fetch_queue.put((nodes, callback))

    def _fetch_loop(self):
        import time
        import traceback
        conn = None
        q = self.fetch_queue
        while True:
            item = q.get()
            if item is None:
                q.task_done()
                break
            nodes, callback = item
            try:
                need = [n for n in nodes if n.value is None]
                if need:
                    if conn is None:
                        conn = self.conn.sibling()
                    ids = [n.id for n in need]
                    deadline = time.monotonic() + self.fetch_timeout_s
                    while True:
                        try:
                            got = conn.fetch(ids, FETCH_WAIT_MS)
                            break
                        except errors.NotReadyError:
                            if time.monotonic() >= deadline:
                                raise
                    for n, t in zip(need, got):
                        v = np.frombuffer(t["data"], dtype=n.dtype.np.newbyteorder("<"))
                        n.value = v.reshape(n.shape)
                callback([n.value for n in nodes])
            except BaseException as e:  # surfaced at the next sync
                self.async_errors.append(e)
                traceback.print_exc()
            finally:
                del item, nodes
                q.task_done()
        if conn is not None:
            conn.close()

    def wait_async(self):
        """Wait for every jt.fetch callback so far; raise the first error."""
        if self.fetch_queue is not None:
            self.fetch_queue.join()
        if self.async_errors:
            e = self.async_errors[0]
            self.async_errors.clear()
            raise e

    # ---- the end ---------------------------------------------------------

    def close(self):
        if os.getpid() != self.pid:
            return
        if self.fetcher is not None:
            try:
                self.fetch_queue.join()
                self.fetch_queue.put(None)
                self.fetcher.join(10)
            except Exception:
                pass
        try:
            self.conn.close()
        finally:
            if self.daemon is not None:
                self.daemon.stop()


_rt = None
_rt_lock = threading.Lock()
_atexit_done = False


def runtime():
    """The process's Runtime, connecting (or starting a daemon) on first use."""
    global _rt, _atexit_done
    rt = _rt
    if rt is not None and rt.pid == os.getpid():
        return rt
    with _rt_lock:
        if _rt is None or _rt.pid != os.getpid():
            _rt = Runtime.start()
            if not _atexit_done:
                atexit.register(shutdown)
                _atexit_done = True
        return _rt


def shutdown():
    """End the session and stop the embedded daemon, if any. The next op
    starts a new one."""
    global _rt
    with _rt_lock:
        rt, _rt = _rt, None
    if rt is not None:
        rt.close()


def sync_nodes(nodes):
    rt = runtime()
    return rt.fetch(nodes)


def lazy_check(node):
    """With jt.flags.lazy_execution = 0, run each op at once."""
    if not flags.lazy_execution:
        node.rt.fetch([node])
