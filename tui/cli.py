"""The `lakedeck` command. Headless verbs never import textual; the console imports it only when it starts."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn, Sequence

from backends import __version__
from backends.config import THEMES


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _interval(text: str) -> float:
    from backends.durations import parse_duration

    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None
    if seconds < 0.1:
        raise argparse.ArgumentTypeError(f"{text!r} is too short (expected at least 0.1s)")
    return seconds


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="lakedeck", description="A keyboard-driven console for operating data platforms.")
    parser.add_argument("--version", action="version", version=f"lakedeck {__version__}")
    parser.add_argument("-c", "--config", metavar="FILE", help="config file (default: $LAKEDECK_CONFIG, "
                        "then $XDG_CONFIG_HOME/lakedeck/lakedeck.yaml, then the built-in default)")
    parser.add_argument("--read-only", action="store_true", help="refuse every action that changes anything")
    parser.add_argument("--theme", metavar="NAME", choices=THEMES, help=f"one of: {', '.join(THEMES)}")
    parser.add_argument("--refresh", metavar="SECONDS", type=_interval,
                        help="poll interval for sources without their own (e.g. 2, 500ms, 5s)")
    verbs = parser.add_subparsers(dest="verb", metavar="COMMAND", parser_class=_Parser)
    check = verbs.add_parser("check", help="poll every source once; exit 0 OK, 1 warning, 2 critical/unknown")
    check.add_argument("--json", action="store_true", help="print JSON instead of a table")
    check.add_argument("-c", "--config", metavar="FILE", dest="verb_config", help="config file")
    action = verbs.add_parser("action", help="run an action on a target, as the console would (see README)")
    action.add_argument("target", metavar="TARGET", help="a source's name, or a pipeline's key (airflow:etl_daily)")
    action.add_argument("action_id", metavar="ACTION", help="an action id such as restart")
    action.add_argument("--dry-run", action="store_true", help="show what it would run and affect; run nothing")
    action.add_argument("--yes", action="store_true", help="run a disruptive or destructive action (else exit 3)")
    action.add_argument("--value", default="", help="what the action asks for: a DAG run's conf, a dbt --select")
    action.add_argument("-c", "--config", metavar="FILE", dest="verb_config", help="config file")
    action.add_argument("--read-only", action="store_true", dest="verb_read_only", help="refuse anything above read")
    audit = verbs.add_parser("audit", help="print the audit log of actions")
    audit.add_argument("--since", metavar="DURATION", type=_interval, help="only entries this recent, e.g. 24h")
    audit.add_argument("--json", action="store_true", help="print JSON")
    audit.add_argument("-c", "--config", metavar="FILE", dest="verb_config", help="config file")
    history = verbs.add_parser("history", help="what the history store kept for a source: samples and state changes")
    history.add_argument("name", metavar="SOURCE", help="a source's name, or one reading's key")
    history.add_argument("--since", metavar="DURATION", type=_interval, default=6 * 3600.0,
                         help="how far back, e.g. 30m, 6h, 7d (default: 6h)")
    history.add_argument("--metric", metavar="M", help="only this metric (value, cpu, memory, disk, load, rx, tx...)")
    history.add_argument("--json", action="store_true", help="print JSON, with every sample")
    history.add_argument("-c", "--config", metavar="FILE", dest="verb_config", help="config file")
    report = verbs.add_parser("report", help="a Markdown incident summary: alerts, state changes, actions, timeline")
    report.add_argument("--since", metavar="DURATION", type=_interval, default=86400.0,
                        help="how far back, e.g. 2h, 24h, 7d (default: 24h)")
    report.add_argument("-o", "--output", metavar="FILE", help="write it to FILE instead of standard output")
    report.add_argument("-c", "--config", metavar="FILE", dest="verb_config", help="config file")
    logs = verbs.add_parser("logs", help="print the configured logs merged by time (and follow them with -f)")
    logs.add_argument("names", metavar="LOG", nargs="*", help="names of sources under logs: (default: all)")
    logs.add_argument("-n", "--lines", metavar="N", type=int, default=50, help="how many lines (default: %(default)s)")
    logs.add_argument("--grep", metavar="REGEX", default="", help="only matching lines; a leading ! inverts")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines until interrupted")
    logs.add_argument("-c", "--config", metavar="FILE", dest="verb_config", help="config file")
    tail = verbs.add_parser("tail", help="follow log files in the console: merged by time, searchable, any size")
    tail.add_argument("files", metavar="FILE", nargs="+", help="log files (one file can be paged back and filtered whole)")
    tail.add_argument("-n", "--lines", metavar="N", type=int, default=1000, help="lines to show at start (default: %(default)s)")
    config = verbs.add_parser("config", help="validate a config file or print its JSON Schema")
    config_verbs = config.add_subparsers(dest="config_verb", metavar="ACTION", required=True, parser_class=_Parser)
    validate = config_verbs.add_parser("validate", help="check a config file without starting anything")
    validate.add_argument("file", metavar="FILE")
    config_verbs.add_parser("schema", help="print the JSON Schema of lakedeck.yaml, for editors")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from backends.text import InertLines

    if not isinstance(sys.stderr, InertLines):
        sys.stderr = InertLines(sys.stderr)  # every message, whoever writes it (the console draws on __stderr__)
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `lakedeck audit | head`: the reader left, which is fine
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _run(args: argparse.Namespace) -> int:
    from backends.schema import ConfigError

    try:
        if args.verb == "config":
            return _config_verb(args)
        if args.verb == "tail":
            return _tail(args)
        config = _load(args.config or getattr(args, "verb_config", None), args.refresh)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.verb == "check":
        from backends.check import run_check

        return run_check(config, sys.stdout, args.json)
    if args.verb == "action":
        from backends.headless import run_action

        return run_action(config, args.target, args.action_id, dry_run=args.dry_run, yes=args.yes,
                          read_only=args.read_only or args.verb_read_only, value=args.value)
    if args.verb == "logs":
        from backends.headless_logs import run_logs

        if args.lines < 0:
            print("lakedeck logs: --lines cannot be negative", file=sys.stderr)
            return 2
        return run_logs(config, args.names, lines=args.lines, pattern=args.grep, follow=args.follow)
    if args.verb == "history":
        from backends.history_cli import run_history

        return run_history(config, args.name, args.since, args.metric, args.json)
    if args.verb == "report":
        from backends.history_cli import run_report

        return run_report(config, args.since, args.output)
    if args.verb == "audit":
        from backends.headless import show_audit

        return show_audit(config, args.since, args.json)
    from .app import run_console

    return run_console(config, theme=args.theme, read_only=args.read_only)


def _tail(args: argparse.Namespace) -> int:
    import os

    from backends.config import tail_config

    for path in args.files:
        if not os.path.isfile(path):
            reason = "no such file" if not os.path.exists(path) else "not a regular file"
            print(f"lakedeck tail: cannot follow {path}: {reason}", file=sys.stderr)
            return 2
        if not os.access(path, os.R_OK):
            print(f"lakedeck tail: cannot read {path}: permission denied (try sudo, or a group that can read it)",
                  file=sys.stderr)
            return 2
    if args.lines < 0:
        print("lakedeck tail: --lines cannot be negative", file=sys.stderr)
        return 2
    config = tail_config(args.files, args.lines)
    tail_read = None
    if len(config.sources) == 1:  # read the file's end while Textual loads: the first frame can show it
        import concurrent.futures

        from backends.log_pager import FilePager

        spec = config.sources[0]
        pager = FilePager(spec.options["path"], spec.name)
        tail_read = (pager, concurrent.futures.ThreadPoolExecutor(1).submit(pager.tail, args.lines))
    from .app import run_console

    return run_console(config, theme=args.theme, tail=True, tail_lines=args.lines, tail_read=tail_read)


def _load(path: str | None, refresh: float | None):
    from backends import config as cfg

    config = cfg.load(path)
    return config if refresh is None else cfg.with_refresh(config, refresh)


def _config_verb(args: argparse.Namespace) -> int:
    from backends import config as cfg

    if args.config_verb == "schema":
        print(cfg.dump_schema())
        return 0
    from pathlib import Path

    config = cfg.load_file(Path(args.file))
    watched = [s for s in config.sources if s.kind != "rules"]
    rules = sum(len(s.options["rules"]) for s in config.sources if s.kind == "rules")
    from backends.text import visible

    print(visible(f"{args.file}: OK ({len(watched)} sources: "
                  + ", ".join(f"{sum(1 for w in watched if w.section == s)} {s}" for s in cfg.SECTIONS)
                  + f"; {rules} rules)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
