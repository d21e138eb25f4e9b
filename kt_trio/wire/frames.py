"""A small RFC 6455 frame codec, sans-IO, built for relaying.

Why not wsproto's public API on the hot path: it decodes every text message to `str`, re-frames
everything it sends and allocates several objects per frame; a relay whose job is to pass most
messages on unchanged pays for all of it (PERFORMANCE.md: −55 % CPU with an own codec). This
reader instead keeps each single-frame message as the bytes that arrived (`Message.raw`), so an
unchanged message is forwarded byte-exact, and unmasks a client's payload only when somebody
reads it (`Message.head()` for the event type, `Message.payload()` for a policy).

Like wsproto, the reader never touches a socket: the session feeds it bytes (`feed`) or lets the
transport fill the buffer of a large frame in place (`pending_view`/`commit`, so a 1 MiB frame is
received with `recv_into` into a buffer of its final size instead of being copied chunk by chunk),
and takes complete events out (`events`).
"""

from __future__ import annotations

import codecs
import struct
import time
from enum import IntEnum

from kt_trio.wire.masking import apply_mask


class Opcode(IntEnum):
    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


# The opcodes as plain ints for the per-frame code: `x == Opcode.TEXT` looks the member up on
# the enum class each time (~0.1 µs), several times per frame.
_CONTINUATION, _TEXT, _BINARY, _CLOSE, _PING, _PONG = (int(op) for op in Opcode)


class CloseCode(IntEnum):
    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS = 1005  # RFC 6455 §7.4.1: "MUST NOT be set as a status code in a Close control frame"
    ABNORMAL = 1006  # RFC 6455 §7.4.1: reserved for "the connection was closed abnormally"
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    TRY_AGAIN_LATER = 1013


# RFC 6455 §7.4: codes an endpoint may put on the wire. 1004-1006 and 1015 are reserved, and
# 1016-2999 belong to future revisions of the RFC and to extensions.
def is_valid_close_code(code: int) -> bool:
    return code in (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014) or (3000 <= code <= 4999)


# A frame at least this large that has not fully arrived gets a buffer of its own, filled in place
# by recv_into. Below it, appending chunks to the shared buffer is cheaper than a fresh allocation.
LARGE_FRAME = 64 * 1024
# That buffer grows with what has arrived (doubling, up to the frame's length), never to the
# length a header merely claims: 300 connections each sending a 1 MiB header and one byte held
# 300 MiB before (issue 13). Doubling keeps the copies to at most one pass over the frame.
FIRST_BIG_BUFFER = LARGE_FRAME
# Fragments of one message: each costs a frame header and a parse, so a message cut into 1-byte
# (or empty) fragments is a way to burn CPU and, before the reassembly buffer, memory. Real
# senders fragment at 4 KiB or more; 4096 fragments carry a 16 MiB message at 4 KiB each.
MAX_FRAGMENTS = 4096
# Empty continuation frames carry nothing; a sender may end a streamed message with one.
MAX_EMPTY_FRAGMENTS = 16
# Control frames (ping, pong) per second and direction: a keepalive needs one every few seconds;
# a peer sending hundreds is flooding (each ping costs us a pong). Counted in 1-second windows.
MAX_CONTROL_FRAMES_PER_SEC = 100
# Bytes of a client payload unmasked to learn a message's event type (see protocol/sniff.py).
HEAD_BYTES = 256
# RFC 6455 §7.1.6 / §5.5: a close frame's payload is at most 125 bytes, 2 of them the code.
MAX_CLOSE_REASON_BYTES = 123


