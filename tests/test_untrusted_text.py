"""The one function that makes text from outside safe for a terminal (``backends.text.visible``), and the headless
verbs that print through it: every control, escape sequence, bidi control and invisible format character becomes a
visible symbol; visible text, markup-looking text included, is left as it is."""

from __future__ import annotations

import json
import sys
import unicodedata

import pytest

from backends.text import one_line, visible
from test_cli import run
from widgets.cells import Cell
from widgets.safe_text import safe, safe_lines

UNSAFE_CATEGORIES = ("Cc", "Cf", "Zl", "Zp", "Cs")
BIDI_AND_ZERO_WIDTH = ("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
                       "\u200b\u200c\u200d\u2060\ufeff")


def unsafe_in(text: str) -> list[str]:
    return [f"U+{ord(c):04X}" for c in text if unicodedata.category(c) in UNSAFE_CATEGORIES]


HOSTILE = {
    "OSC 52, BEL-terminated": ("Disk\x1b]52;c;cHduZWQ=\x07Full", "Disk␛]52;c;cHduZWQ=␇Full"),
    "OSC 52, ST-terminated": ("Disk\x1b]52;c;cHduZWQ=\x1b\\Full", "Disk␛]52;c;cHduZWQ=␛\\Full"),
    "OSC 52, 8-bit": ("Disk\x9d52;c;cHduZWQ=\x9cFull", "Disk⟨U+009D⟩52;c;cHduZWQ=⟨U+009C⟩Full"),
    "OSC 8 hyperlink": ("\x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\",
                        "␛]8;;http://evil.example/␛\\click␛]8;;␛\\"),
    "OSC 0 window title": ("\x1b]0;pwned\x07", "␛]0;pwned␇"),
    "CSI, 7-bit": ("\x1b[2J\x1b[H\x1b[31mred", "␛[2J␛[H␛[31mred"),
    "CSI, 8-bit": ("\x9b2J\x9b31mred", "⟨U+009B⟩2J⟨U+009B⟩31mred"),
    "DCS (XTGETTCAP)": ("\x1bP+q544e\x1b\\", "␛P+q544e␛\\"),
    "DCS, 8-bit": ("\x90+q544e\x9c", "⟨U+0090⟩+q544e⟨U+009C⟩"),
    "APC (kitty graphics)": ("\x1b_Ga=T;AAAA\x1b\\", "␛_Ga=T;AAAA␛\\"),
    "PM and SOS": ("\x1b^private\x1b\\\x1bXsos\x1b\\", "␛^private␛\\␛Xsos␛\\"),
    "C1 NEL and ST alone": ("a\x85b\x9cc", "a⟨U+0085⟩b⟨U+009C⟩c"),
    "backspace over text": ("safe\x08\x08\x08\x08evil", "safe␈␈␈␈evil"),
    "carriage return over text": ("ok\rFAILED", "ok␍FAILED"),
    "NUL and DEL": ("a\x00b\x7fc", "a␀b␡c"),
    "right-to-left override": ("invoice\u202egpj.exe", "invoice⟨U+202E⟩gpj.exe"),
    "isolates": ("\u2066x\u2067y\u2068z\u2069", "⟨U+2066⟩x⟨U+2067⟩y⟨U+2068⟩z⟨U+2069⟩"),
    "marks": ("a\u200eb\u200fc\u061cd", "a⟨U+200E⟩b⟨U+200F⟩c⟨U+061C⟩d"),
    "zero-width joiner and space": ("ad\u200dmin\u200b", "ad⟨U+200D⟩min⟨U+200B⟩"),
    "byte order mark and word joiner": ("\ufeffroot\u2060", "⟨U+FEFF⟩root⟨U+2060⟩"),
    "tag characters (hidden text)": ("ok\U000e0041\U000e0042", "ok⟨U+E0041⟩⟨U+E0042⟩"),
    "line separator": ("a\u2028b\u2029c", "a⟨U+2028⟩b⟨U+2029⟩c"),
    "an undecodable byte in a file name": ("app-\udcff.log", "app-⟨U+DCFF⟩.log"),
    "an invisible filler": ("adm\u3164in", "adm⟨U+3164⟩in"),
}


@pytest.mark.parametrize("text, shown", HOSTILE.values(), ids=HOSTILE.keys())
def test_every_control_sequence_and_format_character_becomes_a_visible_symbol(text, shown):
    assert visible(text) == shown
    assert unsafe_in(visible(text)) == []
    assert visible(visible(text)) == visible(text)  # made inert twice (a reason, then its widget): no change


