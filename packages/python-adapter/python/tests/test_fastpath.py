"""The idle fast path (fastpath.py): the fd 3 reader serving requests without returning to asyncio, and
going back to it whenever asyncio has work (tasks, timers such as the sweep, cross-thread wake-ups)."""
import asyncio
import os
import select
import threading
import time
import unittest

from trestle_bridge.fastpath import FastPath
from trestle_bridge.framing import FrameReader, parse_payload
from trestle_bridge.worker import Worker

from .bridge_client import encode_frame

FX = "tests.fixtures.bridge_fixtures"
S = "s1"
SQRT = {"op": "call", "session": S, "module": "math", "fn": "sqrt", "args": [16]}


class Loop(unittest.TestCase):
    """FastPath.wait on a bare loop watching one pipe."""

    def setUp(self):
        self.r, self.w = os.pipe()
        self.loop = asyncio.new_event_loop()
        self.loop.add_reader(self.r, lambda: None)
        self.fast = FastPath.create(self.loop, self.r)
        self.assertIsNotNone(self.fast)

    def tearDown(self):
        self.loop.remove_reader(self.r)
        self.loop.close()
        os.close(self.r)
        os.close(self.w)

    def timed_wait(self):
        rescue = threading.Timer(3.0, os.write, (self.w, b"x"))  # a broken wait fails, not hangs
        rescue.start()
        t0 = time.monotonic()
        try:
            result = self.fast.wait()
        finally:
            rescue.cancel()
            rescue.join()
        return result, time.monotonic() - t0

    def test_readable_and_idle(self):
        os.write(self.w, b"x")
        self.assertIs(self.fast.wait(), True)

    def test_a_ready_callback_returns_at_once(self):
        os.write(self.w, b"x")
        self.loop.call_soon(lambda: None)
        self.assertIs(self.fast.wait(), False)

    def test_a_timer_ends_the_wait_when_due(self):
        self.loop.call_later(0.05, lambda: None)
        result, elapsed = self.timed_wait()
        self.assertIs(result, False)
        self.assertGreaterEqual(elapsed, 0.04)
        self.assertLess(elapsed, 2.0)

    def test_a_timer_months_away(self):
        self.loop.call_later(90 * 86400, lambda: None)  # beyond what poll() takes in milliseconds
        os.write(self.w, b"x")
        self.assertIs(self.fast.wait(), True)

    def test_call_soon_threadsafe_wakes_it(self):
        timer = threading.Timer(0.05, self.loop.call_soon_threadsafe, (lambda: None,))
        timer.start()
        self.addCleanup(timer.join)
        self.loop.call_later(30, lambda: None)  # the wait would otherwise last until this one
        result, elapsed = self.timed_wait()
        self.assertIs(result, False)
        self.assertLess(elapsed, 5.0)

    def test_no_fast_path_while_asyncio_watches_another_fd(self):
        r2, w2 = os.pipe()
        self.addCleanup(os.close, r2)
        self.addCleanup(os.close, w2)
        os.write(self.w, b"x")
        self.loop.add_reader(r2, lambda: None)
        self.assertIs(self.fast.wait(), False)
        self.loop.remove_reader(r2)
        self.assertIs(self.fast.wait(), True)

    def test_none_in_debug_mode_or_for_an_unwatched_fd(self):
        self.assertIsNone(FastPath.create(self.loop, self.w))
        self.loop.set_debug(True)
        self.assertIsNone(FastPath.create(self.loop, self.r))


