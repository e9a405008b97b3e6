"""The `ratings` stage and the report's listening-test section: no ratings yet, then a test's own ratings."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from test_listen import SCORES, make_test, rate

from pipeline.ratings import RESULT_FILE, analyse
from vc.config import Params
from vc.listen.protocol import load_definition
from vc.listen.store import RatingStore, export_ratings
from vc.report.ratings import ratings_section


@pytest.fixture
def params() -> Params:
    return Params.model_validate({"evaluate": {"bootstrap": 200}})


def test_without_a_test_or_ratings_the_report_says_so(tmp_path: Path, params: Params) -> None:
    result, analysis = analyse(tmp_path / "listening-test", params)
    assert (
        result["status"] == "none" and "no listening test built yet" in result["reason"] and analysis is None
    )
    folder = make_test(tmp_path)
    result, _ = analyse(folder.root, params)
    assert result["status"] == "none" and "no ratings exported yet" in result["reason"]
    text = "\n".join(ratings_section(json.loads(json.dumps(result)), "95% CI"))
    assert "## Listening test" in text and "No listening-test ratings yet: no ratings exported yet" in text
    assert "the ratings stage did not run" in "\n".join(ratings_section(None, "95% CI"))


def test_exported_ratings_reach_the_report_with_intervals_and_verdicts(
    tmp_path: Path, params: Params
) -> None:
    folder = make_test(tmp_path)
    definition = load_definition(folder.definition)
    tokens = rate(folder, SCORES, natural_low=1)
    export_ratings(RatingStore(folder.database), definition, folder=folder.exports)
    result, analysis = analyse(folder.root, params)
    assert result["status"] == "rated" and analysis is not None and result["n_used"] == analysis.n_used > 0
    text = "\n".join(ratings_section(json.loads(json.dumps(result)), "95% CI"))  # as the report reads it
    rows = {line.split(" | ")[0].strip("| "): line for line in text.splitlines() if line.startswith("| ")}
    assert rows["expA"].count("[") == 2  # MOS and similarity, each with its interval
    assert "| expA | mean-var | better by" in text  # paired, in the objective metrics' wording
    assert "1 rater(s) scored the hidden natural reference below 3" in text
    assert tokens[0] not in text  # tokens are credentials: raters appear by a short hash only
    assert f"{result['n_used']} ratings used from 1 export(s)" in text


def test_the_stage_writes_its_result_and_never_touches_the_ratings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline import ratings

    folder = make_test(tmp_path)
    definition = load_definition(folder.definition)
    rate(folder, SCORES, n_raters=2)
    export = export_ratings(RatingStore(folder.database), definition, folder=folder.exports)
    before = export.read_bytes()
    logged = []
    monkeypatch.setattr(ratings, "_log", lambda params, path, analysis, out: logged.append(analysis.n_used))
    params_file = tmp_path / "params.yaml"
    params_file.write_text("evaluate:\n  bootstrap: 100\n")
    ratings.main(
        argparse.Namespace(listening=str(folder.root), out=str(tmp_path / "o"), params=str(params_file))
    )
    result = json.loads((tmp_path / "o" / RESULT_FILE).read_text())
    assert result["status"] == "rated" and logged == [result["n_used"]]
    assert export.read_bytes() == before and sorted(p.name for p in folder.exports.iterdir()) == [export.name]
