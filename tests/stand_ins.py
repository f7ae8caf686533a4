"""Stand-in executables for tools whose real backend cannot run here (systemd, a Docker engine, a cluster).

``stand_ins.add("systemctl", stdout=...)`` writes a small Python script named ``systemctl`` into a directory
put first on PATH. When run, it appends its argument list to a log (so a test can assert the exact argv)
and answers with the first reply whose ``when`` words all appear in its arguments: recorded stdout, stderr
and exit code. Replies can be changed between polls by calling ``add`` again.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"

SCRIPT = """#!{python}
import json, os, sys, time
here = os.path.dirname(os.path.abspath(__file__))
name = os.path.basename(sys.argv[0])
args = sys.argv[1:]
with open(os.path.join(here, name + ".calls"), "a") as log:
    log.write(json.dumps([name, *args]) + "\\n")
with open(os.path.join(here, name + ".json")) as handle:
    replies = json.load(handle)
for reply in replies:
    if all(word in args for word in reply["when"]):
        sys.stdout.write(reply["stdout"])
        sys.stderr.write(reply["stderr"])
        sys.stdout.flush()
        time.sleep(reply["sleep"])
        sys.exit(reply["code"])
sys.stderr.write(name + " stand-in: no reply recorded for " + " ".join(args) + "\\n")
sys.exit(99)
"""


def fixture_text(*parts: str) -> str:
    """A recorded output under tests/fixtures/, e.g. ``fixture_text("systemd", "running.txt")``."""
    return FIXTURES.joinpath(*parts).read_text()


class StandIns:
    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self._replies: dict[str, list[dict]] = {}

    def add(self, name: str, stdout: str = "", stderr: str = "", code: int = 0, when: tuple[str, ...] = (),
            sleep: float = 0.0) -> None:
        """Answer ``name`` called with all of ``when`` among its arguments; later replies for the same words
        replace earlier ones, and more specific replies (more words) are tried first."""
        replies = [r for r in self._replies.get(name, []) if tuple(r["when"]) != tuple(when)]
        replies.append({"when": list(when), "stdout": stdout, "stderr": stderr, "code": code, "sleep": sleep})
        replies.sort(key=lambda r: -len(r["when"]))
        self._replies[name] = replies
        (self.bin_dir / f"{name}.json").write_text(json.dumps(replies))
        script = self.bin_dir / name
        if not script.exists():
            script.write_text(SCRIPT.format(python=sys.executable))
            script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)

    def calls(self, name: str) -> list[list[str]]:
        """Every argument list ``name`` was run with, ``name`` first, oldest first."""
        log = self.bin_dir / f"{name}.calls"
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text().splitlines()]

    def clear_calls(self) -> None:
        for log in self.bin_dir.glob("*.calls"):
            log.unlink()


def _on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keep_path: bool) -> StandIns:
    bin_dir = tmp_path / "stand-in-bin"
    bin_dir.mkdir()
    rest = f"{os.pathsep}{os.environ.get('PATH', '')}" if keep_path else ""
    monkeypatch.setenv("PATH", f"{bin_dir}{rest}")
    return StandIns(bin_dir)


@pytest.fixture
def stand_ins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StandIns:
    """A directory of stand-in executables, first on PATH for this test only."""
    return _on_path(tmp_path, monkeypatch, keep_path=True)


@pytest.fixture
def only_stand_ins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StandIns:
    """Stand-ins alone on PATH: any tool not added is missing, as on a machine without it."""
    return _on_path(tmp_path, monkeypatch, keep_path=False)
