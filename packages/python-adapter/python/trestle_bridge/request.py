"""Per-request plumbing shared by the op handlers: the `Pending` result, the session, the arguments."""
from __future__ import annotations

from .codec import Ctx
from .errors import BadRequest


class Pending:
    """An op that finishes later: the worker runs `coro` as a task; its return value is the result."""

    __slots__ = ("coro",)

    def __init__(self, coro):
        self.coro = coro


def session_for(w, req, ctx: Ctx, create: bool = True):
    sid = req.get("session")
    if type(sid) is not str or not sid:
        raise BadRequest("missing field 'session'")
    ctx.sid = sid
    session = w.registry.session(sid, req.get("limits"), create)
    ctx.session = session
    return session


def decode_args(w, req, ctx):
    args = req.get("args")
    kwargs = req.get("kwargs")
    if args is None:
        args = ()
    elif type(args) is not list:
        raise BadRequest("'args' must be an array")
    elif args:
        for item in args:  # scalars decode to themselves: only look deeper when there is a container
            t = type(item)
            if t is list or t is dict:
                args = w.codec.decode(args, ctx)
                break
    if kwargs is not None:
        if type(kwargs) is not dict:
            raise BadRequest("'kwargs' must be an object")
        kwargs = w.codec.decode(kwargs, ctx) if kwargs else None
    return args, kwargs
