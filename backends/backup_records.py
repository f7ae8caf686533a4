"""The JSON lakedeck keeps with its sets (``manifest.json``, ``verify.json``, ``last-run.json``), read as evidence.

Whoever can write DEST can plant or damage these files, so each is read bounded (backup_members reads no more
than its limit), parsed so that any failure — not JSON, nested too deeply, too large to hold, ``NaN`` or
``Infinity``, not an object — is one RecordError, and checked field by field: a value of the wrong type or out
of range makes the whole record unreadable here, never a crash later (a size of 400 digits once reached a
float conversion in the row). Fields a record does not know are ignored.
"""

from __future__ import annotations

import json
import re
from typing import Any

MANIFEST_LIMIT = 4 * 1024 * 1024  # bytes: ~25,000 files; a run refuses to write a larger one
SMALL_LIMIT = 64 * 1024  # bytes: verify.json, last-run.json
MAX_SIZE = 2**63 - 1  # what a filesystem can hold in one file, and more than any set
LATEST = 253402300799.0  # 9999-12-31T23:59:59Z: a time past it is no time lakedeck wrote
SHA256 = re.compile(r"[0-9a-f]{64}")
FORMAT = "lakedeck-backup/1"
TEXT_FIELDS = ("job", "kind", "name", "source", "root", "unpacked_note")


class RecordError(ValueError):
    """A record that cannot be trusted; ``str()`` says why in a few words."""


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number")


def parse(raw: bytes, what: str) -> dict[str, Any]:
    """The JSON object in ``raw``; RecordError however the parse fails."""
    try:
        data = json.loads(raw, parse_constant=_no_constant)
    except RecursionError:
        raise RecordError(f"{what} is nested too deeply") from None
    except MemoryError:
        raise RecordError(f"{what} is too large to read") from None
    except ValueError:  # also bytes that are not UTF-8, and integers of more than 4300 digits
        raise RecordError(f"{what} is not JSON") from None
    if not isinstance(data, dict):
        raise RecordError(f"{what} is not a JSON object")
    return data


# -- field checks ----------------------------------------------------------------------------------

def is_size(value: Any) -> bool:
    return type(value) is int and 0 <= value <= MAX_SIZE


def is_time(value: Any) -> bool:
    """A UTC time in seconds, 1970 to 9999."""
    return type(value) in (int, float) and 0 <= value <= LATEST  # compared exactly: no float of a huge int; NaN fails


def is_sha256(value: Any) -> bool:
    return isinstance(value, str) and SHA256.fullmatch(value) is not None


def is_plain_name(value: Any) -> bool:
    """One entry's name in a directory: no ``/``, not ``.`` or ``..``, no NUL."""
    return isinstance(value, str) and value not in ("", ".", "..") and "/" not in value and "\0" not in value


def _entry_problem(index: int, entry: Any) -> str:
    where = f"files[{index}]"
    if not isinstance(entry, dict):
        return f"{where} is not an object"
    if not isinstance(entry.get("path"), str):
        return f"{where}.path is not a string"
    if not is_size(entry.get("size")):
        return f"{where}.size is not a size (a whole number from 0 to 2**63-1)"
    if not is_sha256(entry.get("sha256")):
        return f"{where}.sha256 is not 64 lowercase hex digits"
    return ""


def manifest_problem(data: dict[str, Any]) -> str:
    """"" when ``data`` is a lakedeck manifest with every field of its type and in its range, else the first
    field that is not."""
    if data.get("format") != FORMAT:
        return "not a lakedeck manifest (no format lakedeck-backup/1)"
    files = data.get("files")
    if not isinstance(files, list):
        return "files is not a list"
    for index, entry in enumerate(files):
        problem = _entry_problem(index, entry)
        if problem:
            return problem
    for key in TEXT_FIELDS:
        if key in data and not isinstance(data[key], str):
            return f"{key} is not a string"
    for key in ("started", "finished"):
        if key in data and not is_time(data[key]):
            return f"{key} is not a time (seconds from 1970 to 9999)"
    if "duration" in data and not is_time(data["duration"]):  # seconds, no longer than a time may be
        return "duration is not a number of seconds"
    if "unpacked" in data and not is_size(data["unpacked"]):
        return "unpacked is not a size (a whole number from 0 to 2**63-1)"
    tools = data.get("tools", {})
    if not isinstance(tools, dict) or not all(isinstance(v, str) for v in tools.values()):
        return "tools is not an object of strings"
    if "top" in data and not (isinstance(data["top"], list) and all(map(is_plain_name, data["top"]))):
        return "top is not a list of names"
    return ""


def result_at(data: dict[str, Any]) -> tuple[str, float] | None:
    """A verify.json's or last-run.json's ``result`` and ``at``: None unless they are a string and a time."""
    result, at = data.get("result"), data.get("at")
    return (result, float(at)) if isinstance(result, str) and is_time(at) else None
