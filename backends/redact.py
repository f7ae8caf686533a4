"""Secrets out of everything lakedeck writes or shows: one rule for what is a secret, applied in one place.

What is a secret:
- the value of a ``${VAR}`` in the config whose name contains TOKEN, PASS, SECRET, KEY or AUTH (any case);
- the value of anything *named* like a secret: a name one of whose words ends in token, password, passwd, pass,
  passphrase, secret, key, apikey, auth, authorization or credential(s) (``token``, ``api_key``, ``X-Api-Key``,
  ``client_secret``, ``PGPASSWORD``; not ``author`` or ``keyspace``), wherever it stands: a source's option,
  a URL's query, a JSON or form body (at any depth), a ``name=value`` or ``--name value`` argument;
- every request header's value but a few plain ones (Content-Type, Accept...), and the password part of a URL.

Text is redacted twice over: by its shape (a named secret's value becomes ``***`` whatever its length), then
by the known secret values (``${VAR}``s, options, the action's own request) wherever they appear: in output
an action printed, in an error message, in a command line.
"""

from __future__ import annotations

import json
import re
import shlex
from typing import TYPE_CHECKING, Any, Iterable, Mapping
from urllib.parse import quote, unquote_plus

if TYPE_CHECKING:
    from .actions import Action, HttpRequest

MASK = "***"
MIN_VALUE = 3  # shorter known values are not replaced in free text (they would blank out ordinary words)
SECRET_VAR_PARTS = ("TOKEN", "PASS", "SECRET", "KEY", "AUTH")
SECRET_WORD_ENDINGS = ("token", "password", "passwd", "pass", "passphrase", "secret", "key", "apikey", "auth",
                       "authorization", "credential", "credentials")
PLAIN_HEADERS = frozenset({"accept", "accept-encoding", "accept-language", "cache-control", "connection",
                           "content-length", "content-type", "host", "user-agent"})

_WORD = re.compile(r"[a-z0-9]+")
_CAMEL = re.compile(r"([a-z0-9])([A-Z])")
# what a secret looks like in free text: a quoted JSON pair, name=value (queries, forms, arguments, env),
# a URL's credentials
_JSON_PAIR = re.compile(r'"((?:[^"\\\n]|\\.){1,100})"(\s*:\s*)("(?:[^"\\\n]|\\.)*"|-?[0-9][0-9.eE+-]*|true|false)')
_NAME_VALUE = re.compile(r"(?<![A-Za-z0-9_.\-])([A-Za-z0-9_.\-]{1,100})=([^&\s\"',;]+)")
_URL_CREDENTIALS = re.compile(r"(?<![A-Za-z0-9+.\-])([A-Za-z][A-Za-z0-9+.\-]*://[^/\s:@]*):([^/\s@]+)@")
_HINT = re.compile(r"(?i)token|pass|secret|key|auth|credential|://")


def secret_var(name: str) -> bool:
    """``${DB_PASSWORD}``, ``${GITHUB_TOKEN}``: a variable whose value is never shown."""
    upper = name.upper()
    return any(part in upper for part in SECRET_VAR_PARTS)


def secret_field(name: str) -> bool:
    """A field, parameter, option or flag named like a secret (``password``, ``api_key``, ``--token``)."""
    words = _WORD.findall(_CAMEL.sub(r"\1_\2", name).lower())
    return any(word.endswith(SECRET_WORD_ENDINGS) for word in words)


def hide(text: str) -> str:
    """``text`` with the value of every secret it names, by its shape, replaced by ``***``."""
    if not _HINT.search(text):
        return text
    text = _URL_CREDENTIALS.sub(lambda m: f"{m.group(1)}:{MASK}@", text)
    text = _JSON_PAIR.sub(_json_pair, text)
    return _NAME_VALUE.sub(_name_value, text)


def _json_pair(match: re.Match[str]) -> str:
    if not secret_field(match.group(1)):
        return match.group(0)
    return f'"{match.group(1)}"{match.group(2)}"{MASK}"'


def _name_value(match: re.Match[str]) -> str:
    name = unquote_plus(match.group(1))
    if not secret_field(name) or match.group(2) == MASK:
        return match.group(0)
    return f"{match.group(1)}={MASK}"


