"""`lakedeck action` and `lakedeck audit`: actions and their record, for scripts and runbooks."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import TextIO

from . import interrupts
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
    """Exit 0 done, 1 failed, 2 refused (read-only, a busy target, an audit log that cannot be written) or
    unknown, 3 needs --yes, 128+N when signal N (SIGTERM, SIGHUP, SIGINT) ended it: then the action's process
    group is killed and its audit line says `failed` (interrupted by SIGTERM) before lakedeck exits."""

    async def main() -> int:
        engine = Engine(config)
        engine.read_only = engine.read_only or read_only
        interrupts.exit_on_signals(engine.interrupt, (out, err))
        await asyncio.to_thread(engine.build)
        owner = owner_in(config, target) if target not in engine.sources else None
        if owner is not None:
            await engine.poll_once(owner)  # a pipeline's actions come from what its source reports now
        try:
            action = engine.find_action(target, action_id)
            if action.ask:
                action = engine.sources[action.owner].with_value(action, value.strip())
        except ActionRefused as exc:
            err.write(f"lakedeck: {one_line(str(exc), 400)}\n")
            return EXIT_REFUSED
        except ValueError as exc:
            err.write(f"lakedeck: --value for {action_id}: {one_line(str(exc))}\n")
            return EXIT_REFUSED
        out.write(visible(f"{action.title} {target} ({action.tier.label}): {engine.audit.command(action)}") + "\n")
        try:
            return await go(engine, action)
        except ActionRefused as exc:  # a refusal, or the audit log cannot be written: one line
            err.write(f"lakedeck: {one_line(str(exc), 400)}\n")
            return EXIT_REFUSED

    async def go(engine: Engine, action) -> int:
        reason = engine.refusal(action)
        if reason:
            await engine.record("refused", action, reason=reason)
            raise ActionRefused(reason)
        if dry_run or action.tier is Tier.DESTRUCTIVE:
            try:
                preview = await engine.sources[action.owner].preview(action)
            except Exception as exc:  # a dry run that fails lets nothing through
                await engine.record("cancelled", action, reason=one_line(f"dry run failed: {exc}"))
                raise ActionRefused(f"dry run failed: {exc}; nothing was run") from None
            if preview is None:
                out.write("no dry run for this action: the command above is what would run\n")
            elif preview:
                out.write("it would affect:\n" + "".join(f"  {visible(engine.audit.redact(line))}\n" for line in preview))
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
            result = await engine.run_action(action, lambda line: _print(out, visible(line)))
        finally:
            await engine.stop()
        (out if result.ok else err).write(f"lakedeck: {one_line(result.summary)}\n")
        if result.audit_error:
            err.write(f"lakedeck: {one_line(result.audit_error, 400)}\n")
        return 0 if result.ok else 1

    return asyncio.run(main())


def _print(out: TextIO, line: str) -> None:
    """An action's output line, on its way at once (a pipe to `tee` or a log would hold it back otherwise)."""
    out.write(line + "\n")
    out.flush()


def show_audit(config: Config, since: float | None, as_json: bool, out: TextIO = sys.stdout) -> int:
    engine = Engine(config)
    try:
        entries = engine.audit.read(since)
    except OSError as exc:
        print(f"lakedeck: cannot read the audit log at {engine.audit.path}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_REFUSED
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
