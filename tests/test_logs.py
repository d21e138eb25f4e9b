"""Structured logging: JSON lines with fixed keys plus fields; secret-looking fields masked."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from kt_trio.logs import REDACTED, setup_logging


@pytest.fixture
def restore_kt_logger() -> Iterator[None]:
    logger = logging.getLogger("kt_trio")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]


def test_json_lines_with_fields(restore_kt_logger: None) -> None:
    out = io.StringIO()
    setup_logging("info", "json", stream=out)
    log = logging.getLogger("kt_trio.gateway")
    log.info("session start", extra={"fields": {"session_id": "abc", "input_tokens": 5, "api_key": "sk-live"}})
    log.info("legacy id=%s", "abc")
    log.debug("not shown")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(lines) == 2
    first = lines[0]
    assert first["level"] == "info" and first["logger"] == "kt_trio.gateway" and first["msg"] == "session start"
    assert first["ts"].endswith("Z") and first["session_id"] == "abc" and first["input_tokens"] == 5
    assert first["api_key"] == REDACTED and "sk-live" not in out.getvalue()
    assert lines[1]["msg"] == "legacy id=abc"


def test_text_format_and_repeated_setup(restore_kt_logger: None) -> None:
    out = io.StringIO()
    setup_logging("debug", "text", stream=out)
    setup_logging("debug", "text", stream=out)  # replaces, does not duplicate
    logging.getLogger("kt_trio.x").info("handshake refused", extra={"fields": {"status": 401, "reason": "no key"}})
    assert out.getvalue().count("handshake refused") == 1
    assert 'status=401 reason="no key"' in out.getvalue()
    with pytest.raises(ValueError):
        setup_logging("loud", "text")
    with pytest.raises(ValueError):
        setup_logging("info", "xml")  # type: ignore[arg-type]


def test_text_fields_are_quoted_only_when_they_need_it(restore_kt_logger: None) -> None:
    out = io.StringIO()
    setup_logging("info", "text", stream=out)
    fields = {
        "plain": "abc123",
        "number": 7,
        "space": "a b",
        "quote": 'say "hi"',
        "equals": "k=v",
        "empty": "",
        "nbsp": "a\u00a0b",  # Unicode whitespace counts too
        "accent": "héllo",
    }
    logging.getLogger("kt_trio.gateway").info("fields", extra={"fields": fields})
    line = out.getvalue().strip()
    tail = line.split(" fields ", 1)[1]
    assert tail == (
        'plain=abc123 number=7 space="a b" quote="say \\"hi\\"" equals="k=v" empty="" nbsp="a\\u00a0b" accent=héllo'
    )
