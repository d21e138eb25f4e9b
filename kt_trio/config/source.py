"""Parse a config file into plain data plus a map from dotted path to source position.

YAML goes through ruamel.yaml's round-trip loader, which records the line and column of every
key and item. tomllib keeps no positions, so for TOML they are recovered best-effort by scanning
the text for table headers and `key =` lines; anything the scan misses falls back to its
nearest ancestor's position (see `Document.key_pos`).
"""

from __future__ import annotations

import re
import tomllib
from datetime import date, time
from typing import Any

from attrs import define, field
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from kt_trio.config.errors import ConfigIssue

Position = tuple[int, int]  # 1-based (line, col)


def child_path(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def parent_path(path: str) -> str:
    cut = max(path.rfind("."), path.rfind("["))
    return path[:cut] if cut > 0 else ""


@define
class Document:
    """Plain data (dict / list / str / int / float / bool / None) and where each piece was written."""

    file: str
    data: Any = None
    # path -> position of the key (mapping entry) or of the item (sequence entry).
    keys: dict[str, Position] = field(factory=dict)
    # path -> position of the value itself; a nested block mapping's value starts at its first key.
    values: dict[str, Position] = field(factory=dict)
    issues: list[ConfigIssue] = field(factory=list)

    def key_pos(self, path: str) -> Position:
        while path:
            if path in self.keys:
                return self.keys[path]
            path = parent_path(path)
        return (1, 1)

    def value_pos(self, path: str) -> Position:
        if path in self.values:
            return self.values[path]
        return self.key_pos(path)

    def issue(self, path: str, pos: Position, message: str) -> None:
        self.issues.append(ConfigIssue(self.file, pos[0], pos[1], path, message))


# --- YAML -------------------------------------------------------------------------------------


def parse_yaml(text: str, file: str) -> Document:
    doc = Document(file)
    try:
        raw = YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        problem = exc.problem or "invalid YAML"
        # ruamel's duplicate-key message quotes both values; a value may be a secret.
        problem = re.sub(r" with value .*$", "", problem, flags=re.DOTALL)
        context = f" ({exc.context})" if exc.context else ""
        doc.issue("", (line, col), f"YAML syntax error: {problem}{context}")
        return doc
    root_pos = (raw.lc.line + 1, raw.lc.col + 1) if isinstance(raw, (CommentedMap, CommentedSeq)) else (1, 1)
    doc.values[""] = root_pos
    doc.data = _plain_yaml(raw, "", doc)
    return doc


def _plain_yaml(node: Any, path: str, doc: Document) -> Any:
    """Convert ruamel's round-trip node types to plain Python, recording positions on the way."""
    if isinstance(node, CommentedMap):
        out: dict[str, Any] = {}
        for key, value in node.items():
            kline, kcol = node.lc.key(key)
            vline, vcol = node.lc.value(key)
            if not isinstance(key, str):
                doc.issue(path, (kline + 1, kcol + 1), f"keys must be strings, got {key!r}")
                continue
            sub = child_path(path, key)
            doc.keys[sub] = (kline + 1, kcol + 1)
            doc.values[sub] = (vline + 1, vcol + 1)
            out[key] = _plain_yaml(value, sub, doc)
        return out
    if isinstance(node, CommentedSeq):
        items = []
        for index, value in enumerate(node):
            line, col = node.lc.item(index)
            sub = child_path(path, index)
            doc.keys[sub] = doc.values[sub] = (line + 1, col + 1)
            items.append(_plain_yaml(value, sub, doc))
        return items
    # ruamel subclasses str/int/float to keep formatting; the validator wants exact builtins.
    if node is None or isinstance(node, bool):
        return node
    if isinstance(node, str):
        return str(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    return node  # a date or timestamp: the validator reports it as the wrong type


# --- TOML -------------------------------------------------------------------------------------

_TOML_ERROR_AT = re.compile(r"^(?P<msg>.*) \(at line (?P<line>\d+), column (?P<col>\d+)\)$", re.DOTALL)
_KEY = r'(?:[A-Za-z0-9_-]+|"[^"]*"|\'[^\']*\')'
_DOTTED_KEY = rf"{_KEY}(?:\s*\.\s*{_KEY})*"
_HEADER = re.compile(rf"^\s*(?P<open>\[\[?)\s*(?P<name>{_DOTTED_KEY})\s*\]\]?")
_ASSIGN = re.compile(rf"(?P<key>{_DOTTED_KEY})\s*=\s*")


def parse_toml(text: str, file: str) -> Document:
    doc = Document(file)
    try:
        doc.data = _plain_toml(tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        match = _TOML_ERROR_AT.match(str(exc))
        if match:
            pos = (int(match["line"]), int(match["col"]))
            message = match["msg"]
        elif str(exc).endswith(" (at end of document)"):
            lines = text.splitlines() or [""]
            pos, message = (len(lines), len(lines[-1]) + 1), str(exc).removesuffix(" (at end of document)")
        else:
            pos, message = (1, 1), str(exc)
        doc.issue("", pos, f"TOML syntax error: {message}")
        return doc
    _scan_toml_positions(text, doc)
    return doc


def _plain_toml(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: _plain_toml(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_plain_toml(value) for value in node]
    if isinstance(node, (date, time)):
        return node  # reported as the wrong type by the validator
    return node


def _split_key(dotted: str) -> list[str]:
    return [part.strip().strip("\"'") for part in re.findall(_KEY, dotted)]


def _scan_toml_positions(text: str, doc: Document) -> None:
    """Best effort: table headers, `key = value` lines and one-line inline tables."""
    table = ""
    array_counts: dict[str, int] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        stripped = line.lstrip()
        if not stripped or stripped.startswith("#"):
            continue
        header = _HEADER.match(line)
        if header:
            table = ""
            for part in _split_key(header["name"]):
                table = child_path(table, part)
            pos = (lineno, header.start("name") + 1)
            if header["open"] == "[[":
                index = array_counts.get(table, 0)
                array_counts[table] = index + 1
                doc.keys.setdefault(table, pos)
                table = child_path(table, index)
            doc.keys.setdefault(table, pos)
            doc.values.setdefault(table, pos)
            continue
        _scan_assignments(line, lineno, table, doc, start=len(line) - len(stripped))


def _scan_assignments(line: str, lineno: int, prefix: str, doc: Document, start: int) -> None:
    match = _ASSIGN.match(line, start)
    if not match:
        return
    path = prefix
    for part in _split_key(match["key"]):
        path = child_path(path, part)
    doc.keys.setdefault(path, (lineno, match.start("key") + 1))
    doc.values.setdefault(path, (lineno, match.end() + 1))
    rest = match.end()
    if line.startswith("{", rest):
        # An inline table on one line: `secret_key_ref = { env = "X" }`.
        for inner in _ASSIGN.finditer(line, rest + 1):
            if line[: inner.start()].rstrip().endswith(("{", ",")):
                sub = path
                for part in _split_key(inner["key"]):
                    sub = child_path(sub, part)
                doc.keys.setdefault(sub, (lineno, inner.start("key") + 1))
                doc.values.setdefault(sub, (lineno, inner.end() + 1))
