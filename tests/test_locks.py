"""One action at a time per target across every lakedeck process of the host: a flock'd file per target in a
host-wide directory (backends/locks.py), tried with real `lakedeck action` processes and the console."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import select
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from backends import config as cfg
from backends import locks
from backends.actions import ActionRefused
from backends.engine import Engine
from tui.app import LakedeckApp
from ui_support import until

ROOT = Path(__file__).parent.parent


def wait_for_go(go: Path, word: str = "started") -> list[str]:
    """A command that says it started, then runs until the test creates ``go``: slow, but never timed."""
    return ["sh", "-c", f'echo {word}; while [ ! -e "$1" ]; do sleep 0.02; done; echo finished', "sh", str(go)]


def write_config(tmp_path: Path, lock_dir: Path, **root) -> Path:
    go = tmp_path / "go"
    path = tmp_path / "lakedeck.yaml"
    path.write_text(yaml.safe_dump({
        "audit_log": str(tmp_path / "audit.jsonl"), "locks": str(lock_dir), **root,
        "services": [{"name": "api", "kind": "tcp", "port": 1, "actions": [
            {"id": "slow", "command": wait_for_go(go)},
            {"id": "hello", "command": ["echo", "hello"]},
        ]}]}))
    return path


def lakedeck(*args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "LAKEDECK_CONFIG"}
    return subprocess.Popen([sys.executable, "-m", "tui.cli", *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def read_until(process: subprocess.Popen, text: str, timeout: float = 30.0) -> str:
    """Its stdout up to the line ``text`` (the process is still running then). Read from the descriptor: a line
    already in a file object's buffer would never wake ``select``."""
    fd, seen, deadline = process.stdout.fileno(), b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        if select.select([fd], [], [], 0.2)[0]:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            seen += chunk
            # the whole line: the command shown first holds the word too
            if text in seen.decode(errors="replace").splitlines():
                return seen.decode(errors="replace")
    raise AssertionError(f"{text!r} never came; stdout: {seen!r}; stderr: {process.stderr.read()!r}")


def audit(tmp_path: Path) -> list[dict]:
    path = tmp_path / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


class Reaped(list):
    """The processes a test started, and the directories its commands name. In the test's finalizer each of those
    processes and all it started (an action runs in a session of its own), and every process whose command line
    names one of the directories (an orphan of a killed lakedeck, the console's own action), are killed with their
    groups and waited for."""

    def __init__(self, *directories: Path) -> None:
        super().__init__()
        self.directories = [str(d) for d in directories]

    def end_all(self) -> None:
        found = processes_naming(self.directories)
        for process in self:
            found += [process.pid, *descendants(process.pid)]
        signal_groups(found, signal.SIGKILL)
        for process in self:
            process.wait(10)
        deadline = time.monotonic() + 10
        while running(found) and time.monotonic() < deadline:
            time.sleep(0.02)  # the kernel ends a killed process at once: this waits for that state, not a time
        assert not running(found), f"still running after SIGKILL: {running(found)}"


def _parents() -> dict[int, int]:
    found = {}
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text() if entry.name.isdigit() else ""
        except OSError:
            continue
        if stat:
            found[int(entry.name)] = int(stat[stat.rfind(")") + 2:].split()[1])
    return found


def descendants(pid: int) -> list[int]:
    parents, found, queue = _parents(), [], [pid]
    while queue:
        pid = queue.pop()
        children = [child for child, parent in parents.items() if parent == pid]
        found += children
        queue += children
    return found


def processes_naming(directories: list[str]) -> list[int]:
    """The pids (but this process) whose command line names one of ``directories``."""
    wanted = [d.encode() for d in directories]
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if any(d in cmdline for d in wanted):
            found.append(int(entry.name))
    return found


def signal_groups(pids: list[int], sig: int) -> None:
    """``sig`` to each pid's process group (to the pid alone when it is in this process's group)."""
    for pid in pids:
        try:
            group = os.getpgid(pid)
            if group == os.getpgrp():
                os.kill(pid, sig)
            else:
                os.killpg(group, sig)
        except OSError:
            pass


