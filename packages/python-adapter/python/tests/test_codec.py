import collections
import datetime
import enum
import math
import sys
import unittest
from decimal import Decimal
from fractions import Fraction

from trestle_bridge.codec import MAX_DEPTH, Ctx, ValueCodec, load_codecs
from trestle_bridge.errors import BadRequest, InvalidRef, RefNotFound, SessionMismatch, Unencodable
from trestle_bridge.framing import dumps
from trestle_bridge.registry import Registry


def setUpModule():
    # as the worker does at start: 1000 nested levels need more than the default 1000 frames
    global _old_limit
    _old_limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(_old_limit, 4000))


def tearDownModule():
    sys.setrecursionlimit(_old_limit)


class Color(enum.IntEnum):
    RED = 1


class MyDict(dict):
    pass


class MyStr(str):
    pass


Point = collections.namedtuple("Point", "x y")


def setup(**kw):
    reg = Registry()
    codec = ValueCodec(reg, **kw)
    session = reg.session("s1")
    return reg, codec, session


def encode(codec, session, value):
    ctx = Ctx(session)
    wire = codec.encode(value, ctx)
    dumps(wire)  # always strict JSON
    return wire, ctx


def roundtrip(codec, session, value):
    """Python -> wire -> JSON text -> wire -> Python, blobs included."""
    import json

    wire, ctx = encode(codec, session, value)
    text = dumps(wire)
    blob = memoryview(b"".join(ctx.blobs))
    back = Ctx(session, blob)
    return codec.decode(json.loads(text), back)


class Scalars(unittest.TestCase):
    def setUp(self):
        self.reg, self.codec, self.s = setup()

    def enc(self, value):
        return encode(self.codec, self.s, value)[0]

    def test_natives(self):
        for value in (None, True, False, 0, 1, -7, 2**53 - 1, -(2**53 - 1), 1.5, -2.25, "", "héllo ☃", "\ud800"):
            self.assertEqual(self.enc(value), value)
            self.assertIs(type(self.enc(value)), type(value))

    def test_bool_before_int(self):
        self.assertIs(self.enc(True), True)
        self.assertEqual(roundtrip(self.codec, self.s, [True, 1]), [True, 1])
        self.assertIs(roundtrip(self.codec, self.s, [True, 1])[0], True)

    def test_big_ints(self):
        for value in (2**53, -(2**53), 2**64, -(2**64) - 1, 10**100):
            wire = self.enc(value)
            self.assertEqual(wire, {"__type__": "int", "v": str(value)})
            self.assertEqual(roundtrip(self.codec, self.s, value), value)
        self.assertEqual(self.enc(2**64), {"__type__": "int", "v": "18446744073709551616"})

    def test_special_floats(self):
        self.assertEqual(self.enc(-0.0), {"__type__": "float", "v": "-0"})
        self.assertEqual(self.enc(0.0), 0.0)
        self.assertEqual(self.enc(math.inf), {"__type__": "float", "v": "inf"})
        self.assertEqual(self.enc(-math.inf), {"__type__": "float", "v": "-inf"})
        self.assertEqual(self.enc(math.nan), {"__type__": "float", "v": "nan"})
        back = roundtrip(self.codec, self.s, [-0.0, math.inf, -math.inf, math.nan, 0.0])
        self.assertEqual(math.copysign(1, back[0]), -1.0)
        self.assertEqual(back[1:3], [math.inf, -math.inf])
        self.assertTrue(math.isnan(back[3]))
        self.assertEqual(math.copysign(1, back[4]), 1.0)

    def test_complex(self):
        self.assertEqual(self.enc(1 + 2j), {"__type__": "complex", "re": 1.0, "im": 2.0})
        wire = self.enc(complex(math.inf, -0.0))
        self.assertEqual(wire["re"], {"__type__": "float", "v": "inf"})
        self.assertEqual(wire["im"], {"__type__": "float", "v": "-0"})
        self.assertEqual(roundtrip(self.codec, self.s, 3 - 4j), 3 - 4j)
        back = roundtrip(self.codec, self.s, complex(math.inf, -0.0))
        self.assertEqual(back.real, math.inf)
        self.assertEqual(math.copysign(1, back.imag), -1)

    def test_dates(self):
        aware = datetime.datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=datetime.timezone.utc)
        naive = datetime.datetime(2024, 1, 2, 3, 4, 5)
        self.assertEqual(self.enc(aware), {"__type__": "datetime", "iso": "2024-01-02T03:04:05.123456+00:00"})
        self.assertEqual(self.enc(naive), {"__type__": "datetime", "iso": "2024-01-02T03:04:05"})
        self.assertEqual(self.enc(datetime.date(2024, 1, 2)), {"__type__": "date", "iso": "2024-01-02"})
        for value in (aware, naive, datetime.date(2024, 1, 2)):
            back = roundtrip(self.codec, self.s, value)
            self.assertEqual(back, value)
            self.assertIs(type(back), type(value))
        # what a JS Date's toISOString() gives: an aware UTC datetime
        js = self.codec.decode({"__type__": "datetime", "iso": "2024-01-02T03:04:05.123Z"}, Ctx(self.s))
        self.assertEqual(js, datetime.datetime(2024, 1, 2, 3, 4, 5, 123000, tzinfo=datetime.timezone.utc))


