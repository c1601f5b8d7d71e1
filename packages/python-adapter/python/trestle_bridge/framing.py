"""Frames: a 4-byte big-endian length, then a JSON payload (`{`) or a binary one (0x01, JSON, blobs)."""
from __future__ import annotations

import json
import json.scanner
import os
import struct

from .errors import ProtocolError

HEADER = struct.Struct(">I")
KIND_JSON = 0x7B  # "{"
KIND_BINARY = 0x01
DEFAULT_MAX_FRAME_BYTES = 1 << 30
MAX_LENGTH = (1 << 32) - 1
# A frame at least this big is read straight into a buffer of its size (no re-buffering copies).
BIG_FRAME = 1 << 20
READ_SIZE = 1 << 16

_pack = HEADER.pack
_unpack_from = HEADER.unpack_from


class FrameError(ProtocolError):
    """The byte stream is not valid frames: the reader stops (the host restarts the worker)."""


def _reject_constant(name: str):
    raise ValueError(f"non-standard JSON constant {name}")


_decoder = json.JSONDecoder(parse_constant=_reject_constant)
_scan = json.scanner.make_scanner(_decoder)


_SPACE = (" ", "\t", "\n", "\r")


def _decode_json(text: str):
    """Strict JSON text -> value (the C scanner directly: no per-call Python wrapper layers)."""
    start = 0
    if text[:1] in _SPACE:
        start = len(text) - len(text.lstrip(" \t\n\r"))
    try:
        value, end = _scan(text, start)
    except StopIteration:
        raise ValueError("expected a JSON value") from None
    if end != len(text) and text[end:].strip():
        raise ValueError(f"extra data after the JSON value at {end}")
    return value


def _no_default(obj):
    raise TypeError(f"{type(obj).__qualname__} is not JSON")


_c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
if _c_make_encoder is not None:
    # Data handed to it is built acyclic by the codec, so no circular-reference markers.
    _c_encode = _c_make_encoder(
        None, _no_default, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, False
    )

    def dumps(obj) -> str:
        """Compact, strict JSON (no NaN/Infinity), ASCII-only."""
        return "".join(_c_encode(obj, 0))

else:  # pragma: no cover - interpreters without the C accelerator
    dumps = json.JSONEncoder(allow_nan=False, separators=(",", ":")).encode


_float_repr = float.__repr__
_int_repr = int.__repr__
_encode_str = json.encoder.encode_basestring_ascii


def result_text(x) -> str:
    """`dumps(x)` for encoded results, without the encoder's set-up for the common scalars."""
    t = type(x)
    if t is float:
        if x - x == 0.0:  # finite (the codec tags the others; dumps would refuse them)
            return _float_repr(x)
    elif t is int:
        return _int_repr(x)
    elif t is str:
        return _encode_str(x)
    elif x is None:
        return "null"
    elif t is bool:
        return "true" if x else "false"
    return dumps(x)


class FrameReader:
    """Turns chunks of bytes into frame payloads; checks each length before allocating anything."""

    __slots__ = ("max_frame_bytes", "_buf", "_big", "_big_got")

    def __init__(self, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES):
        self.max_frame_bytes = max_frame_bytes
        self._buf = b""
        self._big: bytearray | None = None
        self._big_got = 0

    def pending(self) -> int:
        """Bytes held that are not a complete frame yet."""
        return len(self._buf) + (self._big_got if self._big is not None else 0)

    def _check(self, n: int) -> None:
        if n > self.max_frame_bytes:
            raise FrameError(f"frame of {n} bytes exceeds max_frame_bytes ({self.max_frame_bytes})")
        if n == 0:
            raise FrameError("empty frame")

    def feed(self, data) -> list:
        """Adds bytes; returns the payloads completed (bytes, or a bytearray for big frames)."""
        out = []
        if self._big is not None:
            big = self._big
            take = min(len(data), len(big) - self._big_got)
            big[self._big_got : self._big_got + take] = data[:take]
            self._big_got += take
            if self._big_got < len(big):
                return out
            out.append(big)
            self._big = None
            self._big_got = 0
            data = data[take:]
        if self._buf:
            data = self._buf + data
            self._buf = b""
        size = len(data)
        pos = 0
        unpack = HEADER.unpack_from
        while size - pos >= 4:
            (n,) = unpack(data, pos)
            if n > self.max_frame_bytes or n == 0:
                self._check(n)
            end = pos + 4 + n
            if end <= size:
                out.append(data[pos + 4 : end])
                pos = end
                continue
            if n >= BIG_FRAME:
                big = bytearray(n)
                have = size - pos - 4
                big[:have] = data[pos + 4 :]
                self._big = big
                self._big_got = have
                pos = size
            break
        if pos < size:
            self._buf = bytes(data[pos:])
        return out

    def read_from(self, fd: int) -> list:
        """One read from `fd` (raises EOFError at end of file, BlockingIOError when nothing is ready)."""
        big = self._big
        if big is not None:
            got = os.readv(fd, [memoryview(big)[self._big_got :]])
            if got == 0:
                raise EOFError
            self._big_got += got
            if self._big_got < len(big):
                return []
            self._big = None
            self._big_got = 0
            return [big]
        data = os.read(fd, READ_SIZE)
        if not data:
            raise EOFError
        if not self._buf and len(data) > 4:
            n = _unpack_from(data)[0]
            if n + 4 == len(data) and 0 < n <= self.max_frame_bytes:  # exactly one whole frame
                return [data[4:]]
        return self.feed(data)


