"""module.py: jt.Module (jt.nn.Module), the base of layers and models.

As in Jittor, a Module is a plain object: its parameters are the Vars in
its attributes, found by walking `__dict__` (sub-modules, and lists,
tuples and dicts of them, included; names starting with "_" skipped), so
subclasses need not call Module.__init__. Names are dotted paths
("layers.0.weight"); Sequential names its children "0", "1", ... directly,
as Jittor and PyTorch do, so state dicts move between the three.

`parameters()` returns every Var, buffers such as running_mean included
(they are stop_grad, so optimizers skip them), as Jittor does.
`load_state_dict` updates the Vars in place (the same Var objects, so an
optimizer made earlier keeps training them) from Vars, numpy arrays or
anything with `.numpy()` -- a PyTorch tensor included.
"""
import collections

import numpy as np

from .var import Var


def _to_numpy(v):
    if isinstance(v, Var):
        return v.numpy()
    if isinstance(v, np.ndarray):
        return v
    if hasattr(v, "detach") and hasattr(v, "cpu"):  # a torch tensor
        return v.detach().cpu().numpy()
    if hasattr(v, "numpy"):
        return v.numpy()
    return np.asarray(v)


class Module:
    """Base class of layers and models: define `execute` (or `forward`)."""

    is_train = True

    def __init__(self, *args, **kw):
        pass

    # ---- calling -----------------------------------------------------------

    def __call__(self, *args, **kw):
        return self.execute(*args, **kw)

    def execute(self, *args, **kw):
        if type(self).forward is not Module.forward:
            return self.forward(*args, **kw)
        raise NotImplementedError(f"{type(self).__name__} defines neither execute nor forward")

    def forward(self, *args, **kw):
        if type(self).execute is not Module.execute:
            return self.execute(*args, **kw)
        raise NotImplementedError(f"{type(self).__name__} defines neither execute nor forward")

    # ---- walking -------------------------------------------------------------

    def _children_items(self):
        """(name, value) of the attributes the walk visits."""
        for k, v in self.__dict__.items():
            if isinstance(k, str) and k.startswith("_"):
                continue
            yield k, v

    def _walk(self, prefix, seen_mods, on_var, on_module):
        if id(self) in seen_mods:
            return
        seen_mods.add(id(self))
        on_module(prefix, self)
        for k, v in self._children_items():
            _walk_value(prefix + str(k), v, seen_mods, on_var, on_module)

    def named_parameters(self, prefix="", recurse=True):
        out, seen = [], set()

        def on_var(name, v):
            if id(v) not in seen:
                seen.add(id(v))
                out.append((name, v))
        self._walk(prefix, set(), on_var, lambda n, m: None)
        return out

    def parameters(self, recurse=True):
        return [v for _, v in self.named_parameters()]

    def named_modules(self, prefix=""):
        out = []
        self._walk(prefix, set(), lambda n, v: None,
                   lambda n, m: out.append((n[:-1] if n.endswith(".") else n, m)))
        return out

    def modules(self):
        return [m for _, m in self.named_modules()]

    def named_children(self):
        out = []
        for k, v in self._children_items():
            if isinstance(v, Module):
                out.append((str(k), v))
        return out

    def children(self):
        return [m for _, m in self.named_children()]

    def apply(self, func):
        for m in self.modules():
            func(m)
        return self

    # ---- state ---------------------------------------------------------------

    def state_dict(self, to=None):
        """{name: Var} of every Var (to="numpy": numpy arrays)."""
        d = collections.OrderedDict(self.named_parameters())
        if to == "numpy":
            return collections.OrderedDict((k, v.numpy()) for k, v in d.items())
        return d

    def load_state_dict(self, params, strict=False):
        """Update this module's Vars in place from a dict of Vars, numpy
        arrays or tensors; names it does not have, and its Vars the dict
        lacks, are reported (raised with strict=True, else warned)."""
        import warnings
        own = dict(self.named_parameters())
        missing = [k for k in own if k not in params]
        unexpected = [k for k in params if k not in own]
        for k, v in own.items():
            if k not in params:
                continue
            a = _to_numpy(params[k])
            if tuple(a.shape) != tuple(v.shape):
                raise ValueError(f"load_state_dict: {k} has shape {list(a.shape)}, the "
                                 f"module's is {list(v.shape)}")
            from .ops import array
            v.update(array(np.ascontiguousarray(a), dtype=v.dtype))
        if strict and (missing or unexpected):
            raise KeyError(f"load_state_dict: missing {missing}, unexpected {unexpected}")
        if missing or unexpected:
            warnings.warn(f"load_state_dict: missing {missing}, unexpected {unexpected}",
                          stacklevel=2)
        return missing, unexpected

    load_parameters = load_state_dict

    def save(self, path):
        """Write state_dict() as a pickle of numpy arrays (jt.save)."""
        from .serialize import save
        save(self.state_dict(), path)

    def load(self, path):
        from .serialize import load
        self.load_state_dict(load(path))

    # ---- modes -----------------------------------------------------------------

    def train(self, mode=True):
        for m in self.modules():
            m.is_train = bool(mode)
        return self

    def eval(self):
        return self.train(False)

    def is_training(self):
        return self.is_train

    @property
    def training(self):
        return self.is_train

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad = requires_grad
        return self

    def zero_grad(self):
        pass  # gradients live in optimizers, as in Jittor

    # ---- dtypes and devices (one daemon places everything) -----------------

    def float32(self):
        for p in self.parameters():
            if p.dtype.is_float():
                p.assign(p.float32())
        return self

    def float64(self):
        for p in self.parameters():
            if p.dtype.is_float():
                p.assign(p.float64())
        return self

    def cuda(self, *a):
        return self

    def cpu(self):
        return self

    to = lambda self, *a, **k: self  # noqa: E731

    # ---- printing ----------------------------------------------------------------

    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        kids = self.named_children()
        if not kids:
            return lines[0] + ")"
        for k, m in kids:
            sub = repr(m).replace("\n", "\n    ")
            lines.append(f"    ({k}): {sub}")
        return "\n".join(lines) + "\n)"


