"""A small typed schema for YAML config: validates with file:line:col errors and emits JSON Schema.

One set of definitions serves both validation and ``lakedeck config schema``, so the two never drift.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable

import yaml

from .durations import parse_duration
from .redact import secret_var


class ConfigError(Exception):
    """One problem in a config file, printed as ``FILE:LINE:COL: what is wrong (what was expected)``."""

    def __init__(self, file: str, line: int, column: int, message: str) -> None:
        super().__init__(message)
        self.file, self.line, self.column, self.message = file, line, column, message

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


@dataclass
class Context:
    file: str
    environ: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    secrets: set[str] = field(default_factory=set)  # values of secret-named ${VAR}s expanded (see redact.py)

    def error(self, node: yaml.Node, message: str) -> ConfigError:
        mark = node.start_mark
        return ConfigError(self.file, mark.line + 1, mark.column + 1, message)


_ENV = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_SCALAR_LOADER = yaml.SafeLoader("")


def expand_env(text: str, environ: dict[str, str]) -> str:
    """Expand ``${VAR}`` and ``${VAR:-default}``; ``$$`` is a literal ``$``. Raises ``KeyError(VAR)``."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        value = environ.get(name)
        if value is None or (value == "" and default is not None):
            if default is None:
                raise KeyError(name)
            return default
        return value

    return _ENV.sub(substitute, text)


def scalar(node: yaml.Node, ctx: Context, what: str) -> Any:
    """The Python value of a scalar node, with environment variables expanded in strings."""
    if not isinstance(node, yaml.ScalarNode):
        raise ctx.error(node, f"{what} must be a single value, not a {_node_kind(node)}")
    value = _construct(node)
    if isinstance(value, str) and "$" in value:
        try:
            expanded = expand_env(value, ctx.environ)
        except KeyError as missing:
            name = missing.args[0]
            raise ctx.error(
                node, f"environment variable {name} is not set (export it, or write ${{{name}:-default}})"
            ) from None
        ctx.secrets.update(ctx.environ[m.group(1)] for m in _ENV.finditer(value)
                           if m.group(1) and secret_var(m.group(1)) and ctx.environ.get(m.group(1)))
        if node.style is None and expanded != value:
            # an unquoted ${PORT} should become the number it names: the value is resolved as a plain scalar
            # would be (int, float, bool...), never parsed as YAML of its own (no nesting or aliases to bound)
            plain = expanded.strip()
            tag = _SCALAR_LOADER.resolve(yaml.ScalarNode, plain, (True, False))
            value = _construct(yaml.ScalarNode(tag, plain)) if plain else expanded
            if not isinstance(value, (str, int, float, bool)):
                value = expanded
        else:
            value = expanded
    return value


def _construct(node: yaml.ScalarNode) -> Any:
    """A scalar's value, not remembered by the shared loader (it would keep every node of every load)."""
    try:
        return _SCALAR_LOADER.construct_object(node)
    finally:
        _SCALAR_LOADER.constructed_objects.pop(node, None)


def _node_kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "mapping"
    if isinstance(node, yaml.SequenceNode):
        return "list"
    return "value"


class Type:
    description = ""

    def check(self, node: yaml.Node, ctx: Context, what: str) -> Any:
        raise NotImplementedError

    def json(self) -> dict[str, Any]:
        raise NotImplementedError


class Str(Type):
    def __init__(self, choices: tuple[str, ...] = (), non_empty: bool = True) -> None:
        self.choices, self.non_empty = choices, non_empty

    def check(self, node, ctx, what):
        value = scalar(node, ctx, what)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise ctx.error(node, f"{what} must be text (got {value!r})")
        if self.choices and value not in self.choices:
            raise ctx.error(node, f"{what} is {value!r} (expected one of: {', '.join(self.choices)})")
        if self.non_empty and not value.strip():
            raise ctx.error(node, f"{what} is empty (expected some text)")
        return value

    def json(self):
        return {"type": "string", "enum": list(self.choices)} if self.choices else {"type": "string"}