@pytest.mark.parametrize("text", ["[bold]x[/]", "near [/", "[/usr/lib/x]", "plain ASCII", "café ünïcode",
                                  "日本語のログ", "emoji 🚀 and ❤️ (with its variation selector)", "😀" * 3,
                                  "math 𝔸𝔹 and CJK 𠀀", "Ω≈ç√ ␛ ⟨U+202E⟩ (already shown symbols)"])
def test_visible_text_is_left_as_it_is(text):
    assert visible(text) == text
    assert safe(text).plain == text  # and as Content: never read as markup


def test_tabs_stay_tab_like():
    assert visible("a\tb") == "a    b"


def test_nothing_of_c0_c1_or_any_format_character_remains():
    """Every code point of the categories that must not reach a terminal, checked against this Python's Unicode
    database: control (Cc), format (Cf: bidi, zero-width, tags...), separators (Zl, Zp) and lone surrogates (Cs)."""
    everything = "".join(chr(c) for c in range(sys.maxunicode + 1)
                         if unicodedata.category(chr(c)) in UNSAFE_CATEGORIES)
    assert len(everything) > 2200
    assert unsafe_in(visible(everything)) == []
    for char in [chr(c) for c in range(0x20)] + [chr(c) for c in range(0x7F, 0xA0)] + list(BIDI_AND_ZERO_WIDTH):
        assert char not in visible(f"x{char}y"), f"U+{ord(char):04X}"


def test_one_line_and_cells_and_contents_go_through_it():
    hostile = "Disk\x1b]52;c;cHduZWQ=\x1b\\Full\u202e"
    assert one_line(hostile) == "Disk␛]52;c;cHduZWQ=␛\\Full⟨U+202E⟩"
    assert Cell(hostile).text == "Disk␛]52;c;cHduZWQ=␛\\Full⟨U+202E⟩"  # a table cell holds only inert text
    assert safe(hostile).plain == one_line(hostile)
    assert safe_lines(["a\x1b[2J", "b\u202e"]).plain == "a␛[2J\nb⟨U+202E⟩"


def test_a_long_hostile_line_is_made_inert_whole():
    line = "\x1b]52;c;" + "A" * 100_000 + "\x07" + "\u200b" * 10_000
    shown = visible(line)
    assert unsafe_in(shown) == [] and shown.startswith("␛]52;c;AAA") and shown.endswith("⟨U+200B⟩")


# -- the headless verbs --------------------------------------------------------------------------------------------

NAME = "web\x1b]52;c;cHduZWQ=\x1b\\ok\u202eevil\u200d"
NAME_SHOWN = "web␛]52;c;cHduZWQ=␛\\ok⟨U+202E⟩evil⟨U+200D⟩"


def test_check_prints_names_and_reasons_inert_and_json_keeps_them_exact(tmp_path):
    config = tmp_path / "lakedeck.yaml"
    config.write_text(json.dumps({"audit_log": str(tmp_path / "audit.jsonl"), "store": {"enabled": False},
                                  "services": [{"name": NAME, "kind": "tcp", "port": 1}]}))
    table = run("check", "-c", str(config))
    assert table.returncode == 2, table.stderr
    assert "web␛]52;c;cHduZWQ=␛\\ok⟨U+202E⟩evil" in table.stdout  # the key, cut at 40 characters
    assert unsafe_in(table.stdout.replace("\n", "")) == []
    as_json = run("check", "--json", "-c", str(config))
    assert unsafe_in(as_json.stdout.replace("\n", "")) == [] and "\\u001b]52" in as_json.stdout
    assert "\\u202e" in as_json.stdout  # JSON escapes them all: \u202e, never the character itself
    assert [r["key"] for r in json.loads(as_json.stdout)["readings"]] == [NAME]  # and a JSON reader gets the name


