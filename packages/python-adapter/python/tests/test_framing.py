import json
import os
import random
import struct
import threading
import tracemalloc
import unittest

from trestle_bridge import framing
from trestle_bridge.framing import (
    FrameError,
    FrameReader,
    FrameWriter,
    binary_frame,
    dumps,
    json_frame,
    parse_payload,
)


def frame_bytes(parts) -> bytes:
    return parts if isinstance(parts, bytes) else b"".join(parts)


class Frames(unittest.TestCase):
    def test_json_frame(self):
        data = json_frame(dumps({"id": 1, "ok": True}))
        self.assertEqual(data[:4], struct.pack(">I", len(data) - 4))
        message, blob = parse_payload(data[4:])
        self.assertEqual(message, {"id": 1, "ok": True})
        self.assertIsNone(blob)

    def test_binary_frame_and_blob_offsets(self):
        a, b = os.urandom(10), bytes(range(256)) * 3
        text = dumps({"id": 2, "v": [{"__type__": "bytes", "blob": [0, 10]}, {"__type__": "bytes", "blob": [10, 768]}]})
        data = frame_bytes(binary_frame(text, [a, b]))
        (n,) = struct.unpack(">I", data[:4])
        self.assertEqual(n, len(data) - 4)
        self.assertEqual(data[4], 0x01)
        (j,) = struct.unpack(">I", data[5:9])
        self.assertEqual(data[9 : 9 + j].decode(), text)
        message, blob = parse_payload(data[4:])
        self.assertEqual(message["id"], 2)
        (o1, n1), (o2, n2) = message["v"][0]["blob"], message["v"][1]["blob"]
        self.assertEqual(bytes(blob[o1 : o1 + n1]), a)
        self.assertEqual(bytes(blob[o2 : o2 + n2]), b)

    def test_bad_payloads(self):
        for payload in (
            b"",
            b"x{}",
            b"\x02{}",
            b"[1]",
            b"{",
            b'{"a":NaN}',
            b"{}{}",
            b"\x01\x00\x00\x00\x09{}",
            b"\x01\x00\x00",
            b"\x01\x00\x00\x00\x02[]",
            b"{\xff}",
        ):
            with self.assertRaises(FrameError, msg=payload):
                parse_payload(payload)

    def test_kind_byte_is_checked(self):
        with self.assertRaises(FrameError) as caught:
            parse_payload(b"\x7c{}")
        self.assertIn("0x7c", str(caught.exception))


