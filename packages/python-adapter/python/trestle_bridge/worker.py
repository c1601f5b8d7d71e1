"""The worker's main loop: an asyncio loop reading request frames from fd 3 and replying on fd 4.

Synchronous ops run inline on the main thread, one at a time, in arrival order; replies are buffered and
written together after each chunk read. Awaitable results become tasks whose replies are written when
they finish. Cancellation of the running synchronous request comes from the control thread as SIGUSR1.
While asyncio has nothing else to do, the fd 3 reader keeps serving chunks itself instead of returning
to the loop after each one (fastpath.py says why and when it hands back).
"""
from __future__ import annotations

import asyncio
import functools
import os
import signal
import sys
import threading
import time

from . import control
from .codec import Ctx, ValueCodec
from .fastpath import FastPath
from .errors import BadRequest, Cancelled, ProtocolError, Unencodable, error_info, is_cancel
from .framing import (
    DEFAULT_MAX_FRAME_BYTES,
    HEADER,
    FrameError,
    FrameReader,
    FrameWriter,
    binary_frame,
    dumps,
    json_frame,
    parse_payload,
    result_text,
)
from .ops import HANDLERS, PROTOCOL, implementation
from .request import Pending
from .registry import Registry

FEATURES = ["binary", "async", "cancel", "batch", "stream"]
MAX_CANCELLED = 4096  # cancel targets remembered (a cancel may arrive before its request)
DEFAULT_CHUNK_SIZE = 64
DEFAULT_SWEEP_MS = 30_000

_set_running_loop = asyncio._set_running_loop
_pack = HEADER.pack


class _Failed:
    """A task's SystemExit/KeyboardInterrupt, carried as a value (asyncio would re-raise it)."""

    __slots__ = ("exc",)

    def __init__(self, exc):
        self.exc = exc


async def _guard(coro):
    try:
        return await coro
    except (SystemExit, KeyboardInterrupt) as exc:
        return _Failed(exc)


