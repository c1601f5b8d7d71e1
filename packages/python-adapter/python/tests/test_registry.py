import random
import unittest

from trestle_bridge.errors import BadRequest, RefNotFound, RegistryFull, SessionMismatch
from trestle_bridge.registry import Registry


class Clock:
    def __init__(self, t=1_000.0):
        self.t = t

    def __call__(self):
        return self.t

    def advance(self, ms):
        self.t += ms / 1000.0


def make(**kw):
    clock = Clock()
    return Registry(now=clock, **kw), clock


class Obj:
    pass


class RegistryBasics(unittest.TestCase):
    def test_put_get_and_wire(self):
        reg, _ = make()
        s = reg.session("s1")
        entry = reg.put(s, Obj())
        self.assertIs(reg.get("s1", entry.id), entry)
        wire = entry.wire()
        self.assertEqual(wire["__type__"], "ref")
        self.assertEqual(wire["__schema__"], 1)
        self.assertEqual(wire["session_id"], "s1")
        self.assertEqual(wire["type_name"], "Obj")
        self.assertEqual(wire["python_module"], __name__)
        self.assertNotIn("stream", wire)
        self.assertTrue(reg.put(s, iter([]), stream=True).wire()["stream"])

    def test_ids_are_unique_and_prefixed_per_worker(self):
        a, _ = make()
        b, _ = make()
        self.assertNotEqual(a.prefix, b.prefix)
        s = a.session("s")
        ids = {a.put(s, Obj()).id for _ in range(1000)}
        self.assertEqual(len(ids), 1000)
        self.assertTrue(all(i.startswith(a.prefix) for i in ids))

    def test_sessions_are_created_on_first_use_with_defaults_and_limits(self):
        reg, clock = make(max_refs=5, ttl_ms=100)
        s = reg.session("s1")
        self.assertEqual(s.limits(), {"max_refs": 5, "ttl_ms": 100})
        self.assertEqual(s.created_at, clock.t)
        clock.advance(10)
        reg.session("s1", {"max_refs": 2})
        self.assertEqual(s.limits(), {"max_refs": 2, "ttl_ms": 100})
        self.assertEqual(s.last_access, clock.t)
        self.assertIsNone(reg.session("nope", create=False))
        with self.assertRaises(BadRequest):
            reg.session("s2", {"max_refs": 0})
        with self.assertRaises(BadRequest):
            reg.session("s2", {"ttl_ms": -1})

    def test_counters(self):
        reg, clock = make()
        s = reg.session("s1", {"max_refs": 2, "ttl_ms": 50})
        a = reg.put(s, Obj())
        reg.put(s, Obj())
        reg.put(s, Obj())  # evicts a (lru)
        self.assertEqual(reg.release("s1", [reg.peek("s1", list(s.refs)[0]).id]), 1)
        clock.advance(60)
        self.assertEqual(reg.sweep(), 1)
        reg.put(s, Obj())
        self.assertEqual(reg.release_session("s1"), 1)
        self.assertEqual(
            reg.counters,
            {"refs_created": 4, "refs_released": 2, "evicted_ttl": 1, "evicted_lru": 1, "sessions_released": 1},
        )
        self.assertEqual(reg.stats()["refs"], 0)
        with self.assertRaises(RefNotFound) as caught:
            reg.get("s1", a.id)
        self.assertEqual(caught.exception.reason, "lru")