class Number(Type):
    def __init__(self, minimum: float | None = None, maximum: float | None = None, integer: bool = False):
        self.minimum, self.maximum, self.integer = minimum, maximum, integer

    def check(self, node, ctx, what):
        value = scalar(node, ctx, what)
        kind = "a whole number" if self.integer else "a number"
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (self.integer and isinstance(value, float)):
            raise ctx.error(node, f"{what} must be {kind} (got {value!r})")
        _finite(value, node, ctx, what)
        if self.minimum is not None and value < self.minimum:
            raise ctx.error(node, f"{what} is {value} (expected at least {self.minimum})")
        if self.maximum is not None and value > self.maximum:
            raise ctx.error(node, f"{what} is {value} (expected at most {self.maximum})")
        return value

    def json(self):
        out: dict[str, Any] = {"type": "integer" if self.integer else "number"}
        if self.minimum is not None:
            out["minimum"] = self.minimum
        if self.maximum is not None:
            out["maximum"] = self.maximum
        return out


def _finite(value: float, node: yaml.Node, ctx: Context, what: str) -> None:
    """.nan, .inf and -.inf (or a number too big for a float) are no setting: refused wherever a number is read."""
    if not math.isfinite(value):
        written = node.value if isinstance(node.value, str) and "$" not in node.value else value
        raise ctx.error(node, f"{what} is {written} (expected a finite number)")


def Int(minimum: int | None = None, maximum: int | None = None) -> Number:
    return Number(minimum, maximum, integer=True)


class Bool(Type):
    def check(self, node, ctx, what):
        value = scalar(node, ctx, what)
        if not isinstance(value, bool):
            raise ctx.error(node, f"{what} must be true or false (got {value!r})")
        return value

    def json(self):
        return {"type": "boolean"}


