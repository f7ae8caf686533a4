"""Keys to actions: pick, confirm by tier, run with streamed output, and record every step in the audit log."""

from __future__ import annotations

import asyncio
import collections
from typing import TYPE_CHECKING

from backends.actions import Action, ActionRefused, ActionResult, Tier
from backends.audit import AuditUnwritable
from backends.model import AlertReading, PipelineReading, State, TableReading
from backends.text import one_line, visible
from widgets.action_panel import ActionPanel
from widgets.key_bar import KeyBar
from widgets.status_table import StatusTable

from .modals import TextModal

if TYPE_CHECKING:
    from .app import LakedeckApp

OUTPUT_FLUSH = 0.1  # output crosses to the screen at most ten times a second, however fast it comes


class ActionFlow:
    def __init__(self, app: LakedeckApp) -> None:
        self.app = app
        self.engine = app.engine
        self._pending: collections.deque[str] = collections.deque(maxlen=5000)
        self._flushing = False
        self._told_lock_dir = False

    # -- choosing ----------------------------------------------------------------------------------

    def selected_target(self) -> str | None:
        focused = self.app.focused
        if not isinstance(focused, StatusTable) or focused.selected_key is None:
            return None
        reading = self.engine.readings.get(focused.selected_key)
        if isinstance(reading, (PipelineReading, AlertReading, TableReading)) and reading.key != reading.source:
            return reading.key  # one DAG, one dbt project, one alert: its own actions
        return reading.source if reading is not None else None

    def _target_or_say(self) -> str | None:
        target = self.selected_target()
        if target is None:
            self.app.notify("Select a row of a source first (Services: 1)", severity="warning", timeout=3)
        return target

    def open_menu(self) -> None:
        target = self._target_or_say()
        if target is None:
            return
        self.offer(target, self.engine.actions_for(target))

    def offer(self, target: str, offered: list[Action]) -> None:
        """The action menu for ``target``: pick one, then it is confirmed by its tier."""
        actions = {a.id: a for a in offered}
        choices = [(a.id, f"{a.title:<16} {a.tier.label:<12} {one_line(self.engine.audit.command(a), 70)}")
                   for a in actions.values()]
        read_only = self.engine.is_read_only(offered[0].owner if offered else target)
        title = f"Actions · {target}" + (" · READ-ONLY: read actions only" if read_only else "")
        from widgets.choice_modal import ChoiceModal  # modals load on first use, not at start-up

        def chosen(action_id: str | None) -> None:
            if action_id is not None:
                self.request(actions[action_id])

        self.app.push_screen(ChoiceModal(title, choices, empty=f"{target} offers no actions"), chosen)

    def shortcut(self, *action_ids: str) -> None:
        """``r`` and ``s``: the first of ``action_ids`` the selected target offers."""
        target = self._target_or_say()
        if target is None:
            return
        offered = {a.id: a for a in self.engine.actions_for(target, include_refused=True)}
        for action_id in action_ids:
            if action_id in offered:
                self.request(offered[action_id])
                return
        self.app.notify(f"{target} has no {' or '.join(action_ids)} action", severity="warning", timeout=3)

    def start_or_stop(self) -> None:
        target = self.selected_target()
        reading = self.engine.readings.get(target or "")
        running = reading is not None and reading.state in (State.OK, State.WARN)
        self.shortcut(*(("stop", "start") if running else ("start", "stop")))

    # -- confirming --------------------------------------------------------------------------------

    def request(self, action: Action, asked: bool = False) -> None:
        self._tell_lock_dir_once()
        reason = self.engine.refusal(action)
        if reason:
            self.app.notify(reason, severity="error", timeout=4)
            self.app.run_worker(self._audited(self.engine.record("refused", action, reason=reason)), group="audit",
                                exit_on_error=False)
            return
        if action.ask and not asked:
            self._ask(action)
            return
        if action.tier is Tier.READ:
            self.app.run_worker(self._run(action), group="actions", exit_on_error=False)
            return
        self.app.run_worker(self._confirm(action), group="actions", exit_on_error=False)

    async def _audited(self, writing) -> bool:
        """Wait for an audit line; when the log cannot be written, say so (the action does not run)."""
        try:
            await writing
        except AuditUnwritable as exc:
            self.app.notify(str(exc), severity="error", timeout=8)
            return False
        return True

    def _tell_lock_dir_once(self) -> None:
        """Locks that hold only among this user's processes: said once, at the first action."""
        if self._told_lock_dir:
            return
        self._told_lock_dir = True
        where = self.engine.lock_dir
        if not where.shared:
            self.app.notify(where.describe(), severity="warning", timeout=8)

    def _ask(self, action: Action) -> None:
        """The value the action asks for (a --select, a conf), checked by its adapter before the confirmation."""
        source = self.engine.sources[action.owner]
        filled: dict[str, Action] = {}

        def check(text: str) -> str:
            try:
                filled["action"] = source.with_value(action, text.strip())
            except ValueError as exc:
                return one_line(str(exc))
            return ""

        def given(text: str | None) -> None:
            if text is not None and "action" in filled:
                self.request(filled["action"], asked=True)

        from widgets.ask_modal import AskModal  # modals load on first use, not at start-up

        self.app.push_screen(AskModal(f"{action.title} {action.target}", action.ask, check, initial=action.value), given)

    async def _confirm(self, action: Action) -> None:
        if not await self._audited(self.engine.record("requested", action)):
            return
        command = self.engine.audit.command(action)
        preview: list[str] | None = None
        if action.tier is Tier.DESTRUCTIVE:
            try:
                found = await self.engine.sources[action.owner].preview(action)
                preview = None if found is None else [visible(self.engine.audit.redact(line)) for line in found]
            except Exception as exc:  # a failed dry run must not let the action through unseen
                self.app.notify(one_line(self.engine.audit.redact(f"dry run failed: {exc}")), severity="error",
                                timeout=6)
                await self._audited(self.engine.record("cancelled", action, reason=one_line(f"dry run failed: {exc}")))
                return
        title = f"{action.title} {action.target}? ({action.tier.label})"
        from widgets.confirm import ConfirmModal  # modals load on first use, not at start-up

        modal = ConfirmModal(title, command, preview=preview,
                             type_to_confirm=(action.confirm or action.target) if action.tier is Tier.DESTRUCTIVE else "")
        confirmed = await self.app.push_screen_wait(modal)
        if not confirmed:
            await self._audited(self.engine.record("cancelled", action))
            self.app.notify(f"Cancelled: {action.title.lower()} {action.target}", timeout=2)
            return
        await self._run(action)

    # -- running -----------------------------------------------------------------------------------

    @property
    def panel(self) -> ActionPanel:
        return self.app.dashboard.query_one(ActionPanel)

    async def _open_panel(self) -> None:
        """The output panel is mounted on the first action: a widget fewer to build for the first frame."""
        dashboard = self.app.dashboard
        if not dashboard.query(ActionPanel):
            await dashboard.mount(ActionPanel(), before=dashboard.query_one(KeyBar))

    def _emit(self, line: str) -> None:
        """Called for every output line, maybe from an adapter's thread: only queue it here."""
        self._pending.append(visible(line))
        if not self._flushing:
            self._flushing = True
            self._loop.call_soon_threadsafe(self._schedule)

    def _schedule(self) -> None:
        self.app.set_timer(OUTPUT_FLUSH, self._flush_output)

    def _flush_output(self) -> None:
        self._flushing = False
        lines = list(self._pending)
        self._pending.clear()
        if lines:
            self.panel.write(lines)

    async def _run(self, action: Action) -> None:
        self._loop = asyncio.get_running_loop()
        title = f"{action.title} {action.target}"
        await self._open_panel()
        self.panel.start(title, self.engine.audit.command(action))
        try:
            result = await self.engine.run_action(action, self._emit)
        except ActionRefused as exc:  # its target busy, or the audit log cannot be written: nothing ran
            self.panel.finish(title, False, str(exc))
            self.app.notify(str(exc), severity="error", timeout=8 if isinstance(exc, AuditUnwritable) else 4)
            return
        if result.audit_error:
            self.app.notify(result.audit_error, severity="error", timeout=8)
        self._flush_output()
        self.panel.finish(title, result.ok, one_line(result.summary))
        self.app.refresh_view()
        self.app.pipelines.after_action()
        if result.ok and self.app.screen is not self.app.dashboard:  # the output panel is on the dashboard
            self.app.notify(one_line(result.summary), timeout=4)
        if not result.ok:
            self.app.push_screen(failure_modal(result, self.engine.audit.redact, self.engine.audit.command(result.action)))


def failure_modal(result: ActionResult, redact, command: str) -> TextModal:
    action = result.action
    lines = [("target", action.target), ("action", action.title), ("command", command),
             ("exit code", "none" if result.exit_code is None else str(result.exit_code)),
             ("duration", f"{result.duration:.1f}s")]
    if result.error:
        lines.append(("error", redact(result.error)))
    lines.append(("Last lines of output", ""))
    lines += [("", visible(redact(line))) for line in result.output[-20:]] or [("", "(no output)")]
    return TextModal(f"FAILED · {action.title} {action.target}", lines)

