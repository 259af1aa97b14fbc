"""The packaged profiles' cache: the same profile as built from its files, rebuilt when
anything it was built from changes, never trusted when unreadable."""

from __future__ import annotations

import functools
import os
import pickle
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from turnfsm import profile_cache
from turnfsm.core import dispatch
from turnfsm.core.profiles import PROFILES, get_profile


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The cache in a temporary folder, emptied of this process's profiles."""
    where = tmp_path / "__pycache__"
    monkeypatch.setattr(profile_cache, "cache_path",
                        lambda name: where / f"profile-{name}.pickle")
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    profile_cache.packaged_profile.cache_clear()
    yield where
    profile_cache.packaged_profile.cache_clear()


@pytest.mark.parametrize("name", PROFILES)
def test_a_cached_profile_is_the_built_one(cache: Path, name: str) -> None:
    """The first call builds and writes the profile; a later process's load equals the
    built profile (chart, options, document)."""
    built = profile_cache.packaged_profile(name)
    key, loaded, _table = pickle.loads(profile_cache.cache_path(name).read_bytes())
    assert key == profile_cache._key(name)
    ref = get_profile(name)
    assert loaded == ref and built == ref
    assert loaded.chart == ref.chart and loaded.chart_doc == ref.chart_doc
    assert dict(loaded.option_defaults) == dict(ref.option_defaults)
    assert loaded.options() == ref.options()


def _shape(node: Any) -> Any:
    """A dispatch table with its functions by name (partials with their arguments)."""
    if isinstance(node, functools.partial):
        return (node.func.__qualname__, node.args)
    if callable(node):
        return node.__qualname__
    if isinstance(node, dict):
        return {k: _shape(v) for k, v in node.items()}
    if isinstance(node, (tuple, list)):
        return tuple(_shape(v) for v in node)
    return node


@pytest.mark.parametrize("name", PROFILES)
def test_the_cached_dispatch_table_is_the_compiled_one(cache: Path, name: str) -> None:
    """The chart's dispatch table is cached with the profile: the loaded chart gives it to
    an engine (not compiled again), and it is the table compiled from the chart."""
    profile_cache.packaged_profile(name)
    profile_cache.packaged_profile.cache_clear()
    loaded = profile_cache.packaged_profile(name)  # as a later process loads it
    table = loaded.chart.derived["table"]
    assert dispatch.compiled(loaded.chart) is table
    fresh = pickle.loads(pickle.dumps(get_profile(name).chart))  # (no table: compiled anew)
    assert "table" not in fresh.derived
    again = dispatch.compiled(fresh)
    assert again is not table
    assert (table.regions, table.states, table.initial) == \
        (again.regions, again.states, again.initial)
    assert _shape(table.table) == _shape(again.table)


def test_an_unreadable_cache_is_rebuilt(cache: Path) -> None:
    """A cache file that does not unpickle to the profile is ignored and replaced."""
    path = profile_cache.cache_path("default")
    path.parent.mkdir()
    path.write_bytes(b"not a pickle")
    assert profile_cache.packaged_profile("default") == get_profile("default")
    assert pickle.loads(path.read_bytes())[1] == get_profile("default")


def test_a_cache_built_from_other_files_is_rebuilt(cache: Path) -> None:
    """A cache whose key differs (the chart or the code changed since) is not served."""
    path = profile_cache.cache_path("default")
    path.parent.mkdir()
    path.write_bytes(pickle.dumps(("another key", get_profile("livekit"))))
    assert profile_cache.packaged_profile("default") == get_profile("default")
    assert pickle.loads(path.read_bytes())[0] == profile_cache._key("default")


def test_the_key_follows_the_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The key changes with the size or modification time of any file the profile is
    built from (a changed chart or loader is never served from an old cache)."""
    src = tmp_path / "states.yaml"
    src.write_text("a")
    monkeypatch.setattr(profile_cache, "_inputs", lambda name: [str(src)])
    k1 = profile_cache._key("default")
    src.write_text("ab")
    k2 = profile_cache._key("default")
    os.utime(src, ns=(1, 1))
    k3 = profile_cache._key("default")
    assert len({k1, k2, k3}) == 3
    assert profile_cache._key("livekit") != k3


def test_no_cache_is_written_without_bytecode(cache: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Like bytecode, the cache is not written under PYTHONDONTWRITEBYTECODE."""
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    assert profile_cache.packaged_profile("livekit") == get_profile("livekit")
    assert not cache.exists()


def test_the_inputs_are_the_packaged_files_and_the_code() -> None:
    """The key reads the packaged chart and profile and the chart/core sources."""
    files = profile_cache._inputs("default")
    names = {Path(f).relative_to(Path(profile_cache.__file__).parent).as_posix()
             for f in files}
    assert {"states.yaml", "profiles/default.yaml", "chart/loader.py", "core/profiles.py",
            "options.py", "core/registry.py"} <= names
    assert any(n.startswith("core/rules/") for n in names)
