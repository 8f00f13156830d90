"""The DNS and node-move benchmarks run end to end in quick mode and print their tables.

Only that they work: exit code 0, the expected tables and rows, figures that are numbers
above zero. No time or speed is asserted; the machine running the suite decides those.
"""

from __future__ import annotations

import re
import os
import shutil
import subprocess
import sys

import pytest

from mountdns.testing.servers import REPO

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]

TOOLS = ("dnsperf", "wrk", "pdns_server", "redis-server")


def tables(markdown: str) -> dict[str, list[list[str]]]:
    """Title -> rows (cells as text, header and separator left out) of every ### table."""
    found: dict[str, list[list[str]]] = {}
    title = None
    for line in markdown.splitlines():
        if line.startswith("### "):
            title = line[4:].strip()
            found[title] = []
        elif title and line.startswith("|") and not line.startswith("|---"):
            found[title].append([cell.strip() for cell in line.strip("|").split("|")])
    return {t: rows[1:] for t, rows in found.items()}  # rows[0] is the header


def table(all_tables: dict, title_start: str) -> list[list[str]]:
    matches = [rows for title, rows in all_tables.items() if title.startswith(title_start)]
    assert len(matches) == 1, f"expected one table titled {title_start!r}, got {list(all_tables)}"
    return matches[0]


def row(rows: list[list[str]], first_cell_start: str) -> list[str]:
    matches = [r for r in rows if r[0].startswith(first_cell_start)]
    assert matches, f"no row starting {first_cell_start!r} in {rows}"
    return matches[0]


def number(cell: str) -> float:
    assert re.fullmatch(r"-?[0-9][0-9,]*(\.[0-9]+)?", cell), f"not a number: {cell!r}"
    return float(cell.replace(",", ""))


def positive(cell: str) -> bool:
    return number(cell) > 0


@pytest.fixture(scope="module")
def quick_page(tmp_path_factory) -> tuple[str, str]:
    """(stdout, the Markdown page written) of one quick run of two suites."""
    missing = [tool for tool in TOOLS if not shutil.which(tool) and not shutil.which(f"/usr/sbin/{tool}")]
    # scripts/bootstrap installs every one of them: a missing tool is a broken setup, not a skip.
    assert not missing, f"benchmark tools not installed (run scripts/bootstrap): {', '.join(missing)}"
    page = tmp_path_factory.mktemp("bench") / "benchmarks.md"
    done = subprocess.run([sys.executable, "-m", "bench.run", "--quick", "--only", "dns", "--only", "node_move",
                           "--output", str(page)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"bench.run failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout, page.read_text()


@pytest.fixture(scope="module")
def quick_run(quick_page) -> dict:
    return tables(quick_page[0])


def test_page_has_a_section_per_suite_with_date_machine_and_command(quick_page):
    _, page = quick_page
    for suite in ("dns", "node_move"):
        start, end = page.index(f"<!-- bench:{suite} -->"), page.index(f"<!-- /bench:{suite} -->")
        section = page[start:end]
        assert f"## {suite}\n" in section
        assert "- date: " in section and "(quick run)" in section
        assert f"- machine: {os.cpu_count()} cores" in section
        assert "- command: `scripts/bench --quick --only dns --only node_move --output " in section
        assert "| " in section  # the tables themselves


def test_dns_table_compares_the_three_setups(quick_run):
    rows = table(quick_run, "DNS queries: pdns bind reference vs pdns + mountdns")
    for setup in ("(a) pdns 4.7 + bind backend", "(b) pdns + mountdns, caches off", "(c) pdns + mountdns, shipped"):
        setup_row = row(rows, setup)
        assert all(positive(cell) for cell in setup_row[1:5]), setup_row
        assert setup_row[5].endswith("%") and positive(setup_row[5][:-1]), setup_row


def test_sweep_table_lists_backend_sizes(quick_run):
    rows = table(quick_run, "(b) sweep")
    assert len(rows) >= 2
    assert all(positive(r[2]) for r in rows), rows


def test_backend_table_has_lookups_and_redis_round_trips(quick_run):
    rows = table(quick_run, "mountdns-backend alone")
    for measure in ("lookups/s", "avg latency ms", "p99 latency ms", "EVALSHA calls per lookup",
                    "Redis round trips per lookup"):
        assert positive(row(rows, measure)[1])


def test_lookups_per_query_for_each_kind_of_name(quick_run):
    rows = table(quick_run, "(b) backend lookups per DNS query")
    for kind in ("parent", "child", "missing"):
        kind_row = row(rows, kind)
        assert all(positive(cell) for cell in kind_row[1:5]), kind_row


def test_cpu_table_names_the_processes(quick_run):
    rows = table(quick_run, "(b) where the CPU goes")
    assert {"pdns_server", "mountdns-backend", "redis-server"} <= {r[0] for r in rows}


def test_node_move_table_compares_mountdns_with_the_seed(quick_run):
    rows = table(quick_run, "Node move")
    for approach in ("mountdns", "seed"):
        approach_row = row(rows, approach)
        assert all(positive(cell) for cell in approach_row[1:4]), approach_row