def _walk_value(name, v, seen_mods, on_var, on_module):
    if isinstance(v, Var):
        on_var(name, v)
    elif isinstance(v, Module):
        v._walk(name + ".", seen_mods, on_var, on_module)
    elif isinstance(v, (list, tuple)):
        for i, x in enumerate(v):
            if isinstance(x, (Var, Module, list, tuple, dict)):
                _walk_value(f"{name}.{i}", x, seen_mods, on_var, on_module)
    elif isinstance(v, dict):
        for k, x in v.items():
            if isinstance(x, (Var, Module, list, tuple, dict)):
                _walk_value(f"{name}.{k}", x, seen_mods, on_var, on_module)


class Sequential(Module):
    """Layers called in order; children are named "0", "1", ... (or by
    the keys of an OrderedDict given as the one argument)."""

    def __init__(self, *layers):
        self.layers = collections.OrderedDict()
        if len(layers) == 1 and isinstance(layers[0], (dict, collections.OrderedDict)):
            for k, v in layers[0].items():
                self.layers[str(k)] = v
        else:
            for i, v in enumerate(layers):
                self.layers[str(i)] = v

    def _children_items(self):
        return iter(self.layers.items())

    def _walk(self, prefix, seen_mods, on_var, on_module):
        if id(self) in seen_mods:
            return
        seen_mods.add(id(self))
        on_module(prefix, self)
        for k, v in self.layers.items():
            _walk_value(prefix + str(k), v, seen_mods, on_var, on_module)

    def execute(self, x):
        for layer in self.layers.values():
            x = layer(x)
        return x

    def __getitem__(self, i):
        keys = list(self.layers)
        if isinstance(i, slice):
            return Sequential(*[self.layers[k] for k in keys[i]])
        if isinstance(i, str):
            return self.layers[i]
        return self.layers[keys[i]]

    def __setitem__(self, i, v):
        keys = list(self.layers)
        self.layers[keys[i] if not isinstance(i, str) else i] = v

    def __len__(self):
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers.values())

    def append(self, mod):
        self.layers[str(len(self.layers))] = mod
        return self

    def add_module(self, name, mod):
        self.layers[str(name)] = mod

    def named_children(self):
        return [(k, v) for k, v in self.layers.items() if isinstance(v, Module)]


class ModuleList(Sequential):
    """A list of modules (named "0", "1", ...); calling it is an error."""

    def __init__(self, mods=None):
        super().__init__(*(mods or []))

    def execute(self, *a, **k):
        raise NotImplementedError("ModuleList is not callable; call its items")

    def extend(self, mods):
        for m in mods:
            self.append(m)
        return self

    def insert(self, index, mod):
        items = list(self.layers.values())
        items.insert(index, mod)
        self.layers = collections.OrderedDict((str(i), m) for i, m in enumerate(items))


class ModuleDict(Module):
    def __init__(self, mods=None):
        self.layers = collections.OrderedDict()
        for k, v in (mods or {}).items():
            self.layers[str(k)] = v

    _children_items = Sequential._children_items
    _walk = Sequential._walk
    named_children = Sequential.named_children

    def __getitem__(self, k):
        return self.layers[k]

    def __setitem__(self, k, v):
        self.layers[str(k)] = v

    def __contains__(self, k):
        return k in self.layers

    def __len__(self):
        return len(self.layers)

    def keys(self):
        return self.layers.keys()

    def values(self):
        return self.layers.values()

    def items(self):
        return self.layers.items()


def make_module(func, exec_n_args=1):
    """Jittor's make_module: a Module class calling func(x, *args)."""
    class MakeModule(Module):
        def __init__(self, *args, **kw):
            self.args = args
            self.kw = kw

        def execute(self, *args):
            return func(*args, *self.args, **self.kw)

        def extra_repr(self):
            return ", ".join([repr(a) for a in self.args]
                             + [f"{k}={v!r}" for k, v in self.kw.items()])
    MakeModule.__name__ = func.__name__
    return MakeModule
