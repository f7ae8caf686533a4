"""TcpCheck against real sockets on loopback."""

from __future__ import annotations

import asyncio
import socket

import pytest

from backends.model import CheckReading, State
from helpers import source_for


async def poll_one(**options) -> CheckReading:
    options.setdefault("refresh", "2s")
    options.setdefault("timeout", "1s")
    check = source_for("services", "tcp", **options)
    [reading] = await asyncio.wait_for(check.poll(), check.timeout)
    assert "\n" not in reading.reason
    return reading


@pytest.fixture
def listening_port():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield server.getsockname()[1]


async def test_open_port_is_ok_with_latency(listening_port):
    reading = await poll_one(port=listening_port)
    assert reading.state is State.OK
    assert reading.reason == f"port {listening_port} open"  # the latency is in its own field
    assert reading.kind == "tcp" and reading.target == f"127.0.0.1:{listening_port}"
    assert reading.latency_ms is not None and reading.latency_ms >= 0


async def test_refused_port_is_critical():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    reading = await poll_one(port=port)
    assert reading.state is State.CRITICAL
    assert reading.reason == f"connection refused on 127.0.0.1:{port} — is the service running?"


async def test_localhost_name_refused_on_every_address():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    reading = await poll_one(host="localhost", port=port)
    assert reading.state is State.CRITICAL
    assert "connection refused on localhost:" in reading.reason


async def test_no_answer_is_critical_within_the_timeout():
    # A listening socket whose accept queue is full: further SYNs are dropped, so connecting hangs.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port = server.getsockname()[1]
        fillers = []
        try:
            for _ in range(8):
                filler = socket.socket()
                filler.setblocking(False)
                filler.connect_ex(("127.0.0.1", port))
                fillers.append(filler)
            await asyncio.sleep(0.05)
            reading = await poll_one(port=port, refresh="1s", timeout="300ms")
        finally:
            for filler in fillers:
                filler.close()
    assert reading.state is State.CRITICAL
    assert reading.reason.startswith("no answer within 270ms from 127.0.0.1:")


async def test_slow_connect_is_a_warning(listening_port):
    reading = await poll_one(port=listening_port, warn_latency="0ms")
    assert reading.state is State.WARN
    assert reading.reason.startswith(f"slow: connected to 127.0.0.1:{listening_port} in ")


async def test_unknown_host_is_critical():
    reading = await poll_one(host="no-such-host.invalid", port=80)
    assert reading.state is State.CRITICAL
    assert reading.reason == "cannot resolve host 'no-such-host.invalid' — check the name or DNS"


async def test_connections_are_closed():
    # each poll must hang up: the server sees EOF on every accepted connection
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        for _ in range(3):
            assert (await poll_one(port=port)).state is State.OK
            conn, _ = server.accept()
            conn.settimeout(1)
            assert conn.recv(1) == b""
            conn.close()
