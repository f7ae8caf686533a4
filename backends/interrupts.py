"""Ending on SIGTERM or SIGHUP without losing an audit line or leaving a child running, and without stalling.

When such a signal arrives while an action runs: every process group this process started gets SIGTERM, the
engine writes each running action's ``failed`` line (``interrupted by SIGTERM``), and the process exits. The
groups still alive ``TERM_GRACE`` later get SIGKILL. Whatever could stall the exit (Textual writing to a terminal
that is gone) is cut short by a watchdog thread: ``WATCHDOG`` seconds after the exit began it kills what is
left and ends the process with ``os._exit``; and an ``alarm`` a little later ends it even if a C call holds the
interpreter's lock, so the watchdog thread cannot run.

Only this process's direct children are signalled, and a whole group only when the child leads its own (the
runners start every command in a new session): never this process's own group.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterable, TextIO

TERM_GRACE = 0.5
WATCHDOG = 1.5
HEADLESS_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
ALARM = 2  # whole seconds, for signal.alarm: the last resort when the watchdog cannot get the interpreter
SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def children(pid: int | None = None) -> list[int]:
    """The direct children of ``pid`` (this process by default)."""
    pid = os.getpid() if pid is None else pid
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(p) for p in (task / "children").read_text().split()]
        return found
    except OSError:  # a kernel without /proc/PID/task/TID/children: read every process's parent
        return [p for p, (parent, _, _) in _processes().items() if parent == pid]


def _processes() -> dict[int, tuple[int, int, str]]:
    """{pid: (parent, group, state)} of every process, from /proc."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()  # the command name may hold spaces and parentheses
        found[int(entry.name)] = (int(fields[1]), int(fields[2]), fields[0])
    return found


def groups_of(pids: Iterable[int]) -> list[int]:
    """The process groups ``pids`` lead (their own, started with a new session); not this process's group."""
    mine = os.getpgrp()
    found = []
    for pid in pids:
        try:
            group = os.getpgid(pid)
        except OSError:
            continue
        if group == pid and group != mine:
            found.append(group)
    return found


def signal_groups(groups: Iterable[int], sig: int) -> None:
    for group in groups:
        try:
            os.killpg(group, sig)
        except OSError:
            pass


def terminate_children() -> list[int]:
    """SIGTERM to every process group this process's children lead (and to the others' own pid); returns the
    groups, for ``end_groups``."""
    pids = children()
    groups = groups_of(pids)
    signal_groups(groups, signal.SIGTERM)
    for pid in set(pids) - set(groups):
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    return groups


def alive(groups: Iterable[int]) -> list[int]:
    """Those of ``groups`` with a member that is still running (a zombie has ended)."""
    wanted = set(groups)
    if not wanted:
        return []
    return sorted({group for _, group, state in _processes().values() if group in wanted and state not in "ZX"})


def end_groups(groups: Iterable[int], grace: float = TERM_GRACE) -> None:
    """Wait up to ``grace`` for ``groups`` (already sent SIGTERM) to end, then SIGKILL what is left."""
    groups = list(groups)
    deadline = time.monotonic() + grace
    while alive(groups) and time.monotonic() < deadline:
        time.sleep(0.02)
    signal_groups(alive(groups), signal.SIGKILL)


def start_watchdog(groups: Iterable[int], code: int, after: float = WATCHDOG) -> threading.Thread:
    """Ends the process ``after`` seconds from now whatever it is doing: SIGKILL to ``groups``, flush, _exit."""
    groups = list(groups)

    def fire() -> None:
        time.sleep(after)
        signal_groups(groups, signal.SIGKILL)
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # a terminal that is gone
                pass
        os._exit(code)

    thread = threading.Thread(target=fire, name="lakedeck-exit-watchdog", daemon=True)
    thread.start()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGALRM, signal.SIG_DFL)  # the kernel ends the process: no interpreter needed
        signal.alarm(ALARM)
    return thread


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def exit_on_signals(interrupt: Callable[[str], list[int]] = lambda why: terminate_children(),
                    streams: Iterable[TextIO] = (sys.stdout, sys.stderr)) -> None:
    """For a headless verb, in its running asyncio loop: on SIGTERM, SIGHUP or SIGINT, ``interrupt`` (an engine's:
    its running actions' `failed` lines; by default only the children's groups get SIGTERM), the groups ended, one
    line on the last of ``streams``, and exit 128+N at once: asyncio's own shutdown could wait on a stuck thread."""
    loop = asyncio.get_running_loop()
    streams = list(streams)

    def end(signum: int) -> None:
        name = signal_name(signum)
        end_groups(interrupt(name))
        if streams:
            streams[-1].write(f"lakedeck: interrupted by {name}\n")
        for stream in streams:
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(128 + signum)

    for signum in HEADLESS_SIGNALS:
        try:
            loop.add_signal_handler(signum, end, signum)
        except (NotImplementedError, RuntimeError, ValueError):
            pass
