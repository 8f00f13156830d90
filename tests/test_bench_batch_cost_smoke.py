"""The batch-cost benchmark (bench/batch_cost.py) still runs: quick mode against a real
redis-server, a row per batch size with finite, positive figures, and the line through
them. No assertion on the figures themselves: they are what the benchmark is for."""

from __future__ import annotations

import math

import pytest

from bench import batch_cost

pytestmark = pytest.mark.integration


@pytest.mark.timeout(120)
def test_batch_cost_quick_run_reports_every_batch_size():
    (table,) = batch_cost.run(quick=True)

    assert [row[0] for row in table.rows] == ["1 + 1", "80 + 8", "400 + 40"], table.render()
    for size, ms, per_change, share in table.rows:
        assert math.isfinite(ms) and ms > 0 and math.isfinite(per_change) and per_change > 0, table.render()
        # The columns agree: us a change is the batch's ms over its changes + moves, and the
        # share of one core is that batch at the churn's rate (rounded to a whole percent).
        changes = sum(int(n.replace(",", "")) for n in size.split(" + "))
        assert per_change == pytest.approx(ms * 1000 / changes), table.render()
        per_second = sum(batch_cost.CHURN_RATE) / changes
        assert share == f"{per_second * ms / 10:.0f}%", table.render()
    assert table.notes[0].startswith("A line through these:"), table.render()


def test_the_line_through_the_sizes_splits_a_batch_into_fixed_and_per_change_parts():
    assert batch_cost.fit([(2, 12.0), (88, 55.0), (440, 231.0)]) == pytest.approx((11.0, 0.5))


def test_name_counts_come_from_the_environment_half_parents_fifty_a_node(monkeypatch):
    monkeypatch.setenv("BENCH_BATCH_NAMES", "100000, 1000000")
    assert [(s["parents"], s["nodes"]) for s in batch_cost.sizes(quick=False)] == [(50_000, 1_000),
                                                                                  (500_000, 10_000)]
    monkeypatch.delenv("BENCH_BATCH_NAMES")
    assert batch_cost.sizes(quick=False) == [batch_cost.FULL]
    assert batch_cost.sizes(quick=True) == [batch_cost.QUICK]
