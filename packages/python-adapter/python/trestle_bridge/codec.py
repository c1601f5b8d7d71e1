"""Values on the wire: JSON natives pass as they are, other values are tagged, the rest become refs.

`ValueCodec.encode` turns a Python value into JSON-ready data (auto-registering refs in the request's
session), `ValueCodec.decode` does the reverse (looking refs up). Both walk with exact type checks
(`type(x) is float`), and long lists of plain numbers or strings are checked in C (`set(map(type, x))`,
`sum`, `min`/`max`) instead of element by element.
"""
from __future__ import annotations

import base64
import binascii
import datetime as _dt
import importlib
import math

from .errors import BadRequest, InvalidRef, Unencodable

MAX_SAFE_INT = 2**53 - 1
MAX_DEPTH = 1000
DEFAULT_BINARY_THRESHOLD = 4096
_FAST_LIST = 16  # lists at least this long try the all-scalars check first

_NoneType = type(None)
_STRINGY = frozenset((str, bool, _NoneType))
_NUMERIC = frozenset((int, float, bool))
_SCALARS = frozenset((str, int, float, bool, _NoneType))
_datetime = _dt.datetime
_date = _dt.date
_copysign = math.copysign
_b2a = binascii.b2a_base64

_NAN = {"__type__": "float", "v": "nan"}
_INF = {"__type__": "float", "v": "inf"}
_NINF = {"__type__": "float", "v": "-inf"}
_NZERO = {"__type__": "float", "v": "-0"}
_FLOAT_WORDS = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf, "-0": -0.0}


def encode_float(x: float):
    """A float as JSON: itself when finite and not -0.0, else the tagged form."""
    if x - x == 0.0:  # finite
        if x != 0.0 or _copysign(1.0, x) > 0:
            return x
        return _NZERO
    if x != x:
        return _NAN
    return _INF if x > 0 else _NINF


def encode_int(x: int):
    if -MAX_SAFE_INT <= x <= MAX_SAFE_INT:
        return x
    try:
        return {"__type__": "int", "v": str(x)}
    except ValueError as exc:  # beyond sys.get_int_max_str_digits()
        raise Unencodable(f"int too large to encode: {exc}") from None


class _Cycle(Exception):
    def __init__(self, ident: int):
        self.ident = ident


class Ctx:
    """Per-reply encoding state: the session refs go to, the blobs of a binary frame, cycle tracking."""

    __slots__ = ("session", "sid", "rid", "fn", "blobs", "blob_size", "created", "path", "blob_in")

    def __init__(self, session=None, blob_in=None):
        self.session = session
        self.sid = session.id if session is not None else None
        self.rid = None
        self.fn = None
        self.blobs: list = []
        self.blob_size = 0
        self.created: list = []
        self.path: set = set()
        self.blob_in = blob_in


# -- codec plugins -----------------------------------------------------------------------------------


def _check_codec(codec, where: str):
    name = getattr(codec, "name", None)
    types = getattr(codec, "types", None)
    if isinstance(types, type):
        types = (types,)
    if not isinstance(name, str) or not name:
        raise BadRequest(f"codec {where}: 'name' must be a non-empty string")
    if not isinstance(types, tuple) or not types or not all(isinstance(t, type) for t in types):
        raise BadRequest(f"codec {where}: 'types' must be a tuple of types")
    if not callable(getattr(codec, "encode", None)) or not callable(getattr(codec, "decode", None)):
        raise BadRequest(f"codec {where}: 'encode' and 'decode' must be callable")
    return codec, types


def load_codecs(paths) -> list:
    """Imports `"module:attr"` codec paths (the attr is a codec or a list of codecs)."""
    if paths is None:
        return []
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise BadRequest("'codecs' must be a list of \"module:attr\" strings")
    out = []
    for path in paths:
        module_name, sep, attr = path.partition(":")
        if not sep or not module_name or not attr:
            raise BadRequest(f"codec path {path!r} is not \"module:attr\"")
        obj = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
        items = obj if isinstance(obj, (list, tuple)) else [obj]
        for item in items:
            out.append(_check_codec(item, path))
    return out


