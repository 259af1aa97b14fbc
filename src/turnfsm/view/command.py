"""The ``turnfsm view`` command (the CLI parses, this runs)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..audio.envelope import AUDIO_AUTO_SECONDS
from ..errors import TurnFsmError
from ..messages import one_line


def build_page(args: argparse.Namespace, defaults: dict[str, Any] | None = None) -> str:
    """The page's HTML for ``args.session`` (``defaults``: the options' defaults, to refuse
    a WAV's run options for a trace)."""
    from .page import diagram_svg, render_page
    from .run import run_session
    from .session import page_data
    run = run_session(args, defaults)
    if run.audio is not None and run.audio.left_out:
        run.notes.append(f"audio left out (longer than {AUDIO_AUTO_SECONDS / 60:g} min; "
                         "--audio on puts it in)")
    data = page_data(run)
    return render_page(data, diagram_svg(run.chart))


def view_command(args: argparse.Namespace, defaults: dict[str, Any] | None = None) -> int:
    """Run ``view``; return the exit code."""
    from ..outfiles import OutputPathError, check_output_file, write_text
    try:
        if args.output:
            check_output_file(args.output, "-o", (".html", ".htm"))
        page = build_page(args, defaults)
        if args.output:
            write_text(args.output, page, "-o")
            print(f"wrote {args.output} ({len(page.encode('utf-8')) / 1e6:.2f} MB)")
        elif not args.serve:
            out = Path(args.session).with_suffix(".html").name
            write_text(out, page, "-o")
            print(f"wrote {out} ({len(page.encode('utf-8')) / 1e6:.2f} MB)")
    except (TurnFsmError, OutputPathError) as e:
        print(f"turnfsm view: {one_line(e)}", file=sys.stderr)
        return 2
    if args.serve:
        return serve(page, args.port)
    return 0


def serve(page: str, port: int) -> int:
    """Serve the page on 127.0.0.1 until interrupted (opens nothing)."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    body = page.encode("utf-8")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path not in ("/", "/index.html"):
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass
    try:
        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    except OSError as e:
        print(f"turnfsm view: --port {port}: cannot listen: {e.strerror or e}", file=sys.stderr)
        return 2
    print(f"serving http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
