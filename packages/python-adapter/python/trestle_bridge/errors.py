"""ErrorInfo building: the worker's error kinds and formatted tracebacks of the user's code."""
from __future__ import annotations

import asyncio
import os
import traceback

# Frames whose file is inside this package are the worker's own: they are removed from tracebacks.
PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_PACKAGE_DIR_RAW = os.path.dirname(__file__) + os.sep


class Cancelled(BaseException):
    """Raised inside a request the host cancelled (a BaseException, so `except Exception` lets it by)."""


class BridgeError(Exception):
    """An error with a protocol `kind` other than `python`; `fields` go into the ErrorInfo as they are."""

    kind = "bad_request"

    def __init__(self, message: str, **fields):
        super().__init__(message)
        self.message = message
        self.fields = fields

    def info(self) -> dict:
        out = {"kind": self.kind, "message": self.message}
        for key, value in self.fields.items():
            if value is not None:
                out[key] = value
        return out


class BadRequest(BridgeError):
    kind = "bad_request"


class ProtocolError(BridgeError):
    kind = "protocol"


class Forbidden(BridgeError):
    kind = "forbidden"


class Unencodable(BridgeError):
    kind = "unencodable"


class RegistryFull(BridgeError):
    kind = "registry_full"


class InvalidRef(BridgeError):
    """`reason`: not_an_object | missing_type | not_a_ref | unknown_schema | missing_id | missing_session |
    missing_type_name | invalid_field (the reasons of @trestle/ref-registry's decodeRef)."""

    kind = "invalid_ref"

    def __init__(self, reason: str, message: str, ref_id: str | None = None, session_id: str | None = None):
        super().__init__(message, reason=reason, ref_id=ref_id, session_id=session_id)


class RefNotFound(BridgeError):
    kind = "ref_not_found"

    _why = {
        "released": "it was released",
        "ttl": "its time to live ran out",
        "lru": "it was evicted (least recently used)",
        "session_released": "its session was released",
    }

    def __init__(self, ref_id: str, session_id: str, reason: str | None = None):
        text = f"reference '{ref_id}' not found in session '{session_id}'"
        if reason:
            text += ": " + self._why.get(reason, reason)
        super().__init__(text, ref_id=ref_id, session_id=session_id, reason=reason)
        self.reason = reason


class SessionMismatch(BridgeError):
    kind = "session_mismatch"

    def __init__(self, ref_id: str, expected: str, actual: str):
        super().__init__(
            f"reference '{ref_id}' belongs to session '{expected}' but was used in session '{actual}'",
            ref_id=ref_id,
            expected_session=expected,
            actual_session=actual,
        )


def _is_own(filename: str) -> bool:
    return filename.startswith(PACKAGE_DIR) or filename.startswith(_PACKAGE_DIR_RAW)


def _trim(te: traceback.TracebackException, seen: set) -> None:
    if id(te) in seen:
        return
    seen.add(id(te))
    kept = [frame for frame in te.stack if not _is_own(frame.filename)]
    if len(kept) != len(te.stack):
        te.stack = traceback.StackSummary.from_list(kept)
    for chained in (te.__cause__, te.__context__):
        if chained is not None:
            _trim(chained, seen)
    for inner in getattr(te, "exceptions", None) or ():  # exception groups (3.11+)
        _trim(inner, seen)


def format_traceback(exc: BaseException) -> str:
    """The formatted traceback of `exc` (and its chain) without the worker's own frames."""
    try:
        te = traceback.TracebackException(type(exc), exc, exc.__traceback__)
        _trim(te, set())
        return "".join(te.format())
    except Exception:  # a broken __str__ and the like: never fail while reporting a failure
        return f"{type(exc).__qualname__}: <traceback unavailable>\n"


def _message(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return f"<unprintable {type(exc).__qualname__}>"


def error_info(exc: BaseException, fn: str | None = None) -> dict:
    """The ErrorInfo dict of an exception raised while serving a request."""
    if isinstance(exc, BridgeError):
        out = exc.info()
    elif isinstance(exc, Cancelled) or _is_cancelled_error(exc):
        out = {"kind": "cancelled", "message": "the request was cancelled"}
    else:
        cls = type(exc)
        out = {
            "kind": "python",
            "type": getattr(cls, "__qualname__", cls.__name__),
            "module": getattr(cls, "__module__", "builtins"),
            "message": _message(exc),
            "traceback": format_traceback(exc),
        }
    if fn is not None and "fn" not in out:
        out["fn"] = fn
    return out


def is_cancel(exc: BaseException) -> bool:
    return isinstance(exc, Cancelled) or _is_cancelled_error(exc)


def _is_cancelled_error(exc: BaseException) -> bool:
    return isinstance(exc, asyncio.CancelledError)
