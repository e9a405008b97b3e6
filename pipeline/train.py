"""Stage `train@<experiment>-<seed>`: train one experiment with one seed, resuming from its checkpoints;
record it in MLflow.

Outputs in ``--out`` (``models/<experiment>/seed-<seed>/``): ``model/`` (weights, config, statistics: all
conversion needs), ``model-best/`` (the same with the generator of the lowest validation MCD; without a
validation curve, the last generator again), ``losses.tsv`` (DVC plots) and ``train.json`` (the MLflow run
id, wall time, final losses, the validation curve and the best iteration).

The validation curve (``train.validate_every``): :class:`vc.evaluation.validation.ValidationScorer` on the
validation stage's analyses (``--validation``), handed to the trainer as a callback; logged to MLflow as
``val/mcd_db`` with ``val/mcd_db_mean_var`` and ``val/mcd_db_source`` at the same steps. Log-mel models
have no mel-cepstrum to score and train without one.

Checkpoints go to ``--checkpoints`` (``checkpoints/<experiment>/seed-<seed>/``), outside DVC's outputs:
an interrupted stage resumes from them, and a DVC experiment's temporary workspace (which lacks them)
trains from the start, since DVC only re-runs this stage when its params, code or data changed.

Multi-process training: ``torchrun --nproc_per_node N -m pipeline.train ...``, or set
``VC_NPROC_PER_NODE=N`` and this stage starts torchrun itself (so ``dvc repro`` trains on N GPUs).
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.codedeps import ROOT
from pipeline.common import read_params, run, stop_with_parent, without_timings, write_losses_tsv
from pipeline.tracked import Finished, computed, final_losses, run_resumable
from pipeline.tracked import fingerprint as run_fingerprint
from vc import cost
from vc.config import ExperimentConfig, Params
from vc.configlib import flatten, to_dict
from vc.errors import InputError
from vc.evaluation.validation import ValidationScorer
from vc.features.extract import load_training_matrices
from vc.features.stats import FeatureStats
from vc.io import write_json
from vc.stargan.data import FeatureBank
from vc.stargan.store import save_model
from vc.stargan.trainer import Trainer, TrainState
from vc.tracking import RunTracker
from vc.training.checkpoint import latest_checkpoint
from vc.training.distributed import DistContext

log = logging.getLogger("pipeline.train")

CODE_ROOT = ROOT
#: Beside the checkpoints: the MLflow run they belong to and their fingerprint (a resumed run continues it).
RUN_MARKER = "mlflow_run.json"


def fingerprint(
    exp: ExperimentConfig, stats_path: Path, index_path: Path, code_root: Path = CODE_ROOT
) -> str:
    """What training depends on (:func:`pipeline.tracked.fingerprint`): the experiment's math (seed
    included), the statistics and the feature index it trains on, and the code of this stage."""
    header = {**to_dict(exp), "train": computed(exp.train)}
    data = (stats_path.read_bytes(), index_path.read_bytes())
    return run_fingerprint("pipeline.train", header, data, code_root)


def mlflow_params(params: Params, exp: ExperimentConfig) -> dict[str, object]:
    """Every resolved param under stable names (the same keys for every experiment)."""
    corpus = to_dict(params.corpus)
    corpus["embedded"]["sentences"] = len(params.corpus.embedded.sentences)
    return {
        "experiment": exp.name,
        "preset": params.preset,
        **flatten({"model": to_dict(exp.model), "train": to_dict(exp.train)}),
        **flatten(
            {
                "data": to_dict(params.data),
                "corpus": corpus,
                "features": to_dict(params.features),
                "stats": to_dict(params.stats),
            }
        ),
    }


@dataclass
class TrainingJob:
    """One experiment and seed as a :class:`pipeline.tracked.TrackedJob`."""

    params: Params
    exp: ExperimentConfig
    args: argparse.Namespace
    loop: Trainer | None = field(default=None, init=False)

    @property
    def name(self) -> str:
        return f"{self.exp.name}/seed-{self.exp.train.seed}"

    @property
    def stats_path(self) -> Path:
        """The statistics of the experiment's features (saved with the model)."""
        return Path(self.args.mel_stats if self.exp.model.features == "mel" else self.args.stats)

    def validator(self, stats: FeatureStats) -> ValidationScorer | None:
        """The validation curve's scorer, or None (off, or a log-mel model)."""
        train = self.exp.train
        if not train.validate_every or self.exp.model.features != "world":
            return None
        try:
            return ValidationScorer.load(
                self.args.validation,
                self.args.features,
                stats,
                self.params.features,
                self.params.evaluate,
                sentences=train.validation_sentences,
            )
        except ValueError as err:
            raise InputError(
                f"train.validate_every={train.validate_every} needs validation sentences shared by a "
                f"speaker pair (corpus.split.validation_utterances; 0 turns the curve off): {err}"
            ) from None

    def make_loop(self, dist: DistContext) -> Trainer:
        features = Path(self.args.features)
        matrices = load_training_matrices(features, "train", self.exp.model.features)
        stats = FeatureStats.load(self.stats_path)
        self.loop = Trainer(
            self.exp,
            FeatureBank.from_matrices(matrices, stats, self.exp.train.crop_frames),
            Path(self.args.checkpoints),
            dist=dist,
            fingerprint=fingerprint(self.exp, self.stats_path, features / "index.csv"),
            validator=self.validator(stats) if dist.is_main else None,
        )
        return self.loop

    def start_run(self) -> RunTracker:
        """The stage's MLflow run. After an interruption (a requeued SLURM job, a second `dvc repro`), the
        interrupted run itself: its id is kept beside the checkpoints with their fingerprint and reopened
        while a checkpoint of that fingerprint exists, so one run holds the whole training."""
        checkpoints = Path(self.args.checkpoints)
        marker = checkpoints / RUN_MARKER
        current = fingerprint(self.exp, self.stats_path, Path(self.args.features) / "index.csv")
        if marker.is_file() and latest_checkpoint(checkpoints) is not None:
            saved = json.loads(marker.read_text(encoding="utf-8"))
            if saved.get("fingerprint") == current:
                tracker = RunTracker.resume(saved["run_id"])
                tracker._start_system_metrics()
                log.info("%s: continuing MLflow run %s", self.name, tracker.run_id)
                return tracker
        tracker = RunTracker.for_stage(
            self.params,
            "train",
            self.name,
            self.args.params,
            kind="experiment",
            system=self.exp.name,
            tags={"vc.seed": str(self.exp.train.seed)},
            run_params=mlflow_params(self.params, self.exp),
        )
        checkpoints.mkdir(parents=True, exist_ok=True)
        write_json(marker, {"run_id": tracker.run_id, "fingerprint": current})
        return tracker

    def export(self, state: TrainState, tracker: RunTracker, finished: Finished) -> None:
        """The stage's outputs (model folders, loss curves, summary), also logged to the MLflow run."""
        out, exp, loop = Path(self.args.out), self.exp, self.loop
        assert loop is not None, "export after make_loop"
        # Nothing of this run but its results goes into the model folders (no run id, no timing): a re-run
        # that reproduces the weights leaves them byte-identical, so conversion and evaluation stay cached.
        info = {"iterations": state.step}
        stats = FeatureStats.load(self.stats_path)
        save_model(out / "model", state.generator, exp, self.params.features, stats, info=info)
        best = loop.best_generator()  # without a validation curve, model-best/ is the last generator
        best_info = {**info, "iterations": loop.best["step"], "selected_by": loop.select} if best else info
        save_model(
            out / "model-best", best or state.generator, exp, self.params.features, stats, info=best_info
        )
        write_losses_tsv(out / "losses.tsv", state.history)
        validation = {
            "every": exp.train.validate_every if loop.validation else 0,
            "sentences_per_pair": exp.train.validation_sentences,
            "curve": [without_timings(row, digits=5) for row in loop.validation],
            "best_step": loop.best["step"] if loop.best else None,
            "best": round(loop.best["score"], 5) if loop.best else None,
        }
        summary = {
            "experiment": exp.name,
            "seed": exp.train.seed,
            "mlflow_run_id": tracker.run_id,
            "iterations": state.step,  # wall time and s/iteration: MLflow and costs/ (vc cost), not here
            "processes": finished.processes,
            "final": final_losses(state.history),
            "validation": validation,
        }
        write_json(out / "train.json", summary)
        seconds = sum(row["time/validation_sec"] for row in loop.validation)
        if loop.validation:
            cost.work("validation", seconds, len(loop.validation), "validation")
            tracker.set_tags({"vc.best_iteration": loop.best["step"]})
        tracker.log_metrics(
            {"train/wall_seconds": finished.wall_seconds, "train/validation_seconds": seconds}
        )
        tracker.log_artifacts(out / "model", "model")
        if best is not None:
            tracker.log_artifacts(out / "model-best", "model-best")
        tracker.log_artifact(out / "losses.tsv")


def main(args: argparse.Namespace) -> TrainState:
    """Train (or resume) the experiment; return the final state (on every rank)."""
    stop_with_parent()
    params = read_params(args.params)
    exp = params.experiment(args.experiment, args.seed)
    return run_resumable("pipeline.train", TrainingJob(params, exp, args))


def build_parser() -> argparse.ArgumentParser:
    """The stage's arguments; dvc.yaml passes every path."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--experiment", required=True, help="a name under `experiments:` in params.yaml")
    parser.add_argument(
        "--seed", type=int, default=None, help="one of `seeds` in params.yaml (default: the first)"
    )
    parser.add_argument("--features", required=True, help="the features stage's folder")
    parser.add_argument("--stats", required=True, help="statistics of WORLD-feature models")
    parser.add_argument("--mel-stats", required=True, help="statistics of log-mel models")
    parser.add_argument(
        "--validation", required=True, help="the validation stage's folder (read when the curve is on)"
    )
    parser.add_argument("--out", required=True, help="this run's output folder")
    parser.add_argument("--checkpoints", required=True, help="this run's checkpoint folder")
    return parser


if __name__ == "__main__":
    run(main, build_parser())
