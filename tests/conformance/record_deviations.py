"""Refresh the `output` field of every entry in deviations.yaml from the current engine.

    python -m tests.conformance.record_deviations [--add SUITE/NAME ...]

Review `git diff tests/conformance/deviations.yaml` afterwards: an output is only right if
the difference from the reference is the deviation the entry explains.
"""

from __future__ import annotations

import sys

import yaml

from tests.conformance.support import DEVIATIONS, trace_path
from turnfsm.replay import replay_file


class _Block(str):
    pass


def _block(dumper: yaml.Dumper, data: _Block) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")


def main(argv: list[str]) -> int:
    yaml.add_representer(_Block, _block)
    entries = yaml.safe_load(DEVIATIONS.read_text(encoding="utf-8")) or []
    names = {e["trace"] for e in entries}
    if argv[:1] == ["--add"]:
        for name in argv[1:]:
            if name not in names:
                entries.append({"trace": name, "defects": ["D?"], "reference": "TODO",
                                "turnfsm": "TODO", "why": "TODO", "output": ""})
    for e in entries:
        e["output"] = _Block(replay_file(trace_path(e["trace"])))
    entries.sort(key=lambda e: e["trace"])
    DEVIATIONS.write_text(
        "# Deliberate deviations from the reference (livekit-agents 1.5.12): one entry per trace.\n"
        "# `output` is turnfsm's own expected output; refresh it with\n"
        "#   python -m tests.conformance.record_deviations\n"
        + yaml.dump(entries, sort_keys=False, allow_unicode=True, width=100),
        encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
