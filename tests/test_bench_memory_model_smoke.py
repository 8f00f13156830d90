"""The memory model (bench/memory_model.py) still runs: quick mode against a real
redis-server, every phase reported with finite, positive figures, the idle lines named.
No assertion on the figures themselves: they are what the benchmark is for."""

from __future__ import annotations

import math

import pytest

from bench import memory_model

pytestmark = pytest.mark.integration


@pytest.mark.timeout(120)
def test_memory_model_quick_run_reports_every_phase():
    (table,) = memory_model.run(quick=True)

    phases = [row[0] for row in table.rows]
    assert phases == ["list: the cache filled", "first batch: rules, diff, write",
                      "status writer: every Container looked at", "resync: re-list",
                      "resync: full batch, then a batch a garbage round (read Redis, diff, collect the stale names)",
                      "resync: status writer's recheck"], table.render()
    for _, held, peak in table.rows:
        assert math.isfinite(held) and math.isfinite(peak) and 0 < held <= peak, table.render()
    assert any(note.startswith("idle, sync/") for note in table.notes), table.render()