class Duration(Type):
    def __init__(self, minimum: float = 0.0):
        self.minimum = minimum

    def check(self, node, ctx, what):
        value = scalar(node, ctx, what)
        try:
            seconds = parse_duration(value)
        except (ValueError, TypeError):
            raise ctx.error(node, f"{what} is {value!r} (expected a duration such as 500ms, 5s, 2m, 24h)") from None
        _finite(seconds, node, ctx, what)
        if seconds < self.minimum:
            raise ctx.error(node, f"{what} is {value!r} (expected at least {self.minimum:g}s)")
        return seconds

    def json(self):
        return {
            "anyOf": [
                {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(ms|s|m|h|d)?\s*$"},
                {"type": "number", "minimum": self.minimum},
            ],
            "description": "a duration: 500ms, 5s, 2m, 24h, 7d, or seconds",
        }


class ListOf(Type):
    def __init__(self, item: Type, single_ok: bool = False, min_items: int = 0):
        self.item, self.single_ok, self.min_items = item, single_ok, min_items

    def check(self, node, ctx, what):
        if isinstance(node, yaml.ScalarNode) and self.single_ok:
            return [self.item.check(node, ctx, what)]
        if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"):
            return []
        if not isinstance(node, yaml.SequenceNode):
            raise ctx.error(node, f"{what} must be a list (got a {_node_kind(node)})")
        if len(node.value) < self.min_items:
            raise ctx.error(node, f"{what} has {len(node.value)} items (expected at least {self.min_items})")
        return [self.item.check(child, ctx, f"{what}[{i}]") for i, child in enumerate(node.value)]

    def json(self):
        out: dict[str, Any] = {"type": "array", "items": self.item.json()}
        if self.min_items:
            out["minItems"] = self.min_items
        return {"anyOf": [out, self.item.json()]} if self.single_ok else out


def _mapping_pairs(node: yaml.Node, ctx: Context, what: str) -> list[tuple[yaml.Node, str, yaml.Node]]:
    if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"):
        return []
    if not isinstance(node, yaml.MappingNode):
        raise ctx.error(node, f"{what} must be a mapping of key: value (got a {_node_kind(node)})")
    seen: set[str] = set()
    pairs = []
    for key_node, value_node in node.value:
        key = str(scalar(key_node, ctx, f"a key of {what}"))
        if key in seen:
            raise ctx.error(key_node, f"{key!r} appears twice in {what} (expected each key once)")
        seen.add(key)
        pairs.append((key_node, key, value_node))
    return pairs


class MapOf(Type):
    def __init__(self, value: Type, key_choices: tuple[str, ...] = ()):
        self.value, self.key_choices = value, key_choices

    def check(self, node, ctx, what):
        out = {}
        for key_node, key, value_node in _mapping_pairs(node, ctx, what):
            if self.key_choices and key not in self.key_choices:
                raise ctx.error(key_node, f"unknown key {key!r} in {what} (expected one of: {', '.join(self.key_choices)})")
            out[key] = self.value.check(value_node, ctx, f"{what}.{key}")
        return out

    def json(self):
        out: dict[str, Any] = {"type": "object", "additionalProperties": self.value.json()}
        if self.key_choices:
            out["propertyNames"] = {"enum": list(self.key_choices)}
        return out


@dataclass
class Field:
    type: Type
    required: bool = False
    default: Any = None
    help: str = ""


class Obj(Type):
    """A mapping with known keys; any other key is an error."""

    def __init__(self, fields: dict[str, Field], validate: Callable[[dict, yaml.Node, Context, str], None] | None = None):
        self.fields, self.validate = fields, validate

    def check(self, node, ctx, what):
        pairs = _mapping_pairs(node, ctx, what)
        out: dict[str, Any] = {}
        for key_node, key, value_node in pairs:
            spec = self.fields.get(key)
            if spec is None:
                raise ctx.error(key_node, f"unknown key {key!r} in {what} (expected one of: {', '.join(self.fields)})")
            out[key] = spec.type.check(value_node, ctx, f"{what}.{key}" if what != "the file" else key)
        for key, spec in self.fields.items():
            if key not in out:
                if spec.required:
                    raise ctx.error(node, f"{what} has no {key!r} (expected {key}: {spec.help or 'a value'})")
                out[key] = spec.default() if callable(spec.default) else spec.default
        if self.validate:
            self.validate(out, node, ctx, what)
        return out

    def json(self):
        props = {}
        for key, spec in self.fields.items():
            schema = dict(spec.type.json())
            if spec.help:
                schema["description"] = spec.help
            if spec.default is not None and not callable(spec.default):
                schema["default"] = spec.default
            props[key] = schema
        return {
            "type": "object",
            "properties": props,
            "required": [k for k, f in self.fields.items() if f.required],
            "additionalProperties": False,
        }


class Tagged(Type):
    """A mapping whose ``kind`` picks which fields it may have."""

    def __init__(self, variants: dict[str, Obj], default_kind: str | None = None):
        self.variants, self.default_kind = variants, default_kind

    def check(self, node, ctx, what):
        kind_node = None
        for key_node, key, value_node in _mapping_pairs(node, ctx, what):
            if key == "kind":
                kind_node = value_node
        if kind_node is None:
            if self.default_kind is None:
                raise ctx.error(node, f"{what} has no 'kind' (expected kind: one of {', '.join(self.variants)})")
            kind = self.default_kind
        else:
            kind = Str(tuple(self.variants)).check(kind_node, ctx, f"{what}.kind")
        out = self.variants[kind].check(node, ctx, what)
        out["kind"] = kind
        return out

    def json(self):
        branches = []
        for kind, obj in self.variants.items():
            schema = obj.json()
            schema["properties"]["kind"] = {"const": kind}
            if self.default_kind != kind:
                schema["required"] = sorted(set(schema["required"]) | {"kind"})
            branches.append(schema)
        return {"oneOf": branches}
