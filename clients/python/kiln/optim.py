"""optim.py: jt.optim -- SGD, Adam, AdamW, RMSprop and LR schedulers.

Jittor's optimizer API: `optimizer.step(loss)` asks jt.grad for every
trainable parameter's gradient and updates the parameters, all as lazy
nodes, so the forward pass, the backward pass and the update reach the
daemon as one SUBMIT at the next sync point. `optimizer.backward(loss)`
accumulates gradients (for several small batches) and `optimizer.step()`
applies them; `zero_grad()` starts the next accumulation;
`p.opt_grad(optimizer)` reads a parameter's gradient.

State lives in `param_groups` as in Jittor: each group is a dict with
"params", "grads" and the optimizer's buffers ("values" for momentum or
second moments, "m" for Adam's first moment), and may override "lr" and
the other hyper-parameters. Parameters that are stop_grad (BatchNorm's
running statistics) or not float are skipped. Updates use Var.update,
which cuts the gradient between a parameter's old and new value.
"""
import math

from . import autograd, graph, lowered, ops
from .var import Var


class Optimizer:
    """Base optimizer: plain gradient descent, p -= lr * g."""

    def __init__(self, params, lr, param_sync_iter=10000):
        self.param_groups = []
        self.lr = lr
        self.param_sync_iter = param_sync_iter
        params = list(params)
        if not params:
            raise ValueError("an optimizer needs at least one parameter")
        if not isinstance(params[0], dict):
            params = [{"params": params}]
        for pg in params:
            self.add_param_group(pg)
        self.n_step = 0
        self._zero = True

    # ---- groups and state ----------------------------------------------------

    def _init_group(self, pg):
        """Allocate a new group's buffers (subclasses)."""

    def add_param_group(self, group):
        if not isinstance(group, dict):
            raise TypeError("a parameter group is a dict with 'params'")
        group = dict(group)
        group["params"] = list(group["params"])
        for p in group["params"]:
            if not isinstance(p, Var):
                raise TypeError(f"optimizer parameters are Vars, not {type(p).__name__}")
        self._init_group(group)
        self.param_groups.append(group)

    @staticmethod
    def _trainable(p):
        return not p.is_stop_grad() and p.dtype.is_float()

    @property
    def defaults(self):
        skip = {"param_groups", "n_step", "param_sync_iter"}
        return {k: v for k, v in self.__dict__.items()
                if not k.startswith("_") and k not in skip and not callable(v)}

    def grad_of(self, p):
        """The accumulated gradient of parameter p (zeros before any)."""
        for pg in self.param_groups:
            for q, g in zip(pg["params"], pg.get("grads", [])):
                if q is p:
                    return g
        for pg in self.param_groups:
            if any(q is p for q in pg["params"]):
                return ops.zeros_like(p)
        raise ValueError("this Var is not a parameter of the optimizer")

    def state_dict(self):
        """Hyper-parameters, the step count and every buffer, as numpy."""
        from .serialize import to_numpy_tree
        groups = []
        for pg in self.param_groups:
            groups.append({k: to_numpy_tree(v) for k, v in pg.items()
                           if k not in ("params", "grads")})
        return {"defaults": dict(self.defaults), "n_step": self.n_step, "param_groups": groups}

    def load_state_dict(self, state):
        for k, v in state.get("defaults", {}).items():
            setattr(self, k, v)
        self.n_step = state.get("n_step", self.n_step)
        for pg, saved in zip(self.param_groups, state.get("param_groups", [])):
            for k, v in saved.items():
                cur = pg.get(k)
                if isinstance(cur, list) and cur and isinstance(cur[0], Var):
                    for var, a in zip(cur, v):
                        var.update(ops.array(a, dtype=var.dtype))
                else:
                    pg[k] = v

    # ---- gradients ------------------------------------------------------------------

    def zero_grad(self):
        """Start a new accumulation (the next backward replaces the grads).
        Also a point where flushing the pending graph cuts no gradient."""
        self._zero = True
        graph.runtime().safe_point()

    def pre_step(self, loss, retain_graph=True):
        """Compute the gradients of loss and add them to the groups' grads
        (replacing them after zero_grad)."""
        train = [p for pg in self.param_groups for p in pg["params"] if self._trainable(p)]
        grads = autograd.grad(loss, train) if train else []
        self.n_step += 1
        k = 0
        for pg in self.param_groups:
            if "grads" not in pg:
                pg["grads"] = [ops.zeros_like(p).stop_grad() for p in pg["params"]]
            pg_grads = pg["grads"]
            for i, p in enumerate(pg["params"]):
                if not self._trainable(p):
                    continue
                g = grads[k]
                k += 1
                if not self._zero:
                    g = g + pg_grads[i]
                pg_grads[i].update(g)
        self._zero = False

    def backward(self, loss, retain_graph=True):
        self.pre_step(loss, retain_graph)

    def clip_grad_norm(self, max_norm, norm_type=2):
        """Scale every gradient so that their joint norm is at most max_norm."""
        gs = [g for pg in self.param_groups for p, g in zip(pg["params"], pg.get("grads", []))
              if self._trainable(p)]
        if not gs or self._zero:
            return
        if norm_type == float("inf"):
            total = lowered.stack([g.abs().max() for g in gs]).max()
        else:
            total = lowered.stack([g.abs().pow(norm_type).sum() for g in gs]).sum() \
                .pow(1.0 / norm_type)
        coef = ops.binary("minimum", max_norm / (total + 1e-6), 1.0)
        for g in gs:
            g.update(g * coef)

    # ---- the update ---------------------------------------------------------------

    def _groups(self):
        """(group, lr, [(p, g, k)]) for the trainable parameters."""
        for pg in self.param_groups:
            if "grads" not in pg:
                continue
            items = [(p, g, k) for k, (p, g) in enumerate(zip(pg["params"], pg["grads"]))
                     if self._trainable(p)]
            yield pg, pg.get("lr", self.lr), items

    def step(self, loss=None, retain_graph=True):
        if loss is not None:
            self.pre_step(loss, retain_graph)
        for pg, lr, items in self._groups():
            for p, g, _ in items:
                p.update(p - g * lr)
        self.zero_grad()


