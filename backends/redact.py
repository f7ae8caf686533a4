"""Secrets out of everything lakedeck writes or shows: one rule for what is a secret, applied in one place.

What is a secret:
- the value of a ``${VAR}`` in the config whose name contains TOKEN, PASS, SECRET, KEY, AUTH, COOKIE, CREDENTIAL
  or SESSIONID (any case);
- the value of anything *named* like a secret: a name one of whose words (or two words run together) ends in
  token, password, passwd, pass, passphrase, pwd, secret, key, apikey, auth, authorization, credential(s), cookie
  or sessionid (``token``, ``api_key``, ``X-Api-Key``, ``X-Auth-Token``, ``client_secret``, ``PGPASSWORD``,
  ``Set-Cookie``, ``session_id``; not ``author`` or ``keyspace``), wherever it stands: a source's option, a URL's
  query, a JSON or Python-literal pair (at any depth), a ``name=value`` or ``name = value``, a header-shaped
  ``Name: value`` anywhere in text (its value runs to the end of the line or a quote: ``Authorization: Bearer x``
  hides the scheme and the token), a ``--name value`` argument;
- every request header's value but a few plain ones (Content-Type, Accept...), and the password part of a URL;
- the password of curl's ``-u``/``--user``/``-U``/``--proxy-user user:password`` (``user:***``; a number on both
  sides, ``-u 1000:1000``, is a uid:gid and is left alone);
- a value glued to ``-p`` (``-pVALUE``: the password form of mysql, mariadb, sshpass, 7z, rar), unless it is plainly
  something else: a port or port mapping (``ssh -p2222``, ``-p8080:80``) or up to four letters (``cp -pR``,
  ``tar -pxzf``). After one of those programs (in the same argument list or line) every ``-pVALUE`` is hidden.
  ``-p VALUE`` (apart) is left alone: for mysql it asks for the password and VALUE is the database.

Text is redacted twice over: by its shape (a named secret's value becomes ``***`` whatever its length), then
by the known secret values (``${VAR}``s, options, the action's own request and arguments) wherever they appear:
in output an action printed, in an error message, in a command line. Every pattern is linear in the text's length.
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
SECRET_VAR_PARTS = ("TOKEN", "PASS", "SECRET", "KEY", "AUTH", "COOKIE", "CREDENTIAL", "SESSIONID")
SECRET_WORD_ENDINGS = ("token", "password", "passwd", "pass", "passphrase", "pwd", "secret", "key", "apikey",
                       "auth", "authorization", "credential", "credentials", "cookie", "sessionid")
PLAIN_HEADERS = frozenset({"accept", "accept-encoding", "accept-language", "cache-control", "connection",
                           "content-length", "content-type", "host", "user-agent"})
USER_FLAGS = frozenset({"-u", "-U", "--user", "--proxy-user"})  # curl's user:password

_WORD = re.compile(r"[a-z0-9]+")
_CAMEL = re.compile(r"([a-z0-9])([A-Z])")
# What a secret looks like in free text. Each pattern starts only where a name (or a flag) starts and scans one
# bounded name, so the whole text is read a small constant number of times: no pattern can backtrack far.
_URL_CREDENTIALS = re.compile(r"(?<![A-Za-z0-9+.\-])([A-Za-z][A-Za-z0-9+.\-]*://[^/\s:@]*):([^/\s@]+)@")
# a quoted pair: JSON ("name": "value") or a Python literal ('name': 'value')
_QUOTED_PAIR = re.compile(r"""(["'])((?:(?!\1)[^\\\n]|\\.){1,100})\1(\s*:\s*)"""
                          r"""("(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|-?[0-9][0-9.eE+-]*|true|false|True|False)""")
_QUOTED_OR_BARE = r"""("[^"\n]*"|'[^'\n]*'|%s)"""
# a header or a YAML line: Name: value, the value to the end of the line (or a quote: it was quoted)
_HEADER = re.compile(r"(?<![\w.\-/@:])([A-Za-z][\w.\-]{0,99})(:(?!:)[ \t]*)" + _QUOTED_OR_BARE % r"""[^\s'"][^'"\n]*""")
# name=value: a query, a form, an argument, an environment variable, an ini line (name = value)
_NAME_VALUE = re.compile(r"(?<![\w.\-])([\w.\-]{1,100})([ \t]*=[ \t]*)" + _QUOTED_OR_BARE % r"""[^&\s"',;=][^&\s"',;]*""")
_USER_PASSWORD = re.compile(r"""(?<!\S)(-u|-U|--user|--proxy-user)(=|[ \t]+)?([^\s:'"]*):([^\s'"]+)""")
_GLUED_P = re.compile(r"""(?<!\S)-p([^\s'"]+)""")
_NOT_A_PASSWORD = re.compile(r"[0-9][0-9.:,\-]*(?:/(?:tcp|udp|sctp))?|[A-Za-z]{1,4}")
_P_PASSWORD_TOOL = re.compile(r"(?<![\w.\-])(?:mysql[\w\-]*|mariadb[\w\-]*|sshpass|7z[ar]?|rar|unrar)(?![\w.\-])")
_HINT = re.compile(r"(?i)token|pass|secret|key|auth|credential|cookie|session|pwd|://|-p|-u")


def secret_var(name: str) -> bool:
    """``${DB_PASSWORD}``, ``${GITHUB_TOKEN}``: a variable whose value is never shown."""
    upper = name.upper()
    return any(part in upper for part in SECRET_VAR_PARTS)


def secret_field(name: str) -> bool:
    """A field, parameter, option, header or flag named like a secret (``password``, ``api_key``, ``--token``,
    ``Set-Cookie``, ``session_id``)."""
    words = _WORD.findall(_CAMEL.sub(r"\1_\2", name).lower())
    joined = [a + b for a, b in zip(words, words[1:])]
    return any(word.endswith(SECRET_WORD_ENDINGS) for word in words + joined)


def hide(text: str, after_tool: bool = False) -> str:
    """``text`` with the value of every secret it holds, by its shape, replaced by ``***``. ``after_tool``: the
    text follows a program whose ``-pVALUE`` is a password (an argument after ``mysql``)."""
    return _Shapes(after_tool).hide(text)


def secret_values(text: str, after_tool: bool = False) -> set[str]:
    """The values ``hide`` would hide in ``text``: to hide them too where they appear without their name."""
    shapes = _Shapes(after_tool, found=set())
    shapes.hide(text)
    return shapes.found


class _Shapes:
    """One pass of the shape rules over a text; what they hid is collected in ``found`` when it is a set."""

    def __init__(self, after_tool: bool = False, found: set[str] | None = None) -> None:
        self.after_tool = after_tool
        self.found = found
        self.tool_at = -1

    def hide(self, text: str) -> str:
        if not _HINT.search(text):
            return text
        tool = None if self.after_tool else _P_PASSWORD_TOOL.search(text)
        self.tool_at = 0 if self.after_tool else (tool.end() if tool else -1)
        text = _URL_CREDENTIALS.sub(self._url, text)
        text = _QUOTED_PAIR.sub(self._quoted_pair, text)
        text = _HEADER.sub(self._named, text)
        text = _NAME_VALUE.sub(self._named, text)
        text = _USER_PASSWORD.sub(self._user_password, text)
        return _GLUED_P.sub(self._glued_p, text)

    def _keep(self, *values: str) -> str:
        if self.found is not None:
            self.found.update(v for v in values if v and v != MASK)
        return MASK

    def _url(self, m: re.Match[str]) -> str:
        return f"{m.group(1)}:{self._keep(m.group(2), unquote_plus(m.group(2)))}@"

    def _quoted_pair(self, m: re.Match[str]) -> str:
        quote_char, name, colon, value = m.groups()
        quoted = value[0] in "\"'"
        if not secret_field(name) or (quoted and value[1:-1] in (MASK, "")):
            return m.group(0)
        shown = self._keep(_unquoted(value) if quoted else value)
        return f"{quote_char}{name}{quote_char}{colon}" + (f"{value[0]}{shown}{value[0]}" if quoted else f'"{shown}"')

    def _named(self, m: re.Match[str]) -> str:
        """``Name: value`` or ``name=value``: the value goes when the name is a secret's."""
        name, between, value = m.groups()
        quoted = value[:1] in ("'", '"')
        inner = value[1:-1] if quoted else value.rstrip()
        if inner in (MASK, "") or not secret_field(unquote_plus(name)):
            return m.group(0)
        shown = self._keep(*_with_scheme_stripped(inner), unquote_plus(inner))
        return f"{name}{between}" + (f"{value[0]}{shown}{value[0]}" if quoted else shown)

    def _user_password(self, m: re.Match[str]) -> str:
        flag, between, user, password = m.groups()
        if password == MASK or (user.isdigit() and password.isdigit()):
            return m.group(0)
        return f"{flag}{between or ''}{user}:{self._keep(password)}"

    def _glued_p(self, m: re.Match[str]) -> str:
        value = m.group(1)
        after_tool = 0 <= self.tool_at <= m.start()
        if value == MASK or (not after_tool and _NOT_A_PASSWORD.fullmatch(value)):
            return m.group(0)
        return f"-p{self._keep(value)}"


def _unquoted(quoted: str) -> str:
    if quoted.startswith('"'):
        try:
            return str(json.loads(quoted))
        except ValueError:
            pass
    return quoted[1:-1]


def option_secrets(options: Iterable[Mapping[str, Any]]) -> set[str]:
    """The secret values in sources' options: secret-named options, header values, what their strings (URLs,
    request bodies) hold by shape, and what their argument lists hold as ``argv_secrets`` finds it."""
    found: set[str] = set()

    def walk(value: Any, key: str = "", header: bool = False) -> None:
        if isinstance(value, Mapping):
            for k, v in value.items():
                name = str(k)
                walk(v, name, header=key == "headers" and name.lower() not in PLAIN_HEADERS)
        elif isinstance(value, (list, tuple)):
            if value and all(isinstance(v, str) for v in value):
                found.update(argv_secrets(value))
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
    """The secret values an argument list holds (see ``_argv_shown``)."""
    found: set[str] = set()
    for _, values in _argv_shown(argv):
        found |= values
    return found


def _argv_shown(argv: Iterable[str]) -> list[tuple[str, set[str]]]:
    """Each argument as shown, with the secret values it holds: by the flag before it (``--password VALUE``,
    ``-u user:VALUE``) or by its own shape, an argument being a whole text (``Authorization: Bearer x`` to its end);
    a ``-pVALUE`` after mysql and its like is always a password."""
    shown: list[tuple[str, set[str]]] = []
    flag, after_tool = "", False
    for arg in argv:
        user, colon, password = arg.partition(":")
        if _secret_flag(flag) and not arg.startswith("-") and arg != MASK:
            shown.append((MASK, {arg}))
        elif flag in USER_FLAGS and colon and password and password != MASK and not (user.isdigit() and password.isdigit()):
            shown.append((f"{user}:{MASK}", {password}))
        else:
            shapes = _Shapes(after_tool, found=set())
            shown.append((shapes.hide(arg), shapes.found))
        after_tool = after_tool or bool(_P_PASSWORD_TOOL.search(arg))
        flag = arg
    return shown


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
        return self.known(hide(text))

    def known(self, text: str) -> str:
        """``text`` with every known secret value replaced (not the shapes: see ``text``)."""
        for value in self._ordered:
            if value in text:
                text = text.replace(value, MASK)
        return text

    def for_action(self, action: Action) -> Redactor:
        """This redactor plus the secrets of ``action``'s own request and arguments."""
        return self.with_values(request_secrets(action.request) | argv_secrets(action.argv))

    def command(self, action: Action) -> str:
        """What ``action`` runs, as shown and logged: ``action.describe()`` with its secrets as ``***``. An argument
        list is redacted argument by argument (a header's value ends with its argument, not with the line)."""
        redactor = self.for_action(action)
        if action.argv:
            return " ".join(_quoted(redactor.known(shown)) for shown, _ in _argv_shown(action.argv))
        if action.request is not None:
            return redactor.text(_request_text(action.request))
        return redactor.text(action.call)


def _quoted(arg: str) -> str:
    """``shlex.quote``, but a ``***`` alone does not need quotes: ``--password=***``, ``-p***``."""
    return arg if shlex.quote(arg.replace(MASK, "_")) == arg.replace(MASK, "_") else shlex.quote(arg)


def _request_text(request: HttpRequest) -> str:
    shown = " ".join(f"-H '{name}: {value if name.lower() in PLAIN_HEADERS else MASK}'"
                     for name, value in request.headers)
    body = f" -d {shlex.quote(request.body)}" if request.body else ""
    return f"{request.method} {request.url}" + (f" {shown}" if shown else "") + body
