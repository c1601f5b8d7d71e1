"""Minimal newline-delimited JSON RPC server of bench section [8] (python bridge).

One request per stdin line: {"id": n, "fn": "sqrt", "args": [16]}, or {"id": n, "fn": "method",
"ref": r, "method": "sub", "args": [...]} for a method call on an object kept in OBJECTS. One reply
per line on stdout: {"id": n, "result": ...} or {"id": n, "error": "..."}, flushed at once.

The raw floor runs this text with `python3 -u -c`; python-shell runs this file (json mode). Only the
dispatch the four scenarios need: a dict of functions and a dict of objects.
"""

import json
import math
import re
import sys

import bench_fixtures

OBJECTS = {}


def compile_pattern(pattern):
    ref = len(OBJECTS) + 1
    OBJECTS[ref] = re.compile(pattern)
    return ref


FUNCTIONS = {
    "sqrt": math.sqrt,
    "compile": compile_pattern,
    "floats": bench_fixtures.floats,
}


def main():
    write = sys.stdout.write
    flush = sys.stdout.flush
    for line in sys.stdin:
        msg = json.loads(line)
        try:
            if msg["fn"] == "method":
                result = getattr(OBJECTS[msg["ref"]], msg["method"])(*msg["args"])
            else:
                result = FUNCTIONS[msg["fn"]](*msg["args"])
            reply = {"id": msg["id"], "result": result}
        except Exception as error:  # report it to the caller, keep serving
            reply = {"id": msg["id"], "error": repr(error)}
        write(json.dumps(reply) + "\n")
        flush()


main()
