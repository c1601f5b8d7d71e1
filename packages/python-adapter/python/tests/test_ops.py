"""Ops through a Worker in this process: requests in, replies out, no subprocess."""
import os
import unittest

from .inproc_worker import InProcessWorker

FX = "tests.fixtures.bridge_fixtures"
S = "s1"


class Clock:
    def __init__(self):
        self.t = 1_700_000_000.0

    def __call__(self):
        return self.t


class OpsTestCase(unittest.TestCase):
    configure = None

    def setUp(self):
        self.w = InProcessWorker(self.configure)

    def tearDown(self):
        self.w.close()


class Handshake(unittest.TestCase):
    def test_requests_before_configure_are_protocol_errors(self):
        w = InProcessWorker(configure=False)
        try:
            self.assertEqual(w.error("ping")["kind"], "protocol")
            bad = w.request({"id": 50, "op": "configure", "protocol": 2})
            self.assertEqual(bad["error"]["kind"], "protocol")
            missing = w.request({"id": 51, "op": "configure"})
            self.assertEqual(missing["error"]["kind"], "protocol")
            self.assertEqual(w.error("ping")["kind"], "protocol")
            reply = w.request({"id": 0, "op": "configure", "protocol": 1})
            self.assertEqual(reply, {"id": 0, "ok": True, "result": {"protocol": 1, "pid": os.getpid()}})
            self.assertEqual(w.ok("ping"), {"pong": True})
        finally:
            w.close()

    def test_configure_validates_options(self):
        w = InProcessWorker(configure=False)
        try:
            for options in (
                {"chunk_size": 0},
                {"max_total_refs": "x"},
                {"allow_modules": "math"},
                {"defaults": {"max_refs": -1}},
                {"codecs": ["no_colon"]},
                {"rlimits": {"nope": 1}},
            ):
                reply = w.request({"id": 9, "op": "configure", "protocol": 1, **options})
                self.assertEqual(reply["error"]["kind"], "bad_request", options)
            self.assertEqual(w.request({"id": 9, "op": "configure", "protocol": 1, "codecs": ["nope_mod:X"]})["error"]["type"], "ModuleNotFoundError")
        finally:
            w.close()

    def test_hello(self):
        w = InProcessWorker(configure=False)
        hello = w.worker.hello()
        w.close()
        self.assertEqual(hello["event"], "hello")
        self.assertEqual(hello["protocol"], 1)
        self.assertEqual(hello["features"], ["binary", "async", "cancel", "batch", "stream"])
        for key in ("pid", "python", "implementation", "executable", "platform"):
            self.assertIn(key, hello)


