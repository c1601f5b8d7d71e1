"""The control thread and the SIGUSR1 handler, in this process (exit_worker replaced by a recorder)."""
import os
import threading
import unittest
from unittest import mock

from trestle_bridge import control
from trestle_bridge.errors import Cancelled
from trestle_bridge.worker import Worker

from .bridge_client import encode_frame


class FakeWorker:
    max_frame_bytes = 1 << 20

    def __init__(self):
        self.cancels = []
        self.got = threading.Event()

    def request_cancel(self, target):
        self.cancels.append(target)
        self.got.set()

    def fatal(self, exc):
        raise SystemExit(f"fatal {exc}")


class _Exited(BaseException):
    pass


class ControlThreadTests(unittest.TestCase):
    def run_thread(self, parent_pid, fd):
        exits = []
        done = threading.Event()

        def fake_exit(reason="", code=1):
            exits.append(reason)
            done.set()
            raise _Exited()

        worker = FakeWorker()
        # patched for the thread's whole life (stopped after it is joined, cleanups run in reverse)
        for patcher in (mock.patch.object(control, "exit_worker", fake_exit), mock.patch.object(control, "PARENT_CHECK_SECONDS", 0.05)):
            patcher.start()
            self.addCleanup(patcher.stop)
        thread = control.ControlThread(worker, fd, parent_pid)
        thread.run = lambda: _swallow(thread._loop)
        thread.start()
        self.addCleanup(thread.join, 5)
        return worker, thread, exits, done

    def test_cancel_frames_then_eof(self):
        r, w = os.pipe()
        try:
            worker, thread, exits, done = self.run_thread(os.getppid(), r)
            data = encode_frame({"op": "cancel", "target": 7}) + encode_frame({"op": "cancel", "target": 8})
            os.write(w, data[:5])
            os.write(w, data[5:])
            self.assertTrue(_wait(lambda: worker.cancels == [7, 8]))
            os.close(w)
            w = -1
            self.assertTrue(done.wait(5))
            self.assertIn("control pipe closed", exits[0])
            thread.join(5)
        finally:
            os.close(r)
            if w >= 0:
                os.close(w)

    def test_parent_change(self):
        r, w = os.pipe()
        try:
            _worker, thread, exits, done = self.run_thread(os.getppid() + 12345, r)
            self.assertTrue(done.wait(5))
            self.assertIn("parent", exits[0])
            thread.join(5)
        finally:
            os.close(r)
            os.close(w)


def _swallow(fn):
    try:
        fn()
    except _Exited:
        pass


def _wait(predicate, timeout=5.0):
    event = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if predicate():
            return True
        event.wait(0.01)
    return predicate()


class SigusrHandler(unittest.TestCase):
    def test_raises_only_for_the_running_cancelled_request_and_once(self):
        w = Worker(-1, -1, -1)
        w.running = 5
        w._on_sigusr1(None, None)  # not cancelled: nothing
        w.cancelled[6] = None
        w._on_sigusr1(None, None)  # another request was cancelled: nothing
        w.cancelled[5] = None
        with self.assertRaises(Cancelled):
            w._on_sigusr1(None, None)
        self.assertIsNone(w.running)
        self.assertNotIn(5, w.cancelled)
        w._on_sigusr1(None, None)  # a second signal finds nothing running

    def test_cancel_bookkeeping_is_bounded(self):
        w = Worker(-1, -1, -1)
        for target in range(10_000):
            w.request_cancel(target)
        self.assertLessEqual(len(w.cancelled), 4096)
        self.assertIn(9_999, w.cancelled)
        w.request_cancel("not an id")
        self.assertNotIn("not an id", w.cancelled)


if __name__ == "__main__":
    unittest.main()
