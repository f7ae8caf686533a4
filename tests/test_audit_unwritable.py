"""An audit log that cannot be written refuses every action, says so in one line, and never crashes anything:
a directory in its place, a parent that is a file, a full disk (/dev/full), a read-only directory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from backends import config as cfg
from backends.audit import AuditUnwritable
from backends.engine import Engine
from tui.app import LakedeckApp
from ui_support import until
from widgets.confirm import ConfirmModal

ROOT = Path(__file__).parent.parent
NOBODY = 65534


@pytest.fixture
def world_readable():
    """A directory any user can read (pytest's own are the tester's only): for a run as another user."""
    path = Path(tempfile.mkdtemp(prefix="lakedeck-audit-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def broken_audit(kind: str, base: Path) -> tuple[Path, str]:
    """An audit log path that cannot be written, and the reason the OS gives."""
    if kind == "directory":
        (base / "audit.jsonl").mkdir()
        return base / "audit.jsonl", "Is a directory"
    if kind == "parent is a file":
        (base / "state").write_text("")
        return base / "state" / "audit.jsonl", "Not a directory"
    if kind == "disk full":
        return Path("/dev/full"), "No space left on device"
    (base / "ro").mkdir(mode=0o555)
    (base / "ro").chmod(0o555)
    return base / "ro" / "audit.jsonl", "Permission denied"


def write_config(base: Path, audit_log: Path, **root) -> Path:
    path = base / "lakedeck.yaml"
    path.write_text(yaml.safe_dump({"audit_log": str(audit_log), "locks": str(base / "locks"), **root, "services": [
        {"name": "api", "kind": "tcp", "port": 1, "actions": [
            {"id": "restart", "command": ["touch", str(base / "ran")]},
            {"id": "status", "tier": "read", "command": ["touch", str(base / "ran")]},
        ]}]}))
    path.chmod(0o644)
    return path


def lakedeck(*args: str, user: int | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "LAKEDECK_CONFIG"}
    prefix = []
    if user is not None:
        prefix = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"]
        env["XDG_STATE_HOME"] = "/nonexistent"  # not the tester's: that user may not read it
    return subprocess.run([*prefix, sys.executable, "-m", "tui.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)


KINDS = ["directory", "parent is a file", "disk full", "read-only directory"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("args", [["restart", "--yes"], ["status"], ["restart"], ["restart", "--yes", "--read-only"]],
                         ids=["disruptive", "read", "not confirmed", "read-only"])
def test_headless_says_it_in_one_line_and_exits_2(world_readable, kind, args):
    audit_log, reason = broken_audit(kind, world_readable)
    config = write_config(world_readable, audit_log)
    user = None
    if kind == "read-only directory" and os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("a read-only directory stops only a user that is not root, and setpriv is missing")
        user = NOBODY  # root writes anywhere: try it as nobody
    out = lakedeck("action", "-c", str(config), "api", *args, user=user)
    assert out.returncode == 2, out.stderr
    assert out.stderr == f"lakedeck: cannot write the audit log at {audit_log}: {reason}; no action runs without it\n"
    assert "Traceback" not in out.stdout + out.stderr
    assert not (world_readable / "ran").exists()


async def test_when_only_the_last_line_cannot_be_written_the_result_says_so(tmp_path):
    audit_log = tmp_path / "audit.jsonl"
    text = yaml.safe_dump({"audit_log": str(audit_log), "locks": str(tmp_path / "locks"), "services": [
        {"name": "api", "kind": "tcp", "port": 1, "actions": [
            {"id": "break-the-log", "command": ["sh", "-c", f"rm {audit_log} && mkdir {audit_log}"]}]}]})
    engine = Engine(cfg.parse(text, "t.yaml", {}))
    engine.build()
    result = await engine.run_action(engine.find_action("api", "break-the-log"), lambda line: None)
    assert result.ok
    assert result.audit_error == f"cannot write the audit log at {audit_log}: Is a directory; no action runs without it"
    with pytest.raises(AuditUnwritable):  # and the next action is refused before it runs
        await engine.run_action(engine.find_action("api", "break-the-log"), lambda line: None)


def console(tmp_path: Path, audit_log: Path, port: int, read_only: bool = False) -> LakedeckApp:
    text = yaml.safe_dump({"audit_log": str(audit_log), "locks": str(tmp_path / "locks"), "refresh": "1s", "services": [
        {"name": "api", "kind": "tcp", "port": port, "actions": [
            {"id": "restart", "command": ["touch", str(tmp_path / "ran")]},
            {"id": "status", "tier": "read", "command": ["touch", str(tmp_path / "ran")]}]}]})
    return LakedeckApp(cfg.parse(text, "t.yaml", {}), hostname="bastion-1", read_only=read_only)


def notes(app: LakedeckApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


@pytest.mark.parametrize("kind", ["directory", "parent is a file", "disk full"])
@pytest.mark.parametrize("read_only", [True, False], ids=["read-only", "read-write"])
async def test_the_console_shows_it_and_does_not_crash(tmp_path, port, kind, read_only):
    """`r` in read-only mode crashed the console (WorkerFailed: NotADirectoryError from the refused action's
    audit line); in read-write mode nothing was shown. Now: a notification, the console alive, nothing run."""
    audit_log, reason = broken_audit(kind, tmp_path)
    line = f"cannot write the audit log at {audit_log}: {reason}; no action runs without it"
    app = console(tmp_path, audit_log, port, read_only=read_only)
    async with app.run_test(size=(120, 40)) as pilot:
        assert await until(pilot, lambda: "api" in app.engine.readings)
        app.refresh_view()
        await pilot.pause()
        await pilot.press("r")
        assert await until(pilot, lambda: line in notes(app)), notes(app)
        assert not isinstance(app.screen, ConfirmModal)  # nothing to confirm: it could not be recorded
        if read_only:
            assert any(n.startswith("read-only: restart api is refused") for n in notes(app))
        await pilot.press("a", "enter")  # a read action: refused the same way, at run time
        assert await until(pilot, lambda: notes(app).count(line) == 2), notes(app)
        assert app.is_running
    assert not (tmp_path / "ran").exists()
