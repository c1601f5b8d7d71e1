"""Op handlers: `handler(worker, request, ctx)` returns the encoded result, or a `Pending` whose coroutine
returns it (async calls). Errors are raised; the worker turns them into ErrorInfo. Stream ops are in
streams.py; the table of all ops is `HANDLERS` at the end."""
from __future__ import annotations

import importlib
import inspect
import os
import sys
import types

from . import __version__
from .codec import Ctx, load_codecs
from .errors import BadRequest, Cancelled, Forbidden, ProtocolError, error_info, is_cancel
from .request import Pending, decode_args, session_for
from .streams import op_iter, op_stream_close, op_stream_next, stream_ref

PROTOCOL = 1

ALLOWED_DUNDERS = frozenset(
    (
        "__getitem__",
        "__len__",
        "__contains__",
        "__iter__",
        "__next__",
        "__enter__",
        "__exit__",
        "__call__",
        "__str__",
        "__repr__",
    )
)

_PLAIN = frozenset((str, int, float, bool, type(None), list, dict, tuple, bytes))
_isawaitable = inspect.isawaitable
_ModuleType = types.ModuleType


# -- names and modules ----------------------------------------------------------------------------

_split_cache: dict = {}


def split_name(name, field: str = "name") -> tuple:
    """A dotted name -> its parts; dunder parts (other than the allowed ones) are refused."""
    try:
        return _split_cache[name]
    except (KeyError, TypeError):
        pass
    if type(name) is not str or not name:
        raise BadRequest(f"missing field '{field}'")
    parts = tuple(name.split("."))
    for part in parts:
        if not part:
            raise BadRequest(f"'{field}' {name!r} has an empty part")
        if part.startswith("__") and part not in ALLOWED_DUNDERS:
            raise Forbidden(f"dunder name {part!r} is not allowed (in {name!r})")
    if len(_split_cache) < 65536:
        _split_cache[name] = parts
    return parts


def resolve(obj, parts: tuple, allow=None):
    """getattr one part at a time; a missing attribute of a module may be a submodule to import.
    With an allowlist, a module reached on the way (`json.decoder.re`) must be allowed too."""
    for part in parts:
        try:
            obj = getattr(obj, part)
        except AttributeError:
            if type(obj) is not _ModuleType:
                raise
            full = obj.__name__ + "." + part
            try:
                obj = importlib.import_module(full)
            except ModuleNotFoundError as exc:
                if exc.name != full:  # the submodule exists but its own import failed: that error
                    raise
                raise AttributeError(f"module {obj.__name__!r} has no attribute {part!r}") from None
        if allow is not None and type(obj) is _ModuleType and not module_allowed(allow, obj.__name__):
            raise Forbidden(f"module {obj.__name__!r} is not in allow_modules")
    return obj


def module_allowed(allow, name: str) -> bool:
    if allow is None:
        return True
    while True:
        if name in allow:
            return True
        name, dot, _ = name.rpartition(".")
        if not dot:
            return False


def import_module(w, name):
    mod = w.modules.get(name)
    if mod is not None:
        return mod
    if type(name) is not str or not name:
        raise BadRequest("missing field 'module'")
    if not module_allowed(w.allow_modules, name):
        raise Forbidden(f"module {name!r} is not in allow_modules")
    mod = importlib.import_module(name)
    w.modules[name] = mod
    return mod


# -- helpers -------------------------------------------------------------------------------------


def finish(w, result, ctx: Ctx, stream: bool):
    """The encoded result of a call; awaitables become a Pending (awaited on the loop)."""
    if type(result) not in _PLAIN and _isawaitable(result):
        return Pending(_await_result(w, result, ctx, stream))
    if stream:
        return stream_ref(w, result, ctx)
    return w.codec.encode(result, ctx)


async def _await_result(w, awaitable, ctx, stream):
    result = await awaitable
    if stream:
        return stream_ref(w, result, ctx)
    return w.codec.encode(result, ctx)


# -- ops -------------------------------------------------------------------------------------------


def op_call(w, req, ctx):
    session_for(w, req, ctx)
    module = req.get("module")
    fn = req.get("fn")
    if type(module) is not str or type(fn) is not str:
        raise BadRequest("missing field 'module'" if type(module) is not str else "missing field 'fn'")
    key = (module, fn)
    target = w.functions.get(key)
    if target is None:
        mod = import_module(w, module)
        target = (mod, split_name(fn, "fn"), f"{module}.{fn}")
        if len(w.functions) < 65536:
            w.functions[key] = target
    mod, parts, ctx.fn = target
    if len(parts) == 1 and w.allow_modules is None:  # the usual `module.fn`: one getattr
        try:
            func = getattr(mod, parts[0])
        except AttributeError:
            func = resolve(mod, parts)
    else:
        func = resolve(mod, parts, w.allow_modules)
    args, kwargs = decode_args(w, req, ctx)
    w.counters["calls"] += 1
    result = func(*args, **kwargs) if kwargs else func(*args)
    return finish(w, result, ctx, req.get("stream") is True)


