"""Reading trace files and writing outputs in the conformance trace format (v1).

A trace is JSON Lines: a ``config`` header (its fields and checks: :mod:`.header`, whose
names are importable from here too), then timed inputs. :func:`read_trace` checks
every line and raises :class:`~turnfsm.errors.TraceError` naming the file, the line and the
field for bad JSON, unknown kinds or fields, missing required fields, wrong types, NaN or
infinite numbers, negative durations and times that go backwards, numbers larger than
:data:`MAX_NUMBER`, texts that are not Unicode (a lone surrogate), lines longer than
:data:`MAX_LINE_CHARS` and bytes that are not UTF-8: each with one line naming where.
"""

from __future__ import annotations

import json
import math
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple, NoReturn, cast

import attrs

from .. import events as ev
from .._methods import attrs_eq, attrs_hash, attrs_repr
from ..errors import TraceError
from ..events import MAX_NUMBER
from .header import (
    _ANY,
    _BOOL,
    _NUM,
    _OPTNUM,
    _OPTSTR,
    _STR,
    _check_endpointing,
    _check_limits,
    _check_value,
    _is_num,
    _show,
    _unicode,
)

# the header's names, importable from here as before the header had its own module
from .header import CONFIG_FIELDS as CONFIG_FIELDS
from .header import ENDPOINTING_DEFAULTS as ENDPOINTING_DEFAULTS
from .header import GLUE_DEFAULTS as GLUE_DEFAULTS
from .header import MAX_TRACE_TIME as MAX_TRACE_TIME
from .header import TRACE_PROFILE as TRACE_PROFILE
from .header import TURN_DETECTION_VALUES as TURN_DETECTION_VALUES
from .header import TURN_DETECTOR_DEFAULTS as TURN_DETECTOR_DEFAULTS
from .header import TURNFSM_FIELDS as TURNFSM_FIELDS
from .header import TURNFSM_INPUT_FIELDS as TURNFSM_INPUT_FIELDS
from .header import TURNFSM_KIND_FIELDS as TURNFSM_KIND_FIELDS
from .header import USER_TURN_LIMIT_DEFAULTS as USER_TURN_LIMIT_DEFAULTS
from .header import Config as Config
from .header import parse_config as parse_config

#: The longest trace line accepted (characters): a line is one input, a few hundred bytes;
#: a transcript of an hour's speech fits. Longer lines are refused before they are decoded.
MAX_LINE_CHARS = 1_000_000
_LINE_BYTES = MAX_LINE_CHARS * 4 + 3  # UTF-8: at most 4 bytes a character, and a CR LF

#: A trace type per field annotation of an input event class (a new annotation must be
#: added here, or the field given ``trace_type`` metadata).
_TRACE_TYPES = {"float": _NUM, "int": _NUM, "bool": _BOOL, "str": _STR,
                "float | None": _OPTNUM, "str | None": _OPTSTR, "bool | None": _BOOL,
                "dict[str, Any] | None": _ANY}


def derive_schema() -> tuple[dict[str, dict[str, tuple[str, Any]]], set[tuple[str, str]],
                             set[str], set[str]]:
    """The trace format's input lines, from the event classes (:mod:`turnfsm.events`):
    per kind its fields with their trace type and default (a class's fields but ``t``,
    ``ref`` and its ``trace_omits``, plus its ``trace_glue``; kinds of one ``trace_group``
    accept the group's every field), the required ``(kind, field)`` pairs (no default), the
    names of fields never negative (``non_negative`` metadata) and of whole numbers
    (``int``)."""
    schema: dict[str, dict[str, tuple[str, Any]]] = {}
    required: set[tuple[str, str]] = set()
    non_negative: set[str] = set()
    integer: set[str] = set()
    groups: dict[str, dict[str, tuple[str, Any]]] = {}
    for cls in ev.input_classes():
        kind = cls.trace_kind
        if kind is None:
            continue
        fields: dict[str, tuple[str, Any]] = {}
        for a in attrs.fields(cls):
            if a.name in ("t", "ref") or a.name in cls.trace_omits:
                continue
            typ = a.metadata.get("trace_type") or _TRACE_TYPES[str(a.type)]
            if a.default is attrs.NOTHING:
                required.add((kind, a.name))
            if a.metadata.get("non_negative"):
                non_negative.add(a.name)
            if a.type == "int":
                integer.add(a.name)
            fields[a.name] = (typ, None if a.default is attrs.NOTHING else a.default)
        fields.update(cls.trace_glue)
        schema[kind] = fields
        if cls.trace_group is not None:
            groups.setdefault(cls.trace_group, {}).update(fields)
    for cls in ev.input_classes():
        if cls.trace_kind is not None and cls.trace_group is not None:
            schema[cls.trace_kind] = groups[cls.trace_group]
    return schema, required, non_negative, integer


