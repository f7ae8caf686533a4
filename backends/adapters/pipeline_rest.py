"""The pipelines of an analytics engine's REST API: the seeds' engine by default, any similar API by config.

The default API, under ``url`` (e.g. ``http://host:8080/api/v1/analytics/pipelines``):

    GET  /status             {"pipelines": [{"name": "orders", "status": "RUNNING", "lastRun": "2024-05-01T10:00:00Z",
                                             "lastSuccess": "...", "durationMs": 5400, "errorCount": 2,
                                             "message": "lagging 40s"}]}
    GET  /{name}/status      one pipeline, the same fields
    GET  /{name}/errors      {"errors": [{"batch": "b-17", "time": "2024-05-01T09:58:00Z", "error": "schema mismatch"}]}
    POST /{name}/start, /stop, /restart, /pause
    POST /{name}/retry       {"batches": ["b-17"]}: retries the named failed batches
    POST /{name}/clear-errors

``status`` is RUNNING, PAUSED, STOPPED, FAILED or DEGRADED. Times are ISO 8601 (UTC when no zone is written)
or epoch seconds or milliseconds; ``durationMs`` is in milliseconds; ``errorCount`` may also be a list (its
length counts). ``paths:`` replaces any path template (``{name}`` is URL-quoted) and ``fields:`` any field,
as a dotted path (``data.items``, ``run.startedAt``). The answer to ``/status`` may also be the list itself.
An optional field the API does not send is left blank, unless ``fields:`` names it: then the row says it
is missing (a typo in the mapping should not pass unseen).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from ..actions import Action, ActionResult, Emit, HttpRequest, Tier, Transcript, title_of
from ..model import Listing, PipelineItem, PipelineReading, Reading, State
from .http_check import json_field
from .json_api import ApiError, JsonApi, segment
from .pipeline_base import FAILED_WORDS, PipelineError, PipelineSource, epoch_seconds, is_number, time_or_none
from .text import one_line

DEFAULT_PATHS = {
    "status": "/status", "item": "/{name}/status", "errors": "/{name}/errors",
    "start": "/{name}/start", "stop": "/{name}/stop", "restart": "/{name}/restart", "pause": "/{name}/pause",
    "retry": "/{name}/retry", "clear_errors": "/{name}/clear-errors",
}
DEFAULT_FIELDS = {
    "list": "pipelines", "name": "name", "status": "status", "last_run": "lastRun", "last_success": "lastSuccess",
    "duration": "durationMs", "errors": "errorCount", "message": "message",
}
REQUIRED_FIELDS = ("name", "status")

# status word -> (state, what the row says)
STATUSES = {
    "RUNNING": (State.OK, "running"),
    "PAUSED": (State.OK, "paused"),
    "STOPPED": (State.WARN, "stopped"),
    "FAILED": (State.CRITICAL, "failed"),
    "DEGRADED": (State.WARN, "degraded"),
}
KNOWN_STATUSES = ", ".join(STATUSES)

# action id -> (path key, tier, the transition the row shows while it runs)
ACTIONS = {
    "start": ("start", Tier.DISRUPTIVE, "starting"),
    "stop": ("stop", Tier.DISRUPTIVE, "stopping"),
    "restart": ("restart", Tier.DISRUPTIVE, "restarting"),
    "pause": ("pause", Tier.DISRUPTIVE, "pausing"),
    "retry": ("retry", Tier.DESTRUCTIVE, "retrying"),
    "clear-errors": ("clear_errors", Tier.DESTRUCTIVE, "clearing errors"),
}
ACTION_TIMEOUT = 30.0
MAX_ERRORS = 500  # failed batches listed when a pipeline is opened
# The request body of "retry" on a whole pipeline: which batches is only known from the dry run, so the
# request shown before confirming says so, and run() sends exactly the batches the preview listed.
RETRY_LISTED_BODY = '{"batches": [<the failed batches listed below>]}'


class RestPipelines(PipelineSource):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        options = self.spec.options
        self.url: str = options["url"]
        self.paths: dict[str, str] = {**DEFAULT_PATHS, **(options.get("paths") or {})}
        self.named_fields: set[str] = set(options.get("fields") or {})
        self.fields: dict[str, str] = {**DEFAULT_FIELDS, **(options.get("fields") or {})}
        self.headers: dict[str, str] = dict(options.get("headers") or {})
        self.verify_tls: bool = options.get("verify_tls", True)
        self.ca_file: str | None = options.get("ca_file")
        self.api: JsonApi | None = None
        self.bad_url = ""
        try:
            self.api = self.new_api()
        except ValueError as exc:
            self.bad_url = one_line(f"bad url {self.url!r}: {exc}")
        self._listed_for_retry: dict[str, list[str]] = {}  # target -> the batches its retry preview listed

    def new_api(self) -> JsonApi:
        return JsonApi(self.url, self.headers, self.verify_tls, self.ca_file)

    def describe(self) -> str:
        return self.url

    def path(self, key: str, name: str = "") -> str:
        return self.paths[key].replace("{name}", segment(name))

    async def close(self) -> None:
        if self.api is not None:
            await self.api.close()

    # -- reading -----------------------------------------------------------------------------------

    async def read(self) -> list[Reading]:
        if self.api is None:
            return self.failed(self.bad_url)
        try:
            answer = await self.api.request("GET", self.path("status"), timeout=self.timeout)
        except ApiError as exc:
            return self.failed(str(exc))
        try:
            entries = self.pipeline_list(answer)
        except ValueError as exc:
            return self.failed(str(exc))
        return [self.reading_of(entry, index) for index, entry in enumerate(entries)]

    def pipeline_list(self, answer: Any) -> list[Any]:
        if isinstance(answer, list):
            return answer
        path = self.fields["list"]
        try:
            found = json_field(answer, path)
        except KeyError:
            raise ValueError(f"no {path!r} list in the answer to GET {self.path('status')} (fields.list)") from None
        if not isinstance(found, list):
            raise ValueError(f"{path!r} in the answer to GET {self.path('status')} is not a list (fields.list)")
        return found

    def reading_of(self, entry: Any, index: int) -> PipelineReading:
        """One row per pipeline; whatever is missing or odd in its entry is said in the reason."""
        if not isinstance(entry, dict):
            return self.reading(f"#{index + 1}", State.UNKNOWN, f"entry {index + 1} of the list is not an object",
                                can_open=False)
        problems: list[str] = []
        name = self.text_field(entry, "name", problems)
        status = self.text_field(entry, "status", problems)
        fields = {
            "last_start": self.time_field(entry, "last_run", problems),
            "last_success": self.time_field(entry, "last_success", problems),
            "last_duration": self.duration_field(entry, problems),
            "failures": self.count_field(entry, "errors", problems),
        }
        message = self.text_field(entry, "message", problems) or ""
        if not name:
            return self.reading(f"#{index + 1}", State.UNKNOWN, " · ".join(problems), status=status or "",
                                can_open=False, **fields)
        state, said = judge(status, fields["failures"])
        # without a status the row is UNKNOWN because of what is missing: say that first
        parts = (*problems, said, message) if status is None else (said, message, *problems)
        reason = one_line(" · ".join(part for part in parts if part))
        return self.reading(name, state, reason, status=(status or "").lower(), paused=status == "PAUSED",
                            ref=("pipeline", name), **fields)

    def raw_field(self, entry: dict, key: str, problems: list[str]) -> Any:
        path = self.fields[key]
        try:
            return json_field(entry, path)
        except KeyError:
            if key in REQUIRED_FIELDS or key in self.named_fields:
                problems.append(f"no {path!r} field (fields.{key})")
            return None

    def text_field(self, entry: dict, key: str, problems: list[str]) -> str | None:
        value = self.raw_field(entry, key, problems)
        if value is None:
            return None
        if isinstance(value, (dict, list)):
            problems.append(f"{self.fields[key]!r} is not text")
            return None
        if key == "name":  # kept whole: actions put it in their URLs
            return str(value)
        text = one_line(str(value), 120)
        return text.upper() if key == "status" else text

    def time_field(self, entry: dict, key: str, problems: list[str]) -> float | None:
        value = self.raw_field(entry, key, problems)
        if value is None or value == "":
            return None
        try:
            return epoch_seconds(value)
        except (ValueError, OverflowError):
            problems.append(f"{self.fields[key]} {one_line(repr(value), 40)} is not a time")
            return None

    def duration_field(self, entry: dict, problems: list[str]) -> float | None:
        value = self.raw_field(entry, "duration", problems)
        if value is None:
            return None
        if not is_number(value) or value < 0:
            problems.append(f"{self.fields['duration']} {one_line(repr(value), 40)} is not milliseconds")
            return None
        return value / 1000

    def count_field(self, entry: dict, key: str, problems: list[str]) -> int:
        value = self.raw_field(entry, key, problems)
        if isinstance(value, list):
            return len(value)
        if value is None:
            return 0
        if not is_number(value):
            problems.append(f"{self.fields[key]} {one_line(repr(value), 40)} is not a count")
            return 0
        return int(value)

    # -- drill-down --------------------------------------------------------------------------------

    async def open(self, ref: tuple[str, ...]) -> Listing:
        """A pipeline's failed batches, newest as the API lists them, with its status in the note."""
        if len(ref) != 2 or ref[0] != "pipeline":
            return await super().open(ref)
        name = ref[1]
        status, errors = await asyncio.gather(self.status_word(name), self.errors_of(name), return_exceptions=True)
        if isinstance(errors, BaseException):
            raise PipelineError(str(errors)) from None
        items = error_items(name, errors[:MAX_ERRORS])
        counted = f"{len(errors)} failed batch{'es' if len(errors) != 1 else ''}" if errors else "no failed batches"
        if len(errors) > MAX_ERRORS:
            counted += f" (the first {MAX_ERRORS} shown)"
        said = f"status unknown: {status}" if isinstance(status, BaseException) else status.lower()
        return Listing(title=f"{self.name} · {name}", items=items, note=f"{said} · {counted}",
                       columns=("State", "Batch", "Status", "Failed at", "Duration", "Error"))

    async def status_word(self, name: str) -> str:
        answer = await self.request("GET", self.path("item", name))
        problems: list[str] = []
        status = self.text_field(answer, "status", problems) if isinstance(answer, dict) else None
        if status is None:
            raise PipelineError(" · ".join(problems) or f"no status in the answer to GET {self.path('item', name)}")
        return status

    async def errors_of(self, name: str) -> list[dict]:
        answer = await self.request("GET", self.path("errors", name))
        errors = answer.get("errors") if isinstance(answer, dict) else answer
        if not isinstance(errors, list):
            raise PipelineError(f"the answer to GET {self.path('errors', name)} has no \"errors\" list")
        return [error if isinstance(error, dict) else {"error": str(error)} for error in errors]

    async def request(self, method: str, path: str, body: Any = None) -> Any:
        """A read made for the operator (a drill-down, a dry run): failures as ``PipelineError``."""
        if self.api is None:
            raise PipelineError(self.bad_url)
        try:
            return await self.api.request(method, path, timeout=self.timeout, body=body)
        except ApiError as exc:
            raise PipelineError(str(exc)) from None

    # -- actions -----------------------------------------------------------------------------------

    def item_actions(self, row: PipelineReading | PipelineItem) -> list[Action]:
        if isinstance(row, PipelineReading) and len(row.ref) == 2 and row.ref[0] == "pipeline":
            return [self.action(action_id, row.ref) for action_id in ACTIONS]
        if isinstance(row, PipelineItem) and len(row.ref) >= 3 and row.ref[0] == "batch":
            return [self.action("retry", row.ref)]
        return []

    def action(self, action_id: str, ref: tuple[str, ...]) -> Action:
        path_key, tier, expect = ACTIONS[action_id]
        name = ref[1]
        title = title_of(action_id)
        body = ""
        if action_id == "retry":
            if ref[0] == "batch":
                title, body = f"Retry batch {ref[2]}", json.dumps({"batches": [ref[2]]})
            else:
                title, body = "Retry failed batches", RETRY_LISTED_BODY
        url = self.api.url(self.path(path_key, name)) if self.api else self.url
        request = HttpRequest("POST", url, tuple(self.headers.items()), body)
        return Action(target=f"{self.name}:{name}", id=action_id, title=title, tier=tier, request=request,
                      timeout=ACTION_TIMEOUT, expect=expect, source=self.name, ref=ref, confirm=name)

    async def preview(self, action: Action) -> list[str] | None:
        """What a destructive action would touch: the errors it would clear, the batches it would retry."""
        if action.tier is not Tier.DESTRUCTIVE or len(action.ref) < 2:
            return None
        errors = await self.errors_of(action.ref[1])
        if action.id == "clear-errors":
            return [error_line(error) for error in errors] or ["no errors: nothing would be cleared"]
        if action.ref[0] == "batch":
            batch = action.ref[2]
            found = [error_line(e) for e in errors if str(e.get("batch")) == batch]
            return found or [f"{batch} (no longer in the errors list; the engine decides what a retry does)"]
        batches = failed_batches(errors)
        self._listed_for_retry[action.target] = batches
        if not batches:
            return ["no failed batches: nothing would be retried"]
        return [error_line(e) for e in errors if str(e.get("batch") or "") in batches]

    async def run(self, action: Action, emit: Emit) -> ActionResult:
        if action.id not in ACTIONS or len(action.ref) < 2:
            return await super().run(action, emit)  # the config's own commands and requests
        transcript = Transcript(action, emit)
        say, result = transcript.say, transcript.result
        if self.api is None:
            return result(False, self.bad_url)
        name = action.ref[1]
        try:
            body = await self.body_of(action)
        except PipelineError as exc:
            return result(False, str(exc))
        if body is not None and not body["batches"]:
            return result(False, "no failed batches to retry")
        path = self.path(ACTIONS[action.id][0], name)
        say(f"POST {self.api.url(path)}" + (f" {json.dumps(body)}" if body is not None else ""))
        api = self.new_api()  # a fresh connection: a POST is never re-sent on a stale keep-alive one
        try:
            answer = await api.request("POST", path, timeout=action.timeout, body=body)
        except ApiError as exc:
            say(str(exc))
            return result(False, str(exc), exc.status)
        finally:
            await api.close()
        say("accepted" + (f": {one_line(json.dumps(answer), 300)}" if answer is not None else ""))
        try:
            say(f"{name} is now {(await self.status_word(name)).lower()}")
        except PipelineError as exc:
            say(f"status after: unknown ({exc})")
        return result(True)

    async def body_of(self, action: Action) -> dict[str, list[str]] | None:
        """The JSON a retry sends: the one batch, or the failed batches its dry run listed."""
        if action.id != "retry":
            return None
        if action.ref[0] == "batch":
            return {"batches": [action.ref[2]]}
        listed = self._listed_for_retry.pop(action.target, None)
        if listed is None:  # run without a dry run (not from the console): the batches failing now
            listed = failed_batches(await self.errors_of(action.ref[1]))
        return {"batches": listed}