class Worker:
    def __init__(self, fd_in: int = 3, fd_out: int = 4, fd_ctl: int = 5, now=time.time):
        self.fd_in = fd_in
        self.fd_out = fd_out
        self.fd_ctl = fd_ctl
        self.registry = Registry(now=now)
        self.codec = ValueCodec(self.registry)
        self.reader = FrameReader()
        self.writer = FrameWriter(fd_out)
        self.max_frame_bytes = DEFAULT_MAX_FRAME_BYTES
        self.modules: dict = {}
        self.functions: dict = {}
        self.allow_modules = None
        self.chunk_size = DEFAULT_CHUNK_SIZE
        self.configured = False
        self.shutting_down = False
        self.running = None  # id of the synchronous request running on the main thread
        self.cancelled: dict = {}  # cancel targets not yet honoured (insertion ordered)
        self.tasks: dict = {}  # request id -> asyncio task
        self.counters = {"calls": 0, "errors": 0, "cancelled": 0}
        self.loop = None
        self.main_ident = threading.get_ident()
        self.control = None
        self.fast = None  # FastPath, set by run()
        self._flush_scheduled = False
        self._sweep_handle = None
        self.sweep_interval_ms = DEFAULT_SWEEP_MS
        self.parent_pid = None  # None: the parent when the control thread starts

    # -- setup ---------------------------------------------------------------------------------------

    def hello(self) -> dict:
        return {
            "event": "hello",
            "protocol": PROTOCOL,
            "pid": os.getpid(),
            "python": "%d.%d.%d" % sys.version_info[:3],
            "implementation": implementation(),
            "executable": sys.executable,
            "platform": sys.platform,
            "features": list(FEATURES),
        }

    def run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self.loop = loop
        self.main_ident = threading.get_ident()
        signal.signal(signal.SIGUSR1, self._on_sigusr1)
        self.writer.add(json_frame(dumps(self.hello())))
        self.flush()
        os.set_blocking(self.fd_in, False)
        loop.add_reader(self.fd_in, self._on_readable)
        self.fast = FastPath.create(loop, self.fd_in)
        self.set_sweep_interval(self.sweep_interval_ms)
        self.control = control.ControlThread(self, self.fd_ctl, self.parent_pid)
        self.control.start()
        loop.run_forever()

    def set_max_frame_bytes(self, n: int) -> None:
        self.max_frame_bytes = n
        self.reader.max_frame_bytes = n

    def set_sweep_interval(self, ms: int) -> None:
        self.sweep_interval_ms = ms
        if self._sweep_handle is not None:
            self._sweep_handle.cancel()
            self._sweep_handle = None
        if ms > 0 and self.loop is not None:
            self._sweep_handle = self.loop.call_later(ms / 1000.0, self._sweep)

    def _sweep(self) -> None:
        self._sweep_handle = None
        try:
            self.registry.sweep()
        finally:
            self.set_sweep_interval(self.sweep_interval_ms)

    # -- reading -------------------------------------------------------------------------------------

    def _on_readable(self) -> None:
        """asyncio: fd 3 is readable. Serves it, then stays on the fast path while asyncio is idle."""
        _set_running_loop(None)  # user code sees a plain (not async) context; set once per stretch
        try:
            self._serve()
            fast = self.fast
            if fast is not None:
                while fast.wait():
                    self._serve()
        finally:
            _set_running_loop(self.loop)

    def _serve(self) -> None:
        """One read from fd 3: handles the frames completed, then writes the replies."""
        try:
            payloads = self.reader.read_from(self.fd_in)
        except (BlockingIOError, InterruptedError):
            return
        except EOFError:
            control.exit_worker("the requests pipe closed (host gone)")
        except FrameError as exc:
            self.fatal(exc)
        except OSError as exc:
            control.exit_worker(f"reading requests failed: {exc}")
        self._handle_all(payloads)
        if self.writer:
            self.flush()
        if self.shutting_down:
            self.shutdown()

    def handle(self, payload) -> None:
        """Handles one frame payload (from any context: the running loop is unset around it)."""
        _set_running_loop(None)
        try:
            self._handle_all((payload,))
        finally:
            _set_running_loop(self.loop)

    def _handle_all(self, payloads) -> None:
        dispatch = self.dispatch
        for payload in payloads:
            try:
                req, blob = parse_payload(payload)
            except FrameError as exc:
                self.fatal(exc)
            rid = req.get("id")
            op = req.get("op")
            if op == "cancel":
                self.request_cancel(req.get("target"))
                continue
            if type(rid) is not int:
                self.fatal(ProtocolError(f"a request needs an integer 'id' (op {op!r})"))
            dispatch(rid, op, req, blob)
            if self.shutting_down:
                break

    def dispatch(self, rid: int, op, req: dict, blob) -> None:
        """Runs one request (the running loop is already unset: see `_on_readable` and `handle`)."""
        handler = HANDLERS.get(op) if type(op) is str else None
        ctx = Ctx(None, blob)
        ctx.rid = rid
        if handler is None:
            self._reply_error(rid, BadRequest(f"unknown op {op!r}"), ctx)
            return
        if not self.configured and op != "configure":
            self._reply_error(rid, ProtocolError(f"'{op}' before 'configure'"), ctx)
            return
        cancelled = self.cancelled
        try:
            self.running = rid
            if cancelled and rid in cancelled:  # cancelled before it started
                self.running = None
                cancelled.pop(rid, None)
                raise Cancelled()
            try:
                result = handler(self, req, ctx)
            finally:
                self.running = None
            if type(result) is Pending:
                self._start_task(rid, result, ctx)
            else:
                self._reply_ok(rid, result, ctx)
        except BaseException as exc:
            self.running = None
            self._reply_error(rid, exc, ctx)

    def run_sync(self, rid, fn, *args):
        """Runs synchronous user work from inside a task (a batch), interruptible like dispatch."""
        loop = self.loop
        try:
            self.running = rid
            if self.cancelled and rid in self.cancelled:
                self.running = None
                self.cancelled.pop(rid, None)
                raise Cancelled()
            _set_running_loop(None)
            try:
                return fn(self, *args)
            finally:
                self.running = None
        finally:
            self.running = None
            _set_running_loop(loop)

    # -- async ----------------------------------------------------------------------------------------

    def _start_task(self, rid, pending: Pending, ctx) -> None:
        session = ctx.session
        if session is not None:
            session.busy += 1
        task = self.loop.create_task(_guard(pending.coro))
        self.tasks[rid] = task
        task.add_done_callback(functools.partial(self._task_done, rid, ctx))
        if self.cancelled and rid in self.cancelled:
            task.cancel()

    def _task_done(self, rid, ctx, task) -> None:
        self.tasks.pop(rid, None)
        session = ctx.session
        if session is not None:
            session.busy -= 1
        if self.cancelled:
            self.cancelled.pop(rid, None)
        if task.cancelled():
            self._reply_error(rid, Cancelled(), ctx)
        else:
            exc = task.exception()
            if exc is not None:
                self._reply_error(rid, exc, ctx)
            else:
                result = task.result()
                if type(result) is _Failed:
                    self._reply_error(rid, result.exc, ctx)
                else:
                    self._reply_ok(rid, result, ctx)
        self._schedule_flush()

    # -- cancel ---------------------------------------------------------------------------------------

    def request_cancel(self, target) -> None:
        """Cancels request `target` (any thread: the control thread, or the main loop for fd 3)."""
        if type(target) is not int:
            return
        cancelled = self.cancelled
        cancelled[target] = None
        while len(cancelled) > MAX_CANCELLED:
            try:
                del cancelled[next(iter(cancelled))]
            except (RuntimeError, KeyError, StopIteration):
                break
        if self.running == target:
            if threading.get_ident() != self.main_ident:
                signal.pthread_kill(self.main_ident, signal.SIGUSR1)
        elif target in self.tasks:
            if threading.get_ident() == self.main_ident:
                self._cancel_task(target)
            else:
                self.loop.call_soon_threadsafe(self._cancel_task, target)

    def _cancel_task(self, target) -> None:
        task = self.tasks.get(target)
        if task is not None:
            task.cancel()

    def _on_sigusr1(self, signum, frame) -> None:
        rid = self.running
        if rid is not None and rid in self.cancelled:
            self.running = None  # raise once: later signals find nothing running
            self.cancelled.pop(rid, None)
            raise Cancelled()

    # -- replies -------------------------------------------------------------------------------------

    def _reply_ok(self, rid, result, ctx) -> None:
        try:
            text = f'{{"id":{rid},"ok":true,"result":{result_text(result)}}}'  # = dumps({"id", "ok", "result"})
        except (ValueError, TypeError, RecursionError) as exc:
            self._reply_error(rid, Unencodable(f"the result is not JSON: {exc}"), ctx)
            return
        if ctx.blobs:
            frame = binary_frame(text, ctx.blobs)
            size = sum(len(p) for p in frame) - 4
        else:
            data = text.encode()
            size = len(data)
            frame = _pack(size) + data
        if size > self.max_frame_bytes:
            self._reply_error(rid, Unencodable(f"the reply ({size} bytes) exceeds max_frame_bytes"), ctx)
            return
        self.writer.add(frame)

    def _reply_error(self, rid, exc, ctx) -> None:
        try:
            self.codec._abandon(ctx, 0)  # refs of a reply that is not sent
        except Exception:
            pass
        try:
            info = error_info(exc, getattr(ctx, "fn", None))
        except BaseException as inner:  # a cancel while building it, or a broken exception
            info = error_info(inner) if not is_cancel(inner) else {"kind": "cancelled", "message": "cancelled"}
        if info["kind"] == "cancelled":
            self.counters["cancelled"] += 1
        self.counters["errors"] += 1
        try:
            text = dumps({"id": rid, "ok": False, "error": info})
        except (ValueError, TypeError):
            text = dumps({"id": rid, "ok": False, "error": {"kind": info["kind"], "message": repr(info)}})
        self.writer.add(json_frame(text))

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush_soon)

    def _flush_soon(self) -> None:
        self._flush_scheduled = False
        self.flush()

    def flush(self) -> None:
        try:
            self.writer.flush()
        except OSError as exc:
            control.exit_worker(f"writing replies failed: {exc}")

    # -- exits ---------------------------------------------------------------------------------------

    def shutdown(self) -> None:
        self.flush()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(0)

    def fatal(self, exc) -> None:
        """A protocol error on a pipe: report on stderr and stop (the host restarts the worker)."""
        try:
            sys.stderr.write(f"trestle_bridge: protocol error: {exc}\n")
            sys.stderr.flush()
        except Exception:
            pass
        os._exit(3)