class FrameProtocolError(Exception):
    """The peer broke RFC 6455 or a configured limit; `code` is the close code to answer with."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class Message:
    """A complete text or binary message.

    `raw` holds the whole frame as it arrived (header, mask and payload) when the message came
    in one frame; forwarding `raw` is byte-exact and, on the client leg, reuses the client's own
    mask (as nginx does), so nothing is unmasked or re-masked unless a policy reads it.
    """

    __slots__ = ("_payload", "header_len", "is_text", "mask", "raw")

    def __init__(
        self,
        is_text: bool,
        raw: bytes | bytearray | None,
        header_len: int,
        mask: bytes | None,
        payload: bytes | None = None,
    ) -> None:
        self.is_text = is_text
        self.raw = raw
        self.header_len = header_len
        self.mask = mask
        self._payload = payload

    @property
    def size(self) -> int:
        if self._payload is not None:
            return len(self._payload)
        assert self.raw is not None
        return len(self.raw) - self.header_len

    def payload(self) -> bytes:
        """The unmasked payload (computed once)."""
        if self._payload is None:
            assert self.raw is not None
            body = memoryview(self.raw)[self.header_len :]
            self._payload = apply_mask(body, self.mask) if self.mask else bytes(body)
        return self._payload

    def head(self, n: int = HEAD_BYTES) -> bytes:
        """The first `n` unmasked payload bytes, without unmasking the rest."""
        if self._payload is not None:
            return self._payload[:n]
        assert self.raw is not None
        body = memoryview(self.raw)[self.header_len : self.header_len + n]
        return apply_mask(body, self.mask) if self.mask else bytes(body)


class Ping:
    __slots__ = ("payload",)

    def __init__(self, payload: bytes) -> None:
        self.payload = payload


class Pong:
    __slots__ = ("payload",)

    def __init__(self, payload: bytes) -> None:
        self.payload = payload


class Close:
    """A close frame. `code` is 1005 when the frame carried no status (RFC 6455 §7.1.5)."""

    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason


Event = Message | Ping | Pong | Close

_U16 = struct.Struct("!H")
_U64 = struct.Struct("!Q")


class FrameReader:
    """Parses one direction of a WebSocket connection.

    `expect_masked` is True on the server side (frames from a client MUST be masked, RFC 6455
    §5.1) and False on the client side (frames from a server MUST NOT be). `max_message_size`
    is checked against the length in each frame header, before the payload is buffered, so an
    oversized message costs no memory.
    """

    def __init__(
        self,
        *,
        expect_masked: bool,
        max_message_size: int,
        max_fragments: int = MAX_FRAGMENTS,
        max_control_per_sec: int = MAX_CONTROL_FRAMES_PER_SEC,
    ) -> None:
        self.expect_masked = expect_masked
        self.max_message_size = max_message_size
        self.max_fragments = max_fragments
        self.max_control_per_sec = max_control_per_sec
        self._buf = bytearray()
        # A large frame being received in place: its buffer (grown as bytes arrive), how much is
        # filled, its header; the frame's full size is header_len + length.
        self._big: bytearray | None = None
        self._big_filled = 0
        self._big_hdr: tuple[int, int, bytes | None, int] | None = None
        # A fragmented message being reassembled: its opcode, its unmasked payload so far (one
        # buffer, so its memory is its size, not a Python object per fragment) and its counts.
        self._frag_opcode: int | None = None
        self._frag_buf = bytearray()
        self._frag_count = 0
        self._frag_empty = 0
        # Control frames in the current 1-second window (time.monotonic(); read only for them).
        self._ctl_window = 0.0
        self._ctl_count = 0
        self._events: list[Event] = []

    # -- feeding -------------------------------------------------------------------------------

    def pending_view(self) -> memoryview | None:
        """Where the next bytes should go when a large frame is being received, else None."""
        if self._big is None:
            return None
        return memoryview(self._big)[self._big_filled :]

    def commit(self, n: int) -> None:
        """`n` bytes were written into `pending_view()` (which the caller has released)."""
        assert self._big is not None and self._big_hdr is not None
        self._big_filled += n
        big = self._big
        if self._big_filled < len(big):
            return
        b0, header_len, mask, length = self._big_hdr
        total = header_len + length
        if len(big) < total:
            big.extend(bytes(min(len(big), total - len(big))))  # double, up to the frame's size
            return
        self._big = None
        self._big_hdr = None
        self._frame(b0, big, header_len, mask)

    def feed(self, data: bytes) -> None:
        """Bytes arrived from the peer (not for a large frame's buffer: see `pending_view`)."""
        assert self._big is None
        if self._buf:
            self._buf += data
            pos = self._parse(self._buf)
            if pos:
                del self._buf[:pos]
            return
        # The common case: the chunk starts at a frame boundary. Parse it where it lies, so a
        # frame that is the whole chunk keeps the received bytes object as its `raw` (no copy).
        pos = self._parse(data)
        if pos < len(data) and self._big is None:
            self._buf = bytearray(memoryview(data)[pos:])

    def events(self) -> list[Event]:
        """The complete events parsed so far, in order; the list is handed over, not copied."""
        ev = self._events
        if ev:
            self._events = []
        return ev

    # -- parsing -------------------------------------------------------------------------------

    def _parse(self, buf: bytes | bytearray) -> int:
        """Parses complete frames from `buf`; returns how many bytes were consumed."""
        pos = 0
        end = len(buf)
        while end - pos >= 2:
            b0 = buf[pos]
            b1 = buf[pos + 1]
            length = b1 & 0x7F
            header_len = 2
            if length == 126:
                header_len = 4
                if end - pos < 4:
                    break
                length = _U16.unpack_from(buf, pos + 2)[0]
            elif length == 127:
                header_len = 10
                if end - pos < 10:
                    break
                length = _U64.unpack_from(buf, pos + 2)[0]
                if length >> 63:
                    raise FrameProtocolError(CloseCode.PROTOCOL_ERROR, "invalid frame length")
            masked = bool(b1 & 0x80)
            if masked != self.expect_masked:
                raise FrameProtocolError(
                    CloseCode.PROTOCOL_ERROR,
                    "client frames must be masked" if self.expect_masked else "server frames must not be masked",
                )
            if masked:
                header_len += 4
                if end - pos < header_len:
                    break
                mask: bytes | None = bytes(buf[pos + header_len - 4 : pos + header_len])
            else:
                mask = None
            self._check_header(b0, length)
            frame_end = pos + header_len + length
            if frame_end <= end:
                raw = buf if (pos == 0 and frame_end == end and type(buf) is bytes) else bytes(buf[pos:frame_end])
                pos = frame_end
                self._frame(b0, raw, header_len, mask)
                continue
            if length >= LARGE_FRAME:
                # Receive the rest straight into a buffer of its own, grown as bytes arrive.
                have = end - pos
                big = bytearray(min(header_len + length, max(FIRST_BIG_BUFFER, 2 * have)))
                big[:have] = memoryview(buf)[pos:end]
                self._big = big
                self._big_filled = have
                self._big_hdr = (b0, header_len, mask, length)
                pos = end
            break
        return pos

    def _check_header(self, b0: int, length: int) -> None:
        if b0 & 0x70:
            raise FrameProtocolError(CloseCode.PROTOCOL_ERROR, "reserved bits set (no extension negotiated)")
        opcode = b0 & 0x0F
        if opcode >= 0x8:
            if opcode != _CLOSE and opcode != _PING and opcode != _PONG:
                raise FrameProtocolError(CloseCode.PROTOCOL_ERROR, f"unknown opcode {opcode:#x}")
            # RFC 6455 §5.5: "All control frames MUST have a payload length of 125 bytes or less
            # and MUST NOT be fragmented."
            if length > 125 or not b0 & 0x80:
                raise FrameProtocolError(CloseCode.PROTOCOL_ERROR, "invalid control frame")
            return
        if opcode == _CONTINUATION:
            if self._frag_opcode is None:
                raise FrameProtocolError(CloseCode.PROTOCOL_ERROR, "continuation frame without a message")
            if len(self._frag_buf) + length > self.max_message_size:
                raise FrameProtocolError(CloseCode.MESSAGE_TOO_BIG, "message too big")
            return
        if opcode != _TEXT and opcode != _BINARY:
            raise FrameProtocolError(CloseCode.PROTOCOL_ERROR, f"unknown opcode {opcode:#x}")
        if self._frag_opcode is not None:
            raise FrameProtocolError(CloseCode.PROTOCOL_ERROR, "new message inside a fragmented one")
        if length > self.max_message_size:
            raise FrameProtocolError(CloseCode.MESSAGE_TOO_BIG, "message too big")

    def _count_control(self) -> None:
        now = time.monotonic()
        if now - self._ctl_window >= 1.0:
            self._ctl_window = now
            self._ctl_count = 0
        self._ctl_count += 1
        if self._ctl_count > self.max_control_per_sec:
            raise FrameProtocolError(
                CloseCode.POLICY_VIOLATION, f"more than {self.max_control_per_sec} control frames a second"
            )

    def _frame(self, b0: int, raw: bytes | bytearray, header_len: int, mask: bytes | None) -> None:
        opcode = b0 & 0x0F
        fin = b0 & 0x80
        if opcode == _TEXT:
            if fin:
                msg = Message(True, raw, header_len, mask)
                if mask and len(raw) - header_len <= LARGE_FRAME:
                    # The unmasked payload is kept: the session's policies read the same bytes.
                    check_utf8(msg.payload())
                else:
                    check_utf8_view(memoryview(raw)[header_len:], mask)
                self._events.append(msg)
                return
        elif opcode == _BINARY:
            if fin:
                self._events.append(Message(False, raw, header_len, mask))
                return
        if opcode == _TEXT or opcode == _BINARY:
            self._frag_opcode = opcode
            self._frag_buf = bytearray(_unmasked(raw, header_len, mask))
            self._frag_count = 1
            self._frag_empty = 0
            return
        if opcode == _CONTINUATION:
            # Counted here, once per complete frame (a header is parsed again while its frame
            # is still arriving).
            self._frag_count += 1
            if self._frag_count > self.max_fragments:
                raise FrameProtocolError(
                    CloseCode.MESSAGE_TOO_BIG, f"message in more than {self.max_fragments} fragments"
                )
            if len(raw) == header_len:
                self._frag_empty += 1
                if self._frag_empty > MAX_EMPTY_FRAGMENTS:
                    raise FrameProtocolError(CloseCode.POLICY_VIOLATION, "too many empty continuation frames")
            self._frag_buf += _unmasked(raw, header_len, mask)
            if fin:
                payload = bytes(self._frag_buf)
                is_text = self._frag_opcode == _TEXT
                self._frag_opcode = None
                self._frag_buf = bytearray()
                if is_text:
                    check_utf8(payload)
                self._events.append(Message(is_text, None, 0, None, payload))
            return
        if opcode != _CLOSE:
            self._count_control()
        payload = _unmasked(raw, header_len, mask)
        if opcode == _PING:
            self._events.append(Ping(payload))
        elif opcode == _PONG:
            self._events.append(Pong(payload))
        else:
            self._events.append(parse_close(payload))


def _unmasked(raw: bytes | bytearray, header_len: int, mask: bytes | None) -> bytes:
    body = memoryview(raw)[header_len:]
    return apply_mask(body, mask) if mask else bytes(body)


def check_utf8(payload: bytes) -> None:
    # isascii() is a word-at-a-time scan in C; Realtime JSON and base64 audio are almost always
    # ASCII, so the decode (which allocates a str) runs only for text that needs it.
    if not payload.isascii():
        try:
            payload.decode("utf-8")
        except UnicodeDecodeError:
            raise FrameProtocolError(CloseCode.INVALID_DATA, "invalid UTF-8 in text message") from None


# Large payloads are checked in slices of this size, each unmasked (a multiple of 4, so the mask
# keeps its phase) and decoded into memory that the next slice reuses: no copy of the whole
# message is made (a freshly mapped MiB costs ~2 ms of page faults: PERFORMANCE.md).
_UTF8_SLICE = 64 * 1024


def check_utf8_view(view: memoryview, mask: bytes | None = None) -> None:
    """`check_utf8` for a payload still in its received (and maybe masked) buffer, without
    copying it whole: the C decoder's ASCII fast path runs at memory speed."""
    try:
        if len(view) <= _UTF8_SLICE and mask is None:
            codecs.utf_8_decode(view, "strict", True)
            return
        decoder = codecs.getincrementaldecoder("utf-8")()
        for start in range(0, len(view), _UTF8_SLICE):
            part = view[start : start + _UTF8_SLICE]
            decoder.decode(apply_mask(part, mask) if mask else part)
        decoder.decode(b"", True)
    except UnicodeDecodeError:
        raise FrameProtocolError(CloseCode.INVALID_DATA, "invalid UTF-8 in text message") from None


def parse_close(payload: bytes) -> Close:
    if not payload:
        return Close(CloseCode.NO_STATUS, "")
    if len(payload) == 1:
        raise FrameProtocolError(CloseCode.PROTOCOL_ERROR, "close frame with a 1-byte payload")
    code = _U16.unpack_from(payload)[0]
    if not is_valid_close_code(code):
        raise FrameProtocolError(CloseCode.PROTOCOL_ERROR, f"invalid close code {code}")
    try:
        reason = payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        raise FrameProtocolError(CloseCode.INVALID_DATA, "invalid UTF-8 in close reason") from None
    return Close(code, reason)


# -- writing -----------------------------------------------------------------------------------


def encode_frame(opcode: int, payload: bytes | bytearray | memoryview, *, mask: bytes | None = None) -> bytes:
    """One final frame. `mask` is the 4-byte key on the client side of a connection, else None."""
    n = len(payload)
    b0 = 0x80 | opcode
    mbit = 0x80 if mask else 0
    if n < 126:
        header = bytes((b0, mbit | n))
    elif n < 65536:
        header = bytes((b0, mbit | 126)) + _U16.pack(n)
    else:
        header = bytes((b0, mbit | 127)) + _U64.pack(n)
    if mask:
        return header + mask + apply_mask(payload, mask)
    return header + payload


def close_payload(code: int, reason: str) -> bytes:
    """The payload of a close frame; the reason is cut to fit 123 bytes without splitting a character."""
    if code == CloseCode.NO_STATUS:
        return b""
    data = reason.encode("utf-8")
    if len(data) > MAX_CLOSE_REASON_BYTES:
        data = data[:MAX_CLOSE_REASON_BYTES].decode("utf-8", "ignore").encode("utf-8")
    return _U16.pack(code) + data