# -- the codec -------------------------------------------------------------------------------------


class ValueCodec:
    def __init__(self, registry, binary_threshold: int = DEFAULT_BINARY_THRESHOLD, codecs=()):
        self.registry = registry
        self.binary_threshold = binary_threshold
        self.set_codecs(codecs)
        self._tags = {
            "int": self._dec_int,
            "float": self._dec_float,
            "tuple": self._dec_tuple,
            "set": self._dec_set,
            "frozenset": self._dec_frozenset,
            "bytes": self._dec_bytes,
            "complex": self._dec_complex,
            "datetime": self._dec_datetime,
            "date": self._dec_date,
            "dict": self._dec_dict,
            "ref": self._dec_ref,
            "custom": self._dec_custom,
        }

    def set_codecs(self, codecs) -> None:
        """`codecs`: (codec, types) pairs as returned by `load_codecs`, or bare codec objects."""
        pairs = []
        for item in codecs:
            if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], tuple):
                pairs.append(item)
            else:
                pairs.append(_check_codec(item, repr(item)))
        self._codecs = pairs
        self._by_name = {}
        for codec, _types in pairs:
            self._by_name.setdefault(codec.name, codec)
        self._codec_cache: dict = {}

    def _codec_for(self, t):
        try:
            return self._codec_cache[t]
        except KeyError:
            pass
        found = None
        for codec, types in self._codecs:
            if issubclass(t, types):
                found = codec
                break
        self._codec_cache[t] = found
        return found

    # -- encode --------------------------------------------------------------------------------------

    def encode(self, x, ctx: Ctx):
        """A Python value -> JSON-ready data (refs registered in `ctx.session`)."""
        t = type(x)
        if t is str or t is bool or x is None:
            return x
        if t is float:
            if x - x == 0.0 and x != 0.0:
                return x
            return encode_float(x)
        if t is int:
            if -MAX_SAFE_INT <= x <= MAX_SAFE_INT:
                return x
            return encode_int(x)
        try:
            return self._enc(x, ctx, 0)
        except RecursionError:
            raise Unencodable("value nested too deeply for the interpreter's recursion limit") from None

    def _enc(self, x, ctx, depth):
        t = type(x)
        if t is str or t is bool or x is None:
            return x
        if t is float:
            if x - x == 0.0 and x != 0.0:
                return x
            return encode_float(x)
        if t is int:
            if -MAX_SAFE_INT <= x <= MAX_SAFE_INT:
                return x
            return encode_int(x)
        if depth >= MAX_DEPTH:
            raise Unencodable(f"value nested deeper than {MAX_DEPTH} levels")
        if t is list:
            return self._enc_list(x, ctx, depth + 1)
        if t is dict:
            return self._enc_dict(x, ctx, depth + 1)
        if t is tuple:
            items = self._enc_seq(x, ctx, depth + 1)
            if items is None:
                return self._ref(x, ctx)
            return {"__type__": "tuple", "items": items}
        if t is bytes:
            return self._enc_bytes(x, ctx)
        if t is set or t is frozenset:
            enc = self._enc
            d = depth + 1
            return {"__type__": t.__name__, "items": [enc(v, ctx, d) for v in x]}
        if t is complex:
            return {"__type__": "complex", "re": encode_float(x.real), "im": encode_float(x.imag)}
        if t is _datetime:
            return {"__type__": "datetime", "iso": x.isoformat()}
        if t is _date:
            return {"__type__": "date", "iso": x.isoformat()}
        if self._codecs:
            codec = self._codec_for(t)
            if codec is not None:
                return {"__type__": "custom", "codec": codec.name, "v": self._enc(codec.encode(x), ctx, depth + 1)}
        return self._ref(x, ctx)

    def _ref(self, x, ctx, stream: bool = False):
        session = ctx.session
        if session is None:
            raise Unencodable(f"a {type(x).__qualname__} would be a ref, and this request has no session")
        entry = self.registry.put(session, x, stream)
        ctx.created.append(entry)
        return entry.wire()

    def _abandon(self, ctx, mark: int) -> None:
        created = ctx.created
        discard = self.registry.discard
        for entry in created[mark:]:
            discard(entry)
        del created[mark:]

    def _enc_bytes(self, x, ctx):
        n = len(x)
        if n >= self.binary_threshold and ctx.blobs is not None:
            offset = ctx.blob_size
            ctx.blobs.append(x)
            ctx.blob_size = offset + n
            return {"__type__": "bytes", "blob": [offset, n]}
        return {"__type__": "bytes", "b64": _b2a(x, newline=False).decode("ascii")}

    @staticmethod
    def _scalar_list(x):
        """`x` itself when every item is a JSON-native scalar needing no tag, else None."""
        types = set(map(type, x))
        if types <= _STRINGY:
            return x
        if not types <= _NUMERIC:
            return None
        try:
            if float in types:
                if not math.isfinite(sum(x)):
                    return None
                if 0.0 in x:
                    for v in x:
                        if v == 0.0 and type(v) is float and _copysign(1.0, v) < 0:
                            return None
            if int in types:
                if min(x) < -MAX_SAFE_INT or max(x) > MAX_SAFE_INT:
                    return None
        except (OverflowError, TypeError):
            return None
        return x

    def _enc_list(self, x, ctx, depth):
        if len(x) >= _FAST_LIST and self._scalar_list(x) is not None:
            return x
        out = self._enc_seq(x, ctx, depth)
        if out is None:
            return self._ref(x, ctx)
        return out

    def _enc_seq(self, x, ctx, depth):
        """The encoded items of a list or tuple, or None when it contains itself (cycle)."""
        ident = id(x)
        path = ctx.path
        if ident in path:
            raise _Cycle(ident)
        path.add(ident)
        mark = len(ctx.created)
        enc = self._enc
        out = []
        append = out.append
        try:
            for v in x:
                tv = type(v)
                if tv is str or tv is bool or v is None:
                    append(v)
                else:
                    append(enc(v, ctx, depth))
        except _Cycle as cycle:
            path.discard(ident)
            if cycle.ident != ident:
                raise
            self._abandon(ctx, mark)
            return None
        path.discard(ident)
        return out

    def _enc_dict(self, x, ctx, depth):
        ident = id(x)
        path = ctx.path
        if ident in path:
            raise _Cycle(ident)
        path.add(ident)
        mark = len(ctx.created)
        enc = self._enc
        try:
            out = None
            if "__type__" not in x:
                out = {}
                for k, v in x.items():
                    if type(k) is not str:
                        out = None
                        self._abandon(ctx, mark)
                        break
                    tv = type(v)
                    if tv is str or tv is bool or v is None:
                        out[k] = v
                    else:
                        out[k] = enc(v, ctx, depth)
            if out is None:
                out = {"__type__": "dict", "items": [[enc(k, ctx, depth), enc(v, ctx, depth)] for k, v in x.items()]}
        except _Cycle as cycle:
            path.discard(ident)
            if cycle.ident != ident:
                raise
            self._abandon(ctx, mark)
            return self._ref(x, ctx)
        path.discard(ident)
        return out

    # -- decode --------------------------------------------------------------------------------------

    def decode(self, v, ctx: Ctx):
        """Wire data (freshly parsed JSON, changed in place) -> Python values."""
        t = type(v)
        if t is list or t is dict:
            try:
                return self._dec(v, ctx, 0)
            except RecursionError:
                raise Unencodable("value nested too deeply for the interpreter's recursion limit") from None
        return v

    def _dec(self, v, ctx, depth):
        t = type(v)
        if t is list:
            if depth >= MAX_DEPTH:
                raise Unencodable(f"value nested deeper than {MAX_DEPTH} levels")
            if len(v) >= _FAST_LIST and set(map(type, v)) <= _SCALARS:
                return v
            d = depth + 1
            dec = self._dec
            for i, item in enumerate(v):
                ti = type(item)
                if ti is list or ti is dict:
                    v[i] = dec(item, ctx, d)
            return v
        if t is dict:
            if depth >= MAX_DEPTH:
                raise Unencodable(f"value nested deeper than {MAX_DEPTH} levels")
            if "__type__" in v:
                tag = v["__type__"]
                handler = self._tags.get(tag) if type(tag) is str else None
                if handler is None:
                    raise Unencodable(f"unknown tagged value __type__={tag!r}")
                return handler(v, ctx, depth + 1)
            d = depth + 1
            dec = self._dec
            for k, item in v.items():
                ti = type(item)
                if ti is list or ti is dict:
                    v[k] = dec(item, ctx, d)
            return v
        return v

    def _items(self, v, ctx, depth):
        items = v.get("items")
        if type(items) is not list:
            raise Unencodable(f"malformed {v['__type__']} value: 'items' must be a list")
        return self._dec(items, ctx, depth)

    def _dec_int(self, v, ctx, depth):
        s = v.get("v")
        if type(s) is not str:
            raise Unencodable("malformed int value: 'v' must be a string")
        try:
            return int(s)
        except ValueError:
            raise Unencodable(f"malformed int value {s[:40]!r}") from None

    def _dec_float(self, v, ctx, depth):
        s = v.get("v")
        try:
            return _FLOAT_WORDS[s]
        except (KeyError, TypeError):
            raise Unencodable(f"malformed float value {s!r}") from None

    def _dec_tuple(self, v, ctx, depth):
        return tuple(self._items(v, ctx, depth))

    def _dec_set(self, v, ctx, depth):
        try:
            return set(self._items(v, ctx, depth))
        except TypeError as exc:
            raise Unencodable(f"set item is not hashable: {exc}") from None

    def _dec_frozenset(self, v, ctx, depth):
        try:
            return frozenset(self._items(v, ctx, depth))
        except TypeError as exc:
            raise Unencodable(f"frozenset item is not hashable: {exc}") from None

    def _dec_bytes(self, v, ctx, depth):
        if "b64" in v:
            s = v["b64"]
            if type(s) is not str:
                raise Unencodable("malformed bytes value: 'b64' must be a string")
            try:
                return base64.b64decode(s, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise Unencodable(f"malformed base64: {exc}") from None
        blob = v.get("blob")
        region = ctx.blob_in
        if (
            type(blob) is not list
            or len(blob) != 2
            or type(blob[0]) is not int
            or type(blob[1]) is not int
            or blob[0] < 0
            or blob[1] < 0
        ):
            raise Unencodable("malformed bytes value: needs 'b64' or 'blob': [offset, length]")
        if region is None or blob[0] + blob[1] > len(region):
            raise Unencodable(f"bytes blob {blob} is outside the frame's blob region")
        return bytes(region[blob[0] : blob[0] + blob[1]])

    def _num(self, x, what):
        t = type(x)
        if t is float or t is int:
            return float(x)
        if t is dict and x.get("__type__") == "float":
            return self._dec_float(x, None, 0)
        raise Unencodable(f"malformed complex value: {what!r} must be a number")

    def _dec_complex(self, v, ctx, depth):
        return complex(self._num(v.get("re"), "re"), self._num(v.get("im"), "im"))

    def _dec_datetime(self, v, ctx, depth):
        s = v.get("iso")
        if type(s) is not str:
            raise Unencodable("malformed datetime value: 'iso' must be a string")
        if s.endswith(("Z", "z")):
            s = s[:-1] + "+00:00"
        try:
            return _datetime.fromisoformat(s)
        except ValueError as exc:
            raise Unencodable(f"malformed datetime value: {exc}") from None

    def _dec_date(self, v, ctx, depth):
        s = v.get("iso")
        if type(s) is not str:
            raise Unencodable("malformed date value: 'iso' must be a string")
        try:
            return _date.fromisoformat(s)
        except ValueError as exc:
            raise Unencodable(f"malformed date value: {exc}") from None

    def _dec_dict(self, v, ctx, depth):
        items = v.get("items")
        if type(items) is not list:
            raise Unencodable("malformed dict value: 'items' must be a list of [key, value] pairs")
        out = {}
        dec = self._dec
        for pair in items:
            if type(pair) is not list or len(pair) != 2:
                raise Unencodable("malformed dict value: 'items' must be a list of [key, value] pairs")
            key = dec(pair[0], ctx, depth)
            try:
                out[key] = dec(pair[1], ctx, depth)
            except TypeError as exc:
                raise Unencodable(f"dict key is not hashable: {exc}") from None
        return out

    def _dec_custom(self, v, ctx, depth):
        name = v.get("codec")
        codec = self._by_name.get(name) if type(name) is str else None
        if codec is None:
            raise Unencodable(f"no codec named {name!r} is loaded")
        return codec.decode(self._dec(v.get("v"), ctx, depth))

    def _dec_ref(self, v, ctx, depth):
        return self.lookup(v, ctx).obj

    # -- refs ------------------------------------------------------------------------------------------

    def lookup(self, ref, ctx: Ctx):
        """The registry entry of a ref given as its wire form (a dict) or as its bare id (a string).

        A wire form is validated in the order of @trestle/ref-registry's decodeRef, with its reasons."""
        hint = None
        if type(ref) is str:
            ref_id = ref
            if not ref_id:
                raise InvalidRef("missing_id", "the ref id is empty")
        elif type(ref) is dict:
            ref_id, hint = _check_ref_wire(ref)
        elif ref is None:
            raise BadRequest("missing field 'ref'")
        else:
            raise InvalidRef("not_an_object", f"a ref is a ref object (or its id), got {type(ref).__name__}")
        sid = ctx.sid
        if sid is None:
            raise BadRequest("a ref needs the request's 'session'")
        return self.registry.get(sid, ref_id, hint)


def _text(value):
    return value if type(value) is str and value else None


def _check_ref_wire(ref: dict):
    """(id, session id) of a ref wire form, or InvalidRef naming the first problem."""
    ref_id = _text(ref.get("id"))
    session_id = _text(ref.get("session_id"))
    if "__type__" not in ref:
        raise InvalidRef("missing_type", "missing '__type__' field", ref_id, session_id)
    if ref["__type__"] != "ref":
        raise InvalidRef("not_a_ref", f"'__type__' is {ref['__type__']!r}, not \"ref\"", ref_id, session_id)
    schema = ref.get("__schema__")
    if type(schema) is not int or schema != 1:
        raise InvalidRef("unknown_schema", f"'__schema__' {schema!r} is not supported (this side speaks 1)", ref_id, session_id)
    if ref_id is None:
        raise InvalidRef("missing_id", "missing 'id' field", None, session_id)
    if session_id is None:
        raise InvalidRef("missing_session", "missing 'session_id' field", ref_id)
    if _text(ref.get("type_name")) is None:
        raise InvalidRef("missing_type_name", "missing 'type_name' field", ref_id, session_id)
    if type(ref.get("python_module")) is not str:
        raise InvalidRef("invalid_field", "'python_module' must be a string", ref_id, session_id)
    for key in ("library", "pool_name"):
        if ref.get(key) is not None and type(ref[key]) is not str:
            raise InvalidRef("invalid_field", f"'{key}' must be a string or null", ref_id, session_id)
    return ref_id, session_id