def judge(status: str | None, errors: int) -> tuple[State, str]:
    """The row's state and first words from the engine's status word and its error count."""
    if status is None:
        state, said = State.UNKNOWN, ""
    elif status in STATUSES:
        state, said = STATUSES[status]
    elif status.lower() in FAILED_WORDS:
        state, said = State.CRITICAL, status.lower()
    else:
        state, said = State.UNKNOWN, f"status {status!r} is not one of {KNOWN_STATUSES}"
    if errors > 0:
        counted = f"{errors} error{'s' if errors != 1 else ''}"
        said = f"{said} · {counted}" if said else counted
        state = max(state, State.WARN)
    return state, said


def error_items(name: str, errors: list[dict]) -> tuple[PipelineItem, ...]:
    """The rows of a pipeline's errors; a batch that failed more than once keeps distinct refs."""
    items: list[PipelineItem] = []
    seen: set[str] = set()
    for index, error in enumerate(errors):
        batch = error.get("batch")
        text = one_line(str(error.get("error") or error.get("message") or ""), 160)
        failed_at = time_or_none(error.get("time"))
        if batch in (None, ""):  # nothing to retry it by
            items.append(PipelineItem(ref=("error", name, str(index)), name=f"#{index + 1}", state=State.CRITICAL,
                                      status="failed", started=failed_at, note=f"no batch id · {text}"))
            continue
        ref = ("batch", name, str(batch)) if str(batch) not in seen else ("batch", name, str(batch), str(index))
        seen.add(str(batch))
        items.append(PipelineItem(ref=ref, name=str(batch), state=State.CRITICAL, status="failed", started=failed_at,
                                  note=text))
    return tuple(items)


def failed_batches(errors: list[dict]) -> list[str]:
    """The batch ids of an errors list, once each, in its order."""
    return list(dict.fromkeys(str(e["batch"]) for e in errors if e.get("batch") not in (None, "")))


def error_line(error: dict) -> str:
    batch = error.get("batch") if error.get("batch") not in (None, "") else "(no batch id)"
    when = f" at {error['time']}" if error.get("time") else ""
    return one_line(f"{batch}{when}: {error.get('error') or error.get('message') or 'no error text'}", 200)