def test_logs_prints_lines_names_and_reasons_inert(tmp_path):
    log = tmp_path / "app.log"
    log.write_text("2026-11-22T10:00:01Z INFO copy \x1b]52;c;cHduZWQ=\x1b\\ this\n"
                   "2026-11-22T10:00:02Z WARN link \x1b]8;;http://evil/\x07here\x1b]8;;\x07 and \u202eevil\n")
    config = tmp_path / "lakedeck.yaml"
    config.write_text(json.dumps({"audit_log": str(tmp_path / "audit.jsonl"), "store": {"enabled": False},
                                  "logs": [{"name": NAME, "path": str(log)},
                                           {"name": f"gone{NAME}", "path": str(tmp_path / "missing.log")}]}))
    out = run("logs", "-c", str(config))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        f"{NAME_SHOWN}\t2026-11-22T10:00:01Z INFO copy ␛]52;c;cHduZWQ=␛\\ this",
        f"{NAME_SHOWN}\t2026-11-22T10:00:02Z WARN link ␛]8;;http://evil/␇here␛]8;;␇ and ⟨U+202E⟩evil",
    ]
    assert f"lakedeck logs: gone{NAME_SHOWN}:" in out.stderr
    assert unsafe_in(out.stderr.replace("\n", "")) == []
    unknown = run("logs", "-c", str(config), "nope")
    assert unknown.returncode == 2 and unsafe_in(unknown.stderr.replace("\n", "")) == []
    assert f"the logs are: {NAME_SHOWN}, gone{NAME_SHOWN}" in unknown.stderr


def test_action_prints_its_target_command_and_output_inert(tmp_path):
    config = tmp_path / "lakedeck.yaml"
    config.write_text(json.dumps({
        "audit_log": str(tmp_path / "audit.jsonl"), "store": {"enabled": False},
        "services": [{"name": NAME, "kind": "tcp", "port": 1, "actions": [
            {"id": "hello", "tier": "read", "command": ["printf", "said \x1b]52;c;cHduZWQ=\x07 \u202eevil\\n"]}]}]}))
    out = run("action", NAME, "hello", "-c", str(config))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"Hello {NAME_SHOWN} (read): printf ") and "said ␛]52;c;cHduZWQ=␇" in out.stdout
    assert "said ␛]52;c;cHduZWQ=␇ ⟨U+202E⟩evil\n" in out.stdout  # the action's own output
    assert unsafe_in(out.stdout.replace("\n", "")) == [] and unsafe_in(out.stderr.replace("\n", "")) == []
    refused = run("action", NAME, "nope", "-c", str(config))
    assert refused.returncode == 2 and f"{NAME_SHOWN} has no action 'nope'" in refused.stderr
    assert unsafe_in(refused.stderr.replace("\n", "")) == []


FILE_NAME = "c\x1b]52;c;cHduZWQ=\x07\u202ex"  # an OSC 52 and a bidi override in a file's name


def test_file_names_and_arguments_in_messages_are_inert(tmp_path):
    """A name the operator did not choose (a glob's match, a config path from the environment, an argument) reaches
    every message: errors, the OK line of validate, argparse's complaints."""
    good = tmp_path / f"{FILE_NAME}.yaml"
    good.write_text("services:\n  - {name: web, kind: tcp, port: 1}\n")
    bad = tmp_path / f"{FILE_NAME}-bad.yaml"
    bad.write_text("services:\n  - {name: web, kind: tcp, prot: 1}\n")
    link = tmp_path / f"{FILE_NAME}.log"
    link.symlink_to(tmp_path / "nowhere")
    missing = str(tmp_path / f"{FILE_NAME}-missing.yaml")
    outs = [
        run("config", "validate", str(good)), run("config", "validate", str(bad)), run("check", "-c", missing),
        run("logs", "-c", str(bad)), run("audit", "-c", missing), run("report", "-c", str(bad)),
        run("check", env={"LAKEDECK_CONFIG": missing}), run("tail", str(link)), run("--theme", FILE_NAME),
        run("check", "--since", FILE_NAME),
    ]
    for index, out in enumerate(outs):
        printed = out.stdout + out.stderr
        assert out.returncode in (0, 2) and "Traceback" not in printed, printed
        assert "\x1b" not in printed and "\x07" not in printed and unsafe_in(printed.replace("\n", "")) == [], printed
        if index < 8:  # argparse quotes what it refuses with repr(): inert already
            assert "c␛]52;c;cHduZWQ=␇⟨U+202E⟩x" in printed, printed  # shown, inert
    assert outs[0].returncode == 0 and outs[0].stdout.endswith("x.yaml: OK (1 sources: 1 services, 0 hosts, "
                                                               "0 metrics, 0 pipelines, 0 logs, 0 backups, 0 tables, "
                                                               "0 alerts; 0 rules)\n")