class Reader(unittest.TestCase):
    def stream(self):
        messages = [{"id": i, "op": "ping", "pad": "x" * i} for i in range(5)]
        data = b"".join(json_frame(dumps(m)) for m in messages)
        data += frame_bytes(binary_frame(dumps({"id": 5}), [b"\x00\x01\x02"]))
        return messages, data

    def test_split_at_every_byte_boundary(self):
        messages, data = self.stream()
        for cut in range(len(data) + 1):
            reader = FrameReader()
            payloads = reader.feed(data[:cut]) + reader.feed(data[cut:])
            self.assertEqual([parse_payload(p)[0] for p in payloads[:5]], messages, cut)
            self.assertEqual(bytes(parse_payload(payloads[5])[1]), b"\x00\x01\x02")
            self.assertEqual(reader.pending(), 0)

    def test_byte_at_a_time_and_random_chunks(self):
        messages, data = self.stream()
        reader = FrameReader()
        payloads = []
        for i in range(len(data)):
            payloads += reader.feed(data[i : i + 1])
        self.assertEqual(len(payloads), 6)
        rng = random.Random(7)
        for _ in range(200):
            reader = FrameReader()
            payloads = []
            pos = 0
            while pos < len(data):
                step = rng.randint(1, 40)
                payloads += reader.feed(data[pos : pos + step])
                pos += step
            self.assertEqual([parse_payload(p)[0] for p in payloads[:5]], messages)

    def test_big_frames_are_preallocated_and_filled(self):
        blob = os.urandom(framing.BIG_FRAME + 12345)
        data = frame_bytes(binary_frame(dumps({"id": 1}), [blob])) + json_frame(dumps({"id": 2}))
        for step in (1 << 16, 1000003, len(data)):
            reader = FrameReader()
            payloads = []
            for pos in range(0, len(data), step):
                payloads += reader.feed(data[pos : pos + step])
            self.assertEqual(len(payloads), 2)
            message, region = parse_payload(payloads[0])
            self.assertEqual(bytes(region), blob)
            self.assertEqual(parse_payload(payloads[1])[0], {"id": 2})

    def test_oversize_length_refused_before_allocation(self):
        reader = FrameReader(max_frame_bytes=1000)
        with self.assertRaises(FrameError):
            reader.feed(struct.pack(">I", 1001))
        tracemalloc.start()
        try:
            reader = FrameReader()  # the 1 GiB default: a 4 GiB-1 length is refused from the header alone
            with self.assertRaises(FrameError):
                reader.feed(struct.pack(">I", 0xFFFFFFFF) + b"{")
            with self.assertRaises(FrameError):
                FrameReader(max_frame_bytes=1 << 29).feed(struct.pack(">I", (1 << 29) + 1) + b"\x01" * 100)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        self.assertLess(peak, 1 << 20)
        self.assertEqual(reader.pending(), 0)
        reader = FrameReader(max_frame_bytes=1000)
        header = struct.pack(">I", 1001)
        self.assertEqual(reader.feed(header[:3]), [])  # incomplete header: nothing yet
        with self.assertRaises(FrameError):
            reader.feed(header[3:])
        with self.assertRaises(FrameError):  # an empty frame has no kind byte
            FrameReader().feed(struct.pack(">I", 0))

    def test_read_from_pipe(self):
        r, w = os.pipe()
        try:
            blob = os.urandom(3 * framing.BIG_FRAME)
            data = frame_bytes(binary_frame(dumps({"id": 9}), [blob])) + json_frame(dumps({"id": 10}))
            writer = threading.Thread(target=framing.write_all, args=(w, data))
            writer.start()
            reader = FrameReader()
            payloads = []
            while len(payloads) < 2:
                payloads += reader.read_from(r)
            writer.join()
            self.assertEqual(bytes(parse_payload(payloads[0])[1]), blob)
            self.assertEqual(parse_payload(payloads[1])[0], {"id": 10})
            os.close(w)
            w = -1
            with self.assertRaises(EOFError):
                reader.read_from(r)
        finally:
            os.close(r)
            if w >= 0:
                os.close(w)


class Writer(unittest.TestCase):
    def test_buffers_and_writes_everything(self):
        r, w = os.pipe()
        try:
            writer = FrameWriter(w)
            self.assertFalse(writer)
            writer.add(json_frame(dumps({"id": 1})))
            big = os.urandom(framing.BIG_FRAME * 2)
            writer.add(binary_frame(dumps({"id": 2}), [big, b"tail"]))
            self.assertTrue(writer)
            received = bytearray()
            reader_thread = threading.Thread(target=lambda: received.extend(_read_all(r)))
            reader_thread.start()
            writer.flush()
            self.assertFalse(writer)
            os.close(w)
            w = -1
            reader_thread.join()
            payloads = FrameReader().feed(bytes(received))
            self.assertEqual(parse_payload(payloads[0])[0], {"id": 1})
            self.assertEqual(bytes(parse_payload(payloads[1])[1]), big + b"tail")
        finally:
            os.close(r)
            if w >= 0:
                os.close(w)

    def test_dumps_is_strict_and_compact(self):
        self.assertEqual(dumps({"a": [1, 2.5, None, "é"]}), '{"a":[1,2.5,null,"\\u00e9"]}')
        for bad in (float("nan"), float("inf"), {"x": object()}):
            with self.assertRaises((ValueError, TypeError)):
                dumps(bad)
        self.assertEqual(json.loads(dumps("\ud800")), "\ud800")


def _read_all(fd):
    chunks = []
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


if __name__ == "__main__":
    unittest.main()
