"""Var.sync and jt.sync wait for the daemon without downloading the value,
and still raise when the var's step failed."""
import numpy as np
import pytest


def test_sync_waits_without_fetching(jt):
    x = jt.array(np.arange(12, dtype=np.float32).reshape(3, 4))
    y = (x * 2).sync()
    assert y._node.value is None  # nothing came over the socket
    np.testing.assert_array_equal(y.numpy(), np.arange(12).reshape(3, 4) * 2)
    b = (x > 3).sync()  # bool, and a rank-0 var below
    assert int(b.numpy().sum()) == 8
    z = jt.array(np.float32(5)).sync()
    assert z.item() == 5
    w = x + 1
    jt.sync([w, x * 3])
    assert w._node.value is None
    assert float(w.numpy()[2, 3]) == 12.0


def test_sync_raises_when_the_step_failed(jt):
    from kiln.errors import KilnError
    big = jt.zeros((1 << 34,))  # 64 GiB: over any step's memory quota
    with pytest.raises(KilnError):
        big.sync()
