"""The ``turnfsm`` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import TurnFsmError


def _replay(args: argparse.Namespace) -> int:
    from .chart import read_chart
    from .replay import replay_file
    from .trace import read_trace

    chart = None
    if args.chart:
        try:
            chart = read_chart(args.chart)
        except TurnFsmError as e:
            print(f"turnfsm replay: {e}", file=sys.stderr)
            return 2
    opts = {"diagnostics": args.diagnostics, "backend": args.backend, "chart": chart}

    if args.dir:
        src = Path(args.dir)
        if not src.is_dir():
            print(f"turnfsm replay: {src}: not a directory", file=sys.stderr)
            return 2
        if not args.output:
            print("turnfsm replay: --dir needs -o OUTDIR", file=sys.stderr)
            return 2
        dst = Path(args.output)
        dst.mkdir(parents=True, exist_ok=True)
        status = 0
        for p in sorted(src.glob("*.jsonl")):
            try:
                text = replay_file(p, **opts)
            except TurnFsmError as e:
                print(f"turnfsm replay: {e}", file=sys.stderr)
                status = 2
                continue
            (dst / p.name).write_text(text, encoding="utf-8")
        return status
    if args.example:
        from importlib import resources
        args.trace = str(resources.files("turnfsm") / "examples" / "session.jsonl")
        args.timeline = args.timeline or not args.output
    if not args.trace:
        print("turnfsm replay: give a TRACE.jsonl, --example, or --dir TRACES -o OUTDIR",
              file=sys.stderr)
        return 2
    try:
        if args.timeline:
            from .timeline import render_timeline
            print(render_timeline(read_trace(args.trace), chart), end="")
            return 0
        text = replay_file(args.trace, **opts)
    except TurnFsmError as e:
        print(f"turnfsm replay: {e}", file=sys.stderr)
        return 2
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def _check(args: argparse.Namespace) -> int:
    from .chart import read_chart

    try:
        chart = read_chart(args.chart)
    except TurnFsmError as e:
        print(str(e), file=sys.stderr)
        return 1
    print(f"{chart.source}: ok ({len(chart.regions)} regions, "
          f"{sum(len(r.states) for r in chart.regions)} states, "
          f"{len(chart.transitions)} transitions)")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="turnfsm", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    rp = sub.add_parser("replay", help="replay a recorded session (trace) in virtual time")
    rp.add_argument("trace", nargs="?", help="trace file (JSON Lines)")
    rp.add_argument("--dir", help="replay every *.jsonl in this folder")
    rp.add_argument("-o", "--output", help="output file (or folder with --dir)")
    rp.add_argument("--timeline", action="store_true", help="print a readable timeline")
    rp.add_argument("--example", action="store_true",
                    help="replay the built-in example session (printed as a timeline)")
    rp.add_argument("--diagnostics", action="store_true",
                    help="also write transcript_dropped lines (why a transcript was discarded)")
    rp.add_argument("--chart", help="run this state chart instead of the built-in one")
    rp.add_argument("--backend", choices=("table", "transitions"), default="table",
                    help="dispatch through the compiled table (default) or transitions' machines")
    rp.set_defaults(func=_replay)
    ck = sub.add_parser("check", help="validate a state chart")
    ck.add_argument("chart", nargs="?", help="chart file (default: the built-in states.yaml)")
    ck.set_defaults(func=_check)
    args = ap.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
