"""Var.sync and jt.sync wait for the daemon without downloading the value,
and still raise when the var's step failed."""
import numpy as np
import pytest


def test_sync_waits_without_fetching(jt):
    n = 256 * 1024  # 1 MiB of float32: over what a sync fetches
    x = jt.array(np.arange(n, dtype=np.float32).reshape(512, 512))
    y = (x * 2).sync()
    assert y._node.value is None  # nothing came over the socket
    np.testing.assert_array_equal(y.numpy(), np.arange(n).reshape(512, 512) * 2)
    b = (x > 3).sync()  # bool
    assert int(b.numpy().sum()) == n - 4
    w = x + 1
    jt.sync([w, x * 3])
    assert w._node.value is None
    assert float(w.numpy()[511, 511]) == float(n)


def test_sync_of_small_values_fetches_them(jt):
    a = jt.array(np.float32(5)) * 2
    b = jt.array(np.arange(4, dtype=np.int32)) + 1
    jt.sync([a, b])  # one round trip, then read for free
    assert a._node.value is not None and b._node.value is not None
    assert a.item() == 10 and b.numpy().tolist() == [1, 2, 3, 4]


def test_sync_raises_when_the_step_failed(jt):
    from kiln.errors import KilnError
    big = jt.zeros((1 << 34,))  # 64 GiB: over any step's memory quota
    with pytest.raises(KilnError):
        big.sync()
