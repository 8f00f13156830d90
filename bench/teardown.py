"""Ending a benchmark run: every server it started stopped, its work directory removed
(kept with BENCH_KEEP=1, to read the servers' logs afterwards)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def tear_down(processes, directory: Path | str) -> None:
    """Stop each of `processes` that was started (None: not yet), in order, then remove
    `directory` unless BENCH_KEEP is set."""
    for process in processes:
        if process is not None:
            process.stop()
    if not os.environ.get("BENCH_KEEP"):
        shutil.rmtree(directory, ignore_errors=True)
