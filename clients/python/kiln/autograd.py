"""autograd.py: jt.grad, stop_grad and jt.no_grad over the daemon's autodiff.

Gradients are graph nodes (PROTOCOL.md section 8, "Gradients"): jt.grad
adds one `grad` node per target, reading the loss and the target, and the
daemon expands them into meta-ops by its backward rules. Nothing waits:
the gradient is a lazy Var like any other, so an optimizer's update built
on it goes to the daemon in the same SUBMIT as the forward pass and the
backward pass, and fuses with them.

What the daemon differentiates is the graph of one SUBMIT, and a var it
kept from an earlier step is a leaf there. So that reading a value first
(`print(loss.item())`, then `optimizer.step(loss)`) changes nothing, the
client keeps the definitions of submitted vars that Python still holds,
and jt.grad re-emits the forward subgraph between the loss and the
targets (graph.Runtime.replay): the daemon computes that part again, in
the same SUBMIT as the backward pass. Where a definition was cut (see
graph.py: stop_grad, grad nodes, no_grad, a step more than
HISTORY_STEPS SUBMITs old) the var is a leaf, and jt.grad warns at the
user's line when that leaves the loss with no path to a target.

`stop_grad` is a node too (op 129). x.stop_grad() moves x to a stop_grad
node of its old value, in place as in Jittor; x.detach() makes a new Var.
Vars made under jt.no_grad() are marked; a node made outside it that reads
one reads it through a stop_grad twin (made once per var), so gradients
never flow back into what was computed without them.

With a daemon that has no autodiff, stop_grad only sets the flag and
jt.grad raises NotImplementedError naming the daemon.
"""
import warnings

from . import dtypes as dt
from . import graph
from .graph import KilnWarning, PENDING
from .flags import flags
from .var import Var


def supported():
    return graph.runtime().has_autodiff()


def stop_grad_node(node):
    """A stop_grad node reading `node` (or `node` itself for non-float
    values, through which no gradient flows anyway)."""
    from .ops import make
    if not node.dtype.is_float() or node.op == "stop_grad" or not supported():
        return node
    return make("stop_grad", node.dtype, node.shape, [Var._wrap(node)])._node


def nograd_twin(node):
    """The stop_grad twin a node made under jt.no_grad() is read through."""
    t = node.twin() if node.twin is not None else None
    if t is None:
        from .ops import make
        with flags_off():
            t = make("stop_grad", node.dtype, node.shape, [Var._wrap(node)], raw=True)._node
        import weakref
        node.twin = weakref.ref(t)
    return t


class flags_off:
    """Make nodes as if outside jt.no_grad (for the twins themselves)."""

    def __enter__(self):
        self.saved = flags.no_grad
        flags.no_grad = 0

    def __exit__(self, *exc):
        flags.no_grad = self.saved
        return False


def _targets(targets):
    if isinstance(targets, Var):
        return [targets], True
    return list(targets), False


def grad(loss, targets, retain_graph=True):
    """Jittor's jt.grad: the gradient of `loss` with respect to each of
    `targets` (a Var, or a list of Vars: the result has the same form).
    A loss with more than one element is summed first, as in Jittor."""
    from .ops import make, to_var, zeros
    rt = graph.runtime()
    if not rt.has_autodiff():
        raise NotImplementedError(
            f"jt.grad needs a kilnd with autodiff; the daemon at {rt.conn.address} "
            f"({rt.conn.server}) has none: {getattr(rt, 'autodiff_why', '')}")
    loss = to_var(loss)
    ts, single = _targets(targets)
    if not loss.dtype.is_float():
        raise TypeError(f"jt.grad: the loss must be a float var, not {loss.dtype}")
    if loss.numel() != 1:
        from .reduction import sum as _sum
        loss = _sum(loss)
    loss, cut = _replay(rt, loss, ts)
    if cut and loss._node.state != PENDING:
        warnings.warn("jt.grad: the loss was already computed and part of its graph is no "
                      f"longer kept (it was computed more than {graph.HISTORY_STEPS} sync "
                      "points ago, or under jt.no_grad), so gradients "
                      "through it are zero; ask for gradients before reading the loss",
                      KilnWarning, stacklevel=graph.user_stacklevel())
    rt.grads_used = True
    out = []
    for t in ts:
        if not isinstance(t, Var):
            raise TypeError(f"jt.grad targets are Vars, not {type(t).__name__}")
        if t.is_stop_grad():
            warnings.warn(f"jt.grad: target var {t.id} is stop_grad; its gradient is zero",
                          KilnWarning, stacklevel=graph.user_stacklevel())
            out.append(zeros(t.shape, t.dtype))
            continue
        node = t._node
        g = make("grad", node.dtype, node.shape, [loss, t])
        out.append(g)
    rt.grad_losses.add(loss._node.id)
    rt.safe_point(1)
    return out[0] if single else out


def _replay(rt, loss, ts):
    """The loss to differentiate: `loss`, or its re-emitted copy when its
    path to the targets runs through vars already submitted."""
    ids = {t._node.id for t in ts if isinstance(t, Var)}
    node, cut = rt.replay(loss._node, ids)
    return (loss if node is loss._node else Var._wrap(node)), cut


def backward_seeded(loss, targets, seed):
    """The vector-Jacobian product of a non-scalar loss with seed `seed`
    (the loss's dtype and shape): the grad node's third input."""
    from .ops import make, to_var, cast
    loss = to_var(loss)
    seed = cast(to_var(seed), loss.dtype)
    ts, single = _targets(targets)
    loss, _ = _replay(graph.runtime(), loss, ts)
    out = [make("grad", t.dtype, t.shape, [loss, t, seed]) for t in ts]
    return out[0] if single else out


def no_grad_inputs(inputs):
    """Inputs of a node being made: marked ones read through their twin."""
    if flags.no_grad:
        return inputs
    out = None
    for k, v in enumerate(inputs):
        n = v._node
        if n.nograd and n.dtype.is_float() and n.op != "stop_grad":
            if not supported():
                return inputs
            if out is None:
                out = list(inputs)
            out[k] = Var._wrap(nograd_twin(n))
    return inputs if out is None else out


__all__ = ["grad", "stop_grad_node", "supported", "dt"]
