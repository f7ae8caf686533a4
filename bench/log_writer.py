"""Append `SEQ <n> <monotonic ns>` lines (padded to LINE_BYTES) to a file at a fixed rate, in batches every 10 ms.

    python bench/log_writer.py FILE RATE SECONDS

Used by bench/logs.py to measure how far a log viewer lags behind a file. Each batch is written with one
write() and stamped with time.monotonic_ns() (the same clock in every process). The batch size follows
the clock, so a late wake-up writes more lines rather than lowering the rate. Prints one line at the end:
`<lines written> <seconds> <largest batch>`.
"""

from __future__ import annotations

import sys
import time

LINE_BYTES = 120  # with the newline: 119 columns, one row of a 120-column terminal
BATCH_EVERY = 0.01
FILLER = " INFO  [bench-writer] appended by bench/log_writer.py to measure follow lag " + "." * LINE_BYTES


def seq_line(n: int, ns: int) -> str:
    head = f"SEQ {n} {ns}"
    return head + FILLER[:LINE_BYTES - 1 - len(head)] + "\n"


def write_at_rate(path: str, rate: int, seconds: float) -> tuple[int, float, int]:
    written, largest = 0, 0
    with open(path, "a", encoding="ascii", buffering=1 << 20) as out:
        started = time.monotonic()
        tick = 0
        while True:
            tick += 1
            due = started + tick * BATCH_EVERY
            time.sleep(max(0.0, due - time.monotonic()))
            now = time.monotonic()
            elapsed = min(now - started, seconds)
            count = int(rate * elapsed) - written
            if count > 0:
                ns = time.monotonic_ns()
                out.write("".join(seq_line(n, ns) for n in range(written, written + count)))
                out.flush()
                written += count
                largest = max(largest, count)
            if now - started >= seconds:
                return written, now - started, largest


if __name__ == "__main__":
    lines, took, batch = write_at_rate(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]))
    print(lines, f"{took:.3f}", batch, flush=True)
