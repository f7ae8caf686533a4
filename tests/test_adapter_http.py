"""HttpCheck against a real HTTP server on loopback (see conftest.http_server)."""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
import sys
import threading

import pytest

from backends.adapters import http_check
from backends.model import CheckReading, State
from conftest import LoopbackServer, _Handler, slow_requests
from helpers import source_for


async def poll_one(**options) -> CheckReading:
    options.setdefault("refresh", "2s")
    options.setdefault("timeout", "1s")
    check = source_for("services", "http", **options)
    try:
        readings = await check.poll()
    finally:
        await check.close()
    assert len(readings) == 1 and isinstance(readings[0], CheckReading)
    reading = readings[0]
    assert "\n" not in reading.reason and len(reading.reason) <= 200
    return reading


def free_port() -> int:
    """A port nobody listens on: bind, note it, close."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_healthy_endpoint_is_ok_with_latency_and_status(http_server):
    reading = await poll_one(url=f"{http_server}/healthy")
    assert reading.state is State.OK
    assert reading.reason == "HTTP 200 OK"  # the latency has its own field, so the reason stays still
    assert reading.kind == "http" and reading.target == f"{http_server}/healthy"
    assert reading.latency_ms is not None and 0 < reading.latency_ms < 1000
    assert ("status", "200") in reading.details


async def test_expected_json_fields_match_strings_bools_and_numbers(http_server):
    reading = await poll_one(url=f"{http_server}/healthy",
                             expect_json={"status": "UP", "checks.0.ok": True, "version": 3})
    assert reading.state is State.OK, reading.reason
    assert "status UP" in reading.reason
    assert ("checks.0.ok", "true") in reading.details


async def test_wrong_json_value_is_critical_with_both_values(http_server):
    reading = await poll_one(url=f"{http_server}/down", expect_json={"status": "UP"})
    assert reading.state is State.CRITICAL
    assert reading.reason == "status is 'DOWN' (expected 'UP')"


async def test_missing_json_field_is_critical(http_server):
    reading = await poll_one(url=f"{http_server}/healthy", expect_json={"checks.1.ok": "true"})
    assert reading.state is State.CRITICAL
    assert reading.reason == "field checks.1.ok missing in response"


async def test_bad_json_is_critical_only_when_fields_are_expected(http_server):
    reading = await poll_one(url=f"{http_server}/badjson", expect_json={"status": "UP"})
    assert reading.state is State.CRITICAL
    assert reading.reason.startswith("response is not JSON: ")
    assert "not json{" in reading.reason
    assert (await poll_one(url=f"{http_server}/badjson")).state is State.OK


async def test_server_error_is_critical_and_says_what_was_expected(http_server):
    reading = await poll_one(url=f"{http_server}/error")
    assert reading.state is State.CRITICAL
    assert reading.reason == "HTTP 500 Internal Server Error (expected 2xx)"
    assert ("status", "500") in reading.details


async def test_expect_status_accepts_listed_codes(http_server):
    assert (await poll_one(url=f"{http_server}/error", expect_status=[500, 503])).state is State.OK
    reading = await poll_one(url=f"{http_server}/healthy", expect_status=204)
    assert reading.state is State.CRITICAL and "(expected 204)" in reading.reason


async def test_redirect_is_not_followed_and_names_its_target(http_server):
    reading = await poll_one(url=f"{http_server}/redirect")
    assert reading.state is State.CRITICAL
    assert reading.reason == "HTTP 302 Found → /login (expected 2xx)"


async def test_headers_method_and_head(http_server):
    reading = await poll_one(url=f"{http_server}/headers", headers={"X-Token": "s3cret"},
                             expect_json={"token": "s3cret"})
    assert reading.state is State.OK, reading.reason
    assert (await poll_one(url=f"{http_server}/anything", method="POST", expect_status=201)).state is State.OK
    assert (await poll_one(url=f"{http_server}/healthy", method="HEAD")).state is State.OK


async def test_slow_answer_is_a_warning(http_server):
    reading = await poll_one(url=f"{http_server}/slow", warn_latency="50ms")
    assert reading.state is State.WARN
    assert reading.reason.startswith("slow: HTTP 200 OK in ") and "warn above 50ms" in reading.reason
    assert reading.latency_ms >= 100


async def test_hung_endpoint_reports_its_own_timeout_before_the_engine(http_server):
    check = source_for("services", "http", url=f"{http_server}/hung", refresh="1s", timeout="500ms")
    try:
        # exactly as the engine guards every poll: the adapter's own answer must come first
        [reading] = await asyncio.wait_for(check.poll(), check.timeout)
    finally:
        await check.close()
    assert reading.state is State.CRITICAL
    assert reading.reason == "no answer within 450ms"


async def test_connection_refused_is_critical_and_actionable():
    port = free_port()
    reading = await poll_one(url=f"http://127.0.0.1:{port}/health")
    assert reading.state is State.CRITICAL
    assert reading.reason == f"connection refused on 127.0.0.1:{port} — is the service running?"


async def test_unknown_host_names_the_host():
    reading = await poll_one(url="http://no-such-host.invalid/health")
    assert reading.state is State.CRITICAL
    assert "cannot resolve host 'no-such-host.invalid'" in reading.reason


async def test_unsupported_url_and_missing_ca_file_are_unknown(tmp_path):
    reading = await poll_one(url="ftp://127.0.0.1/x")
    assert reading.state is State.UNKNOWN and "bad URL" in reading.reason
    reading = await poll_one(url="https://127.0.0.1:1/x", ca_file=str(tmp_path / "missing.pem"))
    assert reading.state is State.UNKNOWN
    assert reading.reason.startswith(f"cannot load CA file {tmp_path / 'missing.pem'}: no such file")


async def test_many_checks_share_one_pool_and_poll_concurrently(http_server):
    checks = [source_for("services", "http", name=f"c{i}", url=f"{http_server}/slow", refresh="5s", timeout="4s")
              for i in range(200)]
    slow_requests.reset()
    results = await asyncio.gather(*(check.poll() for check in checks))
    assert all(r[0].state is State.OK for r in results), {r[0].reason for r in results if r[0].state is not State.OK}
    assert slow_requests.most_at_once >= 50  # the server saw them in flight together, not one after another
    assert len({id(check._pool) for check in checks}) == 1
    pool = checks[0]._pool
    idle = sum(len(conns) for conns in pool._idle.values())
    assert idle >= 50  # keep-alive connections wait for the next sweep
    await asyncio.gather(*(check.close() for check in checks[:-1]))
    assert pool._idle  # one check still uses it
    await checks[-1].close()
    assert not pool._idle
    assert asyncio.get_running_loop() not in http_check._POOLS


async def test_keep_alive_connections_are_reused_between_polls(http_server):
    check = source_for("services", "http", url=f"{http_server}/healthy")
    try:
        await check.poll()
        (first,) = [conn for conns in check._pool._idle.values() for conn in conns]
        await check.poll()
        (second,) = [conn for conns in check._pool._idle.values() for conn in conns]
        assert first is second
    finally:
        await check.close()


async def test_header_injection_is_refused(http_server):
    reading = await poll_one(url=f"{http_server}/healthy", headers={"X-Token": "a\r\nX-Evil: 1"})
    assert reading.state is State.UNKNOWN and "line break" in reading.reason


@pytest.fixture
def https_server(tmp_path):
    """A real HTTPS server with a self-signed certificate for 127.0.0.1; yields (base URL, cert path)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    server = LoopbackServer(("127.0.0.1", 0), _Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}", str(cert)
    server.shutdown()
    server.server_close()


async def test_tls_untrusted_certificate_then_trusted_by_ca_file_or_skipped(https_server):
    url, cert = https_server
    reading = await poll_one(url=f"{url}/healthy")
    assert reading.state is State.CRITICAL
    assert "TLS certificate of 127.0.0.1:" in reading.reason and "self-signed" in reading.reason, reading.reason
    assert (await poll_one(url=f"{url}/healthy", ca_file=cert)).state is State.OK
    assert (await poll_one(url=f"{url}/healthy", verify_tls=False)).state is State.OK


def test_json_helpers():
    document = {"a": {"b": [{"c": None}, {"c": 1.5}]}, "x.y": "dotted"}
    assert http_check.json_text(http_check.json_field(document, "a.b.1.c")) == "1.5"
    assert http_check.json_text(http_check.json_field(document, "a.b.0.c")) == "null"
    assert http_check.json_field(document, "x.y") == "dotted"
    with pytest.raises(KeyError):
        http_check.json_field(document, "a.b.2.c")
    assert http_check.same_value("1", "1.0") and not http_check.same_value("UP", "up")


def test_importing_the_adapter_does_not_import_textual():
    code = "import sys, backends.adapters.http_check; assert 'textual' not in sys.modules, 'textual imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
