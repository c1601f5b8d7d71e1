"""The Python side of @trestle/python-adapter: a worker speaking PROTOCOL.md over fds 3/4/5.

Run it as `python3 -u -m trestle_bridge` with this package's parent directory on PYTHONPATH.
"""
__version__ = "0.1.0"
PROTOCOL_VERSION = 1
