"""What a session tells the audit log and the event stream about each relayed message.

With the audit log's `log_all_access` every message becomes a `MessageSeen` record (its content
only with `include_content`, and only what was forwarded, i.e. after redaction); with
`features.websocket.message_events` every message becomes a `MessagesRelayed` event, except
audio (~50 messages a second), which is counted into one event per direction per
`AUDIO_EVENT_SECS`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from attrs import define

from kt_trio.protocol.events import AUDIO_TYPES
from kt_trio.protocol.sniff import client_event_id
from kt_trio.records import Direction, MessageSeen, MessagesRelayed, PolicyDecision, Record
from kt_trio.reporting import AuditSink
from kt_trio.wire.frames import Message

# `message_events`: audio messages of one direction become one event per this many seconds.
AUDIO_EVENT_SECS = 1.0


@define
class _AudioBatch:
    """Audio messages of one direction counted since `started`, for one `message` event."""

    started: float
    event_type: str | None
    count: int = 0
    size: int = 0


class MessageLog:
    """The per-message records of one session; `active` is False when nothing wants them."""

    def __init__(
        self,
        session_id: str,
        emit: Callable[[Record], None],
        audit: AuditSink | None,
        publish: Callable[[str | None, Record], None] | None,
    ) -> None:
        """`emit` sends a record to the reporter (and the audit log); `publish`, when message
        events are on, sends one to the event stream only."""
        self._session_id = session_id
        self._emit = emit
        self._audit_messages = audit is not None and audit.settings.log_all_access
        self._publish = publish
        self._log_content = self._audit_messages and audit is not None and audit.settings.include_content
        self.active = self._audit_messages or publish is not None
        # At most one batch per direction.
        self._audio_batches: dict[Direction, _AudioBatch] = {}
        self._seq = 0

    def message(
        self,
        from_client: bool,
        event_type: str | None,
        msg: Message,
        forwarded: bytes | bytearray | None,
        decisions: tuple[PolicyDecision, ...],
    ) -> None:
        """One relayed (or dropped, `forwarded` None) message and the policy decisions on it."""
        if self._publish is not None:
            self._relayed(self._publish, from_client, event_type, msg, forwarded is not None, decisions)
        if not self._audit_messages:
            return
        self._seq += 1
        content = None
        if self._log_content and forwarded is not None and msg.is_text and event_type not in AUDIO_TYPES:
            # What was forwarded, i.e. after redaction: raw text never reaches the audit log.
            text = msg.payload() if forwarded is msg.raw else forwarded
            content = bytes(text).decode("utf-8", "replace")
        self._emit(
            MessageSeen(
                session_id=self._session_id,
                seq=self._seq,
                direction="input" if from_client else "output",
                event_type=event_type,
                event_id=client_event_id(msg.head()) if msg.is_text else None,
                size=msg.size,
                forwarded=forwarded is not None,
                decisions=decisions,
                content=content,
            )
        )

    def _relayed(
        self,
        publish: Callable[[str | None, Record], None],
        from_client: bool,
        event_type: str | None,
        msg: Message,
        forwarded: bool,
        decisions: tuple[PolicyDecision, ...],
    ) -> None:
        """One `message` event, or a count towards this second's audio event."""
        sid = self._session_id
        direction: Direction = "input" if from_client else "output"
        if (msg.is_text and event_type not in AUDIO_TYPES) or decisions:
            publish(sid, MessagesRelayed(sid, direction, event_type, msg.size, forwarded, decisions))
            return
        now = time.monotonic()
        batch = self._audio_batches.get(direction)
        if batch is None:  # the first audio of this direction is published at once
            self._audio_batches[direction] = _AudioBatch(now, event_type)
            publish(sid, MessagesRelayed(sid, direction, event_type, msg.size, forwarded))
            return
        batch.count += 1
        batch.size += msg.size
        batch.event_type = event_type
        if now - batch.started >= AUDIO_EVENT_SECS:
            self._flush_audio(direction, now)

    def _flush_audio(self, direction: Direction, now: float) -> None:
        """Publishes the audio counted since the last audio event of `direction`, if any."""
        batch = self._audio_batches.get(direction)
        if batch is not None and batch.count and self._publish is not None:
            sid = self._session_id
            record = MessagesRelayed(sid, direction, batch.event_type, batch.size, True, count=batch.count)
            self._publish(sid, record)
            self._audio_batches[direction] = _AudioBatch(now, batch.event_type)

    def flush(self) -> None:
        """At the session's end: the last second of audio, if any."""
        now = time.monotonic()
        for direction in list(self._audio_batches):
            self._flush_audio(direction, now)
