#!/usr/bin/env python3
"""A stand-in for heidi-kernel, the line daemon the kernel client must talk to (test support only).

Usage: python3 heidi_line_daemon.py /path/to/socket

Listens on a Unix socket and answers one line per request line, several per connection:
  ping            -> PONG
  version         -> PROTOCOL 1 DAEMON 0.3.1
  status          -> {"state":"running","queue":0,"pid":<pid>}
  anything else   -> ERR UNKNOWN_COMMAND <cmd>
A request line is `cmd [json]`; the JSON part is ignored. A trailing CR is ignored, empty lines are
skipped, a line over 64 KiB is answered `ERR LINE_TOO_LONG` and the connection closed.

Prints READY on stdout once listening. Stops on SIGTERM or SIGINT, or when stdin reaches EOF (the
parent went away), removing its socket file. Standard library only, Python 3.9+.
"""

import json
import os
import signal
import socket
import sys
import threading

VERSION = "0.3.1"
MAX_LINE = 64 * 1024


def answer(line):
    """The reply line (without newline) for one request line, or None for an empty line."""
    parts = line.strip().split(None, 1)
    if not parts:
        return None
    command = parts[0]
    if command == "ping":
        return "PONG"
    if command == "version":
        return "PROTOCOL 1 DAEMON " + VERSION
    if command == "status":
        return json.dumps({"state": "running", "queue": 0, "pid": os.getpid()}, separators=(",", ":"))
    return "ERR UNKNOWN_COMMAND " + command


def serve_client(conn):
    """Answers every complete line on one connection until the client closes it."""
    buffer = b""
    try:
        with conn:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                buffer += data
                replies = []
                while True:
                    newline = buffer.find(b"\n")
                    if newline == -1:
                        break
                    raw, buffer = buffer[:newline], buffer[newline + 1:]
                    reply = answer(raw.decode("utf-8", "replace").rstrip("\r"))
                    if reply is not None:
                        replies.append(reply + "\n")
                if len(buffer) > MAX_LINE:
                    replies.append("ERR LINE_TOO_LONG line exceeds %d bytes\n" % MAX_LINE)
                    conn.sendall("".join(replies).encode("utf-8"))
                    return
                if replies:
                    conn.sendall("".join(replies).encode("utf-8"))
    except OSError:
        return


def main():
    if len(sys.argv) != 2:
        print("usage: heidi_line_daemon.py SOCKET_PATH", file=sys.stderr)
        return 2
    path = sys.argv[1]
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(64)

    def cleanup():
        try:
            os.unlink(path)
        except OSError:
            pass

    def stop(signum, frame):
        raise SystemExit(0)

    def watch_parent():
        # EOF on stdin: the parent is gone; do not outlive it.
        try:
            sys.stdin.read()
        finally:
            cleanup()
            os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    threading.Thread(target=watch_parent, daemon=True).start()
    print("READY", flush=True)
    try:
        while True:
            conn, _ = server.accept()
            threading.Thread(target=serve_client, args=(conn,), daemon=True).start()
    except SystemExit:
        pass
    finally:
        server.close()
        cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
