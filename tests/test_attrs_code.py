"""The cache of attrs' generated methods: the same code as compiling, across hash seeds,
never trusted when unreadable, written only as bytecode is."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from turnfsm import _attrs_code

SRC = Path(__file__).resolve().parents[1] / "src"

NAME = "<attrs generated methods turnfsm.example.Point>"
SOURCE = """def __hash__(self):
        return hash((
                {seed},
                self.x,
            ))
def __eq__(self, other):
    return other.__class__ is self.__class__ and self.x == other.x
"""


def _run(code: object) -> dict[str, object]:
    """The names ``code`` defines."""
    out: dict[str, object] = {}
    exec(code, {}, out)
    return out


class _X:
    x = 7


@pytest.fixture
def writable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bytecode writing on (the test environment may turn it off)."""
    monkeypatch.setattr(sys, "dont_write_bytecode", False)


def test_cached_code_behaves_as_compiled(tmp_path: Path, writable: None) -> None:
    """A method read back from the cache under another hash seed computes what compiling
    that seed's source computes."""
    path = str(tmp_path / "c.marshal")
    first = _attrs_code._Cache(path)
    first.compile(SOURCE.format(seed=-123456789), NAME, "exec")
    assert (first.hits, first.misses) == (0, 1)
    first.flush()
    assert os.path.exists(path)
    second = _attrs_code._Cache(path)
    got = second.compile(SOURCE.format(seed=987654321), NAME, "exec")
    assert (second.hits, second.misses) == (1, 0)
    want = compile(SOURCE.format(seed=987654321), NAME, "exec")
    assert _run(got)["__hash__"](_X()) == _run(want)["__hash__"](_X())  # type: ignore[operator]
    assert _run(got)["__hash__"](_X()) == hash((987654321, 7))  # type: ignore[operator]


def test_changed_source_misses(tmp_path: Path, writable: None) -> None:
    """A class whose declaration changed (other source) is compiled, not served stale."""
    path = str(tmp_path / "c.marshal")
    c = _attrs_code._Cache(path)
    c.compile(SOURCE.format(seed=1), NAME, "exec")
    c.flush()
    again = _attrs_code._Cache(path)
    code = again.compile(SOURCE.format(seed=1).replace("self.x == other.x", "True"), NAME,
                         "exec")
    assert (again.hits, again.misses) == (0, 1)
    assert _run(code)["__eq__"](_X(), _X())  # type: ignore[operator]


def test_other_modules_are_not_cached(tmp_path: Path, writable: None) -> None:
    """Another package's generated methods are compiled as attrs compiles them."""
    c = _attrs_code._Cache(str(tmp_path / "c.marshal"))
    c.compile(SOURCE.format(seed=1), "<attrs generated methods other.Point>", "exec")
    assert (c.hits, c.misses, c.dirty) == (0, 0, False)


@pytest.mark.parametrize("content", [b"", b"garbage", b"turnfsm-attrs-code 2\n\x00\x00\x00\x00x"])
def test_unreadable_cache_is_ignored(tmp_path: Path, content: bytes, writable: None) -> None:
    """A truncated, foreign or corrupt cache file is ignored and rewritten."""
    path = tmp_path / "c.marshal"
    path.write_bytes(content)
    c = _attrs_code._Cache(str(path))
    assert c.codes == {}
    c.compile(SOURCE.format(seed=5), NAME, "exec")
    c.flush()
    assert _attrs_code._Cache(str(path)).codes


def test_not_written_without_bytecode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With PYTHONDONTWRITEBYTECODE nothing is written, as for bytecode."""
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    path = tmp_path / "c.marshal"
    c = _attrs_code._Cache(str(path))
    c.compile(SOURCE.format(seed=5), NAME, "exec")
    c.flush()
    assert not path.exists()


def test_package_classes_from_the_cache(tmp_path: Path) -> None:
    """Two fresh processes under different hash seeds: the second builds every class from
    the first's cache, and its events hash, compare and print as attrs makes them."""
    probe = (
        "import attrs, turnfsm, turnfsm._attrs_code as a\n"
        "from turnfsm import events as ev\n"
        "from attr._make import _generate_unique_filename as u\n"
        "e = ev.VadInferenceDone(t=1.0, raw_accumulated_speech=0.5)\n"
        "f = attrs.evolve(e, t=1.0)\n"
        "seed = hash(u(ev.VadInferenceDone, 'hash'))\n"
        "vals = tuple(getattr(e, x.name) for x in attrs.fields(ev.VadInferenceDone))\n"
        "assert e == f and hash(e) == hash(f) == hash((seed, *vals)), 'hash'\n"
        "assert repr(e).startswith('VadInferenceDone(t=1.0, ref=None'), repr(e)\n"
        "print(a._cache.hits, a._cache.misses)\n")
    # a copy of the package, so the test writes its own cache
    pkg = tmp_path / "src"
    shutil.copytree(SRC / "turnfsm", pkg / "turnfsm")
    for cache in (pkg / "turnfsm" / "__pycache__").glob("attrs-methods*"):
        cache.unlink()
    runs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONPATH": str(pkg), "PYTHONHASHSEED": seed}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        p = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                           env=env, check=True)
        runs.append(tuple(int(x) for x in p.stdout.split()))
    (h1, m1), (h2, m2) = runs
    assert h1 == 0 and m1 > 50
    assert (h2, m2) == (m1, 0)


@pytest.mark.parametrize("before", [True, False])
def test_import_leaves_the_collector_as_it_was(before: bool) -> None:
    """The package pauses the cyclic collector while it is imported and leaves it as it
    found it (on, or off when the host had turned it off)."""
    probe = (f"import gc\n{'gc.enable()' if before else 'gc.disable()'}\n"
             "import turnfsm\nprint(gc.isenabled())\n")
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    p = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env,
                       check=True)
    assert p.stdout.strip() == str(before)
