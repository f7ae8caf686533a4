"""Bounded config reads, through the real command line: what is not a regular file, a file over MAX_BYTES,
nesting deeper than any setting, aliases that expand past MAX_NODES, and numbers that are not finite are each
refused with one `file:line:col:` line and exit 2, by `config validate` and by every verb that loads a config.
Each runs in a subprocess with a timeout: a read that blocks or explodes fails the test instead of hanging it."""

from __future__ import annotations

import os
import re
import socket
import stat
from pathlib import Path

import pytest

from backends import config as cfg
from backends.config_input import MAX_BYTES, MAX_DEPTH, MAX_NODES, read_config
from backends.schema import ConfigError
from test_cli import run

GUARD = 60  # seconds for one command: these take well under one; a blocking read or a blow-up would not
VERBS = [("config", "validate", "{}"), ("check", "-c", "{}"), ("logs", "-c", "{}"), ("-c", "{}"),
         ("action", "-c", "{}", "x", "restart", "--dry-run")]


def refused(path, *args: str, verbs=(VERBS[0],), env: dict[str, str] | None = None) -> str:
    """The one line every ``verbs`` prints for ``path`` (each exits 2, prints nothing else, no traceback)."""
    lines = set()
    for verb in verbs:
        out = run(*[part.format(path) for part in verb], *args, env=env, timeout=GUARD)
        assert out.returncode == 2, (verb, out.stdout, out.stderr)
        assert out.stdout == "" and "Traceback" not in out.stderr
        assert out.stderr.count("\n") == 1, out.stderr
        lines.add(out.stderr.rstrip("\n"))
    assert len(lines) == 1, lines
    return lines.pop()


