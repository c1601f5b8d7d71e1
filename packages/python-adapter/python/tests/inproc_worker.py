"""A Worker driven in this process (no pipes, no subprocess): frames in, frames out, its loop run here."""
from __future__ import annotations

import asyncio
import time

from trestle_bridge.framing import FrameReader, parse_payload
from trestle_bridge.worker import Worker

from .bridge_client import encode_frame


class MemoryWriter:
    def __init__(self):
        self.data = bytearray()
        self._parts = []

    def __bool__(self):
        return bool(self._parts)

    def add(self, frame):
        if isinstance(frame, (bytes, bytearray)):
            self._parts.append(frame)
        else:
            self._parts.extend(frame)

    def flush(self):
        for part in self._parts:
            self.data += part
        self._parts = []


class InProcessWorker:
    def __init__(self, configure=None, now=None):
        kwargs = {} if now is None else {"now": now}
        self.worker = Worker(-1, -1, -1, **kwargs)
        self.worker.writer = MemoryWriter()
        self.loop = asyncio.new_event_loop()
        self.worker.loop = self.loop
        self.reader = FrameReader()
        self.replies = {}
        self._next = 1
        if configure is not False:
            reply = self.request({"id": 0, "op": "configure", "protocol": 1, **(configure or {})})
            assert reply["ok"], reply

    def close(self):
        for task in list(self.worker.tasks.values()):
            task.cancel()
        self.loop.run_until_complete(asyncio.sleep(0))
        self.loop.close()

    def _collect(self):
        writer = self.worker.writer
        writer.flush()
        data = bytes(writer.data)
        writer.data.clear()
        for payload in self.reader.feed(data):
            message, blob = parse_payload(payload)
            self.replies[message["id"]] = (message, bytes(blob) if blob is not None else b"")

    def send(self, message: dict, blobs=()):
        payload = encode_frame(message, blobs)[4:]

        async def pump():
            self.worker.handle(payload)
            self.worker.flush()

        self.loop.run_until_complete(pump())
        self._collect()

    def wait(self, rid, timeout=5.0):
        deadline = time.monotonic() + timeout
        while rid not in self.replies:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no reply to {rid}")
            self.loop.run_until_complete(asyncio.sleep(0.001))
            self._collect()
        return self.replies.pop(rid)

    def request(self, message: dict, blobs=()):
        self.send(message, blobs)
        return self.wait(message["id"])[0]

    def start(self, op, **fields):
        rid = self._next
        self._next += 1
        self.send({"id": rid, "op": op, **fields})
        return rid

    def call(self, op, **fields):
        return self.wait(self.start(op, **fields))[0]

    def ok(self, op, **fields):
        reply = self.call(op, **fields)
        if not reply["ok"]:
            raise AssertionError(f"{op} failed: {reply}")
        return reply["result"]

    def error(self, op, **fields):
        reply = self.call(op, **fields)
        if reply["ok"]:
            raise AssertionError(f"{op} did not fail: {reply}")
        return reply["error"]