class Calls(OpsTestCase):
    def test_call_and_result_kinds(self):
        self.assertEqual(self.w.ok("call", session=S, module="math", fn="sqrt", args=[16]), 4.0)
        self.assertEqual(self.w.ok("call", session=S, module="os.path", fn="join", args=["a", "b"]), "a/b")
        self.assertEqual(self.w.ok("call", session=S, module="os", fn="path.join", args=["a", "b"]), "a/b")
        echoed = self.w.ok("call", session=S, module=FX, fn="echo", args=[1, [2]], kwargs={"k": {"__type__": "tuple", "items": [3]}})
        self.assertEqual(echoed, {"args": [1, [2]], "kwargs": {"k": {"__type__": "tuple", "items": [3]}}})
        self.assertEqual(self.w.ok("call", session=S, module=FX, fn="types_of", args=[{"__type__": "int", "v": "18446744073709551616"}, 1, 1.5, {"__type__": "float", "v": "-0"}]), ["int", "int", "float", "float"])
        self.assertEqual(self.w.ok("call", session=S, module="builtins", fn="len", args=[[1, 2, 3]]), 3)

    def test_refs_methods_attrs(self):
        pattern = self.w.ok("call", session=S, module="re", fn="compile", args=["a+"])
        self.assertEqual(pattern["__type__"], "ref")
        self.assertEqual(pattern["type_name"], "Pattern")
        self.assertEqual(pattern["python_module"], "re")
        match = self.w.ok("method", session=S, ref=pattern, name="match", args=["aaa"])
        self.assertEqual(match["type_name"], "Match")
        self.assertEqual(self.w.ok("method", session=S, ref=match["id"], name="group"), "aaa")
        self.assertEqual(self.w.ok("attr", session=S, ref=pattern, name="pattern"), "a+")
        self.assertEqual(self.w.ok("attr", session=S, module="math", name="pi"), 3.141592653589793)
        counter = self.w.ok("call", session=S, module=FX, fn="Counter", args=[5])
        self.assertEqual(self.w.ok("method", session=S, ref=counter, name="__len__"), 5)
        self.assertEqual(self.w.ok("method", session=S, ref=counter, name="__repr__"), "Counter(5)")
        self.assertIsNone(self.w.ok("setattr", session=S, ref=counter, name="child", value=pattern))
        self.assertEqual(self.w.ok("attr", session=S, ref=counter, name="child.pattern"), "a+")
        self.assertEqual(self.w.ok("method", session=S, ref=counter, name="child.match", args=["xa"]), None)
        self.assertEqual(self.w.ok("call", session=S, module=FX, fn="identity", args=[[counter]])[0]["type_name"], "Counter")
        # a ref passed as an argument is the object itself
        self.assertEqual(self.w.ok("call", session=S, module=FX, fn="type_of", args=[counter]), "Counter")

    def test_errors(self):
        err = self.w.error("call", session=S, module="math", fn="sqrt", args=[-1])
        self.assertEqual(err["kind"], "python")
        self.assertEqual((err["type"], err["module"], err["message"], err["fn"]), ("ValueError", "builtins", "math domain error", "math.sqrt"))
        err = self.w.error("call", session=S, module=FX, fn="raise_chain")
        self.assertEqual(err["type"], "RuntimeError")
        self.assertIn("bridge_fixtures.py", err["traceback"])
        self.assertIn("KeyError", err["traceback"])
        self.assertNotIn("trestle_bridge", err["traceback"])
        err = self.w.error("call", session=S, module="no_such_module_xyz", fn="f")
        self.assertEqual(err["type"], "ModuleNotFoundError")
        err = self.w.error("call", session=S, module="math", fn="nope")
        self.assertEqual(err["type"], "AttributeError")
        err = self.w.error("call", session=S, module=FX, fn="exit_now")
        self.assertEqual((err["kind"], err["type"]), ("python", "SystemExit"))
        pattern = self.w.ok("call", session=S, module="re", fn="compile", args=["a"])
        err = self.w.error("method", session=S, ref=pattern, name="match", args=[1])
        self.assertEqual((err["type"], err["fn"]), ("TypeError", "Pattern.match"))

    def test_submodules_on_the_way(self):
        doc = self.w.ok("call", session=S, module="xml", fn="dom.minidom.parseString", args=["<a/>"])
        self.assertEqual(doc["type_name"], "Document")
        err = self.w.error("call", session=S, module="tests.fixtures.broken_pkg", fn="bad.f")
        self.assertEqual((err["type"], err["message"]), ("RuntimeError", "bad submodule import"))
        err = self.w.error("call", session=S, module="tests.fixtures.broken_pkg", fn="missing.f")
        self.assertEqual(err["type"], "AttributeError")

    def test_bad_requests(self):
        self.assertEqual(self.w.error("frobnicate")["kind"], "bad_request")
        self.assertEqual(self.w.error("call", module="math", fn="sqrt", args=[1])["kind"], "bad_request")
        self.assertEqual(self.w.error("call", session=S, fn="sqrt")["kind"], "bad_request")
        self.assertEqual(self.w.error("call", session=S, module="math", fn="sqrt", args={"a": 1})["kind"], "bad_request")
        self.assertEqual(self.w.error("call", session=S, module="math", fn="sqrt", args=[1], kwargs=[1])["kind"], "bad_request")
        self.assertEqual(self.w.error("method", session=S, name="x")["kind"], "bad_request")
        self.assertEqual(self.w.error("attr", session=S, name="x")["kind"], "bad_request")
        self.assertEqual(self.w.error("call", session=S, module="math", fn="a..b")["kind"], "bad_request")
        self.assertEqual(self.w.error("call", session=S, module=FX, fn="identity", args=[{"__type__": "wat"}])["kind"], "unencodable")

    def test_dunders_refused(self):
        for fn in ("__import__", "Counter.__init__", "Counter.__dict__"):
            self.assertEqual(self.w.error("call", session=S, module=FX if "Counter" in fn else "builtins", fn=fn)["kind"], "forbidden", fn)
        counter = self.w.ok("call", session=S, module=FX, fn="Counter")
        for name in ("__class__", "__secret__", "add.__globals__"):
            self.assertEqual(self.w.error("method", session=S, ref=counter, name=name)["kind"], "forbidden", name)
            self.assertEqual(self.w.error("attr", session=S, ref=counter, name=name)["kind"], "forbidden", name)
        self.assertEqual(self.w.error("setattr", session=S, ref=counter, name="__class__", value=1)["kind"], "forbidden")
        self.assertEqual(self.w.error("attr", session=S, module="os", name="__builtins__")["kind"], "forbidden")
        self.assertEqual(self.w.ok("method", session=S, ref=counter, name="__len__"), 0)

    def test_results_that_cannot_be_sent(self):
        err = self.w.error("call", session=S, module=FX, fn="nested", args=[1005])
        self.assertEqual(err["kind"], "unencodable")
        before = self.w.ok("stats")["refs"]
        self.assertEqual(self.w.ok("call", session=S, module=FX, fn="self_containing")["__type__"], "ref")
        self.assertEqual(self.w.ok("stats")["refs"], before + 1)

    def test_bytes_in_and_out(self):
        data = bytes(range(256)) * 40
        reply = self.w.request(
            {"id": 77, "op": "call", "session": S, "module": FX, "fn": "identity", "args": [{"__type__": "bytes", "blob": [0, len(data)]}]},
            [data],
        )
        self.assertEqual(reply["result"], {"__type__": "bytes", "blob": [0, len(data)]})
        small = self.w.ok("call", session=S, module=FX, fn="identity", args=[{"__type__": "bytes", "b64": "AAEC"}])
        self.assertEqual(small, {"__type__": "bytes", "b64": "AAEC"})

    def test_reply_over_max_frame_bytes(self):
        self.w.ok("ping")
        self.w.worker.set_max_frame_bytes(10_000)
        err = self.w.error("call", session=S, module=FX, fn="make_bytes", args=[20_000])
        self.assertEqual(err["kind"], "unencodable")