class Containers(unittest.TestCase):
    def setUp(self):
        self.reg, self.codec, self.s = setup()

    def enc(self, value):
        return encode(self.codec, self.s, value)[0]

    def test_tuple_set_frozenset(self):
        self.assertEqual(self.enc((1, "a")), {"__type__": "tuple", "items": [1, "a"]})
        self.assertEqual(self.enc({3}), {"__type__": "set", "items": [3]})
        self.assertEqual(self.enc(frozenset()), {"__type__": "frozenset", "items": []})
        for value in ((1, (2, (3, ())), [4, (5,)]), {1, "x", (2, 3)}, frozenset({1, 2}), ()):
            back = roundtrip(self.codec, self.s, value)
            self.assertEqual(back, value)
            self.assertIs(type(back), type(value))
        nested = roundtrip(self.codec, self.s, (1, (2, (3,))))
        self.assertIs(type(nested[1][1]), tuple)

    def test_dicts(self):
        self.assertEqual(self.enc({"a": 1, "b": [2]}), {"a": 1, "b": [2]})
        self.assertEqual(self.enc({1: "x"}), {"__type__": "dict", "items": [[1, "x"]]})
        with_tag = {"__type__": "ref", "id": "x"}
        wire = self.enc(with_tag)
        self.assertEqual(wire, {"__type__": "dict", "items": [["__type__", "ref"], ["id", "x"]]})
        self.assertEqual(roundtrip(self.codec, self.s, with_tag), with_tag)
        tuple_keys = {(1, 2): "a", (3, (4,)): ["b"], "s": 1}
        self.assertEqual(roundtrip(self.codec, self.s, tuple_keys), tuple_keys)
        self.assertEqual(roundtrip(self.codec, self.s, {}), {})
        mixed = {"a": 1, 2: "b"}  # a non-str key after a str key: tagged, no refs leaked
        self.assertEqual(roundtrip(self.codec, self.s, mixed), mixed)

    def test_bytes_b64_and_blob(self):
        all_values = bytes(range(256))
        wire, ctx = encode(self.codec, self.s, all_values)
        self.assertEqual(wire["__type__"], "bytes")
        self.assertIn("b64", wire)
        self.assertEqual(roundtrip(self.codec, self.s, all_values), all_values)
        big = all_values * 20  # 5120 >= 4096: blob
        wire, ctx = encode(self.codec, self.s, [b"x", big, big[:4096]])
        self.assertEqual(wire[1], {"__type__": "bytes", "blob": [0, 5120]})
        self.assertEqual(wire[2], {"__type__": "bytes", "blob": [5120, 4096]})
        self.assertEqual(ctx.blob_size, 9216)
        self.assertEqual(roundtrip(self.codec, self.s, [b"x", big, big[:4096]]), [b"x", big, big[:4096]])
        self.assertEqual(roundtrip(self.codec, self.s, b""), b"")

    def test_threshold_is_configurable(self):
        _, codec, s = setup(binary_threshold=2)
        self.assertEqual(encode(codec, s, b"ab")[0], {"__type__": "bytes", "blob": [0, 2]})
        self.assertIn("b64", encode(codec, s, b"a")[0])

    def test_long_scalar_lists_pass_as_they_are(self):
        floats = [i * 0.5 for i in range(1, 100_001)]
        self.assertIs(self.enc(floats), floats)
        ints = list(range(1000))
        self.assertIs(self.enc(ints), ints)
        strs = ["a"] * 100
        self.assertIs(self.enc(strs), strs)
        # ...unless an item needs a tag: then the slow path tags exactly that item
        for bad in (math.nan, math.inf, -0.0, 2**60):
            values = [1.5] * 50 + [bad] + [2.5] * 50
            wire = self.enc(values)
            self.assertIsNot(wire, values)
            self.assertIsInstance(wire[50], dict)
            self.assertEqual(wire[:50], [1.5] * 50)
        self.assertEqual(self.enc([0.0] * 20 + [1]), [0.0] * 20 + [1])
        huge = [1e308] * 20  # the sum overflows: slow path, same result
        self.assertEqual(self.enc(huge), huge)

    def test_subclasses_become_refs(self):
        for value in (Color.RED, MyDict(a=1), MyStr("x"), Point(1, 2), collections.OrderedDict(a=1)):
            wire = self.enc(value)
            self.assertEqual(wire["__type__"], "ref", value)
            self.assertIs(self.reg.get("s1", wire["id"]).obj, value)
        self.assertIs(self.enc(True), True)

    def test_other_objects_become_refs_never_strings(self):
        obj = object()
        wire = self.enc({"k": [obj]})
        ref = wire["k"][0]
        self.assertEqual(ref["__type__"], "ref")
        self.assertEqual(ref["type_name"], "object")
        self.assertIs(roundtrip(self.codec, self.s, {"k": [obj]})["k"][0], obj)
        self.assertEqual(self.enc(bytearray(b"x"))["__type__"], "ref")
        self.assertEqual(self.enc(datetime.time(1, 2))["__type__"], "ref")

    def test_without_a_session_refs_are_unencodable(self):
        with self.assertRaises(Unencodable):
            self.codec.encode(object(), Ctx(None))

    def test_cycles_become_refs(self):
        loop = [1, 2]
        loop.append(loop)
        wire, ctx = encode(self.codec, self.s, loop)
        self.assertEqual(wire["__type__"], "ref")
        self.assertIs(self.reg.get("s1", wire["id"]).obj, loop)
        self.assertEqual(len(ctx.created), 1)

        d = {"a": None}
        d["a"] = {"inner": [d, object()]}  # the object's ref is abandoned with the walk
        before = self.reg.total
        wire = self.enc({"outer": d})
        self.assertEqual(wire["outer"]["__type__"], "ref")
        self.assertEqual(self.reg.total, before + 1)

        t = ([],)
        t[0].append(t)
        self.assertEqual(self.enc(t)["__type__"], "ref")

        shared = [1]  # the same list twice is not a cycle
        self.assertEqual(self.enc([shared, shared]), [[1], [1]])

    def test_depth_limit(self):
        ok = []
        for _ in range(MAX_DEPTH - 1):
            ok = [ok]
        self.assertIsInstance(self.enc(ok), list)
        too_deep = [ok]
        with self.assertRaises(Unencodable):
            self.enc([too_deep])
        deep_dict = {}
        for _ in range(MAX_DEPTH + 5):
            deep_dict = {"a": deep_dict}
        with self.assertRaises(Unencodable):
            self.enc(deep_dict)