def secret_values(text: str) -> set[str]:
    """The values ``hide`` would hide in ``text``: to hide them too where they appear without their name."""
    found: set[str] = set()
    if not _HINT.search(text):
        return found
    found.update(m.group(2) for m in _URL_CREDENTIALS.finditer(text))
    for m in _JSON_PAIR.finditer(text):
        if secret_field(m.group(1)):
            value = m.group(3)
            found.add(_json_string(value) if value.startswith('"') else value)
    for m in _NAME_VALUE.finditer(text):
        if secret_field(unquote_plus(m.group(1))):
            found.update({m.group(2), unquote_plus(m.group(2))})
    return found


def _json_string(quoted: str) -> str:
    try:
        return str(json.loads(quoted))
    except ValueError:
        return quoted[1:-1]


def option_secrets(options: Iterable[Mapping[str, Any]]) -> set[str]:
    """The secret values in sources' options: secret-named options, header values, and what their strings
    (URLs, request bodies) hold by shape."""
    found: set[str] = set()

    def walk(value: Any, key: str = "", header: bool = False) -> None:
        if isinstance(value, Mapping):
            for k, v in value.items():
                name = str(k)
                walk(v, name, header=key == "headers" and name.lower() not in PLAIN_HEADERS)
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(v, key)
        elif isinstance(value, str) and value:
            if header or secret_field(key):
                found.update(_with_scheme_stripped(value))
            found.update(secret_values(value))

    for option in options:
        walk(option)
    return found


def _with_scheme_stripped(value: str) -> set[str]:
    """"Bearer abc": the whole value, and the token alone."""
    scheme, _, rest = value.partition(" ")
    return {value, rest} if rest and scheme.isalpha() else {value}


def request_secrets(request: HttpRequest | None) -> set[str]:
    """The secret values of one request: its header values (but the plain ones) and what its URL and body
    name as secrets."""
    if request is None:
        return set()
    found = secret_values(request.url) | secret_values(request.body)
    for name, value in request.headers:
        if value and name.lower() not in PLAIN_HEADERS:
            found.update(_with_scheme_stripped(value))
    return found


def argv_secrets(argv: Iterable[str]) -> set[str]:
    """The values of ``--password VALUE``-like pairs (``--password=VALUE`` is found by shape)."""
    found, args = set(), list(argv)
    for flag, value in zip(args, args[1:]):
        if _secret_flag(flag) and not value.startswith("-"):
            found.add(value)
    return found


def _secret_flag(arg: str) -> bool:
    return arg.startswith("-") and "=" not in arg and secret_field(arg.lstrip("-"))


class Redactor:
    """Hides secrets in text: by shape, then every known secret value (and its URL- and JSON-escaped forms)."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self.values: frozenset[str] = frozenset()
        self._ordered: tuple[str, ...] = ()
        self.add(values)

    def add(self, values: Iterable[str]) -> None:
        forms = set(self.values)
        for value in values:
            if len(value) >= MIN_VALUE and value != MASK:
                forms.update({value, quote(value, safe=""), json.dumps(value)[1:-1]})
        self.values = frozenset(f for f in forms if len(f) >= MIN_VALUE)
        self._ordered = tuple(sorted(self.values, key=len, reverse=True))

    def with_values(self, values: Iterable[str]) -> Redactor:
        redactor = Redactor(self.values)
        redactor.add(values)
        return redactor

    def text(self, text: str) -> str:
        text = hide(text)
        for value in self._ordered:
            if value in text:
                text = text.replace(value, MASK)
        return text

    def for_action(self, action: Action) -> Redactor:
        """This redactor plus the secrets of ``action``'s own request and arguments."""
        return self.with_values(request_secrets(action.request) | argv_secrets(action.argv))

    def command(self, action: Action) -> str:
        """What ``action`` runs, as shown and logged: ``action.describe()`` with its secrets as ``***``."""
        redactor = self.for_action(action)
        if action.argv:
            return redactor.text(shlex.join(_masked_argv(action.argv)))
        if action.request is not None:
            return redactor.text(_request_text(action.request))
        return redactor.text(action.call)


def _masked_argv(argv: Iterable[str]) -> list[str]:
    out: list[str] = []
    for arg in argv:
        out.append(MASK if out and _secret_flag(out[-1]) and not arg.startswith("-") else arg)
    return out


def _request_text(request: HttpRequest) -> str:
    shown = " ".join(f"-H '{name}: {value if name.lower() in PLAIN_HEADERS else MASK}'"
                     for name, value in request.headers)
    body = f" -d {shlex.quote(request.body)}" if request.body else ""
    return f"{request.method} {request.url}" + (f" {shown}" if shown else "") + body