def op_method(w, req, ctx):
    session_for(w, req, ctx, create=False)
    entry = w.codec.lookup(req.get("ref"), ctx)
    name = req.get("name")
    parts = split_name(name)
    ctx.fn = f"{entry.type_name}.{name}"
    func = resolve(entry.obj, parts)
    args, kwargs = decode_args(w, req, ctx)
    w.counters["calls"] += 1
    result = func(*args, **kwargs) if kwargs else func(*args)
    return finish(w, result, ctx, req.get("stream") is True)


def op_attr(w, req, ctx):
    name = req.get("name")
    parts = split_name(name)
    if req.get("ref") is not None:
        session_for(w, req, ctx, create=False)
        entry = w.codec.lookup(req.get("ref"), ctx)
        ctx.fn = f"{entry.type_name}.{name}"
        obj = entry.obj
    elif req.get("module") is not None:
        session_for(w, req, ctx)
        module = req.get("module")
        if type(module) is not str:
            raise BadRequest("'module' must be a string")
        ctx.fn = f"{module}.{name}"
        return w.codec.encode(resolve(import_module(w, module), parts, w.allow_modules), ctx)
    else:
        raise BadRequest("attr needs 'ref' or 'module'")
    return w.codec.encode(resolve(obj, parts), ctx)


def op_setattr(w, req, ctx):
    session_for(w, req, ctx, create=False)
    entry = w.codec.lookup(req.get("ref"), ctx)
    name = req.get("name")
    parts = split_name(name)
    if "value" not in req:
        raise BadRequest("missing field 'value'")
    ctx.fn = f"{entry.type_name}.{name}"
    value = w.codec.decode(req["value"], ctx)
    setattr(resolve(entry.obj, parts[:-1]), parts[-1], value)
    return None


def _ids(req):
    ids = req.get("ids")
    if type(ids) is not list:
        raise BadRequest("'ids' must be an array")
    return [i.get("id") if type(i) is dict else i for i in ids]


def op_release(w, req, ctx):
    sid = req.get("session")
    if type(sid) is not str or not sid:
        raise BadRequest("missing field 'session'")
    return {"released": w.registry.release(sid, _ids(req))}


def op_release_session(w, req, ctx):
    sid = req.get("session")
    if type(sid) is not str or not sid:
        raise BadRequest("missing field 'session'")
    return {"released": w.registry.release_session(sid)}


def op_ping(w, req, ctx):
    return {"pong": True}


def rss_bytes() -> int:
    try:
        with open("/proc/self/statm", "rb") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource

        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return maxrss if sys.platform == "darwin" else maxrss * 1024
    except Exception:
        return 0


def op_stats(w, req, ctx):
    reg = w.registry
    counters = dict(w.counters)
    for key in ("refs_created", "refs_released", "evicted_ttl", "evicted_lru", "sessions_released"):
        counters[key] = reg.counters[key]
    out = {
        "pid": os.getpid(),
        "sessions": len(reg.sessions),
        "refs": reg.total,
        "rss_bytes": rss_bytes(),
        "counters": counters,
    }
    sid = req.get("session")
    if sid is not None:
        if type(sid) is not str:
            raise BadRequest("'session' must be a string")
        out["session"] = reg.describe_session(sid)
    return out


def op_doctor(w, req, ctx):
    names = req.get("modules")
    if names is None:
        names = []
    if type(names) is not list or not all(type(n) is str for n in names):
        raise BadRequest("'modules' must be an array of strings")
    modules = {}
    for name in names:
        try:
            import_module(w, name)
            modules[name] = True
        except Cancelled:
            raise
        except BaseException as exc:
            info = error_info(exc)
            modules[name] = f"{info.get('type', info['kind'])}: {info['message']}"
    return {
        "python": "%d.%d.%d" % sys.version_info[:3],
        "executable": sys.executable,
        "implementation": implementation(),
        "prefix": sys.prefix,
        "version": sys.version,
        "bridge": __version__,
        "modules": modules,
    }


def op_shutdown(w, req, ctx):
    w.shutting_down = True
    return None


def implementation() -> str:
    name = sys.implementation.name
    return {"cpython": "CPython", "pypy": "PyPy", "graalpy": "GraalVM", "ironpython": "IronPython"}.get(name, name)


# -- configure ---------------------------------------------------------------------------------------


def _int_option(req, key, minimum, default=None):
    value = req.get(key, default)
    if value is None:
        return None
    if type(value) is not int or value < minimum:
        raise BadRequest(f"'{key}' must be an integer >= {minimum}, got {value!r}")
    return value


