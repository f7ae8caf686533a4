"""A real supervisord (PyPI: supervisor) on loopback and a unix socket, with programs that print lines.

Import the ``supervisord`` fixture into a test module. supervisord is looked for next to this Python first
(the venv's bin), then on PATH; when missing the test is skipped, or fails under LAKEDECK_REQUIRE_INTEGRATION=1.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import xmlrpc.client
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from integration import required

USERNAME, PASSWORD = "u", "p"
READY_WITHIN = 30.0

PRINTER = """import itertools, sys, time
for i in itertools.count():
    print(sys.argv[1], "line", i, flush=True)
    time.sleep(0.2)
"""

# Writes to both streams, non-ASCII text, and (later) a colour code, which XML-RPC cannot carry.
CHATTY = """import sys, time
print("plain line", flush=True)
sys.stderr.write("warning: on stderr\\n")
sys.stderr.flush()
print("caf\\u00e9 na\\u00efve", flush=True)
time.sleep(1.5)
print("\\x1b[31mred\\x1b[0m colour codes", flush=True)
time.sleep(1.5)
print("after the colours", flush=True)
time.sleep(3600)
"""

CONFIG = """[supervisord]
nodaemon=true
logfile={dir}/supervisord.log
pidfile={dir}/supervisord.pid
childlogdir={dir}

[unix_http_server]
file={dir}/s.sock

[inet_http_server]
port=127.0.0.1:{port}
username={username}
password={password}

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{dir}/s.sock

[program:web]
command={python} -u {dir}/printer.py web
autostart=true
startsecs=0
stopwaitsecs=5
stdout_logfile={dir}/web.out.log
stderr_logfile={dir}/web.err.log

[program:batch]
command={python} -u {dir}/printer.py batch
autostart=false
startsecs=0
stopwaitsecs=5
stdout_logfile={dir}/batch.out.log

[program:chatty]
command={python} -u {dir}/chatty.py
autostart=false
startsecs=0
stopwaitsecs=5
stdout_logfile={dir}/chatty.out.log
stderr_logfile={dir}/chatty.err.log

[program:crash]
command={python} -c "import sys; sys.exit(3)"
autostart=false
startsecs=1
startretries=0
stdout_logfile={dir}/crash.out.log
"""


@dataclass(frozen=True)
class Supervisord:
    dir: Path
    port: int

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/RPC2"

    @property
    def socket_path(self) -> str:
        return str(self.dir / "s.sock")

    @property
    def socket_url(self) -> str:
        return f"unix://{self.socket_path}"

    def rpc(self) -> xmlrpc.client.ServerProxy:
        return xmlrpc.client.ServerProxy(f"http://{USERNAME}:{PASSWORD}@127.0.0.1:{self.port}/RPC2")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def supervisord_binary() -> str:
    beside = Path(sys.executable).parent / "supervisord"
    found = str(beside) if beside.exists() else shutil.which("supervisord")
    if found is None:
        reason = "supervisord is not installed (pip install supervisor, in the dev extra)"
        if required():
            pytest.fail(f"LAKEDECK_REQUIRE_INTEGRATION=1 but {reason}")
        pytest.skip(reason)
    return found


def _wait_ready(server: Supervisord, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + READY_WITHIN
    while True:
        if process.poll() is not None:
            log = (server.dir / "supervisord.log").read_text() if (server.dir / "supervisord.log").exists() else ""
            pytest.fail(f"supervisord exited with {process.returncode}: {log[-2000:]}")
        try:
            with server.rpc() as rpc:
                running = rpc.supervisor.getProcessInfo("web")["statename"] == "RUNNING"
            log = server.dir / "web.out.log"
            if running and log.exists() and log.read_text().endswith("\n"):  # it has printed its first line
                return
        except (OSError, xmlrpc.client.Error):
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"supervisord did not get web running and printing within {READY_WITHIN:g}s")
        time.sleep(0.05)


@pytest.fixture
def supervisord() -> Iterator[Supervisord]:
    binary = supervisord_binary()
    # A short directory: a unix socket's path must fit in 108 bytes, and pytest's tmp_path may not.
    directory = Path(tempfile.mkdtemp(prefix="ld-sv-"))
    server = Supervisord(directory, free_port())
    (directory / "printer.py").write_text(PRINTER)
    (directory / "chatty.py").write_text(CHATTY)
    config = directory / "supervisord.conf"
    config.write_text(CONFIG.format(dir=directory, port=server.port, username=USERNAME, password=PASSWORD,
                                    python=sys.executable))
    process = subprocess.Popen([binary, "-n", "-c", str(config)], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_ready(server, process)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(directory, ignore_errors=True)
