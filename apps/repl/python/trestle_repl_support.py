"""Helpers the Trestle REPL calls in embedded mode (stdlib only, Python >= 3.9)."""

import importlib
import pkgutil
import sys


def _names(obj):
    try:
        names = dir(obj)
    except Exception:  # a broken __dir__ must not break completion
        return []
    return sorted(name for name in names if isinstance(name, str))


def dir_of(obj):
    """``dir(obj)``, sorted: names for tab completion."""
    return _names(obj)


def dir_module(name):
    """``dir()`` of a module (imports it: a missing module raises ModuleNotFoundError)."""
    return _names(importlib.import_module(name))


def top_level_modules():
    """Names of importable top-level modules (for completing ``py.``)."""
    names = set(sys.builtin_module_names)
    for info in pkgutil.iter_modules():
        names.add(info.name)
    return sorted(name for name in names if not name.startswith("_"))


def closable(obj):
    """Whether the object's type has a callable ``close`` (it holds an OS resource: a file, a socket)."""
    return callable(getattr(type(obj), "close", None))
