"""The ref registry: Python objects the host holds refs to, per session, with LRU, TTL and caps.

- `sessions` maps session id -> Session; each Session keeps an OrderedDict of ref id -> Entry in least
  recently used order (a successful `get` moves the entry to the end).
- A session over its `max_refs` evicts its own least recently used ref (`lru`), never another's.
- A ref not accessed for `ttl_ms` is gone (`ttl`): found on access, or by `sweep(now)`.
- At `max_total_refs` the least recently used idle session (no request in flight, not the one being
  written to) is emptied whole (`lru`); when none is idle, `RegistryFull`.
- Removed refs and released sessions leave tombstones (bounded) so `ref_not_found` says why. Refs of
  a session dropped whole are not tombstoned one by one (that is O(1)): their ids carry a sequence
  number, and the session tombstone remembers the sequence at release time.
- `now` is injected (Unix seconds, a float) so TTL is tested exactly.
"""
from __future__ import annotations

import secrets
import time
from collections import OrderedDict

from .errors import BadRequest, RefNotFound, RegistryFull, SessionMismatch

DEFAULT_MAX_REFS = 10_000
DEFAULT_TTL_MS = 3_600_000
DEFAULT_MAX_TOTAL_REFS = 1_000_000
MAX_TOMBSTONES = 4096


class Entry:
    """One object held for the host."""

    __slots__ = ("id", "seq", "obj", "created_at", "last_access", "type_name", "module", "stream", "session", "pending")

    def __init__(self, ref_id, seq, obj, now, session, stream=False):
        cls = type(obj)
        self.id = ref_id
        self.seq = seq
        self.obj = obj
        self.created_at = now
        self.last_access = now
        self.type_name = getattr(cls, "__qualname__", None) or cls.__name__
        module = getattr(cls, "__module__", None)
        self.module = module if isinstance(module, str) else ""
        self.stream = stream
        self.session = session
        self.pending = None  # an async stream's pull in flight: an asyncio.Event set when it ends

    def wire(self) -> dict:
        out = {
            "__type__": "ref",
            "__schema__": 1,
            "id": self.id,
            "session_id": self.session.id,
            "type_name": self.type_name,
            "python_module": self.module,
        }
        if self.module and self.module != "builtins":
            out["library"] = self.module.partition(".")[0]
        if self.stream:
            out["stream"] = True
        return out


class Session:
    __slots__ = ("id", "refs", "max_refs", "ttl_ms", "created_at", "last_access", "busy", "cleared_seq")

    def __init__(self, session_id: str, max_refs: int, ttl_ms: int, now: float):
        self.id = session_id
        self.refs: OrderedDict = OrderedDict()
        self.max_refs = max_refs
        self.ttl_ms = ttl_ms
        self.created_at = now
        self.last_access = now
        self.busy = 0  # requests in flight (async tasks) using this session
        self.cleared_seq = 0  # refs with a lower sequence were evicted whole at the global cap

    def limits(self) -> dict:
        return {"max_refs": self.max_refs, "ttl_ms": self.ttl_ms}


def _check_limits(limits) -> tuple:
    if not isinstance(limits, dict):
        raise BadRequest("'limits' must be an object")
    max_refs = limits.get("max_refs")
    ttl_ms = limits.get("ttl_ms")
    if max_refs is not None and (type(max_refs) is not int or max_refs < 1):
        raise BadRequest(f"limits.max_refs must be an integer >= 1, got {max_refs!r}")
    if ttl_ms is not None and (type(ttl_ms) not in (int, float) or ttl_ms < 0):
        raise BadRequest(f"limits.ttl_ms must be a number >= 0, got {ttl_ms!r}")
    return max_refs, ttl_ms