#: per kind: field -> (trace type, default); the (kind, field) pairs a line must give; the
#: fields never negative and the whole numbers (by name, whatever the kind)
SCHEMA, REQUIRED, NON_NEGATIVE, INTEGER = derive_schema()




class TraceInput(NamedTuple):
    """One input line: its kind, time, physical line number and fields (as given)."""

    t: float
    kind: str
    line: int
    fields: dict[str, Any]


@attrs.frozen(repr=False, eq=False)
class Trace:
    """A parsed trace: header (defaults filled) and inputs."""

    __repr__ = attrs_repr
    __eq__ = attrs_eq
    __hash__ = attrs_hash

    path: str
    config: dict[str, Any]
    inputs: tuple[TraceInput, ...]


def _decode(line: str, path: str, lineno: int) -> Any:
    """One JSON value (msgspec once it is loaded, see :func:`_load_msgspec`; the standard
    library decides every case msgspec refuses, so errors and accepted inputs are the same
    either way)."""
    if _fast_decode is not None:
        try:
            return _fast_decode(line)
        except Exception:  # invalid for msgspec (NaN literals, lone surrogates, depth...)
            pass
    try:
        return json.loads(line)
    except json.JSONDecodeError as e:
        raise TraceError(f"invalid JSON: {e.msg} (column {e.colno})", path=path,
                         line=lineno) from None
    except RecursionError:
        raise TraceError("invalid JSON: nested too deeply", path=path, line=lineno) from None
    except ValueError as e:  # an integer of more digits than Python converts
        raise TraceError(f"invalid JSON: {str(e).split(';')[0]}", path=path,
                         line=lineno) from None


def _text(raw: bytes, path: str, lineno: int) -> str:
    """The text of one line read as bytes (with its newline, if it has one): a line longer
    than :data:`MAX_LINE_CHARS` is refused unread, bytes that are not UTF-8 name their
    line."""
    if len(raw) >= _LINE_BYTES and not raw.endswith(b"\n"):
        raise TraceError(f"the line is longer than {MAX_LINE_CHARS} characters",
                         path=path, line=lineno)
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise TraceError(f"not UTF-8 text (byte {e.start + 1} of the line)", path=path,
                         line=lineno) from None
    if len(line) > MAX_LINE_CHARS + 2:
        raise TraceError(f"the line is longer than {MAX_LINE_CHARS} characters",
                         path=path, line=lineno)
    return line.rstrip("\r\n") if line.endswith("\n") else line


def _lines(f: Any, path: str, start: int = 1) -> Iterator[tuple[int, str]]:
    """(line number, text) of each line of binary file ``f`` (:func:`_text`), read one line
    at a time."""
    lineno = start - 1
    while True:
        raw = f.readline(_LINE_BYTES)
        if not raw:
            return
        lineno += 1
        yield lineno, _text(raw, path, lineno)


#: bytes read at a time by :meth:`TraceStream.items`
_BLOCK = 1 << 20


