"""3. One sweep of 200 HTTP checks that each take 100 ms to answer, beside the same requests made directly.

    python bench/sweep.py [--quick]
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from urllib.parse import urlsplit

import httpx

from backends.config import parse
from backends.engine import Engine
from backends.model import State
from common import OUT, Row, Section, http_server, http_services, listing, median, ratio, write_config

COUNT = 200
SHARDS = 20  # informational: the same requests spread over 20 httpx clients
TARGET = 0.5


async def engine_sweeps(config) -> list[tuple[float, int]]:
    """A fresh engine (adapters built beforehand, not timed): a cold sweep, then a warm one.

    Each as (seconds, readings not OK): a check that timed out makes its sweep invalid, however fast.
    """
    engine = Engine(config)
    engine.build()
    try:
        found = []
        for _ in range(2):
            started = time.perf_counter()
            await engine.sweep()
            found.append((time.perf_counter() - started,
                          COUNT - sum(r.state is State.OK for r in engine.readings.values())))
        return found
    finally:
        await engine.stop()


async def httpx_gathers(urls: list[str], clients: int = 1) -> list[tuple[float, int]]:
    """The same requests all at once from ``clients`` httpx clients; cold (new connections), then warm."""
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=500)  # room for all 200 at once
    pool = [httpx.AsyncClient(limits=limits) for _ in range(clients)]
    try:
        found = []
        for _ in range(2):
            started = time.perf_counter()
            responses = await asyncio.gather(*(pool[i % clients].get(url) for i, url in enumerate(urls)))
            found.append((time.perf_counter() - started,
                          sum(r.status_code != 200 or r.json() != {"status": "UP"} for r in responses)))
        return found
    finally:
        await asyncio.gather(*(client.aclose() for client in pool))


async def stream_gathers(urls: list[str]) -> list[tuple[float, int]]:
    """The bare floor: HTTP/1.1 written by hand on one asyncio stream per request; cold (connect), then warm."""
    streams: dict[int, tuple[asyncio.StreamReader, asyncio.StreamWriter]] = {}

    async def get(i: int, url: str) -> bool:
        parts = urlsplit(url)
        if i not in streams:
            streams[i] = await asyncio.open_connection(parts.hostname, parts.port)
        reader, writer = streams[i]
        writer.write(f"GET {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode())
        status, length = await reader.readline(), 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            length = int(value) if name.lower() == b"content-length" else length
        return status.startswith(b"HTTP/1.1 200") and json.loads(await reader.readexactly(length)) == {"status": "UP"}

    try:
        found = []
        for _ in range(2):
            started = time.perf_counter()
            answers = await asyncio.gather(*(get(i, url) for i, url in enumerate(urls)))
            found.append((time.perf_counter() - started, answers.count(False)))
        return found
    finally:
        for _, writer in streams.values():
            writer.close()


JOBS = {"engine": lambda config, urls: engine_sweeps(config),
        "httpx, 1 client": lambda config, urls: httpx_gathers(urls),
        f"httpx, {SHARDS} clients": lambda config, urls: httpx_gathers(urls, SHARDS),
        "asyncio streams": lambda config, urls: stream_gathers(urls)}


async def measure(port: int, runs: int) -> dict[str, dict[str, list]]:
    """{job: {"cold"|"warm": [seconds], "bad cold"|"bad warm": [answers not OK]}}; jobs interleaved, order rotating."""
    services = http_services(port, COUNT, path="/slow")
    config = parse(write_config(OUT / "sweep.yaml", services=services).read_text(), "sweep.yaml")
    urls = [s["url"] for s in services]
    found = {job: {"cold": [], "warm": [], "bad cold": [], "bad warm": []} for job in JOBS}
    names = list(JOBS)
    for i in range(runs + 1):  # run 0 warms imports and the server: not counted
        for job in names[i % len(names):] + names[:i % len(names)]:
            (cold, bad_cold), (warm, bad_warm) = await JOBS[job](config, urls)
            if i:
                found[job]["cold"].append(cold)
                found[job]["warm"].append(warm)
                found[job]["bad cold"].append(bad_cold)
                found[job]["bad warm"].append(bad_warm)
            await asyncio.sleep(0.2)
    return found


def run(quick: bool = False) -> Section:
    runs = 2 if quick else 5
    with http_server() as port:
        found = asyncio.run(measure(port, runs))
    engine, floor, sharded, streams = (found[job] for job in JOBS)
    rows = []
    for phase in ("cold", "warm"):
        e, f, s, b = (median(job[phase]) for job in (engine, floor, sharded, streams))
        what = "cold sweep (new connections)" if phase == "cold" else "warm sweep (keep-alive connections)"
        ok = e < TARGET and not any(engine[f"bad {phase}"])
        rows += [Row(what, f"{e:.3f} s", f"{f:.3f} s (httpx, 1 client)", ratio(e, f), f"< {TARGET} s, all OK", ok),
                 Row(f"{phase}: other floors (informational)", f"{e:.3f} s",
                     f"{b:.3f} s (asyncio streams); {s:.3f} s (httpx, {SHARDS} clients)",
                     f"{ratio(e, b)}; {ratio(e, s)}")]
    return Section(
        "3. One sweep of 200 HTTP checks answering in 100 ms",
        f"`await Engine.sweep()` over a config of {COUNT} http services (`expect_json: {{status: UP}}`, default "
        f"1.5 s timeout) against bench/server.py `/slow` (asyncio, separate process, answers after 100 ms); adapters "
        f"are built before the clock starts. Cold = a fresh Engine (new connections), warm = its second sweep. "
        f"Baseline (floor) = the same {COUNT} GETs from one `httpx.AsyncClient` (max 1000 connections) + "
        f"`asyncio.gather`, cold then warm; also from {SHARDS} httpx clients, and as hand-written HTTP/1.1 on one "
        f"asyncio stream per request (the bare floor). Jobs interleaved in one process, order rotating; median of "
        f"{runs} after one uncounted run.",
        rows,
        [f"- {job} runs (s): cold {listing(v['cold'])}; warm {listing(v['warm'])}; answers not OK: cold "
         f"{listing(v['bad cold'], '{}')}, warm {listing(v['bad warm'], '{}')}" for job, v in found.items()]
        + ["- A check that timed out (not OK) fails its row, however fast the sweep."],
    )


if __name__ == "__main__":
    print(run("--quick" in sys.argv).markdown())