def op_configure(w, req, ctx):
    if req.get("protocol") != PROTOCOL or type(req.get("protocol")) is not int:
        raise ProtocolError(f"this worker speaks protocol {PROTOCOL}, the host sent {req.get('protocol')!r}")
    defaults = req.get("defaults")
    max_total = _int_option(req, "max_total_refs", 1)
    chunk = _int_option(req, "chunk_size", 1)
    threshold = _int_option(req, "binary_threshold", 0)
    max_frame = _int_option(req, "max_frame_bytes", 16)
    sweep_ms = _int_option(req, "sweep_interval_ms", 0)
    allow = req.get("allow_modules")
    if allow is not None and (type(allow) is not list or not all(type(m) is str and m for m in allow)):
        raise BadRequest("'allow_modules' must be null or an array of module names")
    rlimits = req.get("rlimits")
    if rlimits is not None and type(rlimits) is not dict:
        raise BadRequest("'rlimits' must be an object")
    codecs = load_codecs(req.get("codecs"))
    if defaults is not None:
        w.registry.set_defaults(defaults)
    if rlimits:
        apply_rlimits(rlimits)
    if max_total is not None:
        w.registry.max_total_refs = max_total
    if chunk is not None:
        w.chunk_size = chunk
    if threshold is not None:
        w.codec.binary_threshold = threshold
    if max_frame is not None:
        w.set_max_frame_bytes(max_frame)
    if "allow_modules" in req:
        w.allow_modules = None if allow is None else frozenset(allow)
        w.modules.clear()
        w.functions.clear()
    if "codecs" in req:
        w.codec.set_codecs(codecs)
    if sweep_ms is not None:
        w.set_sweep_interval(sweep_ms)
    w.configured = True
    return {"protocol": PROTOCOL, "pid": os.getpid()}


def apply_rlimits(rlimits: dict) -> None:
    try:
        import resource
    except ImportError:
        raise BadRequest("rlimits are not supported on this platform") from None
    names = {"as_bytes": "RLIMIT_AS", "cpu_seconds": "RLIMIT_CPU"}
    for key, value in rlimits.items():
        if key not in names:
            raise BadRequest(f"unknown rlimit {key!r} (known: as_bytes, cpu_seconds)")
        if value is None:
            continue
        if type(value) is not int or value < 0:
            raise BadRequest(f"rlimits.{key} must be an integer >= 0")
        resource.setrlimit(getattr(resource, names[key]), (value, value))


# -- batch ---------------------------------------------------------------------------------------

_NOT_IN_BATCH = frozenset(("batch", "configure", "shutdown", "cancel"))


def op_batch(w, req, ctx):
    items = req.get("items")
    if type(items) is not list:
        raise BadRequest("'items' must be an array")
    results = []
    for index, item in enumerate(items):
        outcome, sub = run_item(w, item, ctx)
        if type(outcome) is Pending:
            return Pending(_batch_rest(w, items, index, outcome, sub, results, ctx))
        results.append(outcome)
    return results


def _item_error(w, exc, sub):
    w.codec._abandon(sub, 0)
    w.counters["errors"] += 1
    return {"ok": False, "error": error_info(exc, sub.fn)}


def run_item(w, item, ctx):
    """Runs one batch item synchronously: ({"ok": ...} or a Pending, its ctx)."""
    sub = Ctx(None, ctx.blob_in)
    sub.blobs = ctx.blobs
    sub.blob_size = ctx.blob_size
    try:
        if type(item) is not dict:
            raise BadRequest("a batch item must be an object")
        op = item.get("op")
        handler = HANDLERS.get(op) if type(op) is str else None
        if handler is None or op in _NOT_IN_BATCH:
            raise BadRequest(f"op {op!r} is not allowed in a batch" if op in _NOT_IN_BATCH else f"unknown op {op!r}")
        result = handler(w, item, sub)
    except Cancelled:
        raise
    except BaseException as exc:
        return _item_error(w, exc, sub), sub
    finally:
        ctx.blob_size = sub.blob_size
    if type(result) is Pending:
        return result, sub
    ctx.created.extend(sub.created)
    return {"ok": True, "result": result}, sub


async def _batch_rest(w, items, index, pending, sub, results, ctx):
    while True:
        session = sub.session
        if session is not None:
            session.busy += 1
        sub.blob_size = ctx.blob_size
        try:
            results.append({"ok": True, "result": await pending.coro})
            ctx.created.extend(sub.created)
        except BaseException as exc:
            if is_cancel(exc):
                raise
            results.append(_item_error(w, exc, sub))
        finally:
            ctx.blob_size = sub.blob_size
            if session is not None:
                session.busy -= 1
        pending = None
        while index + 1 < len(items):
            index += 1
            outcome, sub = w.run_sync(ctx.rid, run_item, items[index], ctx)
            if type(outcome) is Pending:
                pending = outcome
                break
            results.append(outcome)
        if pending is None:
            return results


HANDLERS = {
    "call": op_call,
    "method": op_method,
    "attr": op_attr,
    "setattr": op_setattr,
    "iter": op_iter,
    "stream_next": op_stream_next,
    "stream_close": op_stream_close,
    "release": op_release,
    "release_session": op_release_session,
    "batch": op_batch,
    "ping": op_ping,
    "stats": op_stats,
    "doctor": op_doctor,
    "shutdown": op_shutdown,
    "configure": op_configure,
}
