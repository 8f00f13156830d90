"""The scale benchmark (bench/scale.py) still runs: quick mode, tiny sizes, batches still
split into several write calls. No assertion on speed or memory (a loaded build machine
must not fail the suite); what is checked is that it finishes, its figures are there,
and no lookup during the writes saw an incomplete record, whether asked of Redis or through
PowerDNS."""

from __future__ import annotations

import math

import pytest

from bench import scale

pytestmark = pytest.mark.integration


@pytest.mark.timeout(120)
def test_scale_quick_run_reports_its_figures_and_no_incomplete_answer():
    tables = scale.run(quick=True)

    assert len(tables) == 1
    rows = {row[0]: row for row in tables[0].rows}
    assert rows["initial sync, process start to exit (s)"][1] > 0
    assert rows["initial sync: peak RSS per Container (bytes)"][1] > 0
    assert rows["Redis used_memory per name (bytes)"][1] > 0
    # The write calls' SLOWLOG (the benchmark's own log) is read and left out of the figure above
    # (how many calls it holds depends on their speed, so only that the figure is a number).
    assert math.isfinite(rows["  not counted: the SLOWLOG of the write calls this benchmark keeps (bytes per name)"][1])
    # The floor copies every record key the initial sync wrote: one per Container.
    floor = [row for name, row in rows.items()
             if name.startswith(f"  Redis's floor: the {scale.QUICK_SIZE:,} record keys ")]
    assert len(floor) == 1 and floor[0][1] > 0, tables[0].render()
    completeness = [row for name, row in rows.items() if name.endswith("incomplete answers")]
    assert len(completeness) == 3  # chunked initial sync, one-call initial sync, garbage collection
    assert all(row[3] == "pass" for row in completeness), tables[0].render()
    through_pdns = [row for name, row in rows.items() if "through PowerDNS" in name and row[2]]
    assert len(through_pdns) == 4  # wrong answers and the check after, for the initial sync and GC
    assert all(row[3] == "pass" for row in through_pdns), tables[0].render()
    queries = [row[1] for name, row in rows.items() if name.endswith("right / not there (yet or any more) / wrong")]
    assert all(int(figure.split(":")[0].replace(",", "")) > 0 for figure in queries), queries
