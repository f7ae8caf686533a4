"""FilePager: a log far bigger than memory, paged and filtered from disk, with its rotated history."""

from __future__ import annotations

import calendar
import gzip
import os
import random
import threading
import time

import pytest

from backends import log_gzip, log_pager, log_reading, log_scan
from backends.log_reading import MAX_LINE, piece
from backends.linear_regex import PatternError
from backends.log_filter import LineFilter
from backends.log_pager import FilePager, PagerError
from backends.model import LogLine

BLOCK = 64 * 1024


@pytest.fixture
def reads(monkeypatch):
    """The size of every read of a plain file, through log_reading.pread."""
    sizes: list[int] = []
    real = log_reading.pread

    def counting(fd, size, offset):
        data = real(fd, size, offset)
        sizes.append(len(data))
        return data

    monkeypatch.setattr(log_reading, "pread", counting)
    monkeypatch.setattr(log_scan, "pread", counting)
    return sizes


def write(path, lines: list[bytes], end: bytes = b"\n") -> bytes:
    data = b"".join(line + end for line in lines)
    path.write_bytes(data)
    return data


def write_gz(path, lines: list[bytes]) -> bytes:
    data = b"".join(line + b"\n" for line in lines)
    with gzip.open(path, "wb") as handle:
        handle.write(data)
    return data


def at(data: bytes, offset: int) -> bytes:
    """The line of ``data`` starting at ``offset``, as the follower would cut it."""
    return piece(data[offset:].split(b"\n")[0], offset).data


def texts(lines: list[LogLine]) -> list[str]:
    return [line.text for line in lines]


def page_back(pager: FilePager, count: int) -> list[LogLine]:
    lines = pager.tail(count)
    while True:
        earlier = pager.before(lines[0], count)
        if not earlier:
            return lines
        assert len(earlier) <= count
        lines = earlier + lines


def page_forward(pager: FilePager, count: int) -> list[LogLine]:
    lines = pager.head(count)
    while True:
        later = pager.after(lines[-1], count)
        if not later:
            return lines
        lines += later


def scan_all(pager: FilePager, text: str, **options) -> list[LogLine]:
    return [line for batch in pager.scan(LineFilter(text), threading.Event(), **options) for line in batch]


# -- the end of a big file -------------------------------------------------------------------------

def test_tail_of_a_200_mb_file_reads_only_its_end(tmp_path, reads):
    path = tmp_path / "big.log"
    lines = [f"2026-11-21T10:00:{n % 60:02d}Z INFO line {n:06d} of the big file".encode() for n in range(5000)]
    body = b"".join(line + b"\n" for line in lines)
    size = 200 * 1024 * 1024
    with open(path, "wb") as handle:  # sparse: 200 MB on paper, a few KB on disk
        handle.truncate(size - len(body))
        handle.seek(size - len(body))
        handle.write(body)
    tail = FilePager(str(path), "app").tail(1000)
    assert texts(tail) == [line.decode() for line in lines[-1000:]]
    assert sum(reads) <= 2 * BLOCK
    with open(path, "rb") as handle:
        for line in tail[::97]:
            handle.seek(line.offset)
            assert handle.read(200).split(b"\n")[0].decode() == line.text
    assert all(line.path == str(path) and line.source == "app" and line.level == "info" for line in tail)
    assert tail[0].ts == calendar.timegm((2026, 11, 21, 10, 0, 4000 % 60))


def test_tail_keeps_the_unfinished_last_line(tmp_path):
    path = tmp_path / "app.log"
    path.write_bytes(b"one\ntwo\nthree\nhalf a li")
    lines = FilePager(str(path), "app").tail(2)
    assert texts(lines) == ["two", "three", "half a li"]
    assert [line.offset for line in lines] == [4, 8, 14]


# -- paging through a file and its history --------------------------------------------------------

FILLER = bytes.maketrans(bytes(range(256)), (b"abcdxyz " * 32)[:256])
PRINTABLE = bytes.maketrans(bytes(range(256)), (b"abcdefghij \t\r" * 20)[:256])
LENGTHS = {0: 2, 5: 10, 40: 20, 120: 20, 300: 10, 2000: 5,  # length: weight
           MAX_LINE - 1: 1, MAX_LINE: 1, MAX_LINE + 1: 1, 3 * BLOCK: 0.3}