def _raw_blocks(f: Any, path: str, lineno: int) -> Iterator[tuple[int, list[bytes], bool]]:
    """The rest of binary file ``f`` as blocks of whole lines: (number of the line before
    the block's first, its lines without their newlines, whether the last one had none: the
    file's end). A line that grows to :data:`_LINE_BYTES` bytes is refused (once the lines
    before it are given), so memory stays bounded whatever the file holds."""
    carry = b""
    while True:
        block = f.read(_BLOCK)
        if not block:
            if carry:
                yield lineno, [carry], True
            return
        lines = (carry + block if carry else block).split(b"\n")
        carry = lines.pop()
        if lines:
            yield lineno, lines, False
            lineno += len(lines)
        if len(carry) >= _LINE_BYTES:
            raise TraceError(f"the line is longer than {MAX_LINE_CHARS} characters",
                             path=path, line=lineno + 1)


#: A trace of fewer bytes than this is read with the standard library's decoder alone:
#: importing msgspec costs some 10 ms of CPU, which its faster decoding pays back only from
#: about 3,000 lines (300 kB; the conformance traces and the packaged example have at most a
#: few hundred lines). The inputs and errors are the same either way.
MSGSPEC_MIN_BYTES = 256 * 1024

_fast_decode: Any = None  # msgspec's decoders, loaded for a long trace (_load_msgspec)
_window_decode: Any = None
_window_fields: Any = None
_NOT_A_WINDOW: tuple[type[Exception], ...] = ()
_loaded = False


def _load_msgspec() -> None:
    """msgspec's decoders (a faster decoder, about 8x on trace lines, and the typed decoder
    of window lines), imported when a trace of at least :data:`MSGSPEC_MIN_BYTES` is first
    read (see :func:`_for_size`): a command that reads none, or only short ones, does not
    pay for the import. Once loaded, every trace read is decoded with them."""
    global _fast_decode, _window_decode, _window_fields, _NOT_A_WINDOW, _loaded
    if _loaded:
        return
    _loaded = True
    try:
        import msgspec
    except ImportError:  # pragma: no cover - msgspec is a dependency
        return
    # (the bounds of every input number: a line beyond them takes the general path, which
    # names what is wrong)
    num = Annotated[float, msgspec.Meta(ge=0.0, le=MAX_NUMBER)]
    time = Annotated[float, msgspec.Meta(ge=0.0, le=MAX_TRACE_TIME)]

    # a VAD window line (the most frequent by far), checked in C: every field a finite
    # non-negative number but the flag ``speaking``, no other field; a line that does not fit
    # takes the general path (which names what is wrong, or accepts it)
    window_line = msgspec.defstruct(
        "WindowLine",
        [("t", time), ("kind", Literal["vad.inference_done"]),
         *((k, bool if k == "speaking" else num, default)
           for k, (_typ, default) in SCHEMA["vad.inference_done"].items())],
        forbid_unknown_fields=True, gc=False)
    _fast_decode = msgspec.json.Decoder().decode
    _window_decode = msgspec.json.Decoder(window_line).decode
    _window_fields = msgspec.structs.asdict
    _NOT_A_WINDOW = (msgspec.ValidationError, msgspec.DecodeError)


def _for_size(size: int | None) -> None:
    """Load msgspec's decoders (:func:`_load_msgspec`) for a trace of ``size`` bytes still to
    read (None: unknown, such as a pipe's) unless it is shorter than
    :data:`MSGSPEC_MIN_BYTES`."""
    if not _loaded and (size is None or size >= MSGSPEC_MIN_BYTES):
        _load_msgspec()


_INF = math.inf
_MAX = MAX_NUMBER
_MAX_T = MAX_TRACE_TIME