class AllowModules(OpsTestCase):
    configure = {"allow_modules": ["math", "os", "json", FX]}

    def test_allowlist(self):
        self.assertEqual(self.w.ok("call", session=S, module="math", fn="sqrt", args=[4]), 2.0)
        self.assertEqual(self.w.ok("call", session=S, module="os.path", fn="join", args=["a", "b"]), "a/b")
        self.assertEqual(self.w.error("call", session=S, module="subprocess", fn="run", args=["ls"])["kind"], "forbidden")
        self.assertEqual(self.w.error("attr", session=S, module="sys", name="path")["kind"], "forbidden")
        self.assertEqual(self.w.error("call", session=S, module="json", fn="decoder.re.compile", args=["x"])["kind"], "forbidden")
        self.assertEqual(self.w.ok("call", session=S, module="json", fn="dumps", args=[[1]]), "[1]")
        self.assertEqual(self.w.ok("doctor", modules=["math", "sys"])["modules"]["math"], True)
        self.assertIn("forbidden", self.w.ok("doctor", modules=["sys"])["modules"]["sys"])


class Sessions(OpsTestCase):
    def test_release_and_reasons(self):
        a = self.w.ok("call", session=S, module=FX, fn="Counter")
        b = self.w.ok("call", session=S, module=FX, fn="Counter")
        self.assertEqual(self.w.ok("release", session=S, ids=[a["id"], "unknown", b]), {"released": 2})
        err = self.w.error("method", session=S, ref=a, name="add")
        self.assertEqual((err["kind"], err["reason"], err["ref_id"], err["session_id"]), ("ref_not_found", "released", a["id"], S))
        c = self.w.ok("call", session=S, module=FX, fn="Counter")
        self.assertEqual(self.w.ok("release_session", session=S), {"released": 1})
        self.assertEqual(self.w.ok("release_session", session=S), {"released": 0})
        self.assertEqual(self.w.error("method", session=S, ref=c, name="add")["reason"], "session_released")
        self.assertEqual(self.w.ok("release", session="never", ids=["x"]), {"released": 0})

    def test_session_mismatch(self):
        a = self.w.ok("call", session="A", module=FX, fn="Counter")
        self.w.ok("call", session="B", module="math", fn="sqrt", args=[1])
        err = self.w.error("method", session="B", ref=a, name="add")
        self.assertEqual((err["kind"], err["ref_id"], err["expected_session"], err["actual_session"]), ("session_mismatch", a["id"], "A", "B"))
        err = self.w.error("call", session="B", module=FX, fn="identity", args=[a])
        self.assertEqual(err["kind"], "session_mismatch")
        err = self.w.error("method", session="B", ref=a["id"], name="add")
        self.assertEqual(err["kind"], "session_mismatch")

    def test_invalid_refs(self):
        self.w.ok("call", session=S, module="math", fn="sqrt", args=[1])
        self.assertEqual(self.w.error("method", session=S, ref={"__type__": "ref", "__schema__": 9, "id": "x"}, name="a")["reason"], "unknown_schema")
        self.assertEqual(self.w.error("method", session=S, ref={"__type__": "ref", "__schema__": 1}, name="a")["reason"], "missing_id")
        self.assertEqual(self.w.error("method", session=S, ref={"id": "x"}, name="a")["reason"], "missing_type")
        self.assertEqual(self.w.error("method", session=S, ref={"__type__": "int", "v": "1"}, name="a")["reason"], "not_a_ref")
        self.assertEqual(self.w.error("method", session=S, ref=5, name="a")["reason"], "not_an_object")
        self.assertEqual(self.w.error("method", session=S, ref={"__type__": "ref", "__schema__": 1, "id": "x"}, name="a")["reason"], "missing_session")

    def test_limits_max_refs(self):
        refs = [self.w.ok("call", session="L", limits={"max_refs": 2, "ttl_ms": 0}, module=FX, fn="Counter") for _ in range(3)]
        err = self.w.error("method", session="L", ref=refs[0], name="add")
        self.assertEqual((err["kind"], err["reason"]), ("ref_not_found", "lru"))
        self.assertEqual(self.w.ok("method", session="L", ref=refs[2], name="add"), 1)
        stats = self.w.ok("stats", session="L")
        self.assertEqual(stats["session"]["limits"], {"max_refs": 2, "ttl_ms": 0})
        self.assertEqual([r["id"] for r in stats["session"]["refs"]], [refs[1]["id"], refs[2]["id"]])
        self.assertEqual(stats["counters"]["evicted_lru"], 1)

    def test_global_cap(self):
        self.w.request({"id": 1000, "op": "configure", "protocol": 1, "max_total_refs": 3})
        old = [self.w.ok("call", session="old", module=FX, fn="Counter") for _ in range(2)]
        self.w.ok("call", session="new", module=FX, fn="Counter")
        self.w.ok("call", session="new", module=FX, fn="Counter")
        self.assertEqual(self.w.error("method", session="old", ref=old[0], name="add")["reason"], "lru")
        self.w.ok("call", session="new", module=FX, fn="Counter")
        err = self.w.error("call", session="new", module=FX, fn="Counter")
        self.assertEqual(err["kind"], "registry_full")


