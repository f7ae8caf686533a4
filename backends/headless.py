"""`lakedeck action` and `lakedeck audit`: actions and their record, for scripts and runbooks."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import TextIO

from .actions import ActionRefused, Tier
from .config import Config
from .engine import Engine
from .text import one_line, visible

EXIT_REFUSED = 2
EXIT_NOT_CONFIRMED = 3


def owner_in(config: Config, target: str) -> str | None:
    """The source a pipeline's key belongs to (``airflow:etl_daily`` -> ``airflow``), or None."""
    owners = [s.name for s in config.sources if target.startswith(f"{s.name}:")]
    return max(owners, key=len) if owners else None


def run_action(config: Config, target: str, action_id: str, *, dry_run: bool = False, yes: bool = False,
               read_only: bool = False, value: str = "", out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Exit 0 done, 1 failed, 2 refused or unknown, 3 needs --yes."""

    async def main() -> int:
        engine = Engine(config)
        engine.read_only = engine.read_only or read_only
        await asyncio.to_thread(engine.build)
        owner = owner_in(config, target) if target not in engine.sources else None
        if owner is not None:
            await engine.poll_once(owner)  # a pipeline's actions come from what its source reports now
        try:
            action = engine.find_action(target, action_id)
            if action.ask:
                action = engine.sources[action.owner].with_value(action, value.strip())
        except ActionRefused as exc:
            err.write(f"lakedeck: {exc}\n")
            return EXIT_REFUSED
        except ValueError as exc:
            err.write(f"lakedeck: --value for {action_id}: {one_line(str(exc))}\n")
            return EXIT_REFUSED
        out.write(f"{action.title} {target} ({action.tier.label}): {engine.audit.redact(action.describe())}\n")
        reason = engine.refusal(action)
        if reason:
            await engine.record("refused", action, reason=reason)
            err.write(f"lakedeck: {reason}\n")
            return EXIT_REFUSED
        if dry_run or action.tier is Tier.DESTRUCTIVE:
            preview = await engine.sources[action.owner].preview(action)
            if preview is None:
                out.write("no dry run for this action: the command above is what would run\n")
            elif preview:
                out.write("it would affect:\n" + "".join(f"  {visible(line)}\n" for line in preview))
            else:
                out.write("the dry run lists nothing it would affect\n")
        if dry_run:
            out.write("dry run: nothing was run\n")
            return 0
        if action.tier > Tier.READ and not yes:
            await engine.record("requested", action, reason="not confirmed: run again with --yes")
            err.write(f"lakedeck: {action.tier.label} action not run: add --yes to run it\n")
            return EXIT_NOT_CONFIRMED
        try:
            result = await engine.run_action(action, lambda line: out.write(visible(line) + "\n"))
        except ActionRefused as exc:
            err.write(f"lakedeck: {exc}\n")
            return EXIT_REFUSED
        finally:
            await engine.stop()
        (out if result.ok else err).write(f"lakedeck: {one_line(result.summary)}\n")
        return 0 if result.ok else 1

    return asyncio.run(main())


def show_audit(config: Config, since: float | None, as_json: bool, out: TextIO = sys.stdout) -> int:
    engine = Engine(config)
    entries = engine.audit.read(since)
    if as_json:
        json.dump(entries, out, indent=2)
        out.write("\n")
        return 0
    if not entries:
        out.write(f"no audit entries{' in that period' if since else ''} ({engine.audit.path})\n")
        return 0
    for entry in entries:
        code = entry.get("exit_code")
        tail = f" exit {code}" if code is not None else ""
        why = entry.get("reason") or entry.get("error") or ""
        out.write(one_line(f"{entry.get('time', '?')}  {entry.get('user', '?')}@{entry.get('ssh_origin') or 'local'}  "
                           f"{entry.get('event', '?'):<9}  {entry.get('target', '?')}  {entry.get('action', '?')}"
                           f"{tail}  {entry.get('command', '')}" + (f"  ({why})" if why else ""), 400) + "\n")
    return 0
