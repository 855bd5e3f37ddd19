"""The mutation tool's own rules (mutation/README.md): what it mutates, how it keys a mutant, how it scores."""

from __future__ import annotations

import tomllib
from pathlib import Path

from mutation.__main__ import _score
from mutation._mutants import Mutant, apply, enumerate_mutants, iter_all

ROOT = Path(__file__).resolve().parents[1]

SOURCE = '''"""A module docstring is never mutated."""


def limit(amount, *, strict):
    """Nor is a function's."""
    if strict and amount > 10:
        return "over"
    return None


class Handlers:
    def health(self):
        return "ok"
'''


def _mutants(tmp_path: Path, excluded: frozenset[str] = frozenset()) -> list[Mutant]:
    (tmp_path / "module.py").write_text(SOURCE, encoding="utf-8")
    return enumerate_mutants(tmp_path, "module.py", excluded)


def test_every_mutant_is_one_edit_of_its_own_source_and_still_compiles(tmp_path: Path) -> None:
    mutants = _mutants(tmp_path)
    assert {m.function for m in mutants} == {"limit", "Handlers.health"}
    assert not any("docstring" in m.original or "never mutated" in m.original for m in mutants)
    for mutant in mutants:
        mutated = apply(SOURCE, mutant)
        assert mutated != SOURCE
        compile(mutated, "module.py", "exec")
    assert any(m.original == "amount > 10" and m.operator == "compare" for m in mutants)
    assert any(m.original == "strict and amount > 10" for m in mutants)  # and -> or


def test_excluded_functions_are_not_mutated(tmp_path: Path) -> None:
    mutants = _mutants(tmp_path, frozenset({"Handlers.health"}))
    assert mutants
    assert all(m.function != "Handlers.health" for m in mutants)


def test_a_mutant_keeps_its_key_when_code_moves(tmp_path: Path) -> None:
    before = {m.key for m in _mutants(tmp_path)}
    (tmp_path / "module.py").write_text("\n\n# moved down\n" + SOURCE, encoding="utf-8")
    after = {m.key for m in enumerate_mutants(tmp_path, "module.py")}
    assert before == after


def _result(outcome: str, equivalent: str = "") -> dict[str, str]:
    return {"outcome": outcome, "equivalent": equivalent}


def test_the_score_leaves_out_reviewed_and_unimportable_mutants_and_counts_a_hung_stage_as_its_kill() -> None:
    results = [
        _result("killed-conformance"),
        _result("timed-out"),  # the conformance run hung: conformance's kill
        _result("killed-suite"),
        _result("timed-out-rest"),  # the rest hung: the suite's kill, not conformance's
        _result("survived"),
        _result("survived", equivalent="reviewed"),
        _result("not-importable"),
    ]
    score = _score(results)
    assert score["observable"] == 5
    assert score["killed_suite"] == 4
    assert score["killed_conformance"] == 2
    assert score["score_suite"] == 80.0
    assert score["score_conformance"] == 40.0


def test_every_reviewed_survivor_is_reviewed_once_with_a_reason_and_still_exists() -> None:
    config = tomllib.loads((ROOT / "mutation" / "config.toml").read_text(encoding="utf-8"))
    reviewed = tomllib.loads((ROOT / "mutation" / "equivalent.toml").read_text(encoding="utf-8"))["equivalent"]
    keys = [(e["file"], e["function"], e["original"], e["mutated"]) for e in reviewed]
    assert len(keys) == len(set(keys)), "a survivor is reviewed twice"
    assert all(e["reason"].strip() for e in reviewed)
    # A review of code that is gone is dropped (code that changes comes back for review): every key still
    # names a mutant of the configured files, excluded functions included.
    current = {m.key for m in iter_all(ROOT, config["mutate"]["files"], frozenset())}
    assert [key for key in keys if key not in current] == []