def running(pids: list[int]) -> list[int]:
    """Those of ``pids`` still running (a zombie has ended)."""
    alive = []
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if stat[stat.rfind(")") + 2] not in "ZX":
            alive.append(pid)
    return alive


@pytest.fixture
def reaped(tmp_path):
    """Processes a test started (and what they started), killed with their groups whatever happens."""
    started = Reaped(tmp_path)
    yield started
    started.end_all()


# -- the lock file itself ---------------------------------------------------------------------------

@pytest.mark.parametrize("target", ["../../etc/passwd", "a/b", ".hidden", "", "lake:sales.orders", "dag ☃ 1", "x" * 300])
def test_a_lock_file_name_is_always_a_plain_file_in_the_directory(target, tmp_path):
    name = locks.file_name(target)
    assert "/" not in name and not name.startswith(".") and name.endswith(".lock") and len(name) < 100
    assert (tmp_path / name).parent == tmp_path


def test_targets_that_read_alike_get_their_own_files():
    assert len({locks.file_name(t) for t in ("a/b", "a_b", "a b", "a:b")}) == 4


def test_the_second_taker_is_refused_with_who_holds_it_and_the_lock_is_free_after(tmp_path):
    where = locks.resolve(str(tmp_path / "locks"))
    first, second = locks.TargetLock(where, "nginx"), locks.TargetLock(where, "nginx")
    first.acquire({"user": "alice", "pid": 4242, "since": time.time(), "action": "restart"})
    assert second.holder().startswith("nginx is busy: restart by alice (pid 4242) since ")
    with pytest.raises(locks.LockBusy, match=r"^nginx is busy: restart by alice \(pid 4242\) since \d\d:\d\d:\d\d$"):
        second.acquire({"user": "bob", "pid": 1, "since": time.time(), "action": "stop"})
    assert locks.TargetLock(where, "other").holder() == ""  # a lock per target
    first.release()
    assert second.holder() == ""
    second.acquire({"user": "bob", "pid": 1, "since": time.time(), "action": "stop"})
    second.release()


def test_the_refusal_line_is_exact_and_tolerates_a_garbled_file():
    at = time.mktime((2026, 11, 22, 12, 3, 10, 0, 0, -1))
    assert locks.busy_line("nginx", {"user": "alice", "pid": 4242, "since": at, "action": "restart"}, now=at + 5) == \
        "nginx is busy: restart by alice (pid 4242) since 12:03:10"
    assert locks.busy_line("nginx", {"user": "alice", "pid": 4242, "since": at, "action": "restart"},
                           now=at + 3 * 86400) == "nginx is busy: restart by alice (pid 4242) since 2026-11-22 12:03:10"
    assert locks.busy_line("nginx", {}) == "nginx is busy: another lakedeck process is acting on it"
    assert locks.busy_line("nginx", {"user": "\x1b]52;c;x\x07", "pid": "1"}).startswith("nginx is busy: an action by ␛")