def known_lines(prefix: str, count: int, rng: random.Random) -> list[bytes]:
    """Lines of every length that matters: empty, short, around MAX_LINE, longer than a block."""
    lines = []
    for n in range(count):
        length = rng.choices(list(LENGTHS), weights=list(LENGTHS.values()))[0]
        body = f"{prefix} {n} ".encode() + rng.randbytes(length).translate(PRINTABLE)
        lines.append(body if rng.random() > 0.02 else b"")
    return lines


@pytest.fixture
def rotated(tmp_path, monkeypatch):
    """app.log.2.gz (oldest), app.log.1, app.log, with their lines; small gzip checkpoints."""
    monkeypatch.setattr(log_gzip, "SPACING", 32 * 1024)
    monkeypatch.setattr(log_gzip, "MAX_CHECKPOINTS", 4)
    rng = random.Random(7)
    files = {}
    for name, count in (("app.log.2.gz", 400), ("app.log.1", 300), ("app.log", 500)):
        lines = known_lines(name, count, rng)
        data = write_gz(tmp_path / name, lines) if name.endswith(".gz") else write(tmp_path / name, lines)
        files[str(tmp_path / name)] = (lines, data)
    return tmp_path / "app.log", files


def expected(files) -> list[tuple[str, str, int]]:
    out = []
    for path, (lines, _) in files.items():
        offset = 0
        for line in lines:
            out.append((piece(line, offset).text(), path, offset))
            offset += len(line) + 1
    return out


def described(lines: list[LogLine]) -> list[tuple[str, str, int]]:
    return [(line.text, line.path, line.offset) for line in lines]


@pytest.mark.parametrize("count", [1, 7, 250])
def test_paging_back_and_forth_reproduces_the_file_and_its_history(rotated, count):
    path, files = rotated
    pager = FilePager(str(path), "app")
    assert pager.history() == [str(path) + ".1", str(path) + ".2.gz"]
    assert described(page_back(pager, count)) == expected(files)
    assert described(page_forward(pager, count)) == expected(files)


def test_lines_carry_their_cut_and_offsets_that_point_at_them(rotated):
    path, files = rotated
    pager = FilePager(str(path), "app")
    for line in page_forward(pager, 100):
        lines, data = files[line.path]
        full = data[line.offset:].split(b"\n")[0]
        assert line.cut == max(0, len(full) - MAX_LINE)
        assert line.text == piece(full, line.offset).text()


def test_head_and_before_the_first_line_and_after_the_last(rotated):
    path, files = rotated
    pager = FilePager(str(path), "app")
    first = pager.head(3)
    assert described(first) == expected(files)[:3]
    assert pager.before(first[0], 10) == []
    last = pager.tail(1)
    assert pager.after(last[-1], 10) == []


