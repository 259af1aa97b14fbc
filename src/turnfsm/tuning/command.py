"""The ``turnfsm tune`` command (the CLI parses, this runs)."""

from __future__ import annotations

import argparse
import sys

from ..errors import TurnFsmError
from ..messages import one_line
from .grid import AUDIO_OPTIONS, read_grid
from .report import annotate, check_outputs, plot_pareto, summary, table, write_output
from .sessions import session_paths
from .sweep import ProgressBar, sweep


def tune_command(args: argparse.Namespace) -> int:
    """Run ``tune``; return the exit code."""
    try:
        grid = read_grid(args.grid)
        paths = [str(p) for p in session_paths(args.sessions)]
        if args.max_latency <= 0:
            raise TurnFsmError("--max-latency must be positive")
        check_outputs(args.output or [], args.plot)
        audio = [n for n in grid.options if n in AUDIO_OPTIONS]
        traces = [p for p in paths if p.endswith(".jsonl")]
        if audio and traces:
            print(f"turnfsm tune: note: {', '.join(audio)} change how a WAV file becomes a "
                  f"trace; they do not apply to the {len(traces)} trace session(s)",
                  file=sys.stderr)
        bar = ProgressBar(not args.quiet)
        try:
            result = sweep(grid, paths, jobs=args.jobs, cluster=args.cluster, progress=bar)
        finally:
            bar.done()
        rows = annotate(result, args.max_latency)
    except TurnFsmError as e:
        print(f"turnfsm tune: {one_line(e)}", file=sys.stderr)
        return 2
    # the results first: a file that fails to be written below never loses them
    if not args.quiet:
        sys.stdout.write(table(result, rows))
        sys.stdout.write("\n")
    sys.stdout.write(summary(result, rows, args.max_latency))
    sys.stdout.flush()
    flag = "-o"
    try:
        for out in args.output or []:
            flag = f"-o {out}"
            write_output(result, rows, out)
        if args.plot:
            flag = f"--plot {args.plot}"
            plot_pareto(result, rows, args.plot, args.max_latency)
    except TurnFsmError as e:
        print(f"turnfsm tune: {one_line(e)}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"turnfsm tune: {flag}: cannot write it: {e.strerror or e}", file=sys.stderr)
        return 2
    return 0
