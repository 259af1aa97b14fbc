"""Output files of the commands: checked before the work, written whole or not at all."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import TurnFsmError


class OutputPathError(TurnFsmError):
    """An output file the command could not write."""


def check_output_file(path: str | os.PathLike[str], flag: str,
                      suffixes: tuple[str, ...] = ()) -> None:
    """Refuse, before any work, an output file that could not be written: its folder
    missing or not writable, the path a folder, the file read-only, or (``suffixes``) an
    extension the writer does not know. The message names the flag and the path."""
    p = Path(path)
    where = f"{flag} {p}"
    if suffixes and p.suffix.lower() not in suffixes:
        raise OutputPathError(f"{where}: give a file ending in {' or '.join(suffixes)}")
    if p.is_dir():
        raise OutputPathError(f"{where}: is a folder; give a file name")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.exists():
        raise OutputPathError(f"{where}: the folder {parent} does not exist")
    if not parent.is_dir():
        raise OutputPathError(f"{where}: {parent} is not a folder")
    if p.exists() and not os.access(p, os.W_OK):
        raise OutputPathError(f"{where}: the file is not writable")
    if not p.exists() and not os.access(parent, os.W_OK | os.X_OK):
        raise OutputPathError(f"{where}: the folder {parent} is not writable")


def check_output_dir(path: str | os.PathLike[str], flag: str) -> None:
    """Refuse an output folder that is a file or could not be created or written."""
    p = Path(path)
    where = f"{flag} {p}"
    if p.exists():
        if not p.is_dir():
            raise OutputPathError(f"{where}: is a file, not a folder")
        if not os.access(p, os.W_OK | os.X_OK):
            raise OutputPathError(f"{where}: the folder is not writable")
        return
    up = p.parent
    while not up.exists() and up != up.parent:
        up = up.parent
    if not up.is_dir():
        raise OutputPathError(f"{where}: {up} is not a folder")
    if not os.access(up, os.W_OK | os.X_OK):
        raise OutputPathError(f"{where}: cannot create it ({up} is not writable)")


def write_text(path: str | os.PathLike[str], text: str, flag: str) -> None:
    """Write ``text`` whole or not at all (a temporary file beside it, then renamed);
    an OSError becomes one line naming the flag and the path."""
    p = Path(path)
    tmp = p.with_name(p.name + ".partial")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(p)
    except OSError as e:
        raise OutputPathError(f"{flag} {p}: cannot write it: {e.strerror or e}") from None
    finally:
        tmp.unlink(missing_ok=True)