class Ttl(unittest.TestCase):
    def test_ttl_with_injected_clock(self):
        clock = Clock()
        w = InProcessWorker(now=clock)
        try:
            ref = w.ok("call", session="T", limits={"max_refs": 10, "ttl_ms": 1000}, module=FX, fn="Counter")
            clock.t += 0.5
            self.assertEqual(w.ok("method", session="T", ref=ref, name="add"), 1)
            clock.t += 1.0
            err = w.error("method", session="T", ref=ref, name="add")
            self.assertEqual((err["kind"], err["reason"]), ("ref_not_found", "ttl"))
            other = w.ok("call", session="T", module=FX, fn="Counter")
            clock.t += 2.0
            w.worker._sweep()
            self.assertEqual(w.ok("stats")["refs"], 0)
            self.assertEqual(w.error("method", session="T", ref=other, name="add")["reason"], "ttl")
            self.assertEqual(w.ok("stats")["counters"]["evicted_ttl"], 2)
        finally:
            w.close()


class Streams(OpsTestCase):
    def test_iter_and_chunks(self):
        data = self.w.ok("call", session=S, module="builtins", fn="list", args=[list(range(5))])
        self.assertEqual(data, [0, 1, 2, 3, 4])
        lst = self.w.ok("call", session=S, module="collections", fn="deque", args=[[1, 2, 3, 4, 5]])
        stream = self.w.ok("iter", session=S, ref=lst)
        self.assertTrue(stream["stream"])
        self.assertEqual(self.w.ok("stream_next", session=S, ref=stream, n=2), {"items": [1, 2], "done": False})
        self.assertEqual(self.w.ok("stream_next", session=S, ref=stream), {"items": [3, 4, 5], "done": True})
        self.assertEqual(self.w.error("stream_next", session=S, ref=stream)["reason"], "released")
        self.assertEqual(self.w.ok("stream_close", session=S, ref=stream), {"closed": False})
        self.assertEqual(self.w.error("stream_next", session=S, ref=lst)["kind"], "bad_request")

    def test_stream_call_error_and_close(self):
        gen = self.w.ok("call", session=S, module=FX, fn="fails_after", args=[3], stream=True)
        result = self.w.ok("stream_next", session=S, ref=gen, n=10)
        self.assertEqual(result["items"], [0, 1, 2])
        self.assertTrue(result["done"])
        self.assertEqual((result["error"]["type"], result["error"]["message"]), ("ValueError", "boom"))
        self.w.ok("call", session=S, module=FX, fn="clear_events")
        gen = self.w.ok("call", session=S, module=FX, fn="counting", args=[10], stream=True)
        self.assertEqual(self.w.ok("stream_next", session=S, ref=gen, n=3)["items"], [0, 1, 2])
        self.assertEqual(self.w.ok("stream_close", session=S, ref=gen), {"closed": True})
        self.assertEqual(self.w.ok("call", session=S, module=FX, fn="events"), ["counting closed"])
        self.assertEqual(self.w.ok("stream_close", session=S, ref=gen), {"closed": False})
        plain = self.w.ok("call", session=S, module=FX, fn="counting", args=[2])
        self.assertNotIn("stream", plain)  # a generator from a plain call is an ordinary ref

    def test_async_streams(self):
        self.w.ok("call", session=S, module=FX, fn="clear_events")
        gen = self.w.ok("call", session=S, module=FX, fn="async_counting", args=[5], stream=True)
        self.assertEqual(gen["type_name"], "async_generator")
        self.assertEqual(self.w.ok("stream_next", session=S, ref=gen, n=2), {"items": [0, 1], "done": False})
        self.assertEqual(self.w.ok("stream_close", session=S, ref=gen), {"closed": True})
        self.assertEqual(self.w.ok("call", session=S, module=FX, fn="events"), ["async_counting closed"])
        gen = self.w.ok("call", session=S, module=FX, fn="async_fails_after", args=[2], stream=True)
        result = self.w.ok("stream_next", session=S, ref=gen, n=5)
        self.assertEqual((result["items"], result["done"], result["error"]["type"]), ([0, 1], True, "KeyError"))
        # an awaitable result with stream: true is awaited, then iterated
        gen = self.w.ok("call", session=S, module=FX, fn="delayed", args=[[7, 8], 0], stream=True)
        self.assertEqual(self.w.ok("stream_next", session=S, ref=gen), {"items": [7, 8], "done": True})

    def test_async_stream_pull_in_flight(self):
        self.w.ok("call", session=S, module=FX, fn="clear_events")
        gen = self.w.ok("call", session=S, module=FX, fn="async_counting", args=[100, 0.02], stream=True)
        first = self.w.start("stream_next", session=S, ref=gen, n=3)
        self.assertEqual(self.w.error("stream_next", session=S, ref=gen)["kind"], "bad_request")
        close = self.w.start("stream_close", session=S, ref=gen)
        self.assertEqual(self.w.wait(first)[0]["result"], {"items": [0, 1, 2], "done": False})
        self.assertEqual(self.w.wait(close)[0]["result"], {"closed": True})
        self.assertEqual(self.w.ok("call", session=S, module=FX, fn="events"), ["async_counting closed"])

    def test_chunk_size_default(self):
        self.w.request({"id": 1000, "op": "configure", "protocol": 1, "chunk_size": 2})
        gen = self.w.ok("call", session=S, module="builtins", fn="range", args=[5], stream=True)
        self.assertEqual(self.w.ok("stream_next", session=S, ref=gen)["items"], [0, 1])
        self.assertEqual(self.w.error("stream_next", session=S, ref=gen, n=0)["kind"], "bad_request")