def parse_payload(payload):
    """A frame payload -> (message dict, blob region or None). Raises FrameError when malformed."""
    if not payload:
        raise FrameError("empty frame")
    kind = payload[0]
    blob = None
    try:
        if kind == KIND_JSON:  # the common case, inlined: the text starts with "{", no space to skip
            text = payload.decode("utf-8") if type(payload) is bytes else str(payload, "utf-8")
            try:
                message, end = _scan(text, 0)
            except StopIteration:
                raise ValueError("expected a JSON value") from None
            if end != len(text) and text[end:].strip():
                raise ValueError(f"extra data after the JSON value at {end}")
        elif kind == KIND_BINARY:
            if len(payload) < 5:
                raise FrameError("binary frame shorter than its header")
            (j,) = HEADER.unpack_from(payload, 1)
            if 5 + j > len(payload):
                raise FrameError(f"binary frame JSON length {j} exceeds the frame")
            view = memoryview(payload)
            message = _decode_json(str(view[5 : 5 + j], "utf-8"))
            blob = view[5 + j :]
        else:
            raise FrameError(f"unknown frame kind byte 0x{kind:02x}")
    except FrameError:
        raise
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise FrameError(f"malformed frame JSON: {exc}") from None
    if type(message) is not dict:
        raise FrameError("a frame's JSON must be an object")
    return message, blob


def json_frame(text: str) -> bytes:
    data = text.encode("utf-8")
    return _pack(len(data)) + data


def binary_frame(text: str, blobs: list) -> list:
    """The parts of a binary frame (header and JSON, then each blob), to be written in order."""
    data = text.encode("utf-8")
    total = 5 + len(data)
    for blob in blobs:
        total += len(blob)
    if total > MAX_LENGTH:
        raise FrameError(f"frame of {total} bytes exceeds the 4-byte length")
    return [_pack(total) + b"\x01" + _pack(len(data)) + data, *blobs]


def frame_size(parts) -> int:
    """Payload length of an encoded frame (its parts as returned by json_frame / binary_frame)."""
    if isinstance(parts, (bytes, bytearray)):
        return len(parts) - 4
    return sum(len(p) for p in parts) - 4


def write_all(fd: int, data) -> None:
    """Writes everything (a blocking fd may still write partially when a signal interrupts it)."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


class FrameWriter:
    """Buffers frames and writes them in as few `write` calls as possible."""

    __slots__ = ("fd", "_parts", "_size")

    def __init__(self, fd: int):
        self.fd = fd
        self._parts: list = []
        self._size = 0

    def __bool__(self) -> bool:
        return bool(self._parts)

    def add(self, frame) -> None:
        if type(frame) is bytes or isinstance(frame, bytearray):
            self._parts.append(frame)
            self._size += len(frame)
        else:
            for part in frame:
                self._parts.append(part)
                self._size += len(part)

    def flush(self) -> None:
        parts = self._parts
        if not parts:
            return
        self._parts = []
        size = self._size
        self._size = 0
        if len(parts) == 1:
            data = parts[0]
            n = os.write(self.fd, data)  # nearly always complete: no memoryview, no loop
            if n < len(data):
                write_all(self.fd, memoryview(data)[n:])
        elif size <= BIG_FRAME:
            write_all(self.fd, b"".join(parts))
        else:  # big blobs: no joined copy
            small: list = []
            for part in parts:
                if len(part) >= 65536:
                    if small:
                        write_all(self.fd, b"".join(small))
                        small = []
                    write_all(self.fd, part)
                else:
                    small.append(part)
            if small:
                write_all(self.fd, b"".join(small))