def _zeros_like_params(pg):
    return [ops.zeros(p.shape, p.dtype).stop_grad() for p in pg["params"]]


class SGD(Optimizer):
    """SGD with momentum, dampening, Nesterov momentum and weight decay
    (L2, added to the gradient), as Jittor's and PyTorch's."""

    def __init__(self, params, lr, momentum=0, weight_decay=0, dampening=0, nesterov=False):
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.dampening = dampening
        self.nesterov = nesterov
        super().__init__(params, lr)

    def _init_group(self, pg):
        pg["values"] = _zeros_like_params(pg)

    def step(self, loss=None, retain_graph=True):
        if loss is not None:
            self.pre_step(loss, retain_graph)
        for pg, lr, items in self._groups():
            momentum = pg.get("momentum", self.momentum)
            wd = pg.get("weight_decay", self.weight_decay)
            dampening = pg.get("dampening", self.dampening)
            nesterov = pg.get("nesterov", self.nesterov)
            for p, g, k in items:
                dp = p * wd + g if wd else g
                if momentum:
                    v = pg["values"][k]
                    v.update(v * momentum + dp * (1 - dampening))
                    d = dp + v * momentum if nesterov else v
                else:
                    d = dp
                p.update(p - d * lr)
        self.zero_grad()


class RMSprop(Optimizer):
    def __init__(self, params, lr=1e-2, eps=1e-8, alpha=0.99):
        self.eps = eps
        self.alpha = alpha
        super().__init__(params, lr)

    def _init_group(self, pg):
        pg["values"] = _zeros_like_params(pg)

    def step(self, loss=None, retain_graph=True):
        if loss is not None:
            self.pre_step(loss, retain_graph)
        for pg, lr, items in self._groups():
            eps, alpha = pg.get("eps", self.eps), pg.get("alpha", self.alpha)
            for p, g, k in items:
                v = pg["values"][k]
                v.update(v * alpha + g * g * (1 - alpha))
                p.update(p - g * lr / (v.sqrt() + eps))
        self.zero_grad()


