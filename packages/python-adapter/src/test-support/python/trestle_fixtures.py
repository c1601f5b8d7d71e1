"""Python helpers for the adapter's tests (put on PYTHONPATH by test-support/bridge.ts)."""
import asyncio
import ctypes
import os
import subprocess
import sys
import time

CLOSED = []


class Resource:
    """An object with a close() method and some state."""

    def __init__(self, name):
        self.name = name
        self.closed = False

    def close(self):
        self.closed = True


def echo(value):
    return value


def type_of(value):
    return type(value).__name__


def gen_raise_after(n):
    for i in range(n):
        yield i
    raise ValueError("boom after %d items" % n)


def counting(n, tag="counting"):
    try:
        for i in range(n):
            yield i
    finally:
        CLOSED.append(tag)


def closed():
    return list(CLOSED)


async def agen(n):
    for i in range(n):
        await asyncio.sleep(0)
        yield i * 10


def exit_now(code):
    sys.stdout.flush()
    sys.stderr.write("exiting with %d\n" % code)
    sys.stderr.flush()
    os._exit(code)


def segfault():
    ctypes.string_at(0)


def sleep(seconds):
    time.sleep(seconds)
    return seconds


def stuck():
    """Runs in C without returning to the interpreter: cannot be interrupted."""
    return sum(range(10 ** 13))


def print_mb():
    sys.stdout.write("x" * (1024 * 1024) + "\n")
    print("after the megabyte")
    sys.stderr.write("to stderr\n")
    return "ok"


async def async_value(seconds, value):
    await asyncio.sleep(seconds)
    return value


def all_bytes(repeat=1):
    return bytes(range(256)) * repeat


def spawn_sleeper():
    return subprocess.Popen(["sleep", "60"]).pid


def pid():
    return os.getpid()


def raise_value_error(message):
    def inner():
        raise ValueError(message)

    inner()