def _env_fd(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    try:
        return int(value) if value.strip() else default
    except ValueError:
        return default


def main(parent_pid: int | None = None) -> None:
    if parent_pid is None:
        parent_pid = os.getppid()
    fd_in = _env_fd("TRESTLE_FD_IN", 3)
    fd_out = _env_fd("TRESTLE_FD_OUT", 4)
    fd_ctl = _env_fd("TRESTLE_FD_CTL", 5)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    control.set_parent_death_signal()
    if os.getppid() != parent_pid:  # the parent died before PDEATHSIG was set
        control.exit_worker("the parent process exited during start-up")
    for fd in (fd_in, fd_out, fd_ctl):
        control.grow_pipe(fd)
        try:  # processes the user's code starts must not hold the protocol pipes
            os.set_inheritable(fd, False)
        except OSError:
            pass
    try:
        os.set_blocking(fd_out, True)
    except OSError as exc:
        sys.stderr.write(f"trestle_bridge: fd {fd_out} (TRESTLE_FD_OUT) is not usable: {exc}\n")
        os._exit(2)
    if sys.getrecursionlimit() < 4000:
        sys.setrecursionlimit(4000)
    worker = Worker(fd_in, fd_out, fd_ctl)
    worker.parent_pid = parent_pid
    worker.run()