class Registry:
    def __init__(
        self,
        now=time.time,
        max_total_refs: int = DEFAULT_MAX_TOTAL_REFS,
        max_refs: int = DEFAULT_MAX_REFS,
        ttl_ms: int = DEFAULT_TTL_MS,
        prefix: str | None = None,
        max_tombstones: int = MAX_TOMBSTONES,
    ):
        self.now = now
        self.max_total_refs = max_total_refs
        self.default_max_refs = max_refs
        self.default_ttl_ms = ttl_ms
        self.prefix = prefix if prefix is not None else "r" + secrets.token_hex(6) + "_"
        self.max_tombstones = max_tombstones
        self.sessions: OrderedDict = OrderedDict()  # least recently used session first
        self._last = None  # the session last created or moved to the end of `sessions` (so still there)
        self.total = 0
        self._seq = 0
        self._ref_tombs: OrderedDict = OrderedDict()  # ref id -> (reason, session id)
        self._session_tombs: OrderedDict = OrderedDict()  # session id -> (reason, seq at release)
        self.counters = {
            "refs_created": 0,
            "refs_released": 0,
            "evicted_ttl": 0,
            "evicted_lru": 0,
            "sessions_released": 0,
        }

    # -- sessions ---------------------------------------------------------------------------------

    def set_defaults(self, limits) -> None:
        max_refs, ttl_ms = _check_limits(limits)
        if max_refs is not None:
            self.default_max_refs = max_refs
        if ttl_ms is not None:
            self.default_ttl_ms = ttl_ms

    def session(self, session_id: str, limits=None, create: bool = True, now: float | None = None):
        """The session (created on first use when `create`), touched; `limits` replace its limits."""
        session = self.sessions.get(session_id)
        if now is None:
            now = self.now()
        if session is None:
            if not create:
                return None
            session = Session(session_id, self.default_max_refs, self.default_ttl_ms, now)
            self.sessions[session_id] = session
            self._last = session
        else:
            session.last_access = now
            if session is not self._last:  # the same session as the last request: already at the end
                self.sessions.move_to_end(session_id)
                self._last = session
        if limits is not None:
            self.set_limits(session, limits)
        return session

    def set_limits(self, session: Session, limits) -> None:
        max_refs, ttl_ms = _check_limits(limits)
        if ttl_ms is not None:
            session.ttl_ms = ttl_ms
        if max_refs is not None:
            session.max_refs = max_refs
            while len(session.refs) > max_refs:
                self._evict_oldest(session, "lru")

    def release_session(self, session_id: str, reason: str = "session_released") -> int:
        """Drops a session and its refs in O(1); returns how many refs it held."""
        session = self.sessions.pop(session_id, None)
        if session is None:
            return 0
        n = len(session.refs)
        self.total -= n
        session.refs = OrderedDict()
        self._tomb_session(session_id, reason)
        if reason == "session_released":
            self.counters["sessions_released"] += 1
            self.counters["refs_released"] += n
        elif reason == "lru":
            self.counters["evicted_lru"] += n
        return n

    def _tomb_session(self, session_id: str, reason: str) -> None:
        tombs = self._session_tombs
        tombs.pop(session_id, None)
        tombs[session_id] = (reason, self._seq + 1)
        if len(tombs) > self.max_tombstones:
            tombs.popitem(last=False)

    # -- refs -------------------------------------------------------------------------------------

    def put(self, session: Session, obj, stream: bool = False) -> Entry:
        """Registers `obj` in `session` and returns its entry (evicting per the limits)."""
        refs = session.refs
        if len(refs) >= session.max_refs:
            while len(refs) >= session.max_refs:
                self._evict_oldest(session, "lru")
        elif self.total >= self.max_total_refs:
            self._make_room(session)
        now = self.now()
        self._seq += 1
        seq = self._seq
        ref_id = self.prefix + str(seq)
        entry = Entry(ref_id, seq, obj, now, session, stream)
        refs[ref_id] = entry
        self.total += 1
        self.counters["refs_created"] += 1
        return entry

    def discard(self, entry: Entry) -> None:
        """Forgets a ref the host never saw (an encoding that was abandoned): no tombstone."""
        session = entry.session
        if session.refs.pop(entry.id, None) is not None:
            self.total -= 1
            self.counters["refs_created"] -= 1

    def _make_room(self, keep: Session) -> None:
        while self.total >= self.max_total_refs:
            victim = None
            for session in self.sessions.values():  # least recently used first
                if session is not keep and session.busy == 0 and session.refs:
                    victim = session
                    break
            if victim is None:
                raise RegistryFull(
                    f"the worker holds {self.total} refs (max_total_refs {self.max_total_refs}) "
                    "and no idle session can be evicted"
                )
            self._clear_session(victim)

    def _clear_session(self, session: Session) -> None:
        """Empties a session at the global cap (it stays open); its refs are gone with reason `lru`."""
        n = len(session.refs)
        session.refs = OrderedDict()
        session.cleared_seq = self._seq + 1
        self.total -= n
        self.counters["evicted_lru"] += n

    def _evict_oldest(self, session: Session, reason: str) -> None:
        ref_id, _entry = session.refs.popitem(last=False)
        self.total -= 1
        self._tomb_ref(ref_id, reason, session.id)
        self.counters["evicted_ttl" if reason == "ttl" else "evicted_lru"] += 1

    def _tomb_ref(self, ref_id: str, reason: str, session_id: str) -> None:
        tombs = self._ref_tombs
        tombs[ref_id] = (reason, session_id)
        if len(tombs) > self.max_tombstones:
            tombs.popitem(last=False)

    def remove(self, entry: Entry, reason: str = "released") -> bool:
        """Removes one ref (explicit release, a finished stream); returns whether it was there."""
        session = entry.session
        if session.refs.pop(entry.id, None) is None:
            return False
        self.total -= 1
        self._tomb_ref(entry.id, reason, session.id)
        self.counters["refs_released"] += 1
        return True

    def release(self, session_id: str, ids) -> int:
        session = self.sessions.get(session_id)
        if session is None:
            return 0
        n = 0
        refs = session.refs
        for ref_id in ids:
            entry = refs.get(ref_id) if isinstance(ref_id, str) else None
            if entry is not None and self.remove(entry, "released"):
                n += 1
        return n

    def get(self, session_id: str, ref_id: str, hint_session: str | None = None, now: float | None = None) -> Entry:
        """The live entry, touched (LRU, TTL); raises RefNotFound / SessionMismatch."""
        session = self.sessions.get(session_id)
        if session is not None:
            entry = session.refs.get(ref_id)
            if entry is not None:
                if now is None:
                    now = self.now()
                ttl = session.ttl_ms
                if ttl and (now - entry.last_access) * 1000.0 >= ttl:
                    del session.refs[ref_id]
                    self.total -= 1
                    self._tomb_ref(ref_id, "ttl", session_id)
                    self.counters["evicted_ttl"] += 1
                    raise RefNotFound(ref_id, session_id, "ttl")
                entry.last_access = now
                session.refs.move_to_end(ref_id)
                return entry
        self._miss(session_id, ref_id, hint_session)
        raise AssertionError("unreachable")

    def peek(self, session_id: str, ref_id: str):
        """The live entry or None, without touching it or raising for a missing one."""
        session = self.sessions.get(session_id)
        return None if session is None else session.refs.get(ref_id)

    def _miss(self, session_id: str, ref_id: str, hint_session: str | None) -> None:
        # Held live by another session (or said to be by the wire form): a mismatch.
        for other in self.sessions.values():
            if other.id != session_id and ref_id in other.refs:
                raise SessionMismatch(ref_id, other.id, session_id)
        if hint_session is not None and hint_session != session_id:
            raise SessionMismatch(ref_id, hint_session, session_id)
        tomb = self._ref_tombs.get(ref_id)
        if tomb is not None:
            reason, owner = tomb
            if owner != session_id:
                raise SessionMismatch(ref_id, owner, session_id)
            raise RefNotFound(ref_id, session_id, reason)
        seq = self._seq_of(ref_id)
        if seq is not None:
            session = self.sessions.get(session_id)
            if session is not None and seq < session.cleared_seq:
                raise RefNotFound(ref_id, session_id, "lru")
            stomb = self._session_tombs.get(session_id)
            if stomb is not None and seq < stomb[1]:
                raise RefNotFound(ref_id, session_id, stomb[0])
        raise RefNotFound(ref_id, session_id, None)

    def _seq_of(self, ref_id: str):
        prefix = self.prefix
        if ref_id.startswith(prefix):
            tail = ref_id[len(prefix) :]
            if tail.isdigit():
                return int(tail)
        return None

    def sweep(self, now: float | None = None) -> int:
        """Drops every ref past its TTL; returns how many."""
        if now is None:
            now = self.now()
        n = 0
        for session in self.sessions.values():
            ttl = session.ttl_ms
            if not ttl:
                continue
            refs = session.refs
            while refs:
                entry = next(iter(refs.values()))
                if (now - entry.last_access) * 1000.0 < ttl:
                    break
                self._evict_oldest(session, "ttl")
                n += 1
        return n

    # -- introspection ----------------------------------------------------------------------------

    def stats(self) -> dict:
        return {"sessions": len(self.sessions), "refs": self.total, **self.counters}

    def describe_session(self, session_id: str):
        session = self.sessions.get(session_id)
        if session is None:
            return None
        return {
            "id": session.id,
            "refs": [
                {
                    "id": e.id,
                    "type_name": e.type_name,
                    "python_module": e.module,
                    "created_at": e.created_at,
                    "last_access": e.last_access,
                }
                for e in session.refs.values()
            ],
            "limits": session.limits(),
            "created_at": session.created_at,
            "last_access": session.last_access,
        }
