"""The table writer: one cell per (client, operation), a failure anywhere in a cell shows, the README splice."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from compat import results

NODE, JAVA = results.CLIENTS[0], results.CLIENTS[1]


def test_a_cell_is_failed_if_any_of_its_tests_failed() -> None:
    cells = [
        {"client": NODE, "operation": "refund", "test": "a", "outcome": "passed"},
        {"client": NODE, "operation": "refund", "test": "b", "outcome": "failed"},
        {"client": NODE, "operation": "get", "test": "c", "outcome": "passed"},
        {"client": JAVA, "operation": "get", "test": "d", "outcome": "skipped"},
    ]
    assert results.summarise(cells) == {NODE: {"refund": "failed", "get": "passed"}, JAVA: {"get": "skipped"}}


def test_write_renders_rows_in_client_order_and_marks_missing_cells(tmp_path: Path) -> None:
    cells = [
        {"client": JAVA, "operation": "create", "test": "j", "outcome": "passed"},
        {"client": NODE, "operation": "create", "test": "n", "outcome": "failed"},
    ]
    data = results.write(cells, folder=tmp_path)
    assert json.loads((tmp_path / "results.json").read_text(encoding="utf-8")) == data
    rows = [
        line for line in (tmp_path / "results.md").read_text(encoding="utf-8").splitlines() if line.startswith("| ")
    ]
    assert rows[1].startswith(f"| {NODE} | ❌ | — |")
    assert rows[2].startswith(f"| {JAVA} | ✅ | — |")
    assert "2 tests (1 passed, 1 failed, 0 skipped)" in (tmp_path / "results.md").read_text(encoding="utf-8")


def test_splice_replaces_only_the_marked_part() -> None:
    text = f"intro\n{results.BEGIN}\nold table\n{results.END}\noutro\n"
    assert results.splice(text, "new\n") == f"intro\n{results.BEGIN}\nnew\n{results.END}\noutro\n"
    with pytest.raises(ValueError, match="compat-table"):
        results.splice("no markers", "new\n")