# Lock files are 0666: any local user can write what a holder record says. Each case: the bytes planted, and the
# refusal the next taker gets (what it cannot trust is "unknown").
FORGED = {
    "since 1e300": (b'{"action":"x","user":"u","pid":1,"since":1e300}', "x by u (pid 1) since unknown"),
    "since -1e300": (b'{"action":"x","user":"u","pid":1,"since":-1e300}', "x by u (pid 1) since unknown"),
    "since 1e400 (infinity)": (b'{"action":"x","user":"u","pid":1,"since":1e400}', "x by u (pid 1) since unknown"),
    "since -Infinity": (b'{"action":"x","user":"u","pid":1,"since":-Infinity}', "x by u (pid 1) since unknown"),
    "since NaN": (b'{"action":"x","user":"u","pid":1,"since":NaN}', "x by u (pid 1) since unknown"),
    "since a 4000-digit number": (b'{"action":"x","user":"u","pid":1,"since":1' + b"0" * 4000 + b"}",
                                  "x by u (pid 1) since unknown"),  # no float holds it
    "over 4 KiB": (b'{"action":"x","user":"u","pid":1,"since":1' + b"0" * 5000 + b"}",
                   "another lakedeck process is acting on it"),  # only 4 KiB is read: not JSON
    "since 1e20": (b'{"action":"x","user":"u","pid":1,"since":1e20}', "x by u (pid 1) since unknown"),
    "since a year ahead": (b'{"action":"x","user":"u","pid":1,"since":%d}' % (time.time() + 366 * 86400),
                           "x by u (pid 1) since unknown"),
    "strings where numbers go": (b'{"action":"x","user":"u","pid":"1","since":"12:00"}',
                                 "x by u (pid unknown) since unknown"),
    "numbers where strings go": (b'{"action":5,"user":["root"],"pid":true,"since":false}',
                                 "an action by unknown (pid unknown) since unknown"),
    "pid out of range": (b'{"action":"x","user":"u","pid":-5,"since":null}', "x by u (pid unknown) since unknown"),
    "pid huge": (b'{"action":"x","user":"u","pid":100000000000000000000000,"since":null}',
                 "x by u (pid unknown) since unknown"),
    "pid a float": (b'{"action":"x","user":"u","pid":1.5}', "x by u (pid unknown) since unknown"),
    "huge strings": (b'{"action":"%s","user":"%s","pid":7}' % (b"a" * 2000, b"b" * 1500),
                     "an action by unknown (pid 7) since unknown"),
    "escape sequences": (b'{"action":"x","user":"\\u001b]52;c;cHduZWQ=\\u0007\\u202e","pid":7}',
                         "x by \u241b]52;c;cHduZWQ=\u2407\u27e8U+202E\u27e9 (pid 7) since unknown"),
    "invalid JSON": (b'{"action": "x", "user', "another lakedeck process is acting on it"),
    "binary junk": (bytes(range(256)) * 3, "another lakedeck process is acting on it"),
    "nested past the recursion limit": (b"[" * 4096, "another lakedeck process is acting on it"),
    "a JSON list": (b'["x", "u", 1]', "another lakedeck process is acting on it"),
    "10 MB": (b'{"action":"x","user":"u","pid":1,' + b" " * (10 << 20) + b"}", "another lakedeck process is acting on it"),
}


