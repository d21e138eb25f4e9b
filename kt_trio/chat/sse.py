"""Server-Sent Events, sans-IO: feed bytes as they arrive, get whole events out.

WHATWG HTML §9.2.6: lines end in CRLF, LF or CR; a blank line dispatches the event; `data:`
lines are joined with LF; a line starting with `:` is a comment; one space after the colon is
dropped. Each event keeps the exact bytes it arrived as (`raw`), so a chunk no policy changed is
forwarded as those bytes, not re-serialised.
"""

from __future__ import annotations

from attrs import frozen

# An upstream that never ends an event must not make us hold without bound; 16 MiB is far
# above any chat chunk (a whole non-streamed completion is rarely over a few hundred KiB).
MAX_EVENT_BYTES = 16 * 1024 * 1024


@frozen
class SseEvent:
    data: str | None
    event: str | None = None
    raw: bytes = b""


class SseProtocolError(Exception):
    pass


class SseParser:
    __slots__ = ("_buf", "_data", "_event", "_raw_start", "_scan")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._scan = 0  # where to look for the next line end
        self._raw_start = 0  # where the event being read began in _buf
        self._data: list[str] | None = None
        self._event: str | None = None

    def feed(self, chunk: bytes) -> list[SseEvent]:
        """The events completed by `chunk` (often none, sometimes several)."""
        buf = self._buf
        buf += chunk
        out: list[SseEvent] = []
        pos = self._scan
        n = len(buf)
        while pos < n:
            lf = buf.find(b"\n", pos)
            cr = buf.find(b"\r", pos, lf if lf >= 0 else n)
            if cr >= 0:
                if cr + 1 == n:
                    break  # a CR at the end: is it CRLF? wait for the next byte
                end = cr
                nxt = cr + 2 if buf[cr + 1] == 0x0A else cr + 1
            elif lf >= 0:
                end, nxt = lf, lf + 1
            else:
                break
            line = bytes(buf[pos:end])
            pos = nxt
            if not line:
                raw = bytes(buf[self._raw_start : pos])
                self._raw_start = pos
                if self._data is not None or self._event is not None:
                    data = "\n".join(self._data) if self._data is not None else None
                    out.append(SseEvent(data, self._event, raw))
                self._data = None
                self._event = None
                continue
            self._field(line)
        # Drop what is consumed; keep the event being read.
        if self._raw_start:
            del buf[: self._raw_start]
            pos -= self._raw_start
            self._raw_start = 0
        self._scan = pos
        if len(buf) > MAX_EVENT_BYTES:
            raise SseProtocolError(f"an SSE event is over {MAX_EVENT_BYTES} bytes")
        return out

    def _field(self, line: bytes) -> None:
        if line[:1] == b":":
            return
        name, sep, value = line.partition(b":")
        if sep and value[:1] == b" ":
            value = value[1:]
        text = value.decode("utf-8", "replace")
        if name == b"data":
            if self._data is None:
                self._data = [text]
            else:
                self._data.append(text)
        elif name == b"event":
            self._event = text
        # `id` and `retry` are not used by chat completions.


def encode(data: str | bytes, event: str | None = None) -> bytes:
    """One SSE event; `data` must be one line (compact JSON is)."""
    payload = data.encode() if isinstance(data, str) else data
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + payload + b"\n\n"


DONE = b"data: [DONE]\n\n"
