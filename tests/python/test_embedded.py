"""The embedded daemon's life, KILN_ADDRESS, and failures that must not hang."""
import os
import tempfile
import textwrap

from conftest import Kilnd, kilnd_path, run_python

OK = "import kiln as jt\nprint((jt.array([1, 2]) + 1).numpy().tolist())\n"


def test_embedded_start_and_stop():
    kilnd_path()
    code = textwrap.dedent("""
        import os, stat
        import kiln as jt
        from kiln import graph
        print((jt.arange(4) * 2).numpy().tolist())
        rt = graph.runtime()
        print(rt.daemon.proc.pid, rt.daemon.dir, oct(stat.S_IMODE(os.stat(rt.daemon.dir).st_mode)))
        print(rt.conn.address)
    """)
    rc, out, err, secs = run_python(code)
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0] == "[0, 2, 4, 6]"
    pid, d, mode = lines[1].split()
    assert mode == "0o700"
    assert lines[2] == f"ipc://{d}/kilnd.sock"
    assert not os.path.exists(d)  # removed at exit
    try:
        os.kill(int(pid), 0)
        alive = True
    except ProcessLookupError:
        alive = False
    assert not alive


def test_daemon_missing_is_a_clear_error():
    rc, out, err, secs = run_python(OK, {"KILN_DAEMON": "/nonexistent/kilnd"})
    assert rc != 0 and secs < 20
    assert "DaemonNotFoundError" in err and "/nonexistent/kilnd" in err


def test_daemon_exits_at_start():
    rc, out, err, secs = run_python(OK, {"KILN_DAEMON_ARGS": "--no-such-flag"})
    assert rc != 0 and secs < 20
    assert "ConnectError" in err and "exited with status 2" in err
    assert "no-such-flag" in err  # the daemon's own words, from its log


def test_daemon_never_listens():
    d = tempfile.mkdtemp()
    fake = os.path.join(d, "kilnd")
    with open(fake, "w") as f:
        f.write("#!/bin/sh\nexec sleep 30\n")
    os.chmod(fake, 0o755)
    rc, out, err, secs = run_python(OK, {"KILN_DAEMON": fake, "KILN_START_TIMEOUT": "1"})
    assert rc != 0 and secs < 10
    assert "did not listen" in err
    os.unlink(fake)
    os.rmdir(d)


def test_embedded_daemon_dies_mid_session():
    kilnd_path()
    code = textwrap.dedent("""
        import os, signal
        import kiln as jt
        from kiln import graph
        x = jt.array([1.0]) + 1
        x.sync()
        d = graph.runtime().daemon
        os.kill(d.proc.pid, signal.SIGKILL)
        d.proc.wait()
        try:
            (x * 2).numpy()
        except jt.KilnError as e:
            print(type(e).__name__, e)
    """)
    rc, out, err, secs = run_python(code, {"KILN_TIMEOUT_MS": "1000"})
    assert rc == 0, err
    assert secs < 15
    assert "killed by signal 9" in out


def test_kiln_address_uses_that_daemon():
    d = Kilnd()
    try:
        c = d.connect()
        before = c.status()["sessions_total"]
        rc, out, err, _ = run_python(OK + "from kiln import graph\n"
                                     "print(graph.runtime().daemon is None)\n",
                                     {"KILN_ADDRESS": d.address})
        assert rc == 0, err
        assert out.split("\n")[:2] == ["[2, 3]", "True"]
        assert c.status()["sessions_total"] == before + 1
        assert d.proc.poll() is None  # a daemon we did not start is left running
        c.close()
    finally:
        d.stop()


def test_kiln_address_nothing_listens():
    d = tempfile.mkdtemp()
    rc, out, err, secs = run_python(OK, {"KILN_ADDRESS": f"ipc://{d}/none.sock"})
    os.rmdir(d)
    assert rc != 0 and secs < 10
    assert "ConnectError" in err and "no daemon answers" in err
