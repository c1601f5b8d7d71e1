"""Randomized round trips: random values -> codec -> frame -> split reads -> frame -> codec -> equal."""
import datetime
import math
import random
import sys
import unittest

from trestle_bridge.codec import Ctx, ValueCodec
from trestle_bridge.framing import FrameReader, binary_frame, dumps, json_frame, parse_payload
from trestle_bridge.registry import Registry


class Opaque:
    """Becomes a ref; comes back as the very same object."""


def random_float(rng):
    return rng.choice(
        [0.0, -0.0, math.inf, -math.inf, math.nan, rng.uniform(-1e6, 1e6), rng.random() * 10 ** rng.randint(-300, 300)]
    )


def random_int(rng):
    return rng.choice([0, rng.randint(-100, 100), 2**53 - 1, 2**53, -(2**53), rng.randint(-(2**80), 2**80), 2**64])


def random_str(rng):
    alphabet = "ab\"\\\n\t\x00é☃\U0001f600__type__"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))


def random_hashable(rng, depth):
    kind = rng.randrange(5)
    if kind == 0 or depth > 3:
        return random_int(rng)
    if kind == 1:
        return random_str(rng)
    if kind == 2:
        return tuple(random_hashable(rng, depth + 1) for _ in range(rng.randint(0, 3)))
    if kind == 3:
        return frozenset(random_hashable(rng, depth + 1) for _ in range(rng.randint(0, 3)))
    return rng.choice([True, False, None, datetime.date(2000 + rng.randrange(50), 1, 2)])


def random_value(rng, depth=0, objects=None):
    leaf = depth > 4 or rng.random() < 0.4
    if leaf:
        kind = rng.randrange(10)
        if kind == 0:
            return random_int(rng)
        if kind == 1:
            return random_float(rng)
        if kind == 2:
            return random_str(rng)
        if kind == 3:
            return rng.choice([True, False, None])
        if kind == 4:
            return bytes(rng.randrange(256) for _ in range(rng.choice([0, 3, 100, 5000])))
        if kind == 5:
            return complex(random_float(rng), random_float(rng))
        if kind == 6:
            tz = rng.choice([None, datetime.timezone.utc, datetime.timezone(datetime.timedelta(hours=-5))])
            return datetime.datetime(2024, 1, 2, 3, 4, 5, rng.randrange(10**6), tzinfo=tz)
        if kind == 7:
            return datetime.date(1999, 12, 31)
        if kind == 8 and objects is not None:
            obj = Opaque()
            objects.append(obj)
            return obj
        return random_hashable(rng, 0)
    kind = rng.randrange(6)
    n = rng.randint(0, 5)
    if kind == 0:
        return [random_value(rng, depth + 1, objects) for _ in range(n)]
    if kind == 1:
        return tuple(random_value(rng, depth + 1, objects) for _ in range(n))
    if kind == 2:
        return {random_str(rng): random_value(rng, depth + 1, objects) for _ in range(n)}
    if kind == 3:
        return {random_hashable(rng, 0): random_value(rng, depth + 1, objects) for _ in range(n)}
    if kind == 4:
        return {random_hashable(rng, 0) for _ in range(n)}
    return [random_float(rng) for _ in range(rng.choice([n, 40]))]


def same(a, b):
    """Equality that tells types apart and handles NaN and -0.0."""
    if type(a) is not type(b):
        return False
    if type(a) is float:
        if math.isnan(a):
            return math.isnan(b)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if type(a) is complex:
        return same(a.real, b.real) and same(a.imag, b.imag)
    if type(a) in (list, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if type(a) is dict:
        return len(a) == len(b) and all(k in b and same(v, b[k]) for k, v in a.items())
    if isinstance(a, Opaque):
        return a is b
    return a == b


def count_opaque(value):
    if isinstance(value, Opaque):
        return 1
    if type(value) in (list, tuple, set, frozenset):
        return sum(count_opaque(v) for v in value)
    if type(value) is dict:
        return sum(count_opaque(v) for v in value.values())
    return 0


class RandomRoundTrips(unittest.TestCase):
    def setUp(self):
        self._limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(self._limit, 4000))

    def tearDown(self):
        sys.setrecursionlimit(self._limit)

    def test_values_through_frames(self):
        reg = Registry()
        codec = ValueCodec(reg, binary_threshold=64)
        session = reg.session("s")
        for seed in range(300):
            rng = random.Random(seed)
            objects = []
            value = random_value(rng, 0, objects)
            ctx = Ctx(session)
            wire = codec.encode({"v": value}, ctx)
            text = dumps({"id": seed, "ok": True, "result": wire})
            frame = binary_frame(text, ctx.blobs) if ctx.blobs else [json_frame(text)]
            data = b"".join(frame)
            reader = FrameReader()
            payloads = []
            pos = 0
            while pos < len(data):
                step = rng.randint(1, max(1, len(data) // 3))
                payloads += reader.feed(data[pos : pos + step])
                pos += step
            self.assertEqual(len(payloads), 1, seed)
            message, blob = parse_payload(payloads[0])
            back = codec.decode(message["result"], Ctx(session, blob))["v"]
            self.assertTrue(same(value, back), f"seed {seed}: {value!r} != {back!r}")
            self.assertEqual(len(ctx.created), count_opaque(value))

    def test_random_byte_strings(self):
        reg = Registry()
        codec = ValueCodec(reg)
        session = reg.session("s")
        rng = random.Random(1234)
        for _ in range(100):
            size = rng.choice([0, 1, 2, 3, 4095, 4096, 4097, rng.randrange(20000)])
            value = bytes(rng.randrange(256) for _ in range(size))
            ctx = Ctx(session)
            wire = codec.encode(value, ctx)
            self.assertEqual("blob" in wire, size >= 4096)
            blob = memoryview(b"".join(ctx.blobs))
            import json

            self.assertEqual(codec.decode(json.loads(dumps(wire)), Ctx(session, blob)), value)


if __name__ == "__main__":
    unittest.main()
