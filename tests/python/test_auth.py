"""Identities: users and tokens from kilnd's --config file, anonymous
clients on ipc:// and tcp://, and --hash-token (issue 8, "Identities")."""
import hashlib
import json
import os
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import Kilnd, kilnd_path


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def sha(tok):
    return hashlib.sha256(tok.encode()).hexdigest()


def write_config(obj):
    fd, path = tempfile.mkstemp(prefix="kilnd-conf-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        f.write(obj if isinstance(obj, str) else json.dumps(obj))
    return path


class Daemon(Kilnd):
    """A kilnd with extra listeners (its ipc:// socket is the first)."""

    def __init__(self, *args, tcp=False):
        self.port = free_port() if tcp else None
        extra = ["--listen", f"tcp://127.0.0.1:{self.port}"] if tcp else []
        super().__init__(*extra, *args)

    def tcp(self):
        return f"tcp://127.0.0.1:{self.port}"

    def connect_to(self, address, **kw):
        from kiln.connection import Connection
        from kiln.errors import ConnectError
        deadline = time.monotonic() + 10
        while True:
            try:
                return Connection(address, **kw)
            except ConnectError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


def refused(d, address, **kw):
    from kiln.errors import AuthError
    with pytest.raises(AuthError) as e:
        d.connect_to(address, **kw).close()
    return e.value


def test_hash_token_matches_sha256():
    p = subprocess.run([kilnd_path(), "--hash-token"], input="s3cret\n", capture_output=True,
                       text=True, timeout=10)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == sha("s3cret")
    p = subprocess.run([kilnd_path(), "--hash-token"], input="", capture_output=True, text=True,
                       timeout=10)
    assert p.returncode == 2


def test_tcp_without_users_refuses_to_start():
    port = free_port()
    p = subprocess.run([kilnd_path(), "--listen", f"tcp://127.0.0.1:{port}", "--log-level",
                        "warn"], capture_output=True, text=True, timeout=20)
    assert p.returncode != 0
    assert "--allow-anonymous" in p.stderr


def test_tcp_with_allow_anonymous():
    d = Daemon("--allow-anonymous", tcp=True)
    try:
        c = d.connect_to(d.tcp())
        assert c.status()["sessions"] >= 1
        c.close()
    finally:
        d.stop()


def test_users_and_tokens():
    conf = write_config({"users": [{"name": "alice", "token_sha256": sha("alice-tok"),
                                    "weight": 2},
                                   {"name": "bob", "token_sha256": sha("bob-tok")}]})
    d = Daemon("--config", conf, tcp=True)
    try:
        for addr in (d.address, d.tcp()):
            d.connect_to(addr, token="alice-tok").close()
            d.connect_to(addr, token="bob-tok").close()
            e = refused(d, addr, token="mallory")
            assert "names no user" in str(e)
        d.connect_to(d.address).close()  # anonymous is "local" by default
        e = refused(d, d.tcp())
        assert "needs a token" in str(e)
    finally:
        d.stop()
        os.unlink(conf)


def test_anonymous_none_needs_a_token_locally_too():
    conf = write_config({"anonymous": "none",
                         "users": [{"name": "alice", "token_sha256": sha("t")}]})
    d = Daemon("--config", conf)
    try:
        refused(d, d.address)
        d.connect_to(d.address, token="t").close()
    finally:
        d.stop()
        os.unlink(conf)


@pytest.mark.parametrize("text, culprit", [
    ('{"users": [{"name": "a"}]}', "users[0].token_sha256"),
    ('{"users": [{"name": "a", "token_sha256": "%s", "weight": 0}]}' % ("0" * 64),
     "users[0].weight"),
    ('{"users": [{"name": "a", "token_sha256": "%s"}, {"name": "a", "token_sha256": "%s"}]}'
     % ("0" * 64, "1" * 64), "given twice"),
    ('{"anonymous": "sometimes"}', "anonymous"),
    ('{"userz": []}', "unknown field"),
    ('{"users": [', "kilnd-conf"),
])
def test_bad_configuration_is_refused(text, culprit):
    conf = write_config(text)
    try:
        p = subprocess.run([kilnd_path(), "--config", conf, "--listen",
                            "ipc://" + conf + ".sock", "--log-level", "warn"],
                           capture_output=True, text=True, timeout=20)
        assert p.returncode != 0
        assert culprit in p.stderr, p.stderr
    finally:
        os.unlink(conf)


def test_kiln_token_environment(monkeypatch):
    conf = write_config({"anonymous": "none",
                         "users": [{"name": "alice", "token_sha256": sha("env-tok")}]})
    d = Daemon("--config", conf)
    try:
        monkeypatch.setenv("KILN_TOKEN", "env-tok")
        d.connect_to(d.address).close()  # the Python client reads KILN_TOKEN
        env = dict(os.environ, KILN_ADDRESS=d.address)
        cli = os.path.join(os.path.dirname(os.path.dirname(kilnd_path())), "clients", "cli", "kiln")
        if os.path.exists(cli):  # and so does libkiln (the kiln command)
            assert subprocess.run([cli, "ping"], env=env, capture_output=True,
                                  timeout=20).returncode == 0
            env["KILN_TOKEN"] = "wrong"
            p = subprocess.run([cli, "ping"], env=env, capture_output=True, text=True, timeout=20)
            assert p.returncode != 0 and "AUTH" in (p.stderr + p.stdout).upper()
    finally:
        d.stop()
        os.unlink(conf)
