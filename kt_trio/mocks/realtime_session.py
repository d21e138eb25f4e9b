"""One accepted connection of the mock Realtime / Responses WebSocket provider: its conversation
in the mode chosen at handshake time (`kt_trio.mocks.realtime` serves and records them)."""

from __future__ import annotations

import itertools
import json
from typing import TYPE_CHECKING, Any

import trio
from trio_websocket import ConnectionClosed

from kt_trio.mocks.behaviour import MockBehaviour, Trigger, realtime_usage, responses_usage, transcription_usage

if TYPE_CHECKING:
    from kt_trio.mocks.realtime import MockConnection, MockUpstream, _MockWebSocket

# Bound on our own closing handshake: we never wait on a peer that will not answer a close.
CLOSE_TIMEOUT = 1.0

# What a send or handshake step raises when the peer has gone; never an error for a mock.
_GONE = (ConnectionClosed, trio.BrokenResourceError, trio.ClosedResourceError)


class MockSession:
    """One accepted connection's conversation, in the mode chosen at handshake time."""

    def __init__(
        self, server: MockUpstream, ws: _MockWebSocket, record: MockConnection, behaviour: MockBehaviour
    ) -> None:
        self.server = server
        self.ws = ws
        self.record = record
        self.behaviour = behaviour
        self.responses_started = 0
        self.sequence = itertools.count(0)  # Responses-mode sequence_number
        query_model = record.query.get("model", [None])[0]
        self.model = query_model or behaviour.model
        self.session: dict[str, Any] = {
            "type": "realtime",
            "object": "realtime.session",
            "id": f"sess_mock{next(server._ids)}",
            "model": self.model,
            "output_modalities": ["audio"],
            "instructions": "",
            "tools": [],
            "tool_choice": "auto",
            "max_output_tokens": "inf",
            "tracing": None,
            "prompt": None,
            "expires_at": 0,
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": 24000},
                    "transcription": None,
                    "noise_reduction": None,
                    "turn_detection": {"type": "server_vad"},
                },
                "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "marin", "speed": 1.0},
            },
            "include": None,
        }
        self.conversation_id = f"conv_mock{next(server._ids)}"
        self.last_item_id: str | None = None
        # The streaming response a response.cancel would interrupt (only with delta_delay > 0).
        self.active: tuple[trio.CancelScope, str] | None = None

    # --- sending --------------------------------------------------------------------------------

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_mock{next(self.server._ids)}"

    async def send_raw(self, message: str | bytes) -> None:
        await self.ws.send_message(message)
        self.record.sent_count += 1

    async def send_event(self, event: dict[str, Any]) -> None:
        """Send a realtime server event; ``event_id`` is filled in here so none is ever missed."""
        event = {"event_id": f"event_{next(self.server._event_ids):08d}", **event}
        await self.send_raw(json.dumps(event, separators=(",", ":")))

    async def send_responses_event(self, event: dict[str, Any]) -> None:
        event = {**event, "sequence_number": next(self.sequence)}
        await self.send_raw(json.dumps(event, separators=(",", ":")))

    async def send_fault_frames(self, trigger: Trigger) -> None:
        b = self.behaviour
        if b.oversized_size is not None and b.oversized_on == trigger:
            await self.send_raw(_oversized_frame(b.oversized_size))
        if b.invalid_json_on == trigger:
            await self.send_raw('{"type":"response.output_text.delta","delta":"unterminated')

    # --- the loop -------------------------------------------------------------------------------

    async def run(self) -> None:
        b = self.behaviour
        if b.stall:
            # Never read, never send; trio-websocket's reader still runs (and still pongs unless
            # answer_pings is off) until its small queue fills, then TCP pushes back. The reader
            # ends when the peer goes away, which ends the connection record.
            await self.record.ended.wait()
            return
        if b.close_after == 0:
            await self.close_by_mock()
            return
        try:
            await self._converse()
        except* _GONE:
            pass  # the peer went away mid-send; the reader task records how the connection ended

    async def _converse(self) -> None:
        b = self.behaviour
        async with trio.open_nursery() as nursery:
            if self.record.mode == "realtime":
                await self.send_event({"type": "session.created", "session": self.session})
            await self.send_fault_frames("connect")
            while True:
                if b.read_delay > 0:
                    await trio.sleep(b.read_delay)
                try:
                    message = await self.ws.get_message()
                except ConnectionClosed:
                    break
                self.record.messages.append(message)
                self.server._notify()
                received = len(self.record.messages)
                if b.close_after is not None and received >= b.close_after:
                    await self.close_by_mock()
                    break
                if received == 1:
                    await self.send_fault_frames("first_message")
                await self.handle(message, nursery)
            nursery.cancel_scope.cancel()

    async def close_by_mock(self) -> None:
        b = self.behaviour
        self.record.closed_by = "mock"
        self.record.close_code, self.record.close_reason = b.close_code, b.close_reason
        # aclose waits for the peer's close frame; never wait long on a peer that ignores it.
        with trio.move_on_after(CLOSE_TIMEOUT):
            await self.ws.aclose(b.close_code, b.close_reason)

    async def handle(self, message: str | bytes, nursery: trio.Nursery) -> None:
        mode = self.record.mode
        if mode == "echo":
            await self.send_raw(message)
            return
        event: Any = None
        if isinstance(message, str):
            try:
                event = json.loads(message)
            except ValueError:
                event = None
        if not isinstance(event, dict):
            await self.send_error("invalid_json", "Expected a JSON object text frame.", None)
            return
        kind = event.get("type")
        client_event_id = event.get("event_id")
        if mode == "responses":
            if kind == "response.create":
                await self.stream_responses_response(event)
            return
        if kind == "session.update":
            update = event.get("session")
            if isinstance(update, dict):
                self.session.update(update)
            await self.send_event({"type": "session.updated", "session": self.session})
        elif kind == "conversation.item.create":
            await self.add_item(event)
        elif kind == "input_audio_buffer.commit":
            item_id = self._new_id("item")
            await self.send_event(
                {
                    "type": "input_audio_buffer.committed",
                    "previous_item_id": self.last_item_id,
                    "item_id": item_id,
                }
            )
            self.last_item_id = item_id
            if self.behaviour.transcription_usage is not None:
                await self.send_event(
                    {
                        "type": "conversation.item.input_audio_transcription.completed",
                        "item_id": item_id,
                        "content_index": 0,
                        "transcript": self.behaviour.transcription_text,
                        "usage": transcription_usage(self.behaviour.transcription_usage),
                    }
                )
        elif kind == "input_audio_buffer.clear":
            await self.send_event({"type": "input_audio_buffer.cleared"})
        elif kind == "response.create":
            if self.active is not None:
                await self.send_error(
                    "conversation_already_has_active_response",
                    "Conversation already has an active response in progress.",
                    client_event_id,
                )
            elif self.behaviour.delta_delay > 0:
                scope = trio.CancelScope()
                response_id = self._new_id("resp")
                self.active = (scope, response_id)
                nursery.start_soon(self._stream_in_background, scope, response_id)
            else:
                await self.stream_realtime_response(trio.CancelScope(), self._new_id("resp"))
        elif kind == "response.cancel":
            if self.active is not None:
                self.active[0].cancel()  # the streaming task sends the cancelled response.done
            else:
                await self.send_event(
                    {
                        "type": "response.done",
                        "response": self._realtime_response(self._new_id("resp"), "cancelled"),
                    }
                )
        # input_audio_buffer.append and anything else: silent, like the real API for append.

    async def send_error(self, code: str, message: str, client_event_id: Any) -> None:
        await self.send_event(
            {
                "type": "error",
                "error": {
                    "type": "invalid_request_error",
                    "code": code,
                    "message": message,
                    "param": None,
                    "event_id": client_event_id,
                },
            }
        )

    async def add_item(self, event: dict[str, Any]) -> None:
        item = event.get("item")
        item = dict(item) if isinstance(item, dict) else {}
        item.setdefault("id", self._new_id("item"))
        item.setdefault("object", "realtime.item")
        item.setdefault("status", "completed")
        previous = event.get("previous_item_id", self.last_item_id)
        for kind in ("conversation.item.added", "conversation.item.done"):
            await self.send_event({"type": kind, "previous_item_id": previous, "item": item})
        self.last_item_id = item["id"]

    # --- realtime responses ---------------------------------------------------------------------

    def _message_item(self, item_id: str, text: str, transcript: str | None) -> dict[str, Any]:
        content: list[dict[str, Any]] = [{"type": "output_text", "text": text}]
        if transcript is not None:
            content.append({"type": "output_audio", "transcript": transcript})
        return {
            "id": item_id,
            "type": "message",
            "object": "realtime.item",
            "status": "completed",
            "role": "assistant",
            "content": content,
        }

    def _realtime_response(
        self,
        response_id: str,
        status: str,
        usage: dict[str, Any] | None = None,
        output: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        status_details = None
        if status == "cancelled":
            status_details = {"type": "cancelled", "reason": "client_cancelled"}
        return {
            "object": "realtime.response",
            "id": response_id,
            "status": status,
            "status_details": status_details,
            "output": output or [],
            "conversation_id": self.conversation_id,
            "output_modalities": self.session.get("output_modalities", ["audio"]),
            "max_output_tokens": "inf",
            "audio": {"output": self.session["audio"]["output"]},
            "usage": usage,
            "metadata": None,
        }

    async def _stream_in_background(self, scope: trio.CancelScope, response_id: str) -> None:
        try:
            await self.stream_realtime_response(scope, response_id)
        except _GONE:
            pass  # the receive loop sees the same closed connection and ends the session

    async def stream_realtime_response(self, scope: trio.CancelScope, response_id: str) -> None:
        b = self.behaviour
        index = self.responses_started
        self.responses_started += 1
        item_id = self._new_id("item")
        deltas = b.text_deltas()
        transcript = b.transcript()
        await self.send_event(
            {"type": "response.created", "response": self._realtime_response(response_id, "in_progress")}
        )
        with scope:
            where = {"response_id": response_id, "item_id": item_id, "output_index": 0, "content_index": 0}
            for delta in deltas:
                if b.delta_delay > 0:
                    await trio.sleep(b.delta_delay)
                await self.send_event({"type": "response.output_text.delta", **where, "delta": delta})
            await self.send_event({"type": "response.output_text.done", **where, "text": "".join(deltas)})
            if transcript:
                where = {**where, "content_index": 1}
                for delta in transcript:
                    if b.delta_delay > 0:
                        await trio.sleep(b.delta_delay)
                    await self.send_event({"type": "response.output_audio_transcript.delta", **where, "delta": delta})
                await self.send_event(
                    {
                        "type": "response.output_audio_transcript.done",
                        **where,
                        "transcript": "".join(transcript),
                    }
                )
        self.active = None
        status = "cancelled" if scope.cancelled_caught else "completed"
        output = None
        if b.include_output_items:
            output = [self._message_item(item_id, "".join(deltas), "".join(transcript) if transcript else None)]
        self.last_item_id = item_id
        await self.send_event(
            {
                "type": "response.done",
                "response": self._realtime_response(response_id, status, realtime_usage(b, index), output),
            }
        )

    # --- Responses API --------------------------------------------------------------------------

    async def stream_responses_response(self, request: dict[str, Any]) -> None:
        b = self.behaviour
        index = self.responses_started
        self.responses_started += 1
        response_id = self._new_id("resp")
        item_id = self._new_id("msg")
        model = request.get("model") or self.model
        deltas = b.text_deltas()
        text = "".join(deltas)
        response: dict[str, Any] = {
            "id": response_id,
            "object": "response",
            "created_at": 0,
            "status": "in_progress",
            "model": model,
            "output": [],
            "previous_response_id": request.get("previous_response_id"),
            "usage": None,
        }
        await self.send_responses_event({"type": "response.created", "response": response})
        where = {"item_id": item_id, "output_index": 0, "content_index": 0}
        for delta in deltas:
            if b.delta_delay > 0:
                await trio.sleep(b.delta_delay)
            await self.send_responses_event(
                {"type": "response.output_text.delta", **where, "delta": delta, "logprobs": []}
            )
        await self.send_responses_event({"type": "response.output_text.done", **where, "text": text, "logprobs": []})
        output = []
        if b.include_output_items:
            output = [
                {
                    "id": item_id,
                    "type": "message",
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": text, "annotations": []}],
                }
            ]
        done = {**response, "status": "completed", "output": output, "usage": responses_usage(b, index)}
        await self.send_responses_event({"type": "response.completed", "response": done})


def _oversized_frame(size: int) -> str:
    """A text frame of exactly `size` characters: a JSON delta event padded to size if it fits."""
    head = '{"type":"response.output_text.delta","event_id":"event_oversized","delta":"'
    tail = '"}'
    pad = size - len(head) - len(tail)
    if pad < 0:
        return "x" * size
    return head + "x" * pad + tail
