"""What a local bucket's root holds besides its objects, for tests that
check nothing is left behind."""

from __future__ import annotations

import os
from pathlib import Path


def files_outside_objects(root: Path) -> list[str]:
    """Every file but the objects' and the empty per-key lock files (a fixed
    set under locks/, kept for the next commit: key_file_locks.py)."""
    found = []
    for directory, _, names in os.walk(root):
        for name in names:
            path = os.path.join(directory, name)
            relative = os.path.relpath(path, root)
            if relative.startswith("locks" + os.sep) and os.path.getsize(path) == 0:
                continue
            if not relative.startswith("objects" + os.sep):
                found.append(relative)
    return sorted(found)
