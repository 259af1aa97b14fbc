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


def cluster_security(args: argparse.Namespace) -> dict[str, str] | None:
    """The TLS files of ``--cluster tls://`` (None without them; TurnFsmError when they do
    not go with the address)."""
    files = {"ca_file": getattr(args, "tls_ca_file", None),
             "cert": getattr(args, "tls_cert", None), "key": getattr(args, "tls_key", None)}
    given = {k: v for k, v in files.items() if v}
    cluster = getattr(args, "cluster", None)
    if given and not (isinstance(cluster, str) and cluster.startswith("tls://")):
        raise TurnFsmError("--tls-ca-file/--tls-cert/--tls-key go with --cluster tls://...")
    if isinstance(cluster, str) and cluster.startswith("tls://"):
        if not given.get("ca_file") or not given.get("cert"):
            raise TurnFsmError("--cluster tls://... needs --tls-ca-file (the authority the "
                               "cluster's certificates are signed by) and --tls-cert (this "
                               "client's certificate; --tls-key if the key is apart)")
        return given
    return None


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
        if traces and any(st.get("eou_model") == "smart-turn" for st in grid.settings):
            raise TurnFsmError(f"eou_model smart-turn hears audio: it sweeps WAV sessions, "
                               f"not traces ({traces[0]})")
        bar = ProgressBar(not args.quiet)
        try:
            result = sweep(grid, paths, jobs=args.jobs, cluster=args.cluster, progress=bar,
                           security=cluster_security(args))
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