class Adam(Optimizer):
    """Adam (Kingma and Ba), weight decay added to the gradient (L2), as
    Jittor's: m and v are the moments, n the step count for bias
    correction."""

    def __init__(self, params, lr, eps=1e-8, betas=(0.9, 0.999), weight_decay=0):
        self.eps = eps
        self.betas = tuple(betas)
        self.weight_decay = weight_decay
        super().__init__(params, lr)

    def _init_group(self, pg):
        pg["values"] = _zeros_like_params(pg)
        pg["m"] = _zeros_like_params(pg)

    def _moments(self, pg, g, k, b0, b1):
        m, v = pg["m"][k], pg["values"][k]
        m.update(m * b0 + g * (1 - b0))
        v.update(v * b1 + g * g * (1 - b1))
        return m, v

    def step(self, loss=None, retain_graph=True):
        if loss is not None:
            self.pre_step(loss, retain_graph)
        n = float(max(self.n_step, 1))
        for pg, lr, items in self._groups():
            eps = pg.get("eps", self.eps)
            wd = pg.get("weight_decay", self.weight_decay)
            b0, b1 = pg.get("betas", self.betas)
            step_size = lr * math.sqrt(1 - b1 ** n) / (1 - b0 ** n)
            for p, g, k in items:
                if wd:
                    g = p * wd + g
                m, v = self._moments(pg, g, k, b0, b1)
                p.update(p - m * step_size / (v.sqrt() + eps))
        self.zero_grad()


class AdamW(Adam):
    """Adam with decoupled weight decay: p *= 1 - lr * weight_decay."""

    def __init__(self, params, lr, eps=1e-8, betas=(0.9, 0.999), weight_decay=0.01):
        super().__init__(params, lr, eps, betas, weight_decay)

    def step(self, loss=None, retain_graph=True):
        if loss is not None:
            self.pre_step(loss, retain_graph)
        n = float(max(self.n_step, 1))
        for pg, lr, items in self._groups():
            eps = pg.get("eps", self.eps)
            wd = pg.get("weight_decay", self.weight_decay)
            b0, b1 = pg.get("betas", self.betas)
            c1, c2 = 1 - b0 ** n, 1 - b1 ** n
            for p, g, k in items:
                m, v = self._moments(pg, g, k, b0, b1)
                decayed = p * (1 - lr * wd) if wd else p
                p.update(decayed - m * (lr / c1) / (v.sqrt() / math.sqrt(c2) + eps))
        self.zero_grad()


# ---- learning-rate schedulers ----------------------------------------------------------


class LRScheduler:
    """Sets each group's "lr" (and optimizer.lr) from get_lr() per step."""

    def __init__(self, optimizer, last_epoch=-1):
        self.optimizer = optimizer
        for pg in optimizer.param_groups:
            pg.setdefault("initial_lr", pg.get("lr", optimizer.lr))
        self.base_lrs = [pg["initial_lr"] for pg in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def get_lr(self):
        raise NotImplementedError

    def get_last_lr(self):
        return self._last_lr

    def step(self, epoch=None):
        self.last_epoch = self.last_epoch + 1 if epoch is None else epoch
        lrs = self.get_lr()
        for pg, lr in zip(self.optimizer.param_groups, lrs):
            pg["lr"] = lr
        self.optimizer.lr = lrs[0]
        self._last_lr = list(lrs)


class LambdaLR(LRScheduler):
    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        n = len(optimizer.param_groups)
        self.lr_lambdas = list(lr_lambda) if isinstance(lr_lambda, (list, tuple)) \
            else [lr_lambda] * n
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [b * f(self.last_epoch) for f, b in zip(self.lr_lambdas, self.base_lrs)]


class StepLR(LRScheduler):
    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [b * self.gamma ** (self.last_epoch // self.step_size) for b in self.base_lrs]


class MultiStepLR(LRScheduler):
    def __init__(self, optimizer, milestones, gamma=0.1, last_epoch=-1):
        self.milestones, self.gamma = sorted(milestones), gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        k = sum(1 for m in self.milestones if m <= self.last_epoch)
        return [b * self.gamma ** k for b in self.base_lrs]


class ExponentialLR(LRScheduler):
    def __init__(self, optimizer, gamma, last_epoch=-1):
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [b * self.gamma ** self.last_epoch for b in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    def __init__(self, optimizer, T_max, eta_min=0, last_epoch=-1):
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        c = (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
        return [self.eta_min + (b - self.eta_min) * c for b in self.base_lrs]
