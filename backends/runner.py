"""Running an action: a command's output streamed line by line, or an HTTP request; always bounded in time."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import subprocess
import time
from typing import Mapping

from .actions import Action, ActionResult, Emit
from .text import one_line

TAIL_LINES = 200
MAX_LINE = 8192
TERM_GRACE = 2.0


async def run_argv(action: Action, emit: Emit, cwd: str | None = None,
                   env: Mapping[str, str] | None = None) -> ActionResult:
    """Run ``action.argv`` in its own process group; on timeout the whole group is killed."""
    started = time.monotonic()
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)

    def result(ok: bool, code: int | None, error: str = "") -> ActionResult:
        return ActionResult(action, ok, code, list(tail), time.monotonic() - started, error)

    try:
        process = await asyncio.create_subprocess_exec(
            *action.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            cwd=cwd or action.cwd, env={**os.environ, **(env or {})}, start_new_session=True, limit=MAX_LINE * 4)
    except FileNotFoundError:
        return result(False, None, f"command not found: {action.argv[0]}")
    except PermissionError:
        return result(False, None, f"cannot run {action.argv[0]}: permission denied")
    except OSError as exc:
        return result(False, None, one_line(f"cannot run {action.argv[0]}: {exc}"))

    async def pump() -> None:
        assert process.stdout is not None
        while True:
            try:
                raw = await process.stdout.readline()
            except ValueError:  # a line longer than the limit: take what is there
                raw = await process.stdout.read(MAX_LINE)
            if not raw:
                return
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")[:MAX_LINE]
            tail.append(line)
            emit(line)

    work = asyncio.gather(pump(), process.wait())
    work.add_done_callback(lambda done: done.cancelled() or done.exception())  # a cancelled run is not an error
    try:
        await asyncio.wait_for(work, action.timeout)
    except asyncio.TimeoutError:
        await _kill_group(process)
        return result(False, process.returncode, f"still running after {action.timeout:g}s; killed")
    except asyncio.CancelledError:
        await _kill_group(process)
        raise
    code = process.returncode
    return result(code == 0, code)


async def _kill_group(process: asyncio.subprocess.Process) -> None:
    """SIGTERM to the group, then SIGKILL after a grace period: nothing the action started is left behind."""
    for sig, grace in ((signal.SIGTERM, TERM_GRACE), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            await asyncio.wait_for(process.wait(), grace)
            return
        except asyncio.TimeoutError:
            continue


async def run_request(action: Action, emit: Emit) -> ActionResult:
    """Send ``action.request`` on a fresh connection (never retried: a POST must not run twice)."""
    from .adapters.http_check import shared_tls_context
    from .adapters.http_wire import Pool, ProtocolError, parse_url
    from .adapters.text import connect_error_reason

    assert action.request is not None
    started = time.monotonic()
    request = action.request
    output: list[str] = []
    pool = Pool()
    try:
        target = parse_url(request.url)
    except ValueError as exc:
        return ActionResult(action, False, None, output, 0.0, f"bad URL {request.url}: {exc}")
    try:
        tls = await shared_tls_context(True, None) if target.scheme == "https" else None
        response = await asyncio.wait_for(
            pool.fetch(request.method, target, dict(request.headers), tls, 1024 * 1024, request.body.encode()),
            action.timeout)
    except asyncio.TimeoutError:
        return ActionResult(action, False, None, output, time.monotonic() - started,
                            f"no answer within {action.timeout:g}s")
    except OSError as exc:  # before ValueError: a TLS verification error is both
        return ActionResult(action, False, None, output, time.monotonic() - started,
                            connect_error_reason(exc, target.host, target.port))
    except (ValueError, ProtocolError, asyncio.IncompleteReadError) as exc:
        return ActionResult(action, False, None, output, time.monotonic() - started,
                            one_line(f"request failed: {exc or type(exc).__name__}"))
    finally:
        pool.close()
    status = f"HTTP {response.status} {response.reason}".rstrip()
    for line in [status, *response.body.decode("utf-8", errors="replace").splitlines()[-TAIL_LINES:]]:
        output.append(line)
        emit(line)
    ok = 200 <= response.status < 300
    return ActionResult(action, ok, response.status, output, time.monotonic() - started, "" if ok else status)
