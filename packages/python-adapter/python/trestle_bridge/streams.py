"""Stream refs: `iter`, `stream_next` (sync iterators inline, async ones awaited on the loop), `stream_close`,
and the iterator behind `stream: true`."""
from __future__ import annotations

import asyncio

from .errors import BadRequest, Cancelled, RefNotFound, error_info, is_cancel
from .request import Pending, session_for


def make_iterator(obj):
    """`aiter(obj)` for async iterables, else `iter(obj)`."""
    cls = type(obj)
    if hasattr(cls, "__aiter__"):
        return cls.__aiter__(obj)
    return iter(obj)


def stream_ref(w, obj, ctx):
    """`obj` as an iterator, registered as a stream ref; returns its wire form."""
    return w.codec._ref(make_iterator(obj), ctx, True)


def op_iter(w, req, ctx):
    session_for(w, req, ctx, create=False)
    entry = w.codec.lookup(req.get("ref"), ctx)
    ctx.fn = f"iter({entry.type_name})"
    return stream_ref(w, entry.obj, ctx)


def _stream_entry(w, req, ctx):
    session_for(w, req, ctx, create=False)
    entry = w.codec.lookup(req.get("ref"), ctx)
    if not entry.stream:
        raise BadRequest(f"ref '{entry.id}' is not a stream ref (use 'iter' or 'stream: true')")
    return entry


def op_stream_next(w, req, ctx):
    entry = _stream_entry(w, req, ctx)
    n = req.get("n")
    if n is None:
        n = w.chunk_size
    elif type(n) is not int or n < 1:
        raise BadRequest("'n' must be an integer >= 1")
    it = entry.obj
    ctx.fn = f"{entry.type_name}.__next__"
    if hasattr(type(it), "__anext__"):
        if entry.pending is not None:
            raise BadRequest(f"a stream_next of stream '{entry.id}' is already in flight")
        entry.pending = w.loop.create_future()
        return Pending(_anext_items(w, entry, it, n, ctx))
    items = []
    append = items.append
    done = False
    error = None
    nxt = it.__next__
    try:
        for _ in range(n):
            append(nxt())
    except StopIteration:
        done = True
    except Cancelled:
        raise
    except BaseException as exc:  # the stream raised: the items so far, then the error
        done = True
        error = error_info(exc, ctx.fn)
        w.counters["errors"] += 1
    return _stream_result(w, entry, items, done, error, ctx)


async def _anext_items(w, entry, it, n, ctx):
    items = []
    done = False
    error = None
    pull = type(it).__anext__
    try:
        for _ in range(n):
            items.append(await pull(it))
    except StopAsyncIteration:
        done = True
    except BaseException as exc:
        if is_cancel(exc):
            raise
        done = True
        error = error_info(exc, ctx.fn)
        w.counters["errors"] += 1
    finally:
        pending, entry.pending = entry.pending, None
        if pending is not None and not pending.done():
            pending.set_result(None)
    return _stream_result(w, entry, items, done, error, ctx)


def _stream_result(w, entry, items, done, error, ctx):
    encode = w.codec.encode
    out = {"items": [encode(item, ctx) for item in items], "done": done}
    if error is not None:
        out["error"] = error
    if done:
        w.registry.remove(entry, "released")
    return out


def op_stream_close(w, req, ctx):
    session_for(w, req, ctx, create=False)
    try:
        entry = w.codec.lookup(req.get("ref"), ctx)
    except RefNotFound:
        return {"closed": False}
    if not entry.stream:
        raise BadRequest(f"ref '{entry.id}' is not a stream ref")
    it = entry.obj
    ctx.fn = f"{entry.type_name}.close"
    w.registry.remove(entry, "released")
    if hasattr(type(it), "__anext__"):
        aclose = getattr(it, "aclose", None)
        if aclose is not None:
            return Pending(_aclose(aclose, entry.pending))
        return {"closed": True}
    close = getattr(it, "close", None)
    if close is not None:
        close()
    return {"closed": True}


async def _aclose(aclose, pending):
    if pending is not None:  # a pull is in flight: close after it (aclose would say "already running")
        await asyncio.shield(pending)
    await aclose()
    return {"closed": True}