class Ttl(unittest.TestCase):
    def test_expired_on_access(self):
        reg, clock = make()
        s = reg.session("s1", {"ttl_ms": 1000})
        e = reg.put(s, Obj())
        clock.advance(999)
        reg.get("s1", e.id)  # an access: the TTL starts again
        clock.advance(999)
        reg.get("s1", e.id)
        clock.advance(1000)
        with self.assertRaises(RefNotFound) as caught:
            reg.get("s1", e.id)
        self.assertEqual(caught.exception.reason, "ttl")
        self.assertEqual(caught.exception.info()["reason"], "ttl")
        self.assertEqual(reg.total, 0)
        with self.assertRaises(RefNotFound) as again:
            reg.get("s1", e.id)
        self.assertEqual(again.exception.reason, "ttl")

    def test_sweep_drops_only_expired_per_session_ttl(self):
        reg, clock = make()
        fast = reg.session("fast", {"ttl_ms": 100})
        slow = reg.session("slow", {"ttl_ms": 10_000})
        never = reg.session("never", {"ttl_ms": 0})
        old = reg.put(fast, Obj())
        clock.advance(60)
        young = reg.put(fast, Obj())
        s = reg.put(slow, Obj())
        n = reg.put(never, Obj())
        clock.advance(50)  # old is 110 ms, young 50 ms
        self.assertEqual(reg.sweep(), 1)
        self.assertIsNone(reg.peek("fast", old.id))
        self.assertIs(reg.peek("fast", young.id), young)
        clock.advance(1_000_000)
        self.assertEqual(reg.sweep(clock()), 2)
        self.assertIs(reg.peek("never", n.id), n)
        with self.assertRaises(RefNotFound) as caught:
            reg.get("slow", s.id)
        self.assertEqual(caught.exception.reason, "ttl")
        self.assertEqual(reg.counters["evicted_ttl"], 3)

    def test_ttl_zero_means_none(self):
        reg, clock = make(ttl_ms=0)
        s = reg.session("s")
        e = reg.put(s, Obj())
        clock.advance(10**12)
        self.assertIs(reg.get("s", e.id), e)


class Lru(unittest.TestCase):
    def test_per_session_lru_by_last_access(self):
        reg, clock = make()
        s = reg.session("s1", {"max_refs": 3})
        other = reg.session("s2", {"max_refs": 3})
        keep_other = [reg.put(other, Obj()) for _ in range(3)]
        a, b, c = (reg.put(s, Obj()) for _ in range(3))
        reg.get("s1", a.id)  # a is now the most recently used; b the least
        d = reg.put(s, Obj())
        with self.assertRaises(RefNotFound) as caught:
            reg.get("s1", b.id)
        self.assertEqual(caught.exception.reason, "lru")
        for e in (a, c, d):
            self.assertIs(reg.get("s1", e.id), e)
        for e in keep_other:  # never another session's
            self.assertIs(reg.get("s2", e.id), e)
        self.assertEqual(reg.counters["evicted_lru"], 1)

    def test_lowering_max_refs_evicts_now(self):
        reg, _ = make()
        s = reg.session("s1")
        refs = [reg.put(s, Obj()) for _ in range(5)]
        reg.session("s1", {"max_refs": 2})
        self.assertEqual(list(s.refs), [refs[3].id, refs[4].id])
        self.assertEqual(reg.total, 2)


