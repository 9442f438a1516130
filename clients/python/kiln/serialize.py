"""serialize.py: jt.save and jt.load -- pickles of numpy arrays.

Jittor writes a model's state as a pickle of a dict of numpy arrays (Vars
are converted, recursively through dicts, lists and tuples), which is
also what PyTorch users exchange after `.numpy()`. jt.load reads such a
pickle back as numpy arrays; load_state_dict turns them into Vars.
Pickles run code when loaded: load only files you trust, as with Jittor
and PyTorch.
"""
import collections
import os
import pickle

from .var import Var

PROTOCOL = 4


def to_numpy_tree(obj):
    """obj with every Var replaced by its numpy value."""
    if isinstance(obj, Var):
        return obj.numpy()
    if isinstance(obj, dict):
        items = [(k, to_numpy_tree(v)) for k, v in obj.items()]
        return collections.OrderedDict(items) if isinstance(obj, collections.OrderedDict) \
            else dict(items)
    if isinstance(obj, list):
        return [to_numpy_tree(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(to_numpy_tree(v) for v in obj)
    return obj


def _vars_in(obj, out):
    if isinstance(obj, Var):
        out.append(obj)
    elif isinstance(obj, dict):
        for v in obj.values():
            _vars_in(v, out)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _vars_in(v, out)
    return out


def _fetch_all(obj):
    """Every Var's value in one round of FETCHes, not one per Var."""
    vs = _vars_in(obj, [])
    if vs:
        from . import graph
        graph.runtime().fetch([v._node for v in vs])


def save(obj, path):
    """Write obj (a state dict, or any tree of Vars, arrays and plain
    values) as a pickle, Vars converted to numpy arrays. The file is
    written next to its final name and renamed, so a crash never leaves
    half a checkpoint."""
    _fetch_all(obj)
    data = to_numpy_tree(obj)
    path = os.fspath(path)
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        pickle.dump(data, f, protocol=PROTOCOL)
    os.replace(tmp, path)


def load(path):
    """The object jt.save wrote (numpy arrays where Vars were)."""
    with open(os.fspath(path), "rb") as f:
        return pickle.load(f)


__all__ = ["save", "load"]
