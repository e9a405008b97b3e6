"""Stage `train@<experiment>-<seed>`: train one experiment with one seed, resuming from its checkpoints;
record it in MLflow.

Outputs in ``models/<experiment>/seed-<seed>/``: ``model/`` (weights, config, statistics: all conversion
needs), ``losses.tsv`` (DVC plots) and ``train.json`` (the MLflow run id, wall time, final losses).
Checkpoints go to ``checkpoints/<experiment>/seed-<seed>/``, outside DVC's outputs: an interrupted stage
resumes from them, and a DVC experiment's temporary workspace (which lacks them) trains from the start,
since DVC only re-runs this stage when its params, code or data changed.

Multi-process training: ``torchrun --nproc_per_node N -m pipeline.train --experiment NAME``, or set
``VC_NPROC_PER_NODE=N`` and this stage starts torchrun itself (so ``dvc repro`` trains on N GPUs).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import time
from pathlib import Path

import vc
from pipeline.codedeps import hash_code
from pipeline.common import (
    read_params,
    relaunch_with_torchrun_if_asked,
    repo_root,
    run,
    run_dir,
    stop_with_parent,
    write_losses_tsv,
)
from pipeline.tracked import fit_tracked
from vc.config import ExperimentConfig, Params
from vc.configlib import flatten, to_dict
from vc.features.extract import load_training_matrices
from vc.features.stats import FeatureStats
from vc.io import write_json
from vc.model_store import save_model
from vc.tracking import RunTracker, git_commit, group_tag
from vc.training.data import FeatureBank
from vc.training.distributed import DistContext
from vc.training.trainer import Trainer, TrainState

log = logging.getLogger("pipeline.train")

# Settings that change how a run is executed or logged, not what it computes: a checkpoint stays valid.
OPERATIONAL = ("log_every", "checkpoint_every", "keep_checkpoints", "device", "num_threads")
CODE_ROOT = Path(__file__).resolve().parents[1]


def fingerprint(
    exp: ExperimentConfig, stats_path: Path, index_path: Path, code_root: Path = CODE_ROOT
) -> str:
    """Hash of what training depends on: the experiment's math (seed included), the data it sees and the
    code this stage runs (every project module it imports, :func:`pipeline.codedeps.import_closure`).

    A checkpoint resumes only when its fingerprint equals the current one, so `dvc repro` after an
    interruption continues, and `dvc repro` after a change of params, data or code trains from step 0.
    """
    cfg = to_dict(exp)
    for key in OPERATIONAL:
        cfg["train"].pop(key)
    h = hashlib.sha256(json.dumps(cfg, sort_keys=True).encode())
    h.update(stats_path.read_bytes())
    h.update(index_path.read_bytes())
    hash_code(h, "pipeline.train", code_root)
    return h.hexdigest()


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


def start_run(params: Params, exp: ExperimentConfig, params_path: Path) -> RunTracker:
    """The experiment's MLflow run, under this `dvc repro`'s group, with every resolved param."""
    commit = git_commit()
    tags = {
        "vc.experiment": exp.name,
        "vc.seed": str(exp.train.seed),
        "vc.stage": "train",
        "mlflow.source.git.commit": commit or "",
        "vc.version": vc.__version__,
    }
    return RunTracker.start(
        params.tracking.experiment,
        f"{exp.name}/seed-{exp.train.seed}",
        tags=tags,
        params=mlflow_params(params, exp),
        root=repo_root(),
        parent_group=group_tag(params_path.read_text(), commit),
    )


def export(
    out: Path,
    state: TrainState,
    exp: ExperimentConfig,
    params: Params,
    stats: FeatureStats,
    tracker: RunTracker,
    wall: float,
    processes: int,
) -> None:
    """The stage's outputs (model folder, loss curves, summary), also logged to the MLflow run."""
    final = state.history[-1] if state.history else {}
    save_model(
        out / "model",
        state.generator,
        exp,
        params.features,
        stats,
        info={"iterations": state.step, "mlflow_run_id": tracker.run_id},
    )
    write_losses_tsv(out / "losses.tsv", state.history)
    write_json(
        out / "train.json",
        {
            "experiment": exp.name,
            "seed": exp.train.seed,
            "mlflow_run_id": tracker.run_id,
            "iterations": state.step,
            "wall_seconds": round(wall, 1),
            "processes": processes,
            "final": {k: round(v, 5) for k, v in final.items() if k != "step"},
        },
    )
    tracker.log_metrics({"train/wall_seconds": wall})
    tracker.log_artifacts(out / "model", "model")
    tracker.log_artifact(out / "losses.tsv")


def main(args: argparse.Namespace) -> TrainState:
    """Train (or resume) the experiment; return the final state (on every rank)."""
    stop_with_parent()
    relaunch_with_torchrun_if_asked("pipeline.train")
    params = read_params(args.params)
    exp = params.experiment(args.experiment, args.seed)
    out = Path(args.out) if args.out else run_dir("models", exp.name, exp.train.seed)
    checkpoints = (
        Path(args.checkpoints) if args.checkpoints else run_dir("checkpoints", exp.name, exp.train.seed)
    )
    features = Path(args.features)
    kind = exp.model.features
    stats_path = Path(args.mel_stats if kind == "mel" else args.stats)
    stats = FeatureStats.load(stats_path)
    bank = FeatureBank.from_matrices(
        load_training_matrices(features, "train", kind), stats, exp.train.crop_frames
    )
    dist = DistContext.from_env()
    tracker = start_run(params, exp, Path(args.params)) if dist.is_main else None
    trainer = Trainer(
        exp,
        bank,
        checkpoints,
        dist=dist,
        fingerprint=fingerprint(exp, stats_path, features / "index.csv"),
        on_log=(lambda step, row: tracker.log_metrics(row, step)) if tracker else None,
    )
    start = time.perf_counter()
    state = fit_tracked(trainer, tracker)
    wall = time.perf_counter() - start
    if tracker is not None:
        export(out, state, exp, params, stats, tracker, wall, dist.world_size)
        tracker.end("FINISHED")
        log.info(
            "trained %s: %d iterations in %.0f s; MLflow run %s", exp.name, state.step, wall, tracker.run_id
        )
    dist.close()
    return state


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--experiment", required=True, help="a name under `experiments:` in params.yaml")
    parser.add_argument("--features", default="data/features")
    parser.add_argument("--stats", default="data/stats.json", help="statistics of WORLD-feature models")
    parser.add_argument("--mel-stats", default="data/stats-mel.json", help="statistics of log-mel models")
    parser.add_argument(
        "--seed", type=int, default=None, help="one of `seeds` in params.yaml (default: the first)"
    )
    parser.add_argument("--out", default=None, help="default: models/<experiment>/seed-<seed>")
    parser.add_argument("--checkpoints", default=None, help="default: checkpoints/<experiment>/seed-<seed>")
    return parser


if __name__ == "__main__":
    run(main, build_parser())