class _Inputs:
    """Checks input lines one at a time (time order, kinds, fields)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.last_t = 0.0

    def check(self, lineno: int, obj: Any) -> TraceInput:
        """The checked input of one line (TraceError naming the line and field)."""
        t: Any
        if type(obj) is dict and obj.get("kind") == "vad.inference_done":
            # the most frequent line (a VAD window every 32 ms): every field a non-negative
            # number but the flag ``speaking``; anything else takes the general path
            t = obj.get("t")
            tt = type(t)
            if (tt is float or tt is int) and self.last_t <= t <= _MAX_T:
                for k, v in obj.items():
                    tv = type(v)
                    if k in _WINDOW_NUMBERS:
                        if not ((tv is float or tv is int) and 0 <= v <= _MAX):
                            break
                    elif not (k == "speaking" and tv is bool) and k != "kind":
                        break
                else:
                    self.last_t = t = float(t)
                    del obj["t"], obj["kind"]
                    return TraceInput(t, "vad.inference_done", lineno, obj)
        if type(obj) is not dict:
            self._fail(lineno, "each line must be a JSON object")
        kind: Any = obj.get("kind")
        spec = _FIELDS.get(kind) if type(kind) is str else None
        if spec is None:
            self._fail(lineno, f"unknown kind {json.dumps(kind)} "
                               f"(known: {', '.join(sorted(SCHEMA))})", "kind")
        t = obj.get("t")
        tt = type(t)
        if not ((tt is float or tt is int) and 0 <= t <= _MAX_T and t >= self.last_t):
            self._check_t(lineno, t)
        self.last_t = t = float(t)
        fields: dict[str, Any] = {}
        for k, v in obj.items():
            if k == "t" or k == "kind":
                continue
            f = spec.get(k)
            if f is None:
                if k == "note" and type(v) is str:
                    continue
                self._unknown(lineno, kind, k)
            typ, positive, whole = f
            tv = type(v)
            if typ is _NUM and (tv is float or tv is int) and -_MAX <= v <= _MAX:
                if (positive and v < 0) or (whole and v != int(v)):
                    self._field(lineno, kind, k, v, f)
            else:
                self._field(lineno, kind, k, v, f)
            if tv is str and not v.isascii() and not _unicode(v):
                self._field(lineno, kind, k, v, f)
            fields[k] = v
        required = _REQUIRED_BY_KIND.get(kind)
        if required:
            for req in required:
                if req not in fields:
                    self._fail(lineno, "missing required field", req)
        if kind == "update_options":
            err = self._err(lineno)
            if "turn_detection" in fields and fields["turn_detection"] not in TURN_DETECTION_VALUES:
                err(f"must be one of {TURN_DETECTION_VALUES}", "turn_detection")
            if "endpointing" in fields:
                _check_endpointing(fields["endpointing"], err, "endpointing")
            if "user_turn_limit" in fields:
                _check_limits(fields["user_turn_limit"], err, "user_turn_limit")
        return TraceInput(t, kind, lineno, fields)

    # the slow paths: each finds what is wrong and raises, or returns when nothing is

    def _err(self, lineno: int) -> Any:
        path = self.path

        def err(msg: str, field: str | None = None) -> NoReturn:
            raise TraceError(msg, path=path, line=lineno, field=field)
        return err

    def _fail(self, lineno: int, msg: str, field: str | None = None) -> NoReturn:
        raise TraceError(msg, path=self.path, line=lineno, field=field)

    def _check_t(self, lineno: int, t: Any) -> None:
        err = self._err(lineno)
        if t is None:
            err("missing", "t")
        _check_value(t, _NUM, err, "t")
        if t < 0:
            err(f"must not be negative ({t})", "t")
        if t < self.last_t:
            err(f"time goes backwards ({t} < {self.last_t} of an earlier line)", "t")
        if t > MAX_TRACE_TIME:
            err(f"must be at most {MAX_TRACE_TIME:g} seconds, not {_show(t)}", "t")

    def _unknown(self, lineno: int, kind: str, k: str) -> NoReturn:
        if k == "note":
            self._fail(lineno, "must be a string", "note")
        self._fail(lineno, f"unknown field for {kind} (expected one of "
                           f"{[*sorted(SCHEMA[kind]), 'note']})", k)

    def _field(self, lineno: int, kind: str, k: str, v: Any, f: tuple[str, bool, bool]) -> None:
        err = self._err(lineno)
        typ, positive, whole = f
        _check_value(v, typ, err, k)
        if positive and _is_num(v) and v < 0:
            err(f"must not be negative ({v})", k)
        if whole and _is_num(v) and v != int(v):
            err(f"must be a whole number ({v})", k)


# per kind: field -> (type, must not be negative, must be whole)
_FIELDS: dict[str, dict[str, tuple[str, bool, bool]]] = {
    kind: {k: (typ, k in NON_NEGATIVE, k in INTEGER) for k, (typ, _d) in schema.items()}
    for kind, schema in SCHEMA.items()}
_WINDOW_NUMBERS = frozenset(["t", *(k for k, (typ, _d) in SCHEMA["vad.inference_done"].items()
                                     if typ == _NUM)])
_REQUIRED_BY_KIND: dict[str, tuple[str, ...]] = {}
for _kind, _field in sorted(REQUIRED):
    _REQUIRED_BY_KIND[_kind] = (*_REQUIRED_BY_KIND.get(_kind, ()), _field)


def _header(line: str | None, path: str) -> dict[str, Any]:
    obj = _decode(line, path, 1) if line is not None and line.strip() else None
    if not isinstance(obj, dict) or obj.get("kind") != "config":
        raise TraceError('line 1 must be the header {"kind": "config", ...}', path=path, line=1)

    def header_err(msg: str, field: str | None = None) -> NoReturn:
        raise TraceError(msg, path=path, line=1, field=field)
    return parse_config(obj, header_err)


class TraceStream:
    """A trace read one line at a time: ``config`` at once, then the inputs as iterated (each
    checked as it is read; a bad line raises TraceError when reached). Use as a context
    manager, or close it."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        try:
            self._f = open(path, "rb")  # noqa: SIM115 - closed by close()
        except OSError as e:
            raise TraceError(f"cannot read the trace: {e.strerror or e}", path=self.path) \
                from None
        try:
            first = next(_lines(self._f, self.path), (1, None))[1]
            self._lineno = 1  # the lines read (the header)
            self.config = _header(first, self.path)
        except BaseException:
            self._f.close()
            raise

    def __iter__(self) -> Iterator[TraceInput]:
        for x in self.items():
            if type(x) is tuple:
                lineno, w = cast("tuple[int, Any]", x)
                f = _window_fields(w)
                t = f.pop("t")
                del f["kind"]
                yield TraceInput(t, "vad.inference_done", lineno, f)
            else:
                yield x  # type: ignore[misc]

    def items(self) -> Iterator[TraceInput | tuple[int, Any]]:
        """The inputs, a VAD window line as ``(line number, window)`` (the typed decoder's
        checked struct: ``t``, ``raw_accumulated_speech``, ...; the replay's hot path, taken
        once msgspec is loaded: a long trace), every other line as a :class:`TraceInput`."""
        try:
            st = os.fstat(self._f.fileno())
            left = st.st_size - self._f.tell() if stat.S_ISREG(st.st_mode) else None
        except (OSError, ValueError):
            left = None
        _for_size(left)
        inputs = _Inputs(self.path)
        check = inputs.check
        path = self.path
        window = _window_decode
        not_a_window = _NOT_A_WINDOW if window is not None else ()
        short = MAX_LINE_CHARS  # a line of at most this many bytes passes the length checks
        last = inputs.last_t  # (kept here on the window path; the checker keeps it otherwise)
        try:
            # whole blocks of lines (the lines split in C); each line is decoded from its
            # bytes: a window line by the typed decoder (which reads UTF-8 itself: a line it
            # accepts holds numbers, its kind and field names only), any other by the general
            # path, which checks it as _lines does
            for before, raws, at_end in _raw_blocks(self._f, path, self._lineno):
                lineno = before
                n = len(raws)
                for raw in raws:
                    lineno += 1
                    if window is not None and len(raw) <= short:
                        try:
                            w = window(raw)
                        except not_a_window:
                            pass
                        else:
                            t = w.t
                            if last <= t:
                                last = t
                                yield lineno, w
                                continue
                    if len(raw) >= _LINE_BYTES:  # (what reading it line by line refuses)
                        raise TraceError(f"the line is longer than {MAX_LINE_CHARS} "
                                         "characters", path=path, line=lineno)
                    line = _text(raw if at_end and lineno - before == n else raw + b"\n",
                                 path, lineno)
                    if not line or line.isspace():
                        continue
                    inputs.last_t = last
                    x = check(lineno, _decode(line, path, lineno))
                    last = inputs.last_t
                    yield x
        except OSError as e:
            raise TraceError(f"cannot read the trace: {e.strerror or e}", path=path) from None
        finally:
            self._f.close()

    def close(self) -> None:
        """Stop reading."""
        self._f.close()

    def __enter__(self) -> TraceStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_trace(path: str | Path) -> Trace:
    """Read and check a whole trace file (line by line, with the stream's limits and
    messages)."""
    with TraceStream(path) as stream:
        return Trace(stream.path, stream.config, tuple(stream))


