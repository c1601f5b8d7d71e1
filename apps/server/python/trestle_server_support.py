"""Helpers the Trestle server calls in each tenant's Python workers.

Clients never call this module: the server refuses it by name (``PY_FORBIDDEN``). It is added to the
tenant's ``allow_modules`` so the helpers work under an allowlist; ``dir_module`` is only called for
modules the server has checked against that allowlist itself.
"""

import importlib


def _names(obj):
    return sorted(name for name in dir(obj) if type(name) is str)


def dir_of(obj):
    """``dir(obj)``, sorted: names for tab completion."""
    return _names(obj)


def dir_module(name):
    """``dir()`` of a module the server allowed."""
    return _names(importlib.import_module(name))


def closable(obj):
    """Whether the object's type has a callable ``close`` (it holds an OS resource: a file, a socket)."""
    return callable(getattr(type(obj), "close", None))