class GlobalCap(unittest.TestCase):
    def test_evicts_least_recently_used_idle_session_whole(self):
        reg, clock = make(max_total_refs=6)
        a = reg.session("a")
        a_refs = [reg.put(a, Obj()) for _ in range(2)]
        clock.advance(1)
        b = reg.session("b")
        b_refs = [reg.put(b, Obj()) for _ in range(2)]
        clock.advance(1)
        c = reg.session("c")
        reg.put(c, Obj())
        reg.put(c, Obj())
        reg.session("a")  # a used again: b is now the least recently used
        new = reg.put(c, Obj())
        self.assertEqual(reg.total, 5)
        for e in b_refs:
            with self.assertRaises(RefNotFound) as caught:
                reg.get("b", e.id)
            self.assertEqual(caught.exception.reason, "lru")
        for e in a_refs:
            self.assertIs(reg.get("a", e.id), e)
        self.assertIs(reg.get("c", new.id), new)
        self.assertIn("b", reg.sessions)  # stays open, empty
        self.assertEqual(reg.counters["evicted_lru"], 2)
        # a ref put into b later is unaffected by the old eviction
        later = reg.put(b, Obj())
        self.assertIs(reg.get("b", later.id), later)

    def test_session_order_follows_use(self):
        # `session()` skips the move when the session is already the last one used: the order must not care.
        reg, _ = make()
        rng = random.Random(7)
        model = []
        for _ in range(500):
            sid = f"s{rng.randrange(4)}"
            if rng.random() < 0.15:
                reg.release_session(sid)
                if sid in model:
                    model.remove(sid)
                continue
            reg.session(sid)
            if sid in model:
                model.remove(sid)
            model.append(sid)
            self.assertEqual(list(reg.sessions), model)

    def test_busy_sessions_are_not_idle(self):
        reg, _ = make(max_total_refs=3)
        a = reg.session("a")
        a_refs = [reg.put(a, Obj()) for _ in range(2)]
        b = reg.session("b")
        b_ref = reg.put(b, Obj())
        a.busy = 1
        c = reg.session("c")
        reg.put(c, Obj())
        self.assertIsNone(reg.peek("b", b_ref.id))
        self.assertTrue(all(reg.peek("a", e.id) is e for e in a_refs))

    def test_full_when_no_idle_session(self):
        reg, _ = make(max_total_refs=2)
        s = reg.session("only")
        reg.put(s, Obj())
        reg.put(s, Obj())
        with self.assertRaises(RegistryFull) as caught:
            reg.put(s, Obj())
        self.assertEqual(caught.exception.info()["kind"], "registry_full")
        self.assertEqual(reg.total, 2)


class Tombstones(unittest.TestCase):
    def test_reasons(self):
        reg, _ = make()
        s = reg.session("s1")
        released = reg.put(s, Obj())
        reg.release("s1", [released.id])
        with self.assertRaises(RefNotFound) as caught:
            reg.get("s1", released.id)
        self.assertEqual(caught.exception.reason, "released")

        gone = reg.put(s, Obj())
        self.assertEqual(reg.release_session("s1"), 1)
        with self.assertRaises(RefNotFound) as caught:
            reg.get("s1", gone.id)
        self.assertEqual(caught.exception.reason, "session_released")
        # the session is created again on use; its old refs still say why they are gone
        s_again = reg.session("s1")
        fresh = reg.put(s_again, Obj())
        self.assertIs(reg.get("s1", fresh.id), fresh)
        with self.assertRaises(RefNotFound) as caught:
            reg.get("s1", gone.id)
        self.assertEqual(caught.exception.reason, "session_released")

    def test_unknown_ids_have_no_reason(self):
        reg, _ = make()
        reg.session("s1")
        with self.assertRaises(RefNotFound) as caught:
            reg.get("s1", "r_from_another_worker_1")
        self.assertIsNone(caught.exception.reason)
        self.assertNotIn("reason", caught.exception.info())
        with self.assertRaises(RefNotFound) as caught:
            reg.get("never-seen-session", reg.prefix + "99")
        self.assertIsNone(caught.exception.reason)

    def test_bounded(self):
        reg, _ = make(max_tombstones=8)
        s = reg.session("s")
        entries = [reg.put(s, Obj()) for _ in range(20)]
        reg.release("s", [e.id for e in entries])
        self.assertEqual(len(reg._ref_tombs), 8)
        with self.assertRaises(RefNotFound) as caught:
            reg.get("s", entries[0].id)
        self.assertIsNone(caught.exception.reason)  # forgotten
        with self.assertRaises(RefNotFound) as caught:
            reg.get("s", entries[-1].id)
        self.assertEqual(caught.exception.reason, "released")
        for i in range(20):
            reg.session(f"x{i}")
            reg.release_session(f"x{i}")
        self.assertEqual(len(reg._session_tombs), 8)

    def test_session_mismatch(self):
        reg, _ = make()
        a = reg.session("a")
        reg.session("b")
        e = reg.put(a, Obj())
        with self.assertRaises(SessionMismatch) as caught:
            reg.get("b", e.id)
        info = caught.exception.info()
        self.assertEqual(info["kind"], "session_mismatch")
        self.assertEqual((info["expected_session"], info["actual_session"], info["ref_id"]), ("a", "b", e.id))
        # the wire form's session_id says whose it was, even once gone
        with self.assertRaises(SessionMismatch):
            reg.get("b", "unknown", hint_session="a")
        # a released ref used from another session is also a mismatch
        reg.release("a", [e.id])
        with self.assertRaises(SessionMismatch):
            reg.get("b", e.id)


