"""Checks of the paths a user names for amlab to write (a database, a report folder, an
export file), made before anything is written, so that a wrong path is one sentence."""

from __future__ import annotations

import os
from pathlib import Path

from amlab.errors import AmlabError


def check_writable(path: Path, *, folder: bool) -> None:
    """Raise unless `path` can be created or written as a folder (`folder`) or a file:
    nothing of the other kind is there, no file stands where a parent folder should be, and
    the nearest existing parent folder is writable. Creates nothing."""
    if folder and path.exists() and not path.is_dir():
        raise AmlabError(f"{path}: is a file; give the name of a folder to write into.")
    if not folder and path.is_dir():
        raise AmlabError(f"{path}: is a folder; give a file name, e.g. "
                         f"{path / ('amlab' + (path.suffix or '.db'))}.")
    parent = path if folder else path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise AmlabError(f"{path}: cannot be created because {parent} is a file, not a folder.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise AmlabError(f"{path}: cannot be written because the folder {parent} is not "
                         f"writable; choose a path in a folder you can write.")