class Async(OpsTestCase):
    def test_out_of_order(self):
        ids = [self.w.start("call", session=S, module=FX, fn="delayed", args=[i, 0.05 * (3 - i)]) for i in range(3)]
        order = []
        while len(order) < 3:
            self.w.loop.run_until_complete(__import__("asyncio").sleep(0.005))
            self.w._collect()
            for rid in list(self.w.replies):
                order.append(rid)
                self.assertEqual(self.w.replies.pop(rid)[0]["result"], ids.index(rid))
        self.assertEqual(order, list(reversed(ids)))

    def test_sync_code_sees_no_running_loop(self):
        self.assertIs(self.w.ok("call", session=S, module=FX, fn="has_running_loop"), False)
        self.assertEqual(self.w.ok("call", session=S, module=FX, fn="run_nested", args=[3]), 3)
        self.assertEqual(self.w.ok("call", session=S, module=FX, fn="delayed", args=[4, 0]), 4)
        gen = self.w.ok("call", session=S, module=FX, fn="async_counting", args=[2], stream=True)
        self.assertEqual(self.w.ok("stream_next", session=S, ref=gen), {"items": [0, 1], "done": True})

    def test_async_errors(self):
        err = self.w.error("call", session=S, module=FX, fn="async_raises", args=["bad"])
        self.assertEqual((err["type"], err["message"], err["fn"]), ("RuntimeError", "bad", f"{FX}.async_raises"))
        self.assertNotIn("trestle_bridge", err["traceback"])
        counter = self.w.ok("call", session=S, module=FX, fn="Counter")
        self.assertEqual(self.w.ok("method", session=S, ref=counter, name="slow_add", args=[2, 0.01]), 2)

    def test_cancel_async_and_not_started(self):
        rid = self.w.start("call", session=S, module=FX, fn="async_sleep_forever")
        self.w.send({"op": "cancel", "target": rid})
        self.assertEqual(self.w.wait(rid)[0]["error"]["kind"], "cancelled")
        future_id = 5000
        self.w.send({"op": "cancel", "target": future_id})
        reply = self.w.request({"id": future_id, "op": "call", "session": S, "module": "math", "fn": "sqrt", "args": [1]})
        self.assertEqual(reply["error"]["kind"], "cancelled")
        self.w.send({"op": "cancel", "target": 99999})  # finished or unknown: nothing
        self.assertEqual(self.w.ok("stats")["counters"]["cancelled"], 2)
        self.assertEqual(self.w.ok("ping"), {"pong": True})


