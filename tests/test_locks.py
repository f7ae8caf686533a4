"""One action at a time per target across every lakedeck process of the host: a flock'd file per target in a
host-wide directory (backends/locks.py), tried with real `lakedeck action` processes and the console."""

from __future__ import annotations

import asyncio
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


@pytest.fixture
def reaped():
    """Processes a test started, killed with their groups whatever happens."""
    started: list[subprocess.Popen] = []
    yield started
    for process in started:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except OSError:
            pass
        process.wait(10)


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


async def test_the_engine_falls_back_too_and_still_serialises(tmp_path, monkeypatch):
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
