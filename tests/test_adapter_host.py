"""LocalHost on this very machine, through real psutil."""

from __future__ import annotations

import asyncio
import os
from collections import namedtuple

import psutil

from backends.adapters import host
from backends.adapters.host import busy_percent, counter_rate
from backends.thresholds import classify
from backends.model import GaugeReading, Pane, ProcessTableReading, State
from helpers import source_for


async def poll(check) -> dict:
    readings = await check.poll()
    assert all("\n" not in r.reason for r in readings)
    by_key = {r.key: r for r in readings}
    assert len(by_key) == len(readings), "duplicate keys"
    return by_key


async def test_every_gauge_is_reported_with_sane_values():
    check = source_for("hosts", "local", name="box", refresh="2s", timeout="1s")
    readings = await poll(check)
    cores = psutil.cpu_count()
    expected = {"box:cpu", "box:load", "box:memory", "box:swap", "box:net:rx", "box:net:tx", "box:processes",
                *(f"box:cpu:{i}" for i in range(cores))}
    assert expected <= readings.keys()
    assert any(key.startswith("box:disk:") for key in readings)
    for key, reading in readings.items():
        assert reading.source == "box"
        if key == "box:processes":
            assert isinstance(reading, ProcessTableReading) and reading.pane is Pane.PROCESSES
            continue
        assert isinstance(reading, GaugeReading) and reading.pane is Pane.RESOURCES
        assert reading.state is not State.UNKNOWN, reading.reason
        if reading.percent is not None and key != "box:load":
            assert 0 <= reading.percent <= 100, (key, reading.percent)
    # the first poll primes the counters itself, so even it has real figures
    assert readings["box:cpu"].percent is not None and readings["box:cpu"].reason.startswith("cpu ")
    assert readings["box:cpu:0"].group == "cpu cores" and readings["box:cpu:0"].label == "core 0"
    assert readings["box:load"].unit == "" and readings["box:load"].amount >= 0
    assert readings["box:load"].percent == readings["box:load"].amount * 100 / cores
    memory = readings["box:memory"]
    assert memory.unit == "B" and 0 < memory.amount <= psutil.virtual_memory().total
    assert memory.reason.startswith("memory ") and " of " in memory.reason
    for direction in ("rx", "tx"):
        net = readings[f"box:net:{direction}"]
        assert net.unit == "B/s" and net.amount >= 0 and net.reason.startswith(f"net {direction} ")


async def test_second_poll_measures_rates_between_polls():
    check = source_for("hosts", "local", name="box")
    await poll(check)
    await asyncio.sleep(0.1)  # the engine never polls faster than every 100 ms
    second = await poll(check)
    assert second["box:net:rx"].reason != "measuring"
    assert second["box:cpu"].percent is not None


async def test_swap_without_a_swap_device_is_ok():
    readings = await poll(source_for("hosts", "local", name="box"))
    swap = readings["box:swap"]
    if psutil.swap_memory().total == 0:
        assert swap.state is State.OK and swap.reason == "no swap" and swap.percent is None
    else:
        assert swap.reason.startswith("swap ")


async def test_thresholds_from_the_config_decide_the_state():
    check = source_for("hosts", "local", name="box", root={"thresholds": {"warn": 1, "critical": 100}},
                       thresholds={"memory": {"warn": 0, "critical": 0}, "disk": {"warn": 0, "critical": 100}})
    readings = await poll(check)
    memory = readings["box:memory"]
    assert memory.state is State.CRITICAL
    assert memory.reason.endswith("(critical at 0%)")
    disk = next(r for k, r in readings.items() if k.startswith("box:disk:"))
    assert disk.state is State.WARN and disk.reason.endswith("(warn at 0%)")
    load = readings["box:load"]
    assert load.state is classify(load.percent, 1, 100)  # the top-level levels apply where no override is given
    assert readings["box:net:rx"].state is State.OK  # rates have no levels