def write(tmp_path: Path, text: str, name: str = "lakedeck.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


NOT_A_FILE = "not a config file (expected a regular file such as lakedeck.yaml)"


def test_dev_zero_and_a_symlink_to_it_are_refused_unread(tmp_path):
    link = tmp_path / "lakedeck.yaml"
    link.symlink_to("/dev/zero")
    assert refused("/dev/zero") == f"/dev/zero:1:1: a character device, {NOT_A_FILE}"
    assert refused(link, verbs=VERBS) == f"{link}:1:1: a character device, {NOT_A_FILE}"


def test_a_fifo_with_no_writer_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "lakedeck.yaml"
    os.mkfifo(fifo)
    assert refused(fifo, verbs=VERBS) == f"{fifo}:1:1: a FIFO, {NOT_A_FILE}"


def test_a_directory_and_a_socket_are_refused(tmp_path):
    directory = tmp_path / "conf.d"
    directory.mkdir()
    assert refused(directory) == f"{directory}:1:1: a directory, {NOT_A_FILE}"
    path = tmp_path / "sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    try:
        assert refused(path) == f"{path}:1:1: a socket, {NOT_A_FILE}"
    finally:
        server.close()


def test_a_file_that_turns_into_a_fifo_after_the_stat_is_refused_from_what_was_opened(tmp_path, monkeypatch):
    path = write(tmp_path, "refresh: 2s\n")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    real_stat = os.stat

    def stat_then_swap(name, *args, **kwargs):
        info = real_stat(name, *args, **kwargs)
        if str(name) == str(path):
            os.replace(fifo, path)  # between our stat and our open
        return info

    monkeypatch.setattr(os, "stat", stat_then_swap)
    with pytest.raises(ConfigError, match="a FIFO, not a config file"):
        read_config(path)  # opened with O_NONBLOCK, then refused from fstat: no blocking read


def test_a_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "lakedeck.yaml"
    with open(path, "wb") as handle:
        handle.truncate(MAX_BYTES + 1)  # sparse: reading it would be 4 MB of NULs
    expected = f"{path}:1:1: the file is larger than 4 MB (expected a lakedeck.yaml of at most 4,194,304 bytes)"
    assert refused(path, verbs=VERBS) == expected
    with open(path, "wb") as handle:
        handle.truncate(MAX_BYTES)
    assert refused(path) == (f"{path}:1:1: invalid YAML: the character #x0000 is not allowed (expected text "
                             "without control characters)")  # at the limit it is read (and refused as YAML)


@pytest.mark.parametrize(("text", "where", "said"), [
    ("timeout: .nan\n", "1:10", "timeout is .nan"),
    ("refresh: .inf\n", "1:10", "refresh is .inf"),
    ("thresholds: {warn: -.inf, critical: 90}\n", "1:20", "thresholds.warn is -.inf"),
    ("services:\n  - {name: a, kind: tcp, port: 1, timeout: .NaN}\n", "2:44", "services[0].timeout is .NaN"),
    ("services:\n  - {name: a, kind: http, url: 'http://x', warn_latency: .Inf}\n", "2:58",
     "services[0].warn_latency is .Inf"),
    ("refresh: 1.0e+400\n", "1:10", "refresh is 1.0e+400"),  # too big for a float
    (f"refresh: {'9' * 400}s\n", "1:10", f"refresh is {'9' * 400}s"),
], ids=["nan", "inf", "-inf", "NaN in a source", "Inf in a source", "1e400", "400 digits"])
def test_numbers_that_are_not_finite_are_refused_where_they_are(tmp_path, text, where, said):
    path = write(tmp_path, text)
    assert refused(path, verbs=VERBS[:2]) == f"{path}:{where}: {said} (expected a finite number)"


def test_a_non_finite_number_from_the_environment_is_refused_too(tmp_path):
    path = write(tmp_path, "services:\n  - name: a\n    kind: tcp\n    port: 1\n    timeout: ${T}\n")
    line = refused(path, env={"T": ".nan"})
    assert line == f"{path}:5:14: services[0].timeout is nan (expected a finite number)"


DEEP = f"nested more than {MAX_DEPTH} levels deep (expected at most {MAX_DEPTH}: no setting of lakedeck.yaml is nested that deep)"


@pytest.mark.parametrize(("text", "where"), [
    ("refresh: " + "[" * 500 + "]" * 500 + "\n", "1:73"),  # 500 nested lists, flow style
    ("services:\n" + "".join("  " * depth + "-\n" for depth in range(1, 500)), "65:129"),  # block style
    ("rules: " + "{a: " * 500 + "1" + "}" * 500 + "\n", "1:257"),  # nested mappings
    ("services:\n  - name: a\n    kind: tcp\n    port: 1\n    actions: &deep " + "[" * 30 + "]" * 30
     + "\n  - {name: b, kind: tcp, port: 1, actions: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[*deep]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}\n",
     "6:78"),  # deep only once an alias is expanded
], ids=["500 lists, flow", "500 lists, block", "500 mappings", "through an alias"])
def test_nesting_deeper_than_any_setting_is_refused_at_its_place(tmp_path, text, where):
    path = write(tmp_path, text)
    assert refused(path, verbs=VERBS[:2]) == f"{path}:{where}: {DEEP}"


def test_nesting_a_setting_can_use_is_accepted(tmp_path):
    path = write(tmp_path, "services:\n  - name: a\n    kind: http\n    url: http://127.0.0.1:1/\n    actions:\n"
                           "      - id: ping\n        http:\n          url: http://127.0.0.1:1/p\n"
                           "          headers: {X-A: b}\n")
    assert run("config", "validate", str(path)).returncode == 0


def _schema_depth(schema) -> int:
    """How deep a value the JSON Schema of lakedeck.yaml lets one write (a scalar is 1, a list of them 2...)."""
    if isinstance(schema, dict):
        nested = [_schema_depth(value) for key, value in schema.items()
                  if key in ("properties", "additionalProperties", "items", "anyOf", "oneOf")]
        step = 1 if schema.get("type") in ("object", "array") else 0
        children = [_schema_depth(value) for value in schema["properties"].values()] if "properties" in schema else []
        return step + max(children + nested + [0]) if step else max(nested + [1])
    if isinstance(schema, list):
        return max((_schema_depth(item) for item in schema), default=0)
    return 0


def test_the_depth_bound_is_far_above_what_the_schema_can_use():
    depth = _schema_depth(cfg.json_schema())
    assert 5 <= depth <= MAX_DEPTH // 4, depth  # 8 today: services[].actions[].http.headers.NAME


def fan_out(copies: int, headers: int) -> str:
    """``copies`` services sharing one action list whose action has ``headers`` headers."""
    lines = ["services:", "  - name: s0", "    kind: tcp", "    port: 1", "    actions: &acts",
             "      - id: ping", "        http:", "          url: http://127.0.0.1:1/p", "          headers:"]
    lines += [f"            X-H{i}: v{i}" for i in range(headers)]
    lines += [f"  - {{name: s{i}, kind: tcp, port: 1, actions: *acts}}" for i in range(1, copies)]
    return "\n".join(lines) + "\n"


def test_the_issues_alias_fan_out_is_refused_fast_at_the_alias_that_crosses_the_bound(tmp_path):
    path = write(tmp_path, fan_out(300, 300))
    line = refused(path, verbs=VERBS[:3])
    assert line.startswith(f"{path}:")
    assert re.search(f": more than {MAX_NODES:,} values, aliases counted as what they expand to \\(expected at "
                     f"most {MAX_NODES:,}: aliases make [0-9,]+ of them: is one repeated too often\\?\\)$", line), line
    row = int(line.split(":")[1])
    assert 300 + 9 < row < 300 + 9 + 300  # one of the services' lines, not the end of the file
    small = write(tmp_path, fan_out(30, 30), "small.yaml")
    assert run("config", "validate", str(small)).returncode == 0  # aliases within the bound are fine


def test_a_merge_key_fan_out_is_counted_the_same(tmp_path):
    lines = ["x-headers: &h {" + ", ".join(f"H{i}: v" for i in range(400)) + "}", "services:"]
    lines += [f"  - {{name: s{i}, kind: http, url: 'http://127.0.0.1:1/', headers: {{<<: *h, X: y}}}}" for i in range(300)]
    path = write(tmp_path, "\n".join(lines) + "\n")
    assert refused(path).endswith("is one repeated too often?)")


def test_a_recursive_alias_is_refused(tmp_path):
    path = write(tmp_path, "services: &s\n  - *s\n")
    assert refused(path) == (f"{path}:2:5: the alias *s is inside what it names (expected an alias to a node that "
                             "ends before it)")


def test_merge_keys_work_and_a_bad_one_is_one_line(tmp_path):
    path = write(tmp_path, "services:\n"
                           "  - &base {name: a, kind: tcp, host: 127.0.0.1, port: 1, timeout: 1s}\n"
                           "  - {<<: *base, name: b, port: 2}\n"
                           "  - {<<: [{timeout: 500ms}, *base], name: c}\n")
    config = cfg.load_file(path)
    options = {spec.name: (spec.options["port"], spec.timeout) for spec in config.sources}
    assert options == {"a": (1, 1.0), "b": (2, 1.0), "c": (1, 0.5)}  # its own keys win, then earlier merges
    bad = write(tmp_path, "services:\n  - {<<: 3, name: a, kind: tcp, port: 1}\n", "bad.yaml")
    assert refused(bad) == (f"{bad}:2:10: << merges a mapping (expected <<: *name or <<: [*one, *two], names of "
                            "mappings)")


def test_an_unreadable_file_is_one_line(tmp_path):
    path = write(tmp_path, "refresh: 2s\n")
    path.chmod(0)
    if os.geteuid() == 0:  # root reads any file: read it as nobody, from a directory nobody can enter
        import shutil
        import subprocess
        import sys

        if not shutil.which("setpriv"):
            pytest.skip("root reads any file, and setpriv (util-linux) is missing to read it as nobody")
        for folder in (tmp_path, *tmp_path.parents):
            if folder == Path("/"):
                break
            folder.chmod(folder.stat().st_mode | 0o011)
        out = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", sys.executable,
                              "-m", "tui.cli", "config", "validate", str(path)], capture_output=True, text=True,
                             timeout=GUARD, cwd=Path(__file__).parent.parent, env={**os.environ, "HOME": "/tmp"})
        assert (out.returncode, out.stdout, out.stderr.count("\n")) == (2, "", 1), out
        assert "cannot read the file: Permission denied" in out.stderr
    else:
        assert "cannot read the file: Permission denied" in refused(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0
