"""Shared helpers of the conformance tests: trace discovery, comparison, deviations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).parent
SUITES = ("public", "extra")
IGNORED_KINDS = frozenset({"retrieve_chat_ctx", "error"})
TOL = 0.0005
DEVIATIONS = HERE / "deviations.yaml"
DEVIATION_FIELDS = {"trace", "defects", "reference", "turnfsm", "why", "output"}


def traces() -> list[str]:
    """Every conformance trace as 'suite/name' (without .jsonl)."""
    out = []
    for suite in SUITES:
        for p in sorted((HERE / suite / "traces").glob("*.jsonl")):
            out.append(f"{suite}/{p.stem}")
    return out


def trace_path(name: str) -> Path:
    suite, stem = name.split("/", 1)
    return HERE / suite / "traces" / f"{stem}.jsonl"


def expected_path(name: str) -> Path:
    suite, stem = name.split("/", 1)
    return HERE / suite / "expected" / f"{stem}.jsonl"


def parse_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _eq(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return abs(a - b) <= TOL
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_eq(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_eq(a[k], b[k]) for k in a)
    return bool(a == b)


def first_difference(expected: list[dict[str, Any]], actual: list[dict[str, Any]]) -> str | None:
    """None when equal (ignoring retrieve_chat_ctx and error lines), else the first difference."""
    e = [x for x in expected if x.get("kind") not in IGNORED_KINDS]
    a = [x for x in actual if x.get("kind") not in IGNORED_KINDS]
    for i in range(max(len(e), len(a))):
        if i >= len(e):
            return f"extra line {i + 1}: {json.dumps(a[i])}"
        if i >= len(a):
            return f"missing line {i + 1}: {json.dumps(e[i])}"
        if not _eq(e[i], a[i]):
            return f"line {i + 1}: expected {json.dumps(e[i])}\n          got {json.dumps(a[i])}"
    return None


def load_deviations() -> dict[str, dict[str, Any]]:
    """The deviation table, keyed by trace name."""
    data = yaml.safe_load(DEVIATIONS.read_text(encoding="utf-8")) or []
    table: dict[str, dict[str, Any]] = {}
    for entry in data:
        missing = DEVIATION_FIELDS - set(entry)
        if missing:
            raise ValueError(f"deviation {entry.get('trace')}: missing {sorted(missing)}")
        table[entry["trace"]] = entry
    return table