def test_gzip_history_is_paged_from_checkpoints(rotated):
    path, files = rotated
    pager = FilePager(str(path), "app")
    gz = str(path) + ".2.gz"
    lines = [line for line in page_back(pager, 5) if line.path == gz]
    index = pager._indexes[gz]
    assert index.size == len(files[gz][1])  # learned once, on the first pass to the end
    assert 1 < len(index.checkpoints) <= log_gzip.MAX_CHECKPOINTS
    middle = lines[len(lines) // 2]
    assert described(pager.before(middle, 3)) == described(lines[len(lines) // 2 - 3:len(lines) // 2])
    assert described(pager.after(middle, 3)) == described(lines[len(lines) // 2 + 1:len(lines) // 2 + 4])


def test_history_names_newest_first(tmp_path):
    for name in ("app.log", "app.log.1", "app.log.2.gz", "app.log.10.gz", "app.log-20261120.gz", "app.log-20261121",
                 "app.log.old", "app.log.1.bak", "other.log.1"):
        (tmp_path / name).write_bytes(b"x\n")
    (tmp_path / "app.log.3").mkdir()
    os.link(tmp_path / "app.log", tmp_path / "app.log.4")  # the current file under another name: not history
    pager = FilePager(str(tmp_path / "app.log"), "app")
    assert [os.path.basename(p) for p in pager.history()] == [
        "app.log.1", "app.log.2.gz", "app.log.10.gz", "app.log-20261121", "app.log-20261120.gz"]


def test_a_rotated_away_file_leaves_its_history_to_page(tmp_path):
    write(tmp_path / "app.log.1", [b"old 1", b"old 2"])
    pager = FilePager(str(tmp_path / "app.log"), "app")
    assert texts(pager.tail(5)) == ["old 1", "old 2"]
    with pytest.raises(PagerError, match="no such file"):
        FilePager(str(tmp_path / "none.log"), "app").tail(5)


def test_a_file_that_is_not_gzip_says_so(tmp_path):
    write(tmp_path / "app.log", [b"now"])
    (tmp_path / "app.log.1.gz").write_bytes(b"not gzip at all\n")
    pager = FilePager(str(tmp_path / "app.log"), "app")
    with pytest.raises(PagerError, match="app.log.1.gz: not gzip data"):
        pager.before(pager.tail(1)[0], 5)


# -- very long lines -------------------------------------------------------------------------------

@pytest.mark.parametrize("length", [1024 * 1024, 20 * 1024 * 1024])
def test_a_huge_line_is_cut_when_paged_and_whole_on_demand(tmp_path, reads, length):
    path = tmp_path / "app.log"
    huge = b"start of the huge line " + b"x" * (length - 32) + b" the end."
    assert len(huge) == length
    before = [f"before {n}".encode() for n in range(50)]
    after = [f"after {n}".encode() for n in range(50)]
    data = write(path, before + [huge] + after)
    pager = FilePager(str(path), "app")
    lines = pager.before(pager.tail(50)[0], 3)
    assert texts(lines) == ["before 48", "before 49", huge[:MAX_LINE].decode()]
    cut = lines[-1]
    assert cut.cut == length - MAX_LINE and cut.offset == data.index(huge)
    assert max(reads) <= log_reading.MAX_STEP  # never read whole
    assert texts(pager.after(cut, 2)) == ["after 0", "after 1"]
    assert texts(pager.before(pager.after(cut, 1)[0], 2)) == ["before 49", huge[:MAX_LINE].decode()]
    limit = 16 * 1024 * 1024
    assert pager.whole(cut) == (huge[:limit].decode(), max(0, length - limit))
    text, beyond = pager.whole(cut, limit=100_000)
    assert text == huge[:100_000].decode() and beyond == length - 100_000


def test_whole_of_a_changed_file_says_so(tmp_path):
    path = tmp_path / "app.log"
    huge = b"y" * (3 * MAX_LINE)
    write(path, [b"first", huge, b"last"])
    pager = FilePager(str(path), "app")
    cut = pager.tail(2)[0]
    assert cut.cut == 2 * MAX_LINE
    write(path, [b"first", b"z" * (3 * MAX_LINE), b"last"])
    with pytest.raises(PagerError, match=r"^app.log changed since this line was read$"):
        pager.whole(cut)
    write(path, [b"first"])
    with pytest.raises(PagerError, match="changed since this line was read"):
        pager.whole(cut)


def test_whole_from_gzip_history(tmp_path):
    huge = "a" + "é" * MAX_LINE  # two bytes each: the cut falls inside one, which is held back
    write_gz(tmp_path / "app.log.1.gz", [b"a", huge.encode(), b"b"])
    write(tmp_path / "app.log", [b"now"])
    pager = FilePager(str(tmp_path / "app.log"), "app")
    lines = pager.head(3)
    assert lines[1].text == "a" + "é" * (MAX_LINE // 2 - 1) and lines[1].cut == MAX_LINE + 1
    assert pager.whole(lines[1]) == (huge, 0)


# -- odd files -------------------------------------------------------------------------------------

def test_invalid_utf8_crlf_and_no_trailing_newline(tmp_path):
    path = tmp_path / "app.log"
    path.write_bytes(b"bad \xff\xfe byte\r\nwindows line\r\n\r\nlast without newline")
    pager = FilePager(str(path), "app")
    expected_texts = ["bad \ufffd\ufffd byte", "windows line", "", "last without newline"]
    assert texts(pager.tail(10)) == expected_texts
    assert texts(page_forward(pager, 1)) == expected_texts
    assert texts(page_back(pager, 1)) == expected_texts
    assert texts(scan_all(pager, "line")) == ["windows line", "last without newline"]


def test_an_empty_file(tmp_path):
    path = tmp_path / "app.log"
    path.write_bytes(b"")
    pager = FilePager(str(path), "app")
    assert pager.tail(10) == [] and pager.head(10) == []
    assert scan_all(pager, "x") == [] and scan_all(pager, "!x") == []


def test_a_file_truncated_between_calls(tmp_path):
    path = tmp_path / "app.log"
    write(path, [f"old line {n}".encode() for n in range(1000)])
    pager = FilePager(str(path), "app")
    last = pager.tail(1)[0]
    write(path, [b"new 1", b"new 2"])
    assert texts(pager.before(last, 5)) == ["new 1", "new 2"]
    assert pager.after(last, 5) == []
    with pytest.raises(PagerError, match="changed since this line was read"):
        pager.whole(last)
    assert texts(pager.tail(5)) == ["new 1", "new 2"]


def test_a_line_without_a_position_is_refused(tmp_path):
    write(tmp_path / "app.log", [b"x"])
    pager = FilePager(str(tmp_path / "app.log"), "app")
    with pytest.raises(PagerError, match="no position"):
        pager.before(LogLine("app", "x", 0.0), 5)
    with pytest.raises(PagerError, match="other.log is gone"):
        pager.after(LogLine("app", "x", 0.0, path=str(tmp_path / "other.log"), offset=0), 5)


# -- scan ------------------------------------------------------------------------------------------

LOG = [b"2026-11-21T10:00:00Z INFO served /health in 3 ms",
       b"2026-11-21T10:00:01Z ERROR upstream timeout after 30 s",
       b"2026-11-21T10:00:02Z DEBUG cache miss key=abc",
       b"2026-11-21T10:00:03Z WARN slow query: error rate rising",
       b"2026-11-21T10:00:04Z Error: connection refused",
       b"2026-11-21T10:00:05Z debug trace id=42"]


@pytest.fixture
def small_log(tmp_path):
    path = tmp_path / "app.log"
    write(path, LOG)
    return FilePager(str(path), "app")


def test_scan_literal_regex_and_smart_case(small_log):
    assert texts(scan_all(small_log, "error")) == [LOG[1].decode(), LOG[3].decode(), LOG[4].decode()]
    assert texts(scan_all(small_log, "Error")) == [LOG[4].decode()]
    assert texts(scan_all(small_log, "ERROR.*timeout")) == [LOG[1].decode()]
    assert texts(scan_all(small_log, "error.*(timeout|rising)")) == [LOG[1].decode(), LOG[3].decode()]
    assert texts(scan_all(small_log, "^2026.*ms$")) == [LOG[0].decode()]
    assert texts(scan_all(small_log, "key=[a-c]+$")) == [LOG[2].decode()]
    assert texts(scan_all(small_log, "\\x{45}rror")) == [LOG[n].decode() for n in (1, 3, 4)]  # smart case: 'E' is no capital
    for refused in ("error[", "\\u0045rror", "(error)\\1"):  # never matched some other way (as plain text)
        with pytest.raises(PatternError):
            scan_all(small_log, refused)
    found = scan_all(small_log, "timeout")
    assert [(line.offset, line.level, line.path) for line in found] == [(len(LOG[0]) + 1, "error", small_log.path)]


def test_scan_inverted(small_log):
    assert texts(scan_all(small_log, "!debug")) == [LOG[n].decode() for n in (0, 1, 3, 4)]
    assert texts(scan_all(small_log, "!DEBUG")) == [LOG[n].decode() for n in (0, 1, 3, 4, 5)]
    assert scan_all(small_log, "!") == []


def test_scan_keeps_every_line_when_the_source_name_matches(small_log):
    # LineFilter.matches looks at the source name too
    assert len(scan_all(small_log, "app")) == len(LOG)
    assert scan_all(small_log, "!app") == []


def test_scan_yields_batches_and_reports_progress(tmp_path, monkeypatch):
    monkeypatch.setattr(log_scan, "SCAN_CHUNK", 4096)
    monkeypatch.setattr(log_pager, "PROGRESS_BYTES", 8192)
    path = tmp_path / "app.log"
    data = write(path, [f"line {n} {'match' if n % 3 == 0 else 'other'}".encode() for n in range(3000)])
    reports: list[tuple[int, int]] = []
    batches = list(FilePager(str(path), "app").scan(LineFilter("match"), threading.Event(),
                                                    lambda done, total: reports.append((done, total)), batch=100))
    assert sum(len(b) for b in batches) == 1000 and max(len(b) for b in batches) <= 100
    assert len(data) / 8192 - 1 <= len(reports) <= len(data) / 4096 + 1 and reports[-1] == (len(data), len(data))
    assert [done for done, _ in reports] == sorted(done for done, _ in reports)


def test_a_match_across_a_chunk_boundary_is_found_once(tmp_path, monkeypatch):
    monkeypatch.setattr(log_scan, "SCAN_CHUNK", 64)
    path = tmp_path / "app.log"
    lines = [b"x" * 55, b"y" * 5 + b"needle in the middle" + b"z" * 20, b"tail"]
    data = write(path, lines)
    assert data.index(b"needle") < 64 < data.index(b"needle") + 6
    found = scan_all(FilePager(str(path), "app"), "needle")
    assert [(line.text, line.offset) for line in found] == [(lines[1].decode(), 56)]


def test_cancel_stops_the_scan_mid_file(tmp_path, monkeypatch):
    monkeypatch.setattr(log_scan, "SCAN_CHUNK", 64 * 1024)
    monkeypatch.setattr(log_pager, "PROGRESS_BYTES", 1)
    path = tmp_path / "app.log"
    size = len(write(path, [f"line {n} match".encode() for n in range(200_000)]))
    cancel = threading.Event()
    reports: list[int] = []
    batches = 0
    started = time.monotonic()
    for _ in FilePager(str(path), "app").scan(LineFilter("match"), cancel, lambda done, total: reports.append(done)):
        batches += 1
        if batches == 3:
            threading.Thread(target=cancel.set).start()
            time.sleep(0.05)
    assert time.monotonic() - started < 5  # (the real figure is milliseconds; this only catches a hang)
    assert batches <= 4 and reports[-1] < size / 4


def test_scan_includes_the_history_oldest_first_when_asked(tmp_path):
    write_gz(tmp_path / "app.log.2.gz", [b"two match", b"two other"])
    write(tmp_path / "app.log.1", [b"one match", b"one other"])
    write(tmp_path / "app.log", [b"now match", b"now other"])
    pager = FilePager(str(tmp_path / "app.log"), "app")
    assert texts(scan_all(pager, "match")) == ["now match"]
    reports: list[tuple[int, int]] = []
    found = scan_all(pager, "match", include_history=True, progress=lambda *r: reports.append(r))
    assert [(line.text, os.path.basename(line.path), line.offset) for line in found] == [
        ("two match", "app.log.2.gz", 0), ("one match", "app.log.1", 0), ("now match", "app.log", 0)]
    total = sum(os.path.getsize(tmp_path / name) for name in ("app.log.2.gz", "app.log.1", "app.log"))
    assert reports[-1] == (total, total)


def random_log(rng: random.Random, count: int, long_line: int) -> list[bytes]:
    words = [b"error", b"ERROR", b"Error", b"timeout", b"debug", b"DEBUG", b"info", b"ms", b"id=42", b"\xff",
             b"caf\xc3\xa9", b"", b"\r", b"key=abc", b"same", b"x" * 300]
    lines = []
    for _ in range(count):
        if rng.random() < 0.005:  # longer than MAX_LINE, sometimes than the chunk; a match anywhere in it
            filler = rng.randbytes(rng.randint(MAX_LINE, long_line)).translate(FILLER)
            cut = rng.randint(0, len(filler))
            lines.append(b"long " + filler[:cut] + b" error timeout " + filler[cut:])
        else:
            lines.append(b" ".join(rng.choice(words) for _ in range(rng.randint(0, 12))))
    return lines


PATTERNS = ["error", "ERROR", "Error", "timeout", "err.*time", "^error", "ms$", "id=\\d+", "!debug", "!error",
            "(?i)Debug", "error|timeout", "\\berror\\b", "k[aeiou]y", "^$", "!^$", "caf\u00e9", "x{300}", "e\\s+t",
            "error\\[", "o\\sd", "\\x65rror", "CAF\u00c9", "caf\u00c9", "\\p{Lu}"]


def reference(lines: list[bytes], text: str, chunk: int) -> list[tuple[str, int, int]]:
    """The naive way: every line on its own (its first ``chunk`` bytes when it is longer)."""
    matcher = LineFilter(text)
    regex = matcher.bytes_regex()
    out = []
    offset = 0
    for line in lines:
        if (regex.search(line[:chunk]) is not None) != matcher.inverted:
            kept = piece(line, offset)
            out.append((kept.text(), kept.offset, kept.cut))
        offset += len(line) + 1
    return out


@pytest.mark.parametrize("chunk", [4096, 64 * 1024])
def test_scan_equals_a_line_by_line_reference_on_a_random_file(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(log_scan, "SCAN_CHUNK", chunk)
    rng = random.Random(20261121)
    lines = random_log(rng, 6000, 3 * chunk)
    write(tmp_path / "app.log", lines)
    pager = FilePager(str(tmp_path / "app.log"), "svc")
    for text in PATTERNS:
        found = [(line.text, line.offset, line.cut) for line in scan_all(pager, text)]
        assert found == reference(lines, text, chunk), text


def test_scan_of_gzip_history_equals_the_reference(tmp_path, monkeypatch):
    monkeypatch.setattr(log_scan, "SCAN_CHUNK", 16 * 1024)
    rng = random.Random(5)
    lines = random_log(rng, 6000, 12 * 1024)  # shorter than the chunk: see log_scan's docstring
    write_gz(tmp_path / "app.log.1.gz", lines)
    write(tmp_path / "app.log", [])
    pager = FilePager(str(tmp_path / "app.log"), "svc")
    for text in PATTERNS:
        found = [(line.text, line.offset, line.cut) for line in scan_all(pager, text, include_history=True)]
        assert found == reference(lines, text, 16 * 1024), text


def test_scan_of_gzip_history_with_lines_longer_than_the_chunk(tmp_path, monkeypatch):
    monkeypatch.setattr(log_scan, "SCAN_CHUNK", 4096)
    rng = random.Random(6)
    lines = random_log(rng, 3000, 40 * 1024)
    write_gz(tmp_path / "app.log.1.gz", lines)
    write(tmp_path / "app.log", [])
    pager = FilePager(str(tmp_path / "app.log"), "svc")
    for text in ["^long", "!^long", "^$", "id=42"]:  # matched (or not) in the first 4096 bytes of every line
        found = [(line.text, line.offset, line.cut) for line in scan_all(pager, text, include_history=True)]
        assert found == reference(lines, text, 4096), text


def test_smart_case_search_folds_the_chunk_only_for_a_plain_ascii_word(small_log):
    assert log_scan.Finder(LineFilter("error")).fold
    assert not log_scan.Finder(LineFilter("err.*time")).fold  # RE2 folds case itself, at no cost
    assert not log_scan.Finder(LineFilter("Error")).fold
    assert not log_scan.Finder(LineFilter("caf\u00e9")).fold  # bytes.lower() would not fold the \u00c9 of CAF\u00c9
    assert texts(scan_all(small_log, "\\x45rror")) == [LOG[n].decode() for n in (1, 3, 4)]  # smart case