class PipeHost:
    """A Worker on real pipes whose fd 3 reader (and fast path) runs on a loop in this thread, and a
    host script run in another thread that writes requests and reads replies."""

    def __init__(self, test):
        self.req_r, self.req_w = os.pipe()
        self.rep_r, self.rep_w = os.pipe()
        for fd in (self.req_r, self.req_w, self.rep_r, self.rep_w):
            test.addCleanup(os.close, fd)
        self.worker = w = Worker(self.req_r, self.rep_w, -1)
        self.loop = asyncio.new_event_loop()
        test.addCleanup(self.loop.close)
        w.loop = self.loop
        self.entries = 0  # times asyncio called the fd 3 reader
        self.serves = 0  # chunks served
        serve = w._serve
        on_readable = w._on_readable

        def counted_serve():
            self.serves += 1
            serve()

        def counted_on_readable():
            self.entries += 1
            on_readable()

        w._serve = counted_serve
        os.set_blocking(self.req_r, False)
        self.loop.add_reader(self.req_r, counted_on_readable)
        test.addCleanup(self.loop.remove_reader, self.req_r)
        w.fast = FastPath.create(self.loop, self.req_r)
        test.assertIsNotNone(w.fast)
        self.reader = FrameReader()
        self.replies = {}
        self.arrived = []
        self._next = 1

    # -- host side (the script's thread) --------------------------------------------------------------

    def start(self, **message) -> int:
        rid = message.setdefault("id", self._next)
        self._next = max(self._next, rid) + 1
        os.write(self.req_w, encode_frame(message))
        return rid

    def wait(self, rid: int, timeout: float = 5.0) -> dict:
        deadline = time.monotonic() + timeout
        while rid not in self.replies:
            if not select.select([self.rep_r], [], [], max(0.0, deadline - time.monotonic()))[0]:
                raise TimeoutError(f"no reply to {rid}")
            for payload in self.reader.feed(os.read(self.rep_r, 1 << 16)):
                message = parse_payload(payload)[0]
                self.arrived.append(message["id"])
                self.replies[message["id"]] = message
        return self.replies.pop(rid)

    def ok(self, **message):
        reply = self.wait(self.start(**message))
        assert reply["ok"], reply
        return reply["result"]

    # -- worker side (this thread) --------------------------------------------------------------------

    def run(self, script, timeout: float = 10.0):
        """Runs `script(self)` in a thread while the worker's loop runs here; returns its result."""
        done = self.loop.create_future()

        def settle(result, exc):
            if not done.done():
                done.set_exception(exc) if exc is not None else done.set_result(result)

        def body():
            try:
                result, exc = script(self), None
            except BaseException as error:  # reported in the test's thread
                result, exc = None, error
            self.loop.call_soon_threadsafe(settle, result, exc)

        thread = threading.Thread(target=body, daemon=True)
        thread.start()
        try:
            return self.loop.run_until_complete(asyncio.wait_for(done, timeout))
        finally:
            thread.join(timeout)


class WorkerFastPath(unittest.TestCase):
    def setUp(self):
        self.host = PipeHost(self)

    def configure(self, host, **options):
        host.ok(id=0, op="configure", protocol=1, **options)

    def test_sync_requests_never_go_back_to_asyncio(self):
        def script(host):
            self.configure(host)
            return [host.ok(**SQRT) for _ in range(30)]

        self.assertEqual(self.host.run(script), [4.0] * 30)
        self.assertGreaterEqual(self.host.serves, 31)
        self.assertLessEqual(self.host.entries, 2)  # without the fast path: one per request

    def test_an_async_call_arriving_while_idle_runs_as_a_task_concurrently(self):
        def script(host):
            self.configure(host)
            host.ok(**SQRT)  # the worker is now idle on the fast path
            t0 = time.monotonic()
            slow = [host.start(op="call", session=S, module=FX, fn="delayed", args=[i, 0.3]) for i in range(2)]
            quick = [host.ok(**SQRT) for _ in range(5)]
            results = [host.wait(rid)["result"] for rid in slow]
            return quick, results, time.monotonic() - t0, slow

        quick, results, elapsed, slow = self.host.run(script)
        self.assertEqual((quick, results), ([4.0] * 5, [0, 1]))
        self.assertLess(elapsed, 0.55)  # concurrent: 0.3 s, not 0.6 s
        arrived = self.host.arrived
        self.assertGreater(min(arrived.index(rid) for rid in slow), arrived.index(slow[-1] + 5))  # sync ones first
        self.assertFalse(self.host.worker.tasks)

    def test_a_cancel_from_another_thread_reaches_a_task_while_idle(self):
        def script(host):
            self.configure(host)
            rid = host.start(op="call", session=S, module=FX, fn="async_sleep_forever")
            host.ok(**SQRT)  # the task is started; the worker waits on the fast path
            t0 = time.monotonic()
            host.worker.request_cancel(rid)  # as the control thread does
            return host.wait(rid), time.monotonic() - t0

        reply, elapsed = self.host.run(script)
        self.assertEqual(reply["error"]["kind"], "cancelled")
        self.assertLess(elapsed, 2.0)

    def test_the_sweep_runs_while_idle(self):
        def script(host):
            self.configure(host, sweep_interval_ms=20, defaults={"max_refs": 100, "ttl_ms": 50})
            host.ok(op="call", session=S, module=FX, fn="Counter")
            before = host.ok(op="stats")["refs"]
            time.sleep(0.4)  # no request: only the sweep timer can remove the ref
            return before, host.ok(op="stats")

        before, stats = self.host.run(script)
        self.assertEqual((before, stats["refs"], stats["counters"]["evicted_ttl"]), (1, 0, 1))


if __name__ == "__main__":
    unittest.main()
