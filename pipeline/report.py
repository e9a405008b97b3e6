"""Stage `report`: regenerate reports/ (Markdown, figures, DVC metrics and plots) from the evaluations."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from pipeline.common import read_params, run
from pipeline.diagnosis import RESULTS as WALK_FILES
from pipeline.ratings import RESULT_FILE
from vc.cost_table import cost_markdown, load_costs, run_costs
from vc.evaluation.perceptual.reference import ReferenceMaterial
from vc.evaluation.recipe import recipe_markdown
from vc.evaluation.registry import summary_line
from vc.layout import perceptual_dir
from vc.report.build import build_report
from vc.report.results import load_results
from vc.vocoders.store import MANIFEST_FILE

log = logging.getLogger("pipeline.report")


def _vocoder_manifest(folder: Path) -> dict | None:
    """The `vocoder` stage's manifest, or None when that stage has not run (a report without mel rows)."""
    path = folder / MANIFEST_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def _cost_section(explicit: str | None) -> str:
    """The report's cost table: of the folder given, else of the stages of this DVC run (the workspace's,
    or, in one of DVC's experiment copies, that experiment's own); none outside DVC."""
    if explicit:
        return cost_markdown(load_costs(explicit), heading="##")
    found = run_costs()
    if found is None:
        log.info("no cost table: not run by DVC, and no --costs")
        return ""
    folder, experiment = found
    return cost_markdown(load_costs(folder), heading="##", experiment=experiment)


def main(args: argparse.Namespace) -> None:
    params = read_params(args.params)
    names = list(params.experiments)
    results = load_results(
        args.experiments, args.baselines, names, list(params.seeds), list(params.baselines)
    )
    metrics = build_report(
        args.out,
        results,
        title=params.report.title,
        recipe=recipe_markdown(params.features, params.evaluate, params.data.sample_rate),
        corpus_summary=json.loads((Path(args.corpus) / "summary.json").read_text()),
        features_summary=json.loads((Path(args.features) / "summary.json").read_text()),
        experiments={n: params.experiment(n) for n in names},
        evaluate=params.evaluate,
        convert=params.convert,
        reference=params.report.reference,
        perceptual=ReferenceMaterial.load(perceptual_dir(args.references)),
        vocoder=_vocoder_manifest(Path(args.vocoder)),
        cost=_cost_section(args.costs),
        ratings=json.loads((Path(args.ratings) / RESULT_FILE).read_text()),
        diagnosis=json.loads((Path(args.diagnosis) / WALK_FILES["diagnosis"]).read_text()),
        contrast=json.loads((Path(args.contrast) / WALK_FILES["contrast"]).read_text()),
    )
    for name, m in metrics.items():
        log.info("%-24s %s", name, summary_line(m))
    log.info("report written to %s", Path(args.out) / "report.md")


def build_parser() -> argparse.ArgumentParser:
    """The stage's arguments; dvc.yaml passes every path."""
    parser = argparse.ArgumentParser(description=__doc__)
    for name in ("experiments", "baselines", "references", "corpus", "features", "out"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--vocoder", required=True, help="the `vocoder` stage's output")
    parser.add_argument("--ratings", required=True, help="the `ratings` stage's output")
    parser.add_argument("--diagnosis", required=True, help="the `diagnosis` stage's output")
    parser.add_argument("--contrast", required=True, help="the `contrast` stage's output")
    parser.add_argument(
        "--costs",
        help="a folder of cost files (read, never a dependency: see vc.cost); default: those of the stages "
        "of this DVC run (the workspace's costs/, or costs/exps/<experiment>/ in an experiment's copy)",
    )
    return parser


if __name__ == "__main__":
    run(main, build_parser())
