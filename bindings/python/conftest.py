"""Shared by the binding scenarios: a real relay on loopback (the
`rankfile-relay` binary in a temporary directory) and phones that open the
generated `rankfile_ffi` Client against it, each recording its events.

`cargo xtask test` sets RANKFILE_FFI_BINDINGS (the generated module and its
library) and RANKFILE_RELAY_BIN before running pytest.
"""

import asyncio
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time

import pytest

sys.path.insert(0, os.environ["RANKFILE_FFI_BINDINGS"])
import rankfile_ffi as rf  # noqa: E402

# Bounded waits (not timing assertions: a hang must fail, not block CI).
PATIENCE = 90.0


class Relay:
    """A relay child process; its address and certificate fingerprint come
    from its startup line: `rankfile-relay listening on <addr> fingerprint <hex>`."""

    def __init__(self, data_dir):
        self.proc = subprocess.Popen(
            [os.environ["RANKFILE_RELAY_BIN"], "--bind", "127.0.0.1:0",
             "--data-dir", data_dir, "--log", "warn"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        words = self.proc.stdout.readline().split()
        assert words[:3] == ["rankfile-relay", "listening", "on"], words
        assert words[4] == "fingerprint", words
        self.config = rf.RelayConfig(address=words[3], fingerprint=words[5])

    def stop(self):
        self.proc.kill()
        self.proc.wait()


class Recorder(rf.ClientListener):
    """Keeps every event; called on the bindings' event thread."""

    def __init__(self):
        self.events = []
        self.lock = threading.Lock()

    def on_event(self, event):
        with self.lock:
            self.events.append(event)

    def seen(self, pred):
        with self.lock:
            return [e for e in self.events if pred(e)]


class Phone:
    """An account in its own directory, open against the relay."""

    def __init__(self, relay, name):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix=f"rankfile-ffi-{name}-")
        self.key = secrets.token_bytes(32)
        self.recorder = Recorder()
        self.client = run(rf.Client.open(self.dir, self.key, relay.config, self.recorder))
        self.id = run(self.client.account_id())

    def close(self):
        run(self.client.shutdown())


def run(awaitable):
    """Runs one call of the async API to its end."""
    async def go():
        return await awaitable
    return asyncio.run(go())


async def eventually(what, check, patience=PATIENCE):
    """Waits until `check()` (sync or async) is truthy; returns its value."""
    deadline = time.monotonic() + patience
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {what}")
        await asyncio.sleep(0.05)


@pytest.fixture(scope="module")
def relay():
    with tempfile.TemporaryDirectory(prefix="rankfile-ffi-relay-") as d:
        r = Relay(d)
        yield r
        r.stop()


@pytest.fixture(scope="module")
def phones(relay):
    """An organizer and two workers, connected."""
    ps = {name: Phone(relay, name) for name in ("organizer", "amina", "bo")}
    for p in ps.values():
        run(eventually(f"{p.name} connects", lambda p=p: isinstance(
            p.client.connection_state(), rf.ConnectionState.CONNECTED)))
    yield ps
    for p in ps.values():
        p.close()