class SessionDrop(unittest.TestCase):
    def test_release_session_is_constant_time(self):
        reg, _ = make(max_refs=10**6)
        s = reg.session("big")
        for _ in range(50_000):
            reg.put(s, None)
        # O(1): the session's dict is dropped, no per-ref work (no per-ref tombstones)
        self.assertEqual(reg.release_session("big"), 50_000)
        self.assertEqual(reg.total, 0)
        self.assertEqual(len(reg._ref_tombs), 0)
        self.assertEqual(reg.release_session("big"), 0)
        self.assertEqual(reg.release("big", ["x"]), 0)

    def test_describe_session(self):
        reg, clock = make()
        s = reg.session("s", {"max_refs": 7, "ttl_ms": 9})
        e = reg.put(s, Obj())
        d = reg.describe_session("s")
        self.assertEqual(d["id"], "s")
        self.assertEqual(d["limits"], {"max_refs": 7, "ttl_ms": 9})
        self.assertEqual(
            d["refs"],
            [{"id": e.id, "type_name": "Obj", "python_module": __name__, "created_at": clock.t, "last_access": clock.t}],
        )
        self.assertIsNone(reg.describe_session("nope"))


class RandomizedModel(unittest.TestCase):
    """Random operations against a simple model of the rules."""

    def test_against_model(self):
        for seed in range(20):
            self._run(random.Random(seed))

    def _run(self, rng):
        reg, clock = make(max_total_refs=10**9)
        model = {}  # session -> list of [id, last_access] in LRU order
        limits = {}
        for _ in range(400):
            sid = f"s{rng.randrange(3)}"
            if sid not in limits:
                limits[sid] = (rng.randrange(1, 6), rng.choice([0, 50, 200]))
                reg.session(sid, {"max_refs": limits[sid][0], "ttl_ms": limits[sid][1]})
                model[sid] = []
            max_refs, ttl = limits[sid]
            action = rng.random()
            clock.advance(rng.randrange(0, 40))
            now = clock()
            refs = model[sid]
            if action < 0.45:
                entry = reg.put(reg.session(sid), Obj())
                if len(refs) >= max_refs:
                    refs.pop(0)
                refs.append([entry.id, now])
            elif action < 0.8 and refs:
                item = rng.choice(refs)
                expired = ttl and (now - item[1]) * 1000 >= ttl
                if expired:
                    with self.assertRaises(RefNotFound):
                        reg.get(sid, item[0])
                    refs.remove(item)
                else:
                    reg.get(sid, item[0])
                    refs.remove(item)
                    item[1] = now
                    refs.append(item)
            elif action < 0.9 and refs:
                item = rng.choice(refs)
                self.assertEqual(reg.release(sid, [item[0]]), 1)
                refs.remove(item)
            else:
                reg.sweep()
                if ttl:
                    model[sid] = [r for r in refs if (now - r[1]) * 1000 < ttl]
                for other, (_, other_ttl) in limits.items():
                    if other_ttl and other != sid:
                        model[other] = [r for r in model[other] if (now - r[1]) * 1000 < other_ttl]
            for s_id, s_refs in model.items():
                live = reg.sessions[s_id].refs
                # the model may hold refs that expired without a sweep; the registry may too
                self.assertEqual([r[0] for r in s_refs], list(live))
        self.assertEqual(reg.total, sum(len(r) for r in model.values()))


if __name__ == "__main__":
    unittest.main()
