"""The idle fast path: serving fd 3 without a round through asyncio while asyncio has nothing to do.

Why: one asyncio iteration (`_run_once`: the timer heap, `epoll`, event dispatch, `Handle._run` in a
`Context`, `_set_running_loop` twice, each a `getpid()` on CPython < 3.12) costs about as much Python CPU
as a whole `math.sqrt` request. Most of the time a worker only answers synchronous calls: no callback is
ready, no task can run, and the only fds asyncio watches are fd 3 and its own self-pipe. Then the fd 3
reader callback does not return to asyncio after a chunk: it waits itself, with `poll()` on those same
two fds and a timeout of the next asyncio timer (the TTL sweep, a task's `asyncio.sleep`), and serves
the next chunk inline. It goes back to asyncio as soon as anything else may need the loop:

- a callback is ready (a task was created or woken, a reply is to be flushed, `call_soon`),
- the self-pipe is readable (`call_soon_threadsafe`: the control thread cancelling a task, an executor
  job finishing),
- a timer is due,
- asyncio watches any other fd (user code's sockets, subprocesses): no fast path until it stops,
- the loop was asked to stop.

So async calls stay concurrent (their tasks run on asyncio as soon as they are ready), and timers fire
on time even when the worker is idle. The running loop is unset once for the whole stretch (user code
must see none) rather than around every request.

This reads private state of asyncio's selector event loop (`_ready`, `_scheduled` and its handles'
`_when`, `_stopping`, `_selector`), unchanged from 3.9 to 3.13. `create` returns None when it is missing
(another loop implementation), in debug mode (which times callbacks), or without `poll()`; then every
chunk goes through asyncio as before.
"""
from __future__ import annotations

import select

_POLLIN = getattr(select, "POLLIN", 1)
MAX_WAIT_MS = 86_400_000.0  # one day, as asyncio caps its own select timeout


class FastPath:
    __slots__ = ("loop", "fd", "nfds", "sel_map", "_poll")

    def __init__(self, loop, fd: int, sel_map, fds):
        self.loop = loop
        self.fd = fd
        # The fds asyncio watches, live: the selector's own dict when it has one (len() in C), else
        # its public mapping view.
        fd_to_key = getattr(loop._selector, "_fd_to_key", None)
        self.sel_map = fd_to_key if type(fd_to_key) is dict else sel_map
        self.nfds = len(fds)
        poller = select.poll()
        for each in fds:
            poller.register(each, _POLLIN)
        self._poll = poller.poll

    @classmethod
    def create(cls, loop, fd: int):
        """A fast path for `loop` once `fd` is registered with `loop.add_reader`, or None."""
        if not hasattr(select, "poll"):
            return None
        try:
            loop._ready, loop._scheduled, loop._stopping  # noqa: B018 - the state `wait` reads
            sel_map = loop._selector.get_map()
            fds = [key.fd for key in sel_map.values()]
            if loop.get_debug() or fd not in fds:
                return None
        except (AttributeError, TypeError):
            return None
        return cls(loop, fd, sel_map, fds)

    def wait(self) -> bool:
        """Blocks until fd 3 is readable and asyncio still has nothing to do (True), or returns False
        as soon as asyncio has (the caller then returns to the loop)."""
        loop = self.loop
        if loop._ready or loop._stopping or len(self.sel_map) != self.nfds:
            return False
        scheduled = loop._scheduled  # read each time: asyncio may replace the list
        if scheduled:
            timeout = (scheduled[0]._when - loop.time()) * 1000.0  # poll() takes milliseconds
            if timeout <= 0.0:
                return False
            if timeout > MAX_WAIT_MS:  # poll() refuses more than ~24.8 days (an int of ms)
                timeout = MAX_WAIT_MS
        else:
            timeout = None
        events = self._poll(timeout)
        return len(events) == 1 and events[0][0] == self.fd