class Decoding(unittest.TestCase):
    def setUp(self):
        self.reg, self.codec, self.s = setup()

    def dec(self, wire, blob=None):
        return self.codec.decode(wire, Ctx(self.s, blob))

    def test_malformed_tags_are_unencodable(self):
        bad = [
            {"__type__": "nope"},
            {"__type__": 3},
            {"__type__": "int", "v": 5},
            {"__type__": "int", "v": "x"},
            {"__type__": "float", "v": "NaN"},
            {"__type__": "tuple"},
            {"__type__": "set", "items": [[1]]},
            {"__type__": "bytes", "b64": "!!"},
            {"__type__": "bytes", "blob": [0, 10]},
            {"__type__": "bytes", "blob": [-1, 1]},
            {"__type__": "complex", "re": "x", "im": 1},
            {"__type__": "datetime", "iso": "yesterday"},
            {"__type__": "date", "iso": 5},
            {"__type__": "dict", "items": [[1]]},
            {"__type__": "dict", "items": [[[1], 2]]},
            {"__type__": "custom", "codec": "nope", "v": 1},
        ]
        for wire in bad:
            with self.assertRaises(Unencodable, msg=wire):
                self.dec(wire)

    def test_blob_bounds(self):
        self.assertEqual(self.dec({"__type__": "bytes", "blob": [2, 3]}, memoryview(b"abcdef")), b"cde")
        with self.assertRaises(Unencodable):
            self.dec({"__type__": "bytes", "blob": [4, 3]}, memoryview(b"abcdef"))

    def test_refs(self):
        obj = object()
        wire = encode(self.codec, self.s, obj)[0]
        self.assertIs(self.dec(wire), obj)
        self.assertIs(self.dec([{"k": wire}])[0]["k"], obj)
        self.assertIs(self.codec.lookup(wire["id"], Ctx(self.s)).obj, obj)
        full = dict(wire)
        cases = [
            ({k: v for k, v in full.items() if k != "__schema__"}, "unknown_schema"),
            ({**full, "__schema__": 2}, "unknown_schema"),
            ({**full, "__schema__": True}, "unknown_schema"),
            ({k: v for k, v in full.items() if k != "id"}, "missing_id"),
            ({**full, "id": 5}, "missing_id"),
            ({**full, "session_id": ""}, "missing_session"),
            ({k: v for k, v in full.items() if k != "type_name"}, "missing_type_name"),
            ({**full, "python_module": None}, "invalid_field"),
            ({**full, "library": 3}, "invalid_field"),
        ]
        for bad, reason in cases:
            with self.assertRaises(InvalidRef) as caught:
                self.dec(bad)
            self.assertEqual(caught.exception.info()["reason"], reason, bad)
        info = caught.exception.info()
        self.assertEqual((info["ref_id"], info["session_id"]), (wire["id"], "s1"))
        for bad, reason in (({"id": "x"}, "missing_type"), ({**full, "__type__": "tuple"}, "not_a_ref"), (5, "not_an_object"), ("", "missing_id")):
            with self.assertRaises(InvalidRef) as caught:
                self.codec.lookup(bad, Ctx(self.s))
            self.assertEqual(caught.exception.info()["reason"], reason)
        with self.assertRaises(RefNotFound):
            self.dec({**full, "id": "unknown"})
        other = self.reg.session("s2")
        with self.assertRaises(SessionMismatch):
            self.codec.decode(wire, Ctx(other))

    def test_plain_json_is_decoded_in_place(self):
        value = {"a": [1, 2.5, "x", None, True, {"b": []}]}
        self.assertIs(self.dec(value), value)
        long_list = list(range(100))
        self.assertIs(self.dec(long_list), long_list)

    def test_decode_depth(self):
        deep = []
        for _ in range(MAX_DEPTH + 10):
            deep = [deep]
        with self.assertRaises(Unencodable):
            self.dec(deep)


