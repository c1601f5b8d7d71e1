"""The control thread: cancel frames from fd 5, and dying with the host.

The worker exits (killing its process group first) when fd 5 reaches EOF or when `os.getppid()`
changes (checked every second). `exit_worker` is also used by the main loop at EOF of fd 3.
"""
from __future__ import annotations

import os
import select
import signal
import sys
import threading

from .framing import FrameError, FrameReader, parse_payload

PARENT_CHECK_SECONDS = 1.0
_PR_SET_PDEATHSIG = 1
_F_SETPIPE_SZ = 1031
PIPE_SIZE = 1 << 20


def exit_worker(reason: str = "", code: int = 1) -> None:
    """The host is gone: kill our process group (our children too), then exit at once."""
    try:
        # Only as the leader of our own group (as the host spawns us): never the group of whoever
        # started us some other way.
        if os.getpgrp() == os.getpid():
            os.killpg(0, signal.SIGKILL)
    except Exception:
        pass
    os._exit(code)


def set_parent_death_signal() -> None:
    """Linux: SIGTERM when the parent dies (best effort); SIGTERM kills our group, then us.

    Not SIGKILL: that would kill this process before it could kill its group, leaving the processes
    the user's code started behind. The control thread's EOF check covers a main thread stuck in C.
    """
    try:
        signal.signal(signal.SIGTERM, lambda _signum, _frame: exit_worker("SIGTERM (host gone)", 0))
    except Exception:
        pass
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except Exception:
        pass


def grow_pipe(fd: int) -> None:
    """Linux: a 1 MiB pipe buffer (fewer wake-ups for big frames); best effort."""
    if fd < 0 or not sys.platform.startswith("linux"):
        return
    try:
        import fcntl

        fcntl.fcntl(fd, _F_SETPIPE_SZ, PIPE_SIZE)
    except Exception:
        pass


class ControlThread(threading.Thread):
    def __init__(self, worker, fd: int, parent_pid: int | None = None):
        super().__init__(name="trestle-control", daemon=True)
        self.worker = worker
        self.fd = fd
        self.parent_pid = os.getppid() if parent_pid is None else parent_pid

    def run(self) -> None:
        try:
            self._loop()
        except Exception as exc:  # never die silently: without this thread nobody watches the host
            try:
                sys.stderr.write(f"trestle_bridge: control thread failed: {exc!r}\n")
            except Exception:
                pass
            exit_worker("control thread failed")

    def _loop(self) -> None:
        fd = self.fd
        reader = FrameReader(self.worker.max_frame_bytes)
        watched = [fd] if fd >= 0 else []
        while True:
            try:
                ready = select.select(watched, [], [], PARENT_CHECK_SECONDS)[0]
            except InterruptedError:
                continue
            except (OSError, ValueError):
                exit_worker("the control pipe is not usable")
            if os.getppid() != self.parent_pid:
                exit_worker("the parent process changed (host gone)")
            if not ready:
                continue
            try:
                data = os.read(fd, 65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                exit_worker("reading the control pipe failed")
            if not data:
                exit_worker("the control pipe closed (host gone)")
            reader.max_frame_bytes = self.worker.max_frame_bytes
            try:
                for payload in reader.feed(data):
                    message, _blob = parse_payload(payload)
                    self.handle(message)
            except FrameError as exc:
                self.worker.fatal(exc)

    def handle(self, message: dict) -> None:
        if message.get("op") == "cancel":
            self.worker.request_cancel(message.get("target"))
        else:
            sys.stderr.write(f"trestle_bridge: ignored control message op={message.get('op')!r}\n")