def parse_trace(text: str, path: str = "<trace>") -> Trace:
    """Parse and check trace ``text`` (``path`` names it in errors)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for i, line in enumerate(lines, start=1):
        if len(line) > MAX_LINE_CHARS + 1:
            raise TraceError(f"the line is longer than {MAX_LINE_CHARS} characters",
                             path=path, line=i)
    first: str | None = lines[0] if lines else None
    if first is not None and not first.strip():
        first = None
    _for_size(len(text))
    cfg = _header(first, path)
    check = _Inputs(path).check
    inputs = tuple(check(i, _decode(line, path, i))
                   for i, line in enumerate(lines[1:], start=2) if line.strip())
    return Trace(path, cfg, inputs)


# -- output ------------------------------------------------------------------------------------

INT_FIELDS = frozenset({"input", "call", "frames", "accumulated_word_count"})


def _norm(v: Any) -> Any:
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, (int, float)):
        r = round(float(v), 3)
        return 0.0 if r == 0 else r
    if isinstance(v, (list, tuple)):
        return [_norm(x) for x in v]
    return str(v)


def output_line(t: float, kind: str, **fields: Any) -> dict[str, Any]:
    """One output record: ``t``, ``kind``, then the fields in alphabetical order."""
    rec: dict[str, Any] = {"t": _norm(t), "kind": kind}
    for k in sorted(fields):
        v = fields[k]
        if k in INT_FIELDS and isinstance(v, (int, float)) and not isinstance(v, bool):
            rec[k] = int(v)
        else:
            rec[k] = _norm(v)
    return rec


#: one output record as the reference writes it (``json.dumps`` with these arguments, whose
#: encoder is made once here rather than on every call)
encode_line = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": ")).encode


_string = json.encoder.encode_basestring  # (the C function when there is one, as json's)
_float_repr = float.__repr__
_int_repr = int.__repr__


def _value_text(v: Any) -> str:
    """A normalised output value (:func:`_norm`: None, a bool, text, a number or a list of
    these) as :data:`encode_line` writes it."""
    if isinstance(v, str):
        return _string(v)
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return _int_repr(v)
    if isinstance(v, float):
        if v != v:
            return "NaN"
        if v in (math.inf, -math.inf):
            return "Infinity" if v > 0 else "-Infinity"
        return _float_repr(v)
    if isinstance(v, list):
        return "[" + ", ".join([_value_text(x) for x in v]) + "]"
    return encode_line(v)  # pragma: no cover - _norm gives none of any other type


def output_text(t: float, kind: str, **fields: Any) -> str:
    """One output record as a line of text: ``encode_line(output_line(...)) + "\\n"``,
    written directly (the record's dict and the encoder's setup skipped)."""
    parts = ['{"t": ', _value_text(_norm(t)), ', "kind": ', _string(kind)]
    for k in sorted(fields):
        v = fields[k]
        if k in INT_FIELDS and isinstance(v, (int, float)) and not isinstance(v, bool):
            v = int(v)
        else:
            v = _norm(v)
        parts += (", ", _string(k), ": ", _value_text(v))
    parts.append("}\n")
    return "".join(parts)


def dumps(records: list[dict[str, Any]]) -> str:
    """Serialise output records as the reference does."""
    return "".join([encode_line(r) + "\n" for r in records])
