"""The benchmark page: each suite's section is replaced in place, the others kept."""

from bench.report import PAGE_TITLE, Table, cpu_speed, replace_section, section_header, sections


def test_first_section_starts_the_page_with_its_title():
    page = replace_section("", "dns", "## dns\nfigures")
    assert page == PAGE_TITLE + "\n<!-- bench:dns -->\n## dns\nfigures\n<!-- /bench:dns -->\n"


def test_rerun_of_one_suite_replaces_only_its_section():
    page = replace_section(replace_section("", "dns", "old dns"), "node_move", "moves")
    page = replace_section(page, "dns", "new dns")
    assert "old dns" not in page
    assert page.index("new dns") < page.index("moves")
    assert page.count("<!-- bench:dns -->") == 1 and page.count("<!-- bench:node_move -->") == 1


def test_section_text_with_backslashes_is_kept_verbatim():
    page = replace_section(replace_section("", "dns", "a"), "dns", r"C:\new \1 text")
    assert r"C:\new \1 text" in page


def test_table_renders_numbers_with_separators():
    table = Table("t", ["a", "b"])
    table.add(12345, 1.234)
    assert "| 12,345 | 1.23 |" in table.render()


def test_header_says_how_fast_the_cores_were():
    header = section_header("dns", ["--only", "dns"])
    line = next(line for line in header.splitlines() if line.startswith("- CPU speed before:"))
    seconds = float(line.split(" took ")[1].removesuffix(" s"))
    assert seconds > 0


def test_cpu_speed_times_the_loop_with_the_clock_it_is_given():
    ticks = iter([10.0, 12.5])
    assert cpu_speed(loops=1000, clock=lambda: next(ticks)) == 2.5


def test_tables_naming_a_section_of_their_own_go_there_with_its_heading():
    small, big, other = Table("100k", ["a"]), Table("1M", ["a"]), Table("notes", ["a"])
    big.section, big.heading = "scale_1m", "scale (1,000,000 Containers)"

    grouped = sections("scale", [small, big, other])

    assert grouped == {"scale": ("", [small, other]), "scale_1m": ("scale (1,000,000 Containers)", [big])}
