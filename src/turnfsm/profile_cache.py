"""The packaged profiles, compiled once and kept beside the package's bytecode.

Building a packaged profile (parsing ``states.yaml`` and the profile's overlay, composing
them, validating the chart against the engine's registry) costs about 25 ms of CPU, a sixth
of a short ``turnfsm listen``. :func:`packaged_profile` keeps the built
:class:`~turnfsm.core.profiles.Profile` as a pickle in the package's ``__pycache__`` folder,
as Python keeps a module's bytecode there, and loads it in about 1.5 ms while nothing it
was built from changed: the key covers the Python version, turnfsm's version, the size and
modification time of every source file the profile's construction reads (``chart/``,
``core/``, the top-level modules) and of the packaged chart and profile files. Like
bytecode, the cache is not written when ``sys.dont_write_bytecode`` is set
(``PYTHONDONTWRITEBYTECODE``) or the folder is read-only, and any cache that cannot be read
is ignored: the profile is then built as :func:`~turnfsm.core.profiles.get_profile` builds
it. Only profiles named by their packaged name are cached; profile files are read each
time. The chart's dispatch table (:func:`~turnfsm.core.dispatch.compiled`, some 2 ms more
at an engine's creation) is kept with it, and given back to the loaded chart.
"""

from __future__ import annotations

import functools
import gc
import os
import pickle
import sys
from pathlib import Path

from .core.dispatch import Compiled, compiled
from .core.profiles import PROFILES, Profile, get_profile

_PACKAGE = Path(__file__).resolve().parent
_FORMAT = 3  # bumped when what is pickled changes shape


def _inputs(name: str) -> list[str]:
    """The files a packaged profile is built from (its chart and profile files and the
    code that builds it)."""
    files = [str(_PACKAGE / "states.yaml"), str(_PACKAGE / "profiles" / f"{name}.yaml")]
    files += [e.path for e in os.scandir(_PACKAGE) if e.name.endswith(".py")]
    for folder in ("chart", "core"):
        for root, dirs, names in os.walk(_PACKAGE / folder):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            files += [os.path.join(root, n) for n in names if n.endswith((".py", ".json"))]
    return sorted(files)


def _key(name: str) -> str:
    """What the cached profile must have been built from (compared whole, not hashed)."""
    from . import __version__
    parts = [f"{_FORMAT} {sys.version} {__version__} {name}"]
    for f in _inputs(name):
        try:
            st = os.stat(f)
        except OSError:
            parts.append(f"{f} missing")
            continue
        parts.append(f"{f} {st.st_size} {st.st_mtime_ns}")
    return "\n".join(parts)


def cache_path(name: str) -> Path:
    """Where the packaged profile ``name`` is cached (with the key it was built for)."""
    return _PACKAGE / "__pycache__" / f"profile-{name}.pickle"


@functools.cache
def packaged_profile(name: str) -> Profile:
    """The packaged profile ``name`` (``default``, ``livekit``), from the cache when it is
    up to date, else built and cached (see the module's docstring)."""
    if name not in PROFILES:
        raise ValueError(f"{name!r} is not a packaged profile ({', '.join(PROFILES)})")
    path = cache_path(name)
    key = _key(name)
    try:
        with open(path, "rb") as f:
            # the cyclic collector's passes over the objects being unpickled find nothing
            # (about half of the load's CPU): it pauses while they are made
            gc_was_on = gc.isenabled()
            gc.disable()
            try:
                got_key, got, table = pickle.load(f)
            finally:
                if gc_was_on:
                    gc.enable()
        if got_key == key and isinstance(got, Profile) and got.name == name and \
                isinstance(table, Compiled):
            got.chart.derived["table"] = table  # (a chart pickles without what is derived)
            return got
    except Exception:  # no cache, an old or an unreadable one: build it
        pass
    prof = get_profile(name)
    if not sys.dont_write_bytecode:
        try:
            path.parent.mkdir(exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_bytes(pickle.dumps((key, prof, compiled(prof.chart)),
                                         protocol=pickle.HIGHEST_PROTOCOL))
            os.replace(tmp, path)
        except OSError:
            pass
    return prof


def profile(given: str | Profile | os.PathLike[str] | None = None, *,
            within: str | os.PathLike[str] | None = None) -> Profile:
    """:func:`~turnfsm.core.profiles.get_profile`, with packaged profiles by name from the
    cache."""
    if given is None or (isinstance(given, str) and given in PROFILES):
        from .core.profiles import DEFAULT_PROFILE
        return packaged_profile(given or DEFAULT_PROFILE)
    return get_profile(given, within=within)