class CodecPlugins(unittest.TestCase):
    def test_load_and_use(self):
        reg = Registry()
        codec = ValueCodec(reg, codecs=load_codecs(["tests.codec_example:CODECS"]))
        s = reg.session("s")
        wire = encode(codec, s, [Decimal("1.10"), Fraction(2**70, 3)])[0]
        self.assertEqual(wire[0], {"__type__": "custom", "codec": "decimal", "v": "1.10"})
        self.assertEqual(
            wire[1], {"__type__": "custom", "codec": "fraction", "v": [{"__type__": "int", "v": str(2**70)}, 3]}
        )
        back = roundtrip(codec, s, [Decimal("1.10"), Fraction(2**70, 3)])
        self.assertEqual(back, [Decimal("1.10"), Fraction(2**70, 3)])
        self.assertEqual(str(back[0]), "1.10")

    def test_subclasses_and_order(self):
        class SubDecimal(Decimal):
            pass

        reg = Registry()
        codec = ValueCodec(reg, codecs=load_codecs(["tests.codec_example:DECIMAL"]))
        s = reg.session("s")
        self.assertEqual(encode(codec, s, SubDecimal("2"))[0]["codec"], "decimal")
        self.assertEqual(encode(codec, s, Fraction(1, 2))[0]["__type__"], "ref")  # not loaded

    def test_bad_paths(self):
        for paths in (["tests.codec_example"], "x", [1], ["tests.codec_example:Nope"], ["no_such_mod:X"]):
            with self.assertRaises((BadRequest, AttributeError, ImportError)):
                load_codecs(paths)

        class Bad:
            name = ""
            types = (int,)

        with self.assertRaises(BadRequest):
            ValueCodec(Registry(), codecs=[Bad()])


if __name__ == "__main__":
    unittest.main()
