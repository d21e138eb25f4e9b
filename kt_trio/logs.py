"""Logging setup: text for people at a terminal, JSON lines for log pipelines (issue 6 "Logs").

Structured fields travel in `extra={"fields": {...}}`:

    log.info("session start", extra={"fields": {"session_id": sid, "route": route, "target": t}})

The JSON formatter writes `{"ts", "level", "logger", "msg", **fields}` on one line, with
`trace_id` and `span_id` (W3C hex) when the line is written inside a traced session or request
(`kt_trio.telemetry`, tracing on); the text formatter appends the fields as `key=value`.
`%`-style messages (`log.info("x id=%s", sid)`) keep working in both.

What goes in a log line is the caller's responsibility (never a secret, never message content),
but as a second line of defence field names that usually hold secrets (`authorization`,
`api_key`, `token`, ...) are written as `"[REDACTED]"` whatever their value.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from kt_trio.telemetry.context import trace_ids

LogFormat = Literal["text", "json"]

# Exact names and name endings; `input_tokens` or `key_name` are not secrets and stay readable.
_SECRET_NAMES = frozenset({"authorization", "api_key", "apikey", "api-key", "token", "secret", "password", "cookie"})
_SECRET_SUFFIXES = ("_token", "_secret", "_password", "_api_key", "_apikey", "_cookie")
REDACTED = "[REDACTED]"
# The attribute `extra={"fields": ...}` sets on a LogRecord.
FIELDS_ATTR = "fields"


def _is_secret_name(name: str) -> bool:
    lowered = name.lower()
    return lowered in _SECRET_NAMES or lowered.endswith(_SECRET_SUFFIXES)


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The structured fields of a record, with secret-looking names masked."""
    fields = getattr(record, FIELDS_ATTR, None)
    if not isinstance(fields, Mapping):
        return {}
    return {str(k): (REDACTED if _is_secret_name(str(k)) else v) for k, v in fields.items()}


def _ts(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per line. Fields never overwrite the four fixed keys."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": _ts(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        ids = trace_ids()
        if ids is not None:
            out["trace_id"], out["span_id"] = ids
        for key, value in record_fields(record).items():
            out.setdefault(key, value)
        if record.exc_info:
            out.setdefault("exc", self.formatException(record.exc_info))
        return json.dumps(out, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = record_fields(record)
        if fields:
            line += " " + " ".join(f"{k}={_text_value(v)}" for k, v in fields.items())
        return line


# A value is quoted when empty or when it holds whitespace, a quote or `=`. One regex search, not a
# Python loop over its characters (which cost ~10 µs per session id on every session's log lines);
# `\s` on a str pattern is exactly `str.isspace`.
_NEEDS_QUOTES = re.compile(r'[\s"=]')


def _text_value(value: Any) -> str:
    text = str(value)
    return json.dumps(text) if (not text or _NEEDS_QUOTES.search(text)) else text


def setup_logging(level: str = "info", fmt: LogFormat = "text", *, stream: TextIO | None = None) -> logging.Handler:
    """Configures the `kt_trio` logger tree (not the root: a host application's logging is its own).

    Returns the installed handler (tests read it; calling again replaces it, so repeated setup in
    one process does not duplicate lines). Raises ValueError on an unknown level or format.
    """
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    if fmt not in ("text", "json"):
        raise ValueError(f"unknown log format {fmt!r}")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler._kt_trio = True  # type: ignore[attr-defined]  # marks ours for replacement
    logger = logging.getLogger("kt_trio")
    for old in [h for h in logger.handlers if getattr(h, "_kt_trio", False)]:
        logger.removeHandler(old)
    logger.addHandler(handler)
    logger.setLevel(numeric)
    logger.propagate = False
    return handler