@pytest.mark.parametrize("planted, shown", FORGED.values(), ids=FORGED.keys())
def test_a_forged_holder_record_is_shown_never_trusted(tmp_path, planted, shown):
    """The attacker's case through the real CLI: the planted record is held with flock, and `lakedeck action` is
    refused with the busy line (exit 2, audited), never a traceback; the console's probe says the same."""
    config = str(write_config(tmp_path, tmp_path / "locks"))
    (tmp_path / "locks").mkdir()
    lock_file = tmp_path / "locks" / locks.file_name("api")
    lock_file.write_bytes(planted)
    fd = os.open(lock_file, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as `flock LOCKFILE -c ...` holds it
        refused = subprocess.run([sys.executable, "-m", "tui.cli", "action", "-c", config, "api", "hello", "--yes"],
                                 cwd=ROOT, capture_output=True, text=True, timeout=60)
        probe = locks.TargetLock(locks.resolve(str(tmp_path / "locks")), "api").holder()
    finally:
        os.close(fd)
    assert (refused.returncode, refused.stderr) == (2, f"lakedeck: api is busy: {shown}\n")
    assert probe == f"api is busy: {shown}"
    assert [(e["event"], e["reason"]) for e in audit(tmp_path)] == [("refused", f"api is busy: {shown}")]


def test_a_holder_is_trusted_field_by_field():
    now = time.time()
    good = locks.Holder.of({"action": "restart", "user": "alice", "pid": 4242, "since": now - 60}, now)
    assert good == locks.Holder("restart", "alice", 4242, now - 60)
    assert locks.Holder.of({"action": "", "user": " ", "pid": 1 << 22, "since": now + 3600}, now) == \
        locks.Holder(None, None, 1 << 22, now + 3600)  # a little clock skew is still a time
    assert locks.Holder.of({"pid": (1 << 22) + 1, "since": 946684799}, now) == locks.Holder(None, None, None, None)


def test_what_lakedeck_writes_it_reads_back_whole(tmp_path):
    """A long action title is cut to what a holder record may hold, not shown as "unknown"."""
    where = locks.resolve(str(tmp_path / "locks"))
    lock = locks.TargetLock(where, "api")
    lock.acquire({"user": "alice", "pid": 4242, "since": time.time(), "action": "r" * 500})
    try:
        assert locks.TargetLock(where, "api").holder().startswith(f"api is busy: {'r' * 60} by alice (pid 4242) since ")
    finally:
        lock.release()


def test_the_default_directory_is_made_sticky_and_world_writable_and_its_files_lockable_by_anyone(tmp_path):
    old = os.umask(0o077)  # the strictest umask an operator may have
    try:
        where = locks.resolve(None, default=str(tmp_path / "run" / "lakedeck"))
        lock = locks.TargetLock(where, "nginx")
        lock.acquire({"user": "alice", "pid": 1, "since": time.time(), "action": "restart"})
        lock.release()
    finally:
        os.umask(old)
    assert where.path == tmp_path / "run" / "lakedeck" and where.shared
    assert stat.S_IMODE(where.path.stat().st_mode) == 0o1777
    assert stat.S_IMODE(lock.path.stat().st_mode) == 0o666
    assert where.describe() == f"action locks in {where.path} (shared by every user of this host)"


def test_a_directory_that_cannot_be_made_falls_back_to_the_state_directory_and_says_so(tmp_path):
    (tmp_path / "file").write_text("")
    where = locks.resolve(None, default=str(tmp_path / "file" / "lakedeck"), environ={"XDG_STATE_HOME": str(tmp_path / "state")})
    assert where.path == tmp_path / "state" / "lakedeck" / "locks" and not where.shared
    assert where.describe() == (f"action locks in {where.path} (this user's lakedeck processes only): "
                                f"{tmp_path / 'file' / 'lakedeck'} cannot be used (not a directory)")
    lock = locks.TargetLock(where, "nginx")
    lock.acquire({"user": "alice", "pid": 1, "since": time.time(), "action": "restart"})
    assert stat.S_IMODE(lock.path.stat().st_mode) == 0o600  # the user's own directory: not for others
    lock.release()


async def test_the_engine_falls_back_too_and_still_serialises(tmp_path, monkeypatch, reaped):
    (tmp_path / "file").write_text("")
    monkeypatch.setattr(locks, "DEFAULT_DIR", str(tmp_path / "file" / "lakedeck"))  # /run/lakedeck, not creatable
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    config = cfg.parse(write_config(tmp_path, tmp_path / "unused").read_text().replace(
        f"locks: {tmp_path / 'unused'}\n", ""), "t.yaml", {})
    assert config.locks is None
    engine = Engine(config)
    engine.build()
    slow = asyncio.ensure_future(engine.run_action(engine.find_action("api", "slow"), lambda line: None))
    await wait_until(lambda: engine.refusal(engine.find_action("api", "hello")))
    assert engine.lock_dir.path == tmp_path / "state" / "lakedeck" / "locks" and not engine.lock_dir.shared
    (tmp_path / "go").touch()
    assert (await slow).ok


def test_a_symlink_planted_as_a_lock_file_is_refused_and_its_target_untouched(tmp_path):
    where = locks.resolve(str(tmp_path / "locks"))
    victim = tmp_path / "victim"
    victim.write_text("precious")
    lock = locks.TargetLock(where, "nginx")
    lock.path.symlink_to(victim)
    with pytest.raises(OSError, match="symbolic link"):
        lock.acquire({"user": "mallory", "pid": 1, "since": time.time(), "action": "restart"})
    assert victim.read_text() == "precious"
    assert "cannot take the lock of nginx" in lock.holder()


@pytest.mark.parametrize("plant, reason", [(os.mkfifo, "not a regular file"), (os.mkdir, "Is a directory")])
async def test_an_unusable_lock_refuses_the_action_and_is_audited(tmp_path, plant, reason):
    config = cfg.parse(write_config(tmp_path, tmp_path / "locks").read_text(), "t.yaml", {})
    engine = Engine(config)
    engine.build()
    (tmp_path / "locks").mkdir()
    plant(tmp_path / "locks" / locks.file_name("api"))  # a FIFO would block a plain open: it must not
    with pytest.raises(ActionRefused, match=rf"cannot take the lock of api at .*: {reason}; nothing was run"):
        await engine.run_action(engine.find_action("api", "hello"), lambda line: None)
    assert [e["event"] for e in audit(tmp_path)] == ["refused"]


# -- real processes --------------------------------------------------------------------------------

def test_two_headless_actions_at_once_the_second_is_refused_naming_the_first(tmp_path, reaped):
    config = str(write_config(tmp_path, tmp_path / "locks"))
    first = lakedeck("action", "-c", config, "api", "slow", "--yes")
    reaped.append(first)
    read_until(first, "started")
    for action_id in ("slow", "hello"):  # the same action, or any other on the same target
        second = subprocess.run([sys.executable, "-m", "tui.cli", "action", "-c", config, "api", action_id, "--yes"],
                                cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert second.returncode == 2
        assert second.stderr.splitlines() == [second.stderr.strip()]  # one line
        assert second.stderr.startswith(f"lakedeck: api is busy: slow by ")
        assert f"(pid {first.pid}) since " in second.stderr
    (tmp_path / "go").touch()
    assert first.wait(30) == 0
    events = [(e["event"], e["action"]) for e in audit(tmp_path)]
    assert events == [("confirmed", "slow"), ("refused", "slow"), ("refused", "hello"), ("succeeded", "slow")]
    assert audit(tmp_path)[1]["reason"].startswith("api is busy: slow by ")
    after = subprocess.run([sys.executable, "-m", "tui.cli", "action", "-c", config, "api", "hello", "--yes"],
                           cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert after.returncode == 0, after.stderr  # free again once the first is done


def test_a_lock_held_by_a_killed_process_is_free_again(tmp_path, reaped):
    config = str(write_config(tmp_path, tmp_path / "locks"))
    first = lakedeck("action", "-c", config, "api", "slow", "--yes")
    reaped.append(first)
    read_until(first, "started")
    os.kill(first.pid, signal.SIGKILL)  # no handler runs: only the kernel lets go of the lock
    first.wait(10)
    after = subprocess.run([sys.executable, "-m", "tui.cli", "action", "-c", config, "api", "hello", "--yes"],
                           cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert after.returncode == 0, after.stderr
    (tmp_path / "go").touch()  # the orphaned command ends


def test_two_dbt_builds_of_one_project_are_serialised(tmp_path, reaped):
    project = tmp_path / "project"
    project.mkdir()
    (project / "dbt_project.yml").write_text("name: shop\nversion: '1.0'\nprofile: shop\n")
    go = tmp_path / "go"
    fake_dbt = tmp_path / "dbt"
    fake_dbt.write_text(f'#!/bin/sh\necho "dbt $1 started"\nwhile [ ! -e {go} ]; do sleep 0.02; done\necho done\n')
    fake_dbt.chmod(0o755)
    path = tmp_path / "lakedeck.yaml"
    path.write_text(yaml.safe_dump({"audit_log": str(tmp_path / "audit.jsonl"), "locks": str(tmp_path / "locks"),
                                    "pipelines": [{"name": "t", "kind": "dbt", "project_dir": str(project),
                                                   "dbt": str(fake_dbt)}]}))
    first = lakedeck("action", "-c", str(path), "t:shop", "build", "--yes")
    reaped.append(first)
    read_until(first, "dbt build started")
    for action_id in ("build", "test"):
        second = subprocess.run([sys.executable, "-m", "tui.cli", "action", "-c", str(path), "t:shop", action_id,
                                 "--yes"], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert second.returncode == 2 and f"t:shop is busy: build by " in second.stderr, second.stderr
        assert f"(pid {first.pid})" in second.stderr
    go.touch()
    assert first.wait(30) == 0


async def test_the_console_and_a_headless_action_on_one_target(tmp_path, reaped):
    """The console runs the slow action: a headless one is refused naming the console's pid. Then a headless one
    runs it: the console's `r` is refused, said in a notification, and audited."""
    path = write_config(tmp_path, tmp_path / "locks")
    config = cfg.parse(path.read_text(), str(path), {})
    app = LakedeckApp(config, hostname="bastion-1", start_engine=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.engine.sweep()
        app.refresh_view()
        app.run_worker(app.actions._run(app.engine.find_action("api", "slow")), group="actions")
        assert await until(pilot, lambda: "api" in app.engine.transitions, 5.0)
        headless = subprocess.run([sys.executable, "-m", "tui.cli", "action", "-c", str(path), "api", "hello",
                                   "--yes"], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert headless.returncode == 2 and f"(pid {os.getpid()})" in headless.stderr, headless.stderr
        (tmp_path / "go").touch()
        assert await until(pilot, lambda: audit(tmp_path)[-1:] and audit(tmp_path)[-1]["event"] == "succeeded", 10.0)
        (tmp_path / "go").unlink()

        other = lakedeck("action", "-c", str(path), "api", "slow", "--yes")
        reaped.append(other)
        read_until(other, "started")
        notes: list[str] = []
        app.notify = lambda message, **kw: notes.append(message)  # type: ignore[method-assign]
        app.actions.request(app.engine.find_action("api", "hello"))
        assert notes and notes[-1].startswith("api is busy: slow by ") and f"(pid {other.pid})" in notes[-1]
        assert await until(pilot, lambda: audit(tmp_path)[-1]["event"] == "refused", 5.0)
        (tmp_path / "go").touch()
        assert other.wait(30) == 0
    assert [e["event"] for e in audit(tmp_path)] == ["confirmed", "refused", "succeeded", "confirmed", "refused",
                                                     "succeeded"]


def stubborn(pid_file: Path, go: Path) -> list[str]:
    """A command that ignores SIGTERM (its children too) and runs until ``go`` exists: only SIGKILL ends it."""
    return ["sh", "-c", 'trap "" TERM; echo $$$$ > "$1"; while [ ! -e "$2" ]; do sleep 0.02; done', "sh", str(pid_file),
            str(go)]


async def test_the_engine_stopping_ends_a_running_action_and_writes_its_line(tmp_path, reaped):
    """Engine.stop() with an action under way: its `failed` line, its whole group killed (SIGKILL for one that
    ignores SIGTERM), and its lock free."""
    path = write_config(tmp_path, tmp_path / "locks")
    config = yaml.safe_load(path.read_text())
    config["services"][0]["actions"].append({"id": "stubborn", "command": stubborn(tmp_path / "pid", tmp_path / "go")})
    path.write_text(yaml.safe_dump(config))
    engine = Engine(cfg.parse(path.read_text(), str(path), {}))
    engine.build()
    task = asyncio.ensure_future(engine.run_action(engine.find_action("api", "stubborn"), lambda line: None))
    await wait_until(lambda: (tmp_path / "pid").exists() and (tmp_path / "pid").read_text().endswith("\n"))
    group = int((tmp_path / "pid").read_text())
    await engine.stop()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_until(lambda: not running(processes_naming([str(tmp_path / "go")])))
    assert running([group]) == []
    assert [(e["event"], e.get("error")) for e in audit(tmp_path)] == [
        ("confirmed", None), ("failed", "interrupted: lakedeck was closed while it ran")]
    assert locks.TargetLock(engine.lock_dir, "api").holder() == ""


async def test_closing_the_console_ends_its_running_action_and_says_so(tmp_path, reaped):
    """When the console has closed, its loop runs no more (as after `app.run()`): what is checked after it is waited
    for without the loop, so only what the console did while closing counts."""
    path = write_config(tmp_path, tmp_path / "locks")
    app = LakedeckApp(cfg.parse(path.read_text(), str(path), {}), hostname="bastion-1", start_engine=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await app.engine.sweep()
        app.refresh_view()
        app.run_worker(app.actions._run(app.engine.find_action("api", "slow")), group="actions")
        assert await until(pilot, lambda: running(processes_naming([str(tmp_path / "go")])), 5.0)
    deadline = time.monotonic() + 10
    while running(processes_naming([str(tmp_path / "go")])) and time.monotonic() < deadline:
        time.sleep(0.02)  # blocking: the loop does not run again
    assert not running(processes_naming([str(tmp_path / "go")]))
    assert [(e["event"], e.get("error")) for e in audit(tmp_path)] == [
        ("confirmed", None), ("failed", "interrupted: lakedeck was closed while it ran")]
    after = subprocess.run([sys.executable, "-m", "tui.cli", "action", "-c", str(path), "api", "hello", "--yes"],
                           cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert after.returncode == 0, after.stderr  # its lock went with it


# -- helpers -------------------------------------------------------------------------------------

async def wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the state never came"
        await asyncio.sleep(0.02)


def test_two_users_share_the_lock(reaped):
    """root and nobody, each with an audit log of their own, lock the same target in the shared directory."""
    import shutil
    import tempfile

    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to run lakedeck as a second user")
    base = Path(tempfile.mkdtemp(prefix="lakedeck-locks-"))
    reaped.directories.append(str(base))
    try:
        base.chmod(0o777)
        go = base / "go"
        path = base / "lakedeck.yaml"
        path.write_text(yaml.safe_dump({"audit_log": "${AUDIT_LOG}", "locks": str(base / "run" / "lakedeck"),
                                        "services": [{"name": "api", "kind": "tcp", "port": 1, "actions": [
                                            {"id": "slow", "command": wait_for_go(go)},
                                            {"id": "hello", "command": ["echo", "hello"]}]}]}))
        path.chmod(0o644)
        base_env = {k: v for k, v in os.environ.items()
                    if k not in ("LAKEDECK_CONFIG", "USER", "LOGNAME", "SUDO_USER", "XDG_STATE_HOME")}

        def run_as(user: str, action_id: str, wait: bool):
            prefix = [] if user == "root" else ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
            env = {**base_env, "AUDIT_LOG": str(base / f"{user}.jsonl")}
            argv = [*prefix, sys.executable, "-m", "tui.cli", "action", "-c", str(path), "api", action_id, "--yes"]
            if wait:
                return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
            process = subprocess.Popen(argv, cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, start_new_session=True)
            reaped.append(process)
            read_until(process, "started")
            return process

        for holder, other in (("root", "nobody"), ("nobody", "root")):
            if go.exists():
                go.unlink()
            first = run_as(holder, "slow", wait=False)
            refused = run_as(other, "hello", wait=True)
            assert refused.returncode == 2, refused.stderr
            assert refused.stderr.startswith(f"lakedeck: api is busy: slow by {holder} (pid ")
            go.touch()
            assert first.wait(30) == 0
        lock_files = list((base / "run" / "lakedeck").iterdir())
        assert len(lock_files) == 1 and stat.S_IMODE(lock_files[0].stat().st_mode) == 0o666
    finally:
        shutil.rmtree(base, ignore_errors=True)