class Batch(OpsTestCase):
    def test_batch(self):
        data = bytes(5000)
        result = self.w.ok(
            "batch",
            items=[
                {"op": "call", "session": S, "module": "math", "fn": "sqrt", "args": [9]},
                {"op": "call", "session": S, "module": "math", "fn": "sqrt", "args": [-1]},
                {"op": "call", "session": S, "module": FX, "fn": "delayed", "args": [5, 0.01]},
                {"op": "call", "session": S, "module": FX, "fn": "make_bytes", "args": [5000]},
                {"op": "call", "session": S, "module": FX, "fn": "delayed", "args": [6, 0]},
                {"op": "batch", "items": []},
                {"op": "ping"},
            ],
        )
        self.assertEqual(result[0], {"ok": True, "result": 3.0})
        self.assertEqual(result[1]["error"]["type"], "ValueError")
        self.assertEqual(result[2], {"ok": True, "result": 5})
        self.assertEqual(result[3], {"ok": True, "result": {"__type__": "bytes", "blob": [0, 5000]}})
        self.assertEqual(result[4], {"ok": True, "result": 6})
        self.assertEqual(result[5]["error"]["kind"], "bad_request")
        self.assertEqual(result[6], {"ok": True, "result": {"pong": True}})
        self.assertEqual(len(data), 5000)
        self.assertEqual(self.w.error("batch", items={})["kind"], "bad_request")

    def test_batch_blobs_across_items(self):
        rid = self.w.start(
            "batch",
            items=[
                {"op": "call", "session": S, "module": FX, "fn": "make_bytes", "args": [4096]},
                {"op": "call", "session": S, "module": FX, "fn": "delayed", "args": [{"__type__": "bytes", "b64": "AA=="}, 0]},
                {"op": "call", "session": S, "module": FX, "fn": "make_bytes", "args": [5000]},
            ],
        )
        message, blob = self.w.wait(rid)
        items = message["result"]
        self.assertEqual(items[0]["result"]["blob"], [0, 4096])
        self.assertEqual(items[2]["result"]["blob"], [4096, 5000])
        self.assertEqual(len(blob), 9096)


