"""The pod memory benchmark (bench/pod_memory.py) still runs: quick mode, no assertion on
memory or speed (a loaded machine must not fail the suite), only that it starts its real
processes, publishes every labelled Pod, keeps them through two resyncs and reports
numbers."""

from __future__ import annotations

import math

import pytest

from bench import pod_memory

pytestmark = pytest.mark.integration


@pytest.mark.timeout(120)
def test_pod_memory_quick_run_reports_numeric_figures_and_every_name_written():
    (table,) = pod_memory.run(quick=True)

    rows = {row[0]: row for row in table.rows}
    for figure in ("sync RSS with nothing to publish (MiB)", "sync RSS once every name is written (MiB)",
                   "sync memory per published name (bytes)",
                   "sync peak memory per published name, resyncs included (bytes)"):
        value = rows[figure][1]
        assert isinstance(value, (int, float)) and math.isfinite(value), table.render()
    assert rows["keys in Redis"][3] == "pass", table.render()  # the labelled Pods all published
    assert rows["keys in Redis after the resyncs"][3] == "pass", table.render()  # and still are
    assert "1,000 published" in table.title
