"""End to end: `python3 -u -m trestle_bridge` as a subprocess on pipes, as the Node host runs it."""
import os
import struct
import subprocess
import sys
import time
import unittest

from .bridge_client import FIXTURES_DIR, PYTHON_DIR, Bridge, encode_frame

FX = "bridge_fixtures"
S = "s1"


def process_gone(pid: int) -> bool:
    """Dead or a zombie (PID 1 in a container may never reap an orphan)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False


def wait_until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


class SharedWorker(unittest.TestCase):
    """One worker for the tests that leave it usable."""

    @classmethod
    def setUpClass(cls):
        cls.b = Bridge()

    @classmethod
    def tearDownClass(cls):
        cls.b.close()

    def test_hello_and_configure(self):
        hello = self.b.hello
        self.assertEqual(hello["event"], "hello")
        self.assertEqual(hello["protocol"], 1)
        self.assertEqual(hello["pid"], self.b.proc.pid)
        self.assertEqual(hello["implementation"], "CPython")
        self.assertEqual(hello["platform"], sys.platform)
        self.assertEqual(hello["features"], ["binary", "async", "cancel", "batch", "stream"])

    def test_sqrt_and_refs(self):
        self.assertEqual(self.b.call("call", session=S, module="math", fn="sqrt", args=[16]), {"id": self.b._next_id - 1, "ok": True, "result": 4.0})
        pattern = self.b.ok("call", session=S, module="re", fn="compile", args=["a+"])
        self.assertEqual(
            {k: pattern[k] for k in ("__type__", "__schema__", "session_id", "type_name", "python_module")},
            {"__type__": "ref", "__schema__": 1, "session_id": S, "type_name": "Pattern", "python_module": "re"},
        )
        match = self.b.ok("method", session=S, ref=pattern, name="match", args=["aaab"])
        self.assertEqual(self.b.ok("method", session=S, ref=match, name="group"), "aaa")
        self.assertEqual(self.b.ok("attr", session=S, ref=pattern, name="pattern"), "a+")
        self.assertEqual(self.b.ok("release", session=S, ids=[pattern["id"]]), {"released": 1})
        err = self.b.call("method", session=S, ref=pattern, name="match", args=["a"])["error"]
        self.assertEqual((err["kind"], err["reason"], err["ref_id"]), ("ref_not_found", "released", pattern["id"]))

    def test_session_mismatch(self):
        ref = self.b.ok("call", session="mine", module=FX, fn="Counter")
        err = self.b.call("method", session="theirs", ref=ref, name="add")["error"]
        self.assertEqual((err["kind"], err["expected_session"], err["actual_session"]), ("session_mismatch", "mine", "theirs"))

    def test_ttl_and_max_refs(self):
        ttl = self.b.ok("call", session="ttl", limits={"max_refs": 100, "ttl_ms": 100}, module=FX, fn="Counter")
        time.sleep(0.25)  # the TTL itself is what is tested: let it run out
        err = self.b.call("method", session="ttl", ref=ttl, name="add")["error"]
        self.assertEqual((err["kind"], err["reason"]), ("ref_not_found", "ttl"))
        refs = [self.b.ok("call", session="small", limits={"max_refs": 2, "ttl_ms": 0}, module=FX, fn="Counter") for _ in range(3)]
        err = self.b.call("method", session="small", ref=refs[0], name="add")["error"]
        self.assertEqual((err["kind"], err["reason"]), ("ref_not_found", "lru"))
        self.assertEqual(self.b.ok("method", session="small", ref=refs[2], name="add"), 1)

    def test_streams(self):
        gen = self.b.ok("call", session=S, module=FX, fn="fails_after", args=[3], stream=True)
        self.assertTrue(gen["stream"])
        result = self.b.ok("stream_next", session=S, ref=gen, n=10)
        self.assertEqual((result["items"], result["done"]), ([0, 1, 2], True))
        self.assertEqual((result["error"]["kind"], result["error"]["type"], result["error"]["message"]), ("python", "ValueError", "boom"))
        self.b.ok("call", session=S, module=FX, fn="clear_events")
        gen = self.b.ok("call", session=S, module=FX, fn="counting", args=[100], stream=True)
        self.assertEqual(self.b.ok("stream_next", session=S, ref=gen, n=2), {"items": [0, 1], "done": False})
        self.assertEqual(self.b.ok("stream_close", session=S, ref=gen), {"closed": True})
        self.assertEqual(self.b.ok("call", session=S, module=FX, fn="events"), ["counting closed"])

    def test_ten_megabytes_through_a_binary_frame(self):
        data = os.urandom(10 * 1024 * 1024)
        rid = self.b.next_id()
        self.b.send(
            {"id": rid, "op": "call", "session": S, "module": FX, "fn": "identity", "args": [{"__type__": "bytes", "blob": [0, len(data)]}]},
            [data],
        )
        message, blob = self.b.wait_reply(rid, timeout=20)
        self.assertEqual(message["result"], {"__type__": "bytes", "blob": [0, len(data)]})
        self.assertEqual(blob, data)

    def test_async_calls_finish_out_of_order(self):
        ids = [self.b.start("call", session=S, module=FX, fn="delayed", args=[i, 0.3 - 0.1 * i]) for i in range(3)]
        arrived = []
        while len(arrived) < 3:
            message, _ = self.b.recv(5)
            arrived.append(message["id"])
            self.assertEqual(message["result"], ids.index(message["id"]))
        self.assertEqual(arrived, list(reversed(ids)))
        many = [self.b.start("call", session=S, module="asyncio", fn="sleep", args=[0.05]) for _ in range(100)]
        t0 = time.monotonic()
        for rid in many:
            self.assertTrue(self.b.wait_reply(rid, 5)[0]["ok"])
        self.assertLess(time.monotonic() - t0, 2.0)  # concurrently, not 100 x 50 ms

    def started(self, fn, seconds):
        """Starts a call that prints a marker, and waits (bounded) until it is running."""
        mark = f"started-{fn}-{self.b._next_id}"
        rid = self.b.start("call", session=S, module=FX, fn=fn, args=[mark, seconds])
        self.assertTrue(wait_until(lambda: mark in self.b.stdout.text(), 5))
        return rid

    def test_cancel_sleep_through_control_pipe(self):
        rid = self.started("mark_then_sleep", 30)
        t0 = time.monotonic()
        self.b.send_control({"op": "cancel", "target": rid})
        reply = self.b.wait_reply(rid, timeout=2)[0]
        self.assertEqual(reply["error"]["kind"], "cancelled")
        self.assertLess(time.monotonic() - t0, 1.0)
        self.assertEqual(self.b.ok("call", session=S, module="math", fn="sqrt", args=[4]), 2.0)

    def test_cancel_pure_python_loop(self):
        rid = self.started("mark_then_busy", 30)
        t0 = time.monotonic()
        self.b.send_control({"op": "cancel", "target": rid})
        self.assertEqual(self.b.wait_reply(rid, timeout=2)[0]["error"]["kind"], "cancelled")
        self.assertLess(time.monotonic() - t0, 1.0)

    def test_cancel_async(self):
        self.b.ok("call", session=S, module=FX, fn="clear_events")
        rid = self.b.start("call", session=S, module="asyncio", fn="sleep", args=[30])
        other = self.b.start("call", session=S, module=FX, fn="async_sleep_forever")
        self.assertEqual(self.b.ok("ping"), {"pong": True})  # both are running as tasks now
        t0 = time.monotonic()
        self.b.send_control({"op": "cancel", "target": rid})
        self.b.send({"op": "cancel", "target": other})  # fd 3 carries cancel too
        self.assertEqual(self.b.wait_reply(rid, timeout=2)[0]["error"]["kind"], "cancelled")
        self.assertEqual(self.b.wait_reply(other, timeout=2)[0]["error"]["kind"], "cancelled")
        self.assertLess(time.monotonic() - t0, 1.0)
        self.assertEqual(self.b.ok("call", session=S, module=FX, fn="events"), ["async sleep cancelled"])

    def test_cancel_request_not_started(self):
        blocker = self.b.start("call", session=S, module="time", fn="sleep", args=[0.3])
        queued = self.b.start("call", session=S, module="math", fn="sqrt", args=[9])
        self.b.send_control({"op": "cancel", "target": queued})
        self.assertTrue(self.b.wait_reply(blocker)[0]["ok"])
        self.assertEqual(self.b.wait_reply(queued)[0]["error"]["kind"], "cancelled")

    def test_print_a_megabyte(self):
        before = self.b.stdout.size
        self.assertEqual(self.b.ok("call", session=S, module=FX, fn="print_lots", args=[1 << 20]), "printed")
        self.assertEqual(self.b.ok("call", session=S, module="math", fn="sqrt", args=[1]), 1.0)
        self.assertTrue(wait_until(lambda: self.b.stdout.size - before >= 1 << 20, 5))

    def test_batch_stats_doctor(self):
        items = self.b.ok(
            "batch",
            items=[
                {"op": "call", "session": S, "module": "math", "fn": "sqrt", "args": [16]},
                {"op": "call", "session": S, "module": FX, "fn": "delayed", "args": ["later", 0.01]},
                {"op": "call", "session": S, "module": "math", "fn": "sqrt", "args": [-1]},
            ],
        )
        self.assertEqual(items[0], {"ok": True, "result": 4.0})
        self.assertEqual(items[1], {"ok": True, "result": "later"})
        self.assertEqual(items[2]["error"]["type"], "ValueError")
        stats = self.b.ok("stats", session=S)
        self.assertEqual(stats["pid"], self.b.proc.pid)
        self.assertGreater(stats["rss_bytes"], 0)
        self.assertIn("calls", stats["counters"])
        self.assertEqual(stats["session"]["id"], S)
        doctor = self.b.ok("doctor", modules=["json", "definitely_not_a_module"])
        self.assertEqual(doctor["modules"]["json"], True)
        self.assertIsInstance(doctor["modules"]["definitely_not_a_module"], str)
        self.assertEqual(doctor["executable"], self.b.hello["executable"])

    def test_codecs_through_configure(self):
        reply = self.b.call("configure", protocol=1, codecs=["codec_example:CODECS"])
        self.assertEqual(reply["error"]["type"], "ModuleNotFoundError")  # not on the worker's path
        reply = self.b.call("configure", protocol=1, codecs=["tests.codec_example:CODECS"])
        self.assertTrue(reply["ok"], reply)
        self.assertEqual(
            self.b.ok("call", session=S, module="decimal", fn="Decimal", args=["2.50"]),
            {"__type__": "custom", "codec": "decimal", "v": "2.50"},
        )


class Lifecycle(unittest.TestCase):
    def test_host_death_kills_the_worker_and_its_children(self):
        b = Bridge()
        try:
            sleeper = b.ok("call", session=S, module=FX, fn="spawn_sleeper", args=[30])
            self.assertFalse(process_gone(sleeper))
            b.close_pipes()  # the host "died": the kernel closes its ends
            b.proc.wait(timeout=5)
            self.assertTrue(wait_until(lambda: process_gone(sleeper), 5))
        finally:
            b.close()

    def test_sweep_runs_while_idle(self):
        b = Bridge(configure={"sweep_interval_ms": 20, "defaults": {"max_refs": 100, "ttl_ms": 50}})
        try:
            b.ok("call", session=S, module=FX, fn="Counter")
            time.sleep(0.4)  # idle on the fast path: only the sweep timer can drop the ref
            stats = b.ok("stats")
            self.assertEqual((stats["refs"], stats["counters"]["evicted_ttl"]), (0, 1))
        finally:
            b.close()

    def test_requests_pipe_eof_alone(self):
        b = Bridge()
        try:
            os.close(b.req_w)
            self.assertIsNotNone(b.proc.wait(timeout=5))
        finally:
            b.close()

    def test_control_pipe_eof_alone(self):
        b = Bridge()
        try:
            os.close(b.ctl_w)
            self.assertIsNotNone(b.proc.wait(timeout=5))
        finally:
            b.close()

    def test_shutdown(self):
        b = Bridge()
        try:
            self.assertIsNone(b.ok("shutdown"))
            self.assertEqual(b.proc.wait(timeout=5), 0)
        finally:
            b.close()

    def test_oversize_frame_is_a_protocol_error(self):
        b = Bridge(configure={"max_frame_bytes": 1000})
        try:
            os.write(b.req_w, struct.pack(">I", 1001) + b"{")
            self.assertEqual(b.proc.wait(timeout=5), 3)
            b.stderr.join(timeout=2)
            self.assertIn("exceeds max_frame_bytes", b.stderr.text())
        finally:
            b.close()

    def test_bad_kind_byte_is_a_protocol_error(self):
        b = Bridge()
        try:
            os.write(b.req_w, struct.pack(">I", 2) + b"[]")
            self.assertEqual(b.proc.wait(timeout=5), 3)
        finally:
            b.close()

    def test_rlimits(self):
        b = Bridge(configure={"rlimits": {"cpu_seconds": 1000, "as_bytes": 16 << 30}})
        try:
            for name, value in (("RLIMIT_CPU", 1000), ("RLIMIT_AS", 16 << 30)):
                limit = b.ok("call", session=S, module="resource", fn="getrlimit", args=[b.ok("attr", session=S, module="resource", name=name)])
                self.assertEqual(limit, {"__type__": "tuple", "items": [value, value]})
        finally:
            b.close()

    def test_configure_protocol_mismatch(self):
        b = Bridge(configure=False)
        try:
            self.assertEqual(b.call("ping")["error"]["kind"], "protocol")
            reply = b.request_raw({"id": 0, "op": "configure", "protocol": 2})
            self.assertEqual(reply["error"]["kind"], "protocol")
        finally:
            b.close()

    def test_dies_when_its_parent_dies(self):
        """The worker's parent exits while the pipes stay open (held here): ppid check / PDEATHSIG."""
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        ctl_r, ctl_w = os.pipe()
        launcher = (
            "import os, subprocess, sys\n"
            "fds = [int(x) for x in sys.argv[1:5]]\n"
            "p = subprocess.Popen([sys.executable, '-u', '-m', 'trestle_bridge'], pass_fds=fds[:3], start_new_session=True,\n"
            "                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
            "import select\n"
            "select.select([fds[3]], [], [], 10)\n"  # its hello: it is running and knows its parent
            "print(p.pid, flush=True)\n"
        )
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([PYTHON_DIR, FIXTURES_DIR])
        env.update(TRESTLE_FD_IN=str(req_r), TRESTLE_FD_OUT=str(rep_w), TRESTLE_FD_CTL=str(ctl_r))
        try:
            out = subprocess.run(
                [sys.executable, "-c", launcher, str(req_r), str(rep_w), str(ctl_r), str(rep_r)],
                pass_fds=(req_r, rep_w, ctl_r, rep_r),
                env=env,
                stdout=subprocess.PIPE,
                timeout=10,
                check=True,
            )
            worker = int(out.stdout.split()[0])
            self.assertTrue(wait_until(lambda: process_gone(worker), 4))
        finally:
            for fd in (req_r, req_w, rep_r, rep_w, ctl_r, ctl_w):
                os.close(fd)

    def test_frames_split_across_writes(self):
        b = Bridge()
        try:
            data = encode_frame({"id": 42, "op": "call", "session": S, "module": "math", "fn": "sqrt", "args": [81]})
            data += encode_frame({"id": 43, "op": "ping"})
            for i in range(len(data)):
                os.write(b.req_w, data[i : i + 1])
            self.assertEqual(b.wait_reply(42)[0]["result"], 9.0)
            self.assertEqual(b.wait_reply(43)[0]["result"], {"pong": True})
        finally:
            b.close()


if __name__ == "__main__":
    unittest.main()
