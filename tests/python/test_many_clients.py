"""16 clients at once (issue 8, acceptance): separate processes train the
W1 MLP with the same seeds on one daemon; every one ends with exactly the
parameters and losses of a client that ran alone, and the daemon has no
session or memory left afterwards. (The throughput, fairness and latency
figures are bench/many_clients.py's: timings are not asserted here.)"""
import os
import sys

from conftest import Kilnd, ROOT

sys.path.insert(0, os.path.join(ROOT, "bench"))
import many_clients  # noqa: E402


def test_sixteen_clients_match_a_solo_run_bit_for_bit():
    d = Kilnd()
    try:
        solo, _ = many_clients.run_clients(d.address, 1, 8, 256, timeout=300)
        crowd, _ = many_clients.run_clients(d.address, 16, 8, 256, timeout=600)
        assert len(crowd) == 16
        assert [r["hash"] for r in crowd] == [solo[0]["hash"]] * 16
        c = d.connect()
        try:
            st = c.status()
            assert st["sessions"] == 1  # this one: every client's session ended
            assert st["memory"]["in_use"] == 0
            assert st["steps"]["failed"] == 0
            assert len(st["session_list"]) == 1
        finally:
            c.close()
    finally:
        d.stop()
