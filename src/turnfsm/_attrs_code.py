"""attrs' generated methods for turnfsm's classes, compiled once and kept beside the
package's bytecode.

attrs writes each class's ``__init__``, ``__repr__``, ``__eq__``, ``__hash__`` (and the
rest) as Python source and compiles it when the class is created: for the 80-odd classes a
``turnfsm listen`` builds that is about 20 ms of CPU, a tenth of a short run. The source
attrs writes is a pure function of the class's declaration, so :func:`install` gives attrs a
``compile`` that looks the source up in a cache of code objects (``marshal``, as Python keeps
a module's bytecode) before compiling it. The classes are the same: attrs evaluates the same
code in the same namespace; only the compiling is skipped.

The cache is keyed by the exact source and the name attrs gives it (so a changed class
simply misses and is compiled), lives in the package's ``__pycache__`` folder under the
interpreter's cache tag with the bytecode magic number in its header, is written (whole,
atomically) only when something was compiled that it lacked and not when
``sys.dont_write_bytecode`` is set (``PYTHONDONTWRITEBYTECODE``) or the folder is
read-only; a cache that cannot be read is ignored. Only methods attrs generates for classes
of turnfsm's own modules go through it; any other class's source is compiled as attrs
compiles it.
"""

from __future__ import annotations

import builtins
import contextlib
import marshal
import os
import re
import sys
from importlib.util import MAGIC_NUMBER
from types import CodeType
from typing import Any

_FORMAT = b"turnfsm-attrs-code 2\n"
#: the largest number of entries kept (stale ones are dropped beyond it)
MAX_ENTRIES = 1000
_PREFIX = "<attrs generated "
_OURS = " turnfsm."
#: the one part of attrs' source that changes between processes: ``__hash__`` mixes in a
#: number made from ``hash()`` of a string (randomised per process, PYTHONHASHSEED)
_TYPE_HASH = re.compile(r"return hash\(\(\s*(-?\d+),")


def _swap(code: CodeType, old: int, new: int) -> CodeType:
    """``code`` with the integer constant ``old`` replaced by ``new`` (in nested code too)."""
    consts = tuple(new if type(c) is int and c == old else
                   _swap(c, old, new) if isinstance(c, CodeType) else c
                   for c in code.co_consts)
    return code.replace(co_consts=consts)


def cache_path() -> str:
    """Where the generated methods are cached."""
    here = os.path.dirname(os.path.abspath(__file__))
    tag = sys.implementation.cache_tag or "python"
    return os.path.join(here, "__pycache__", f"attrs-methods.{tag}.marshal")


class _Cache:
    """The code objects by (name, source): those read from the file and those compiled."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.codes: dict[str, tuple[int, CodeType]] = {}
        self.used: set[str] = set()
        self.dirty = False
        self.hits = self.misses = 0
        try:
            with open(path, "rb") as f:
                data = f.read()
            head = _FORMAT + MAGIC_NUMBER
            if data.startswith(head):
                codes = marshal.loads(data[len(head):])
                if isinstance(codes, dict):
                    self.codes = codes
        except Exception:  # no cache, an old or an unreadable one: compile
            self.codes = {}

    def compile(self, source: Any, filename: Any, mode: Any, *args: Any, **kw: Any) -> Any:
        """``compile`` for attrs: turnfsm's generated methods from the cache."""
        if (args or kw or mode != "exec" or not isinstance(source, str)
                or not isinstance(filename, str) or not filename.startswith(_PREFIX)
                or _OURS not in filename):
            return builtins.compile(source, filename, mode, *args, **kw)
        m = _TYPE_HASH.search(source)
        seed = int(m.group(1)) if m else 0
        norm = source[:m.start(1)] + "0" + source[m.end(1):] if m else source
        key = f"{filename}\n{norm}"
        got = self.codes.get(key)
        if got is None:
            self.misses += 1
            code = builtins.compile(source, filename, mode)
            self.codes[key] = (seed, code)
            self.dirty = True
        else:
            self.hits += 1
            was, code = got
            if was != seed:
                code = _swap(code, was, seed)
        self.used.add(key)
        return code

    def flush(self) -> None:
        """Write the cache if it gained entries (see the module's docstring)."""
        if not self.dirty or sys.dont_write_bytecode:
            return
        self.dirty = False
        codes = self.codes
        if len(codes) > MAX_ENTRIES:  # drop what this process did not use
            codes = {k: v for k, v in codes.items() if k in self.used}
        tmp = f"{self.path}.{os.getpid()}.tmp"
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            with open(tmp, "wb") as f:
                f.write(_FORMAT + MAGIC_NUMBER + marshal.dumps(codes))
            os.replace(tmp, self.path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


_cache: _Cache | None = None


def install(path: str | None = None) -> _Cache | None:
    """Give attrs the caching ``compile`` (once per process; None if attrs' module layout
    is not the one this was written for: classes are then built as attrs builds them)."""
    global _cache
    if _cache is not None:
        return _cache
    try:
        from attr import _make
    except ImportError:
        return None
    if not hasattr(_make, "_compile_and_eval"):
        return None
    _cache = _Cache(path or cache_path())
    _make.compile = _cache.compile  # type: ignore[attr-defined]
    import atexit
    atexit.register(_cache.flush)
    return _cache


def flush() -> None:
    """Write what was compiled so far (the package does it once its modules are loaded)."""
    if _cache is not None:
        _cache.flush()
