"""What every section of the run is handed, and what it hands back to bench.cli."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Generic, TypeVar

from bench import procs

RowT = TypeVar("RowT")


class Section(Generic[RowT]):
    """One section of the run: its measured rows, notes for the report, and the
    servers or variants that should have run but could not (a failed --check).

    A section sets up the state of its own in setup(), which the constructor
    calls last, so that it need not repeat what every section is given.
    """

    def __init__(
        self,
        args: argparse.Namespace,
        processes: procs.Processes,
        data_dir: Path,
        options: list[tuple[str, Any]],
    ) -> None:
        self.args, self.processes, self.data_dir = args, processes, data_dir
        self.options = options  # the gateway's channel options, for its servers and clients
        self.rows: list[RowT] = []
        self.notes: list[str] = []
        self.failed: list[str] = []
        self.setup()

    def setup(self) -> None:
        """Set up what this section keeps besides the above (nothing by default)."""
