"""Reading lakedeck.yaml without trusting it: a regular file of at most MAX_BYTES, composed as YAML with bounded
nesting (MAX_DEPTH) and bounded alias expansion (MAX_NODES). Every refusal is a ConfigError at its line and column.

Composing is where the cost hides: an alias is one node in the text but the whole anchored node wherever the
schema walks it, so nodes are counted as expanded, with each anchor's expanded size computed once.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import yaml

from .schema import ConfigError

MAX_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 64  # the deepest setting is 8 levels down (a header of an action: tests/test_config_input.py measures it)
MAX_NODES = 100_000  # values, keys and items, with every alias counted as what it expands to
MERGE = "tag:yaml.org,2002:merge"

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def read_config(path: Path) -> str:
    """The text of the config file at ``path``; a ConfigError unless it is a readable regular UTF-8 file of at
    most MAX_BYTES. Nothing else is opened for a blocking read: a FIFO or a device is refused from its stat."""
    name = str(path)
    try:
        _regular(name, os.stat(name))  # stat first: opening some devices does something
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise ConfigError(name, 1, 1, "no such file (expected a lakedeck.yaml; see examples/)") from None
    except OSError as exc:
        raise ConfigError(name, 1, 1, f"cannot read the file: {exc.strerror or exc} (expected a readable file)") from None
    try:
        _regular(name, os.fstat(fd))  # what was opened, in case the path changed since the stat
        chunks, size = [], 0
        while size <= MAX_BYTES:
            chunk = os.read(fd, MAX_BYTES + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > MAX_BYTES:
            raise _too_big(name)
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(name, 1, 1, f"cannot read the file: {exc} (expected a UTF-8 file)") from None
    except OSError as exc:
        raise ConfigError(name, 1, 1, f"cannot read the file: {exc.strerror or exc} (expected a readable file)") from None
    finally:
        os.close(fd)


def _regular(name: str, info: os.stat_result) -> None:
    if not stat.S_ISREG(info.st_mode):
        kind = next((what for test, what in _KINDS if test(info.st_mode)), "not a regular file")
        raise ConfigError(name, 1, 1, f"{kind}, not a config file (expected a regular file such as lakedeck.yaml)")
    if info.st_size > MAX_BYTES:
        raise _too_big(name)


def _too_big(name: str) -> ConfigError:
    return ConfigError(name, 1, 1, f"the file is larger than {MAX_BYTES // (1024 * 1024)} MB "
                                   f"(expected a lakedeck.yaml of at most {MAX_BYTES:,} bytes)")


def parse_yaml(text: str, file: str) -> yaml.Node | None:
    """The node tree of ``text``, merge keys (``<<: *defaults``) merged; YAML syntax errors and the bounds
    become a ConfigError with their position."""
    loader = None
    try:
        loader = _BoundedLoader(text, file)  # (its reader refuses control characters at once)
        return loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = (exc.problem or exc.context or "invalid YAML").strip()
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise ConfigError(file, line, column, f"invalid YAML: {problem} (expected well-formed YAML)") from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (NUL, a control character)
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        raise ConfigError(file, line, column, f"invalid YAML: the character #x{exc.character:04x} is not allowed "
                                              f"(expected text without control characters)") from None
    except yaml.YAMLError as exc:
        raise ConfigError(file, 1, 1, f"invalid YAML: {' '.join(str(exc).split())} (expected well-formed YAML)") from None
    finally:
        if loader is not None:
            loader.dispose()


class _BoundedLoader(yaml.SafeLoader):
    def __init__(self, text: str, file: str) -> None:
        super().__init__(text)
        self.file = file
        self.depth = 0  # of the node being composed
        self.deepest = 0  # the deepest level reached under it, aliases counted as what they expand to
        self.nodes = 0
        self.aliased = 0  # of those, what aliases expanded to
        self.expanded: dict[yaml.Node, tuple[int, int]] = {}  # an anchored node: its nodes and its height

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            node = super().compose_node(parent, index)
            if node not in self.expanded:
                raise self._error(event, f"the alias *{event.anchor} is inside what it names (expected an alias "
                                         "to a node that ends before it)")
            size, height = self.expanded[node]
            self._reach(event, self.depth + height)
            self._count(event, size, alias=True)
            return node
        self.depth += 1
        outer = self.deepest
        self.deepest = 0
        self._reach(event, self.depth)
        before = self.nodes
        self._count(event, 1)
        node = super().compose_node(parent, index)
        if event.anchor is not None:
            self.expanded[node] = (self.nodes - before, self.deepest - self.depth + 1)
        self.deepest = max(outer, self.deepest)
        self.depth -= 1
        return node

    def compose_mapping_node(self, anchor):
        node = super().compose_mapping_node(anchor)
        if any(key.tag == MERGE for key, _ in node.value):
            _merge(node, self.file)
        return node

    def _reach(self, event, depth: int) -> None:
        self.deepest = max(self.deepest, depth)
        if depth > MAX_DEPTH:
            raise self._error(event, f"nested more than {MAX_DEPTH} levels deep (expected at most {MAX_DEPTH}: "
                                     "no setting of lakedeck.yaml is nested that deep)")

    def _count(self, event, size: int, alias: bool = False) -> None:
        self.nodes += size
        self.aliased += size if alias else 0
        if self.nodes > MAX_NODES:
            why = f"aliases make {self.aliased:,} of them: is one repeated too often?" if self.aliased else (
                "a config that large?")
            raise self._error(event, f"more than {MAX_NODES:,} values, aliases counted as what they expand to "
                                     f"(expected at most {MAX_NODES:,}: {why})")

    def _error(self, event, message: str) -> ConfigError:
        mark = event.start_mark
        return ConfigError(self.file, mark.line + 1, mark.column + 1, message)


def _merge(node: yaml.MappingNode, file: str) -> None:
    """YAML's merge key: the pairs of the merged mappings (earlier ones first) that the mapping does not set
    itself, then the mapping's own pairs; as a YAML loader builds it, without a key appearing twice."""
    own = [(key, value) for key, value in node.value if key.tag != MERGE]
    taken = {key.value for key, _ in own if isinstance(key, yaml.ScalarNode)}
    merged = []
    for key, value in node.value:
        if key.tag != MERGE:
            continue
        sources = value.value if isinstance(value, yaml.SequenceNode) else [value]
        for source in sources:
            if not isinstance(source, yaml.MappingNode):
                mark = source.start_mark
                raise ConfigError(file, mark.line + 1, mark.column + 1, "<< merges a mapping (expected <<: *name "
                                                                        "or <<: [*one, *two], names of mappings)")
            for pair in source.value:
                if isinstance(pair[0], yaml.ScalarNode) and pair[0].value not in taken:
                    taken.add(pair[0].value)
                    merged.append(pair)
    node.value = merged + own
