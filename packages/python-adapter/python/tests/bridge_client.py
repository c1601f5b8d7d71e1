"""A tiny host for end-to-end tests: spawns `python3 -u -m trestle_bridge` on pipes and speaks frames."""
from __future__ import annotations

import json
import os
import select
import struct
import subprocess
import sys
import threading
import time

PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES_DIR = os.path.join(PYTHON_DIR, "tests", "fixtures")
_HEADER = struct.Struct(">I")


def encode_frame(message: dict, blobs=()) -> bytes:
    text = json.dumps(message, separators=(",", ":"), allow_nan=False).encode()
    if not blobs:
        return _HEADER.pack(len(text)) + text
    body = b"\x01" + _HEADER.pack(len(text)) + text + b"".join(blobs)
    return _HEADER.pack(len(body)) + body


def decode_payload(payload: bytes):
    if payload[:1] == b"{":
        return json.loads(payload), b""
    assert payload[:1] == b"\x01", payload[:10]
    (j,) = _HEADER.unpack_from(payload, 1)
    return json.loads(payload[5 : 5 + j]), payload[5 + j :]


class _Drain(threading.Thread):
    def __init__(self, stream):
        super().__init__(daemon=True)
        self.stream = stream
        self.chunks = []
        self.size = 0

    def run(self):
        while True:
            data = self.stream.read1(1 << 16) if hasattr(self.stream, "read1") else self.stream.read(1 << 16)
            if not data:
                return
            self.chunks.append(data)
            self.size += len(data)

    def text(self) -> str:
        return b"".join(self.chunks).decode(errors="replace")


class Bridge:
    """One worker process. `call(op, **fields)` sends a request and waits for its reply."""

    def __init__(self, env=None, configure=None, extra_path=(), hello_timeout=10.0, argv=None):
        host_in_r, self.req_w = os.pipe()  # requests: host writes, worker reads
        self.rep_r, worker_out_w = os.pipe()  # replies: worker writes, host reads
        ctl_r, self.ctl_w = os.pipe()
        child_env = dict(os.environ)
        paths = [PYTHON_DIR, FIXTURES_DIR, *extra_path]
        child_env["PYTHONPATH"] = os.pathsep.join(paths)
        child_env["TRESTLE_FD_IN"] = str(host_in_r)
        child_env["TRESTLE_FD_OUT"] = str(worker_out_w)
        child_env["TRESTLE_FD_CTL"] = str(ctl_r)
        if env:
            child_env.update(env)
        self.proc = subprocess.Popen(
            argv or [sys.executable, "-u", "-m", "trestle_bridge"],
            pass_fds=(host_in_r, worker_out_w, ctl_r),
            env=child_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # the worker leads its own process group, as the host spawns it
        )
        for fd in (host_in_r, worker_out_w, ctl_r):
            os.close(fd)
        self.stdout = _Drain(self.proc.stdout)
        self.stderr = _Drain(self.proc.stderr)
        self.stdout.start()
        self.stderr.start()
        self._buf = b""
        self._next_id = 1
        self._replies = {}
        self.events = []
        self.hello = self.recv(hello_timeout)[0]
        if configure is not False:
            reply = self.request_raw({"id": 0, "op": "configure", "protocol": 1, **(configure or {})})
            assert reply["ok"], reply

    # -- frames ----------------------------------------------------------------------------------------

    def send(self, message: dict, blobs=()) -> None:
        data = memoryview(encode_frame(message, blobs))
        while data:
            n = os.write(self.req_w, data)
            data = data[n:]

    def send_control(self, message: dict) -> None:
        os.write(self.ctl_w, encode_frame(message))

    def recv(self, timeout: float = 10.0):
        """The next frame from the worker: (message, blob region)."""
        deadline = time.monotonic() + timeout
        while True:
            if len(self._buf) >= 4:
                (n,) = _HEADER.unpack_from(self._buf)
                if len(self._buf) >= 4 + n:
                    payload = self._buf[4 : 4 + n]
                    self._buf = self._buf[4 + n :]
                    return decode_payload(payload)
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no frame from the worker within {timeout}s; stderr: {self.stderr.text()[-2000:]}")
            ready = select.select([self.rep_r], [], [], left)[0]
            if ready:
                chunk = os.read(self.rep_r, 1 << 20)
                if not chunk:
                    raise EOFError(f"the worker closed its replies pipe; stderr: {self.stderr.text()[-2000:]}")
                self._buf += chunk

    def wait_reply(self, rid: int, timeout: float = 10.0):
        deadline = time.monotonic() + timeout
        while rid not in self._replies:
            message, blob = self.recv(max(0.0, deadline - time.monotonic()))
            if "event" in message:
                self.events.append(message)
                continue
            self._replies[message["id"]] = (message, blob)
        return self._replies.pop(rid)

    def request_raw(self, message: dict, blobs=(), timeout: float = 10.0) -> dict:
        self.send(message, blobs)
        return self.wait_reply(message["id"], timeout)[0]

    def next_id(self) -> int:
        rid = self._next_id
        self._next_id += 1
        return rid

    def start(self, op: str, **fields) -> int:
        """Sends a request without waiting; returns its id."""
        rid = self.next_id()
        self.send({"id": rid, "op": op, **fields})
        return rid

    def call(self, op: str, timeout: float = 10.0, **fields) -> dict:
        rid = self.start(op, **fields)
        return self.wait_reply(rid, timeout)[0]

    def ok(self, op: str, **fields):
        reply = self.call(op, **fields)
        if not reply.get("ok"):
            raise AssertionError(f"{op} failed: {reply}")
        return reply["result"]

    # -- lifetime -------------------------------------------------------------------------------------

    def close_pipes(self) -> None:
        for fd in (self.req_w, self.ctl_w):
            try:
                os.close(fd)
            except OSError:
                pass

    def close(self) -> None:
        self.close_pipes()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        try:
            os.close(self.rep_r)
        except OSError:
            pass
        self.stdout.join(timeout=2)
        self.stderr.join(timeout=2)
        self.proc.stdout.close()
        self.proc.stderr.close()
