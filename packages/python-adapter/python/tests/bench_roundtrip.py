"""Round-trip benchmark: sequential `call math.sqrt(16)` against a newline-JSON echo child over pipes,
and 100 requests in flight. Not a test; run `python3 tests/bench_roundtrip.py [iterations]`."""
from __future__ import annotations

import json
import os
import statistics
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tests.bridge_client import Bridge  # noqa: E402

_HEADER = struct.Struct(">I")
ECHO = "import sys\nfor line in sys.stdin:\n    sys.stdout.write(line)\n    sys.stdout.flush()\n"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), in seconds."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


CPU = {}  # name -> child CPU microseconds per request (load-independent)


def bench_echo(iterations: int) -> list:
    proc = subprocess.Popen(
        [sys.executable, "-u", "-c", ECHO], stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0
    )
    out = proc.stdin.fileno()
    inp = proc.stdout
    times = []
    message = {"id": 0, "op": "call", "session": "s1", "module": "math", "fn": "sqrt", "args": [16]}
    os.write(out, b"{}\n")
    inp.readline()
    cpu0 = cpu_seconds(proc.pid)
    for i in range(iterations):
        t0 = time.perf_counter()
        message["id"] = i
        os.write(out, (json.dumps(message, separators=(",", ":")) + "\n").encode())
        line = inp.readline()
        json.loads(line)
        times.append(time.perf_counter() - t0)
    CPU["echo"] = (cpu_seconds(proc.pid) - cpu0) / iterations * 1e6
    proc.stdin.close()
    proc.wait()
    return times


def _read_frame(fd: int, buf: bytearray) -> bytes:
    while True:
        if len(buf) >= 4:
            (n,) = _HEADER.unpack_from(buf)
            if len(buf) >= 4 + n:
                payload = bytes(buf[4 : 4 + n])
                del buf[: 4 + n]
                return payload
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            raise EOFError
        buf += chunk


def bench_bridge(iterations: int) -> list:
    bridge = Bridge()
    times = []
    buf = bytearray()
    message = {"id": 0, "op": "call", "session": "s1", "module": "math", "fn": "sqrt", "args": [16]}
    cpu0 = cpu_seconds(bridge.proc.pid)
    try:
        for i in range(1, iterations + 1):
            t0 = time.perf_counter()
            message["id"] = i
            text = json.dumps(message, separators=(",", ":")).encode()
            os.write(bridge.req_w, _HEADER.pack(len(text)) + text)
            reply = json.loads(_read_frame(bridge.rep_r, buf))
            times.append(time.perf_counter() - t0)
            assert reply["result"] == 4.0, reply
        CPU["bridge"] = (cpu_seconds(bridge.proc.pid) - cpu0) / iterations * 1e6
    finally:
        bridge.close()
    return times


def bench_in_flight(total: int, window: int, op: dict) -> float:
    """Requests per second with `window` requests in flight."""
    bridge = Bridge()
    buf = bytearray()
    try:
        sent = done = 0
        t0 = time.perf_counter()
        while done < total:
            frames = []
            while sent < total and sent - done < window:
                sent += 1
                text = json.dumps({"id": sent, **op}, separators=(",", ":")).encode()
                frames.append(_HEADER.pack(len(text)) + text)
            if frames:
                os.write(bridge.req_w, b"".join(frames))
            reply = json.loads(_read_frame(bridge.rep_r, buf))
            assert reply["ok"], reply
            done += 1
        return total / (time.perf_counter() - t0)
    finally:
        bridge.close()


def main() -> None:
    iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    echo = bench_echo(iterations)
    bridge = bench_bridge(iterations)
    e = statistics.median(echo) * 1e6
    b = statistics.median(bridge) * 1e6
    print(f"echo   median {e:7.1f} us   mean {statistics.mean(echo) * 1e6:7.1f} us")
    print(f"bridge median {b:7.1f} us   mean {statistics.mean(bridge) * 1e6:7.1f} us   ratio {b / e:.2f}")
    print(f"child CPU per request: echo {CPU['echo']:.1f} us, bridge {CPU['bridge']:.1f} us")
    sync_op = {"op": "call", "session": "s1", "module": "math", "fn": "sqrt", "args": [16]}
    async_op = {"op": "call", "session": "s1", "module": "asyncio", "fn": "sleep", "args": [0]}
    print(f"100 in flight, math.sqrt:     {bench_in_flight(20_000, 100, sync_op):9.0f} req/s")
    print(f"100 in flight, asyncio.sleep: {bench_in_flight(20_000, 100, async_op):9.0f} req/s")


if __name__ == "__main__":
    main()