class StatsDoctor(OpsTestCase):
    def test_stats(self):
        self.w.ok("call", session=S, module=FX, fn="Counter")
        self.w.error("call", session=S, module="math", fn="sqrt", args=[-1])
        stats = self.w.ok("stats")
        self.assertEqual(stats["pid"], os.getpid())
        self.assertEqual((stats["sessions"], stats["refs"]), (1, 1))
        self.assertGreater(stats["rss_bytes"], 1 << 20)
        self.assertEqual(
            set(stats["counters"]),
            {"calls", "errors", "refs_created", "refs_released", "evicted_ttl", "evicted_lru", "sessions_released", "cancelled"},
        )
        self.assertEqual(stats["counters"]["calls"], 2)
        self.assertEqual(stats["counters"]["errors"], 1)
        self.assertNotIn("session", stats)
        self.assertIsNone(self.w.ok("stats", session="unknown")["session"])

    def test_doctor(self):
        result = self.w.ok("doctor", modules=["json", "no_such_module_xyz"])
        self.assertEqual(result["modules"]["json"], True)
        self.assertIn("No module named", result["modules"]["no_such_module_xyz"])
        for key in ("python", "executable", "implementation", "prefix"):
            self.assertIn(key, result)


class Codecs(OpsTestCase):
    configure = {"codecs": ["tests.codec_example:CODECS"]}

    def test_custom_codecs_through_configure(self):
        value = self.w.ok("call", session=S, module="decimal", fn="Decimal", args=["1.25"])
        self.assertEqual(value, {"__type__": "custom", "codec": "decimal", "v": "1.25"})
        self.assertEqual(self.w.ok("call", session=S, module=FX, fn="type_of", args=[value]), "Decimal")
        half = self.w.ok("call", session=S, module="fractions", fn="Fraction", args=[1, 2])
        self.assertEqual(half, {"__type__": "custom", "codec": "fraction", "v": [1, 2]})


if __name__ == "__main__":
    unittest.main()