async def test_excluded_mounts_are_left_out():
    check = source_for("hosts", "local", name="box")
    mounts = check.mounts()
    assert mounts, "this machine has no disk?"
    excluded = source_for("hosts", "local", name="box", exclude_mounts=[mounts[0]])
    readings = await poll(excluded)
    assert f"box:disk:{mounts[0]}" not in readings
    assert f"box:disk:{mounts[0]}" in await poll(check)
    assert source_for("hosts", "local", name="box", exclude_mounts=["*"]).mounts() == []


async def test_process_table_lists_the_top_processes():
    check = source_for("hosts", "local", name="box", top=3)
    table = (await poll(check))["box:processes"]
    assert table.state is State.OK and table.reason.endswith(" processes")
    assert len(table.by_cpu) == 3 and len(table.by_memory) == 6  # twice as many, to fill rows not by-CPU
    rss = [row.rss_bytes for row in table.by_memory]
    assert rss == sorted(rss, reverse=True)
    cpu = [row.cpu_percent for row in table.by_cpu]
    assert cpu == sorted(cpu, reverse=True)
    biggest = max(p.info["memory_info"].rss for p in psutil.process_iter(["memory_info"]) if p.info["memory_info"])
    assert table.by_memory[0].rss_bytes >= biggest * 0.9  # memory moves a little between the two looks
    row = table.by_memory[0]
    assert row.name and row.user and row.started > 0


async def test_own_process_cpu_is_measured_between_polls(monkeypatch):
    monkeypatch.setattr(host, "PROCESS_EVERY", 0.0)  # walk the processes at every poll here
    check = source_for("hosts", "local", name="box", top=50)
    await poll(check)
    total = 0
    while total < 3_000_000:  # burn some CPU in this process
        total += 1
    table = (await poll(check))["box:processes"]
    ours = [row for row in table.by_cpu if row.pid == os.getpid()]
    assert ours and ours[0].cpu_percent > 0


Times = namedtuple("Times", "user nice system idle iowait guest guest_nice")
Counters = namedtuple("Counters", "bytes_recv bytes_sent")


def test_busy_percent():
    before = Times(100, 0, 50, 800, 50, 0, 0)
    assert busy_percent(before, Times(150, 0, 100, 850, 50, 0, 0)) == 100 * 100 / 150
    assert busy_percent(before, Times(100, 0, 50, 900, 100, 0, 0)) == 0.0
    assert busy_percent(before, before) is None
    # guest time is already counted in user: it must not be counted twice
    assert busy_percent(before, Times(200, 0, 50, 800, 50, 100, 0)) == 100.0


def test_counter_rate():
    before = {"eth0": Counters(1000, 10), "eth1": Counters(500, 0)}
    after = {"eth0": Counters(3000, 20), "eth2": Counters(9999, 9999)}
    assert counter_rate(before, after, "bytes_recv", 2.0) == 1000.0  # eth1 vanished, eth2 is new
    assert counter_rate(before, {"eth0": Counters(0, 0)}, "bytes_recv", 1.0) == 0.0  # counters reset
    assert counter_rate(before, after, "bytes_recv", 0) is None


async def test_one_unreadable_part_is_unknown_and_the_rest_still_reported(monkeypatch):
    def denied():
        raise PermissionError(13, "Permission denied", "/proc/meminfo")

    monkeypatch.setattr(psutil, "virtual_memory", denied)
    readings = await poll(source_for("hosts", "local", name="box"))
    memory = readings["box:memory"]
    assert memory.state is State.UNKNOWN and memory.reason == "cannot read memory: permission denied"
    assert readings["box:cpu"].state is not State.UNKNOWN and "box:processes" in readings


async def test_the_process_table_is_walked_at_most_every_few_seconds(monkeypatch):
    check = source_for("hosts", "local", name="box")
    first = (await poll(check))["box:processes"]
    again = (await poll(check))["box:processes"]
    assert again is first  # within PROCESS_EVERY: the same table, no walk of /proc
    monkeypatch.setattr(host, "PROCESS_EVERY", 0.0)
    assert (await poll(check))["box:processes"] is not first
