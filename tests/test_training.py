"""The trainer: checkpoints that resume exactly, configuration fingerprints, crops, learning-rate decay."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

from vc.config import ExperimentConfig
from vc.configlib import build
from vc.stargan.data import CropError, FeatureBank
from vc.stargan.trainer import Trainer, TrainingInterrupted
from vc.training.checkpoint import latest_checkpoint, load_checkpoint


def make_exp(**train) -> ExperimentConfig:
    """A tiny experiment: widths of 4 (residual 8), 2 residual blocks, 64-frame crops, float32."""
    base = {
        "amp": "none",
        "iterations": 12,
        "batch_size": 4,
        "crop_frames": 64,
        "log_every": 3,
        "checkpoint_every": 5,
        "num_threads": 1,
    }
    base.update(train)
    base.setdefault("optimizer", {"decay_start": base["iterations"] // 2})
    model = {
        "generator": {"channels": 4, "res_blocks": 2, "res_channels": None},
        "discriminator": {"channels": 4},
    }
    return build(ExperimentConfig, {"name": "tiny", "model": model, "train": base})


def make_bank(crop: int = 64, speakers: int = 3, dim: int = 12) -> FeatureBank:
    rng = np.random.default_rng(0)
    feats = {
        f"s{i}": [rng.standard_normal((100 + 10 * j, dim)) + i for j in range(3)] for i in range(speakers)
    }
    return FeatureBank(feats, list(feats), crop)


def weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {
        f"{name}.{k}": v.clone()
        for name, m in trainer.state.modules().items()
        for k, v in m.state_dict().items()
    }


def test_batches_pair_each_source_with_a_different_target_and_are_keyed_by_step() -> None:
    bank = make_bank()
    batch = bank.sample(64, FeatureBank.rng(0, 0, 5, 0))
    assert batch.x.shape == batch.y.shape == (64, 12, 64)
    assert (batch.src != batch.tgt).all() and set(batch.tgt.tolist()) == {0, 1, 2}
    again = bank.sample(64, FeatureBank.rng(0, 0, 5, 0))
    assert torch.equal(batch.x, again.x) and torch.equal(batch.tgt, again.tgt)
    other = bank.sample(64, FeatureBank.rng(0, 1, 5, 0))  # another rank draws other items
    assert not torch.equal(batch.x, other.x)


def test_crop_longer_than_every_utterance_is_rejected() -> None:
    with pytest.raises(CropError, match=r"crop_frames = 500 is longer than every training utterance.*'s0'"):
        make_bank(crop=500)


def test_interrupted_run_resumes_to_the_same_weights_and_losses(tmp_path: Path) -> None:
    exp = make_exp()
    whole = Trainer(exp, make_bank(), tmp_path / "whole", progress=False)
    whole.fit()

    def interrupt(step: int, _row: dict) -> None:
        if step == 6:
            os.kill(os.getpid(), signal.SIGTERM)  # what `kill` or DVC sends; handled after this iteration

    first = Trainer(exp, make_bank(), tmp_path / "split", progress=False, on_log=interrupt)
    with pytest.raises(TrainingInterrupted) as info:
        first.fit()
    assert info.value.step == 6 and info.value.signum == signal.SIGTERM
    assert latest_checkpoint(tmp_path / "split").name == "step-00000006.pt"

    resumed = Trainer(exp, make_bank(), tmp_path / "split", progress=False)
    assert resumed.maybe_resume() and resumed.state.step == 6
    resumed.fit(resume=False)
    assert resumed.state.step == whole.state.step == 12
    a, b = weights(whole), weights(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [r["g/cyc"] for r in resumed.state.history] == [r["g/cyc"] for r in whole.state.history]
    assert [r["step"] for r in resumed.state.history] == [3, 6, 9, 12]
    # optimizer state and schedule survived too: the learning rate decayed to 0 at the end in both
    assert resumed.state.opt_g.param_groups[0]["lr"] == whole.state.opt_g.param_groups[0]["lr"] == 0.0


def test_repeated_sigterm_still_checkpoints_and_a_second_sigint_stops_at_once(tmp_path: Path) -> None:
    def terminate_twice(step: int, _row: dict) -> None:
        if step == 3:
            os.kill(os.getpid(), signal.SIGTERM)  # e.g. the parent-death signal and a scheduler's, together
            os.kill(os.getpid(), signal.SIGTERM)

    trainer = Trainer(make_exp(), make_bank(), tmp_path / "term", progress=False, on_log=terminate_twice)
    with pytest.raises(TrainingInterrupted) as info:
        trainer.fit()
    assert info.value.step == 3 and latest_checkpoint(tmp_path / "term").name == "step-00000003.pt"

    def interrupt_twice(step: int, _row: dict) -> None:
        if step == 3:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)

    trainer = Trainer(make_exp(), make_bank(), tmp_path / "int", progress=False, on_log=interrupt_twice)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    assert latest_checkpoint(tmp_path / "int") is None


def test_checkpoint_is_complete_and_loads_weights_only(tmp_path: Path) -> None:
    Trainer(make_exp(iterations=5), make_bank(), tmp_path, progress=False).fit()
    ckpt = load_checkpoint(latest_checkpoint(tmp_path))  # weights_only=True inside
    assert ckpt["step"] == 5 and ckpt["speakers"] == ["s0", "s1", "s2"]
    assert {"generator", "discriminator"} <= set(ckpt["models"]) and set(ckpt["optimizers"]) == {"g", "d"}
    assert ckpt["config"]["train"]["iterations"] == 5 and "vc_version" in ckpt and "torch" in ckpt["rng"]
    assert not list(tmp_path.glob("*.tmp*"))


def test_keeps_only_the_newest_checkpoints(tmp_path: Path) -> None:
    Trainer(
        make_exp(iterations=12, checkpoint_every=2, keep_checkpoints=2), make_bank(), tmp_path, progress=False
    ).fit()
    assert sorted(p.name for p in tmp_path.glob("step-*.pt")) == ["step-00000010.pt", "step-00000012.pt"]


def test_checkpoints_of_another_configuration_are_not_resumed(tmp_path: Path) -> None:
    Trainer(make_exp(iterations=5), make_bank(), tmp_path, fingerprint="A", progress=False).fit()
    other = Trainer(make_exp(iterations=5), make_bank(), tmp_path, fingerprint="B", progress=False)
    assert not other.maybe_resume() and other.state.step == 0
    assert latest_checkpoint(tmp_path) is None  # stale checkpoints removed


def test_fingerprint_changes_with_params_data_and_training_code_only(tmp_path: Path) -> None:
    import shutil

    from pipeline.train import CODE_ROOT, fingerprint

    code = tmp_path / "code"
    for name in ("pipeline", "vc"):
        shutil.copytree(CODE_ROOT / name, code / name, ignore=shutil.ignore_patterns("__pycache__"))
    stats, index = tmp_path / "stats.json", tmp_path / "index.csv"
    stats.write_text('{"speakers": ["a", "b"]}')
    index.write_text("speaker,utt_id\na,1\n")
    exp = make_exp(iterations=5)
    base = fingerprint(exp, stats, index, code)
    assert fingerprint(exp, stats, index, code) == base
    assert fingerprint(make_exp(iterations=5, log_every=1, checkpoint_every=1), stats, index, code) == base
    assert fingerprint(make_exp(iterations=6), stats, index, code) != base
    index.write_text("speaker,utt_id\na,2\n")
    assert fingerprint(exp, stats, index, code) != base
    index.write_text("speaker,utt_id\na,1\n")
    with (code / "vc/stargan/objective.py").open("a") as f:
        f.write("\n# an edit to the training code\n")
    assert fingerprint(exp, stats, index, code) != base
    before = fingerprint(exp, stats, index, code)
    (code / "vc/corpus/espeak.py").write_text("# code training never imports\n")
    assert fingerprint(exp, stats, index, code) == before


@pytest.mark.parametrize(
    "variant",
    [
        {"d_steps_per_g": 2},
        {"optimizer": {"name": "rmsprop", "decay": "none"}},
        {"adv_loss": "hinge", "lambdas": {"fm": 1.0}},
    ],
)
def test_training_variants_run(variant: dict, tmp_path: Path) -> None:
    trainer = Trainer(make_exp(iterations=3, **variant), make_bank(), tmp_path, progress=False)
    state = trainer.fit()
    assert state.step == 3 and all(np.isfinite(v) for v in state.history[-1].values())


def test_the_same_model_trains_on_80_log_mel_bins(tmp_path: Path) -> None:
    exp = make_exp(iterations=2, crop_frames=32)
    state = Trainer(exp, make_bank(32, dim=80), tmp_path, progress=False).fit()
    assert state.step == 2 and all(np.isfinite(v) for v in state.history[-1].values())
    x = torch.zeros(1, 80, 32)
    assert state.generator(x, torch.tensor([0]), torch.tensor([1])).shape == x.shape


def test_logged_rows_are_the_means_of_their_interval(tmp_path: Path) -> None:
    every = Trainer(make_exp(iterations=6, log_every=1), make_bank(), tmp_path / "every", progress=False)
    steps = every.fit().history
    grouped = Trainer(make_exp(iterations=6, log_every=3), make_bank(), tmp_path / "grouped", progress=False)
    rows = grouped.fit().history
    assert [r["step"] for r in rows] == [3, 6]
    for row, chunk in zip(rows, (steps[:3], steps[3:]), strict=True):
        for key in ("d/adv", "g/adv", "g/cyc", "g/id"):
            assert row[key] == pytest.approx(np.mean([r[key] for r in chunk]), rel=1e-6)
        assert row["time/sec_per_iter"] > 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_smoke_bf16_training_resumes_on_the_cpu(tmp_path: Path) -> None:
    """A few bf16 iterations on the GPU, then the same run resumed where no GPU is used (another device
    count): the checkpoint loads and training goes on with finite losses."""
    gpu = Trainer(
        make_exp(device="cuda", amp="bf16", checkpoint_every=3), make_bank(), tmp_path, progress=False
    )
    assert gpu.device.type == "cuda" and torch.backends.cudnn.benchmark

    def stop_at_three(step: int, _row: dict) -> None:
        if step == 3:
            os.kill(os.getpid(), signal.SIGTERM)

    gpu.on_log = stop_at_three
    with pytest.raises(TrainingInterrupted):
        gpu.fit()
    assert all(np.isfinite(v) for v in gpu.state.history[-1].values())
    cpu = Trainer(
        make_exp(device="cpu", amp="bf16", checkpoint_every=3), make_bank(), tmp_path, progress=False
    )
    assert cpu.maybe_resume() and cpu.state.step == 3
    state = cpu.fit(resume=False)
    assert state.step == 12 and all(np.isfinite(v) for v in state.history[-1].values())


def test_adam_is_the_fused_update_of_the_per_tensor_one(tmp_path: Path) -> None:
    """G's and D's Adam are torch's fused kernel, and it updates as the per-tensor Adam does."""
    trainer = Trainer(make_exp(), make_bank(), tmp_path, progress=False)
    for opt in trainer.state.optimizers().values():
        assert opt.defaults["fused"] is True
    params = [p.detach().clone().requires_grad_() for p in trainer.state.generator.parameters()]
    reference = torch.optim.Adam(params, **{k: trainer.state.opt_g.defaults[k] for k in ("lr", "betas")})
    for _ in range(3):
        for mine, theirs in zip(trainer.state.generator.parameters(), params, strict=True):
            mine.grad = torch.randn_like(mine)
            theirs.grad = mine.grad.clone()
        trainer.state.opt_g.step()
        reference.step()
    for mine, theirs in zip(trainer.state.generator.parameters(), params, strict=True):
        torch.testing.assert_close(mine.detach(), theirs.detach())


def test_learning_rate_decays_linearly_from_decay_start(tmp_path: Path) -> None:
    trainer = Trainer(
        make_exp(iterations=10, optimizer={"decay_start": 5, "lr_g": 2e-4}, log_every=1),
        make_bank(),
        tmp_path,
        progress=False,
    )
    lrs = [row["lr/g"] for row in trainer.fit().history]
    assert lrs[:5] == pytest.approx([2e-4] * 5)
    assert lrs[5:] == pytest.approx([2e-4 * f for f in (0.8, 0.6, 0.4, 0.2, 0.0)])


def test_the_train_stage_runs_one_tracked_resumable_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pipeline.train through pipeline.tracked.run_resumable, in this process: outputs, one FINISHED MLflow
    run with the stage's tags; run again, it resumes from the last checkpoint into a new run."""
    import json

    import yaml
    from conftest import TINY_PARAMS_OVERRIDES, write_tiny_features
    from mlflow.tracking import MlflowClient

    from pipeline.common import add_common_args
    from pipeline.train import build_parser, main

    features, stats = write_tiny_features(tmp_path)
    doc = {
        "model": TINY_PARAMS_OVERRIDES["model"],
        "train": {
            **TINY_PARAMS_OVERRIDES["train"],
            **{"iterations": 4, "log_every": 2, "checkpoint_every": 2, "validate_every": 0},
        },
        "experiments": {"tiny": {}},
        "report": {"reference": None},
        "tracking": {"experiment": "stage-test"},
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(doc))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("VC_NPROC_PER_NODE", raising=False)
    parser = build_parser()
    add_common_args(parser)
    out = tmp_path / "models/tiny/seed-0"
    paths = {
        "features": features,
        "stats": stats,
        "mel-stats": stats,
        "out": out,
        "checkpoints": tmp_path / "ckpt",
        "validation": tmp_path / "validation",  # not read: validate_every is 0 (test_pipeline scores)
    }
    words = [w for key, path in paths.items() for w in (f"--{key}", str(path))]
    args = parser.parse_args(["--experiment", "tiny", *words, "--params", str(tmp_path / "params.yaml")])
    state = main(args)
    summary = json.loads((out / "train.json").read_text())
    assert state.step == summary["iterations"] == 4 and summary["processes"] == 1
    assert set(summary["final"]) >= {"g/cyc", "d/adv"} and "step" not in summary["final"]
    assert (out / "model/generator.pt").is_file() and (out / "losses.tsv").is_file()
    client = MlflowClient(uri)
    runs = client.search_runs(
        [client.get_experiment_by_name("stage-test").experiment_id], "tags.`vc.stage` = 'train'"
    )
    assert (
        len(runs) == 1
        and runs[0].info.status == "FINISHED"
        and runs[0].info.run_id == summary["mlflow_run_id"]
    )
    tags = runs[0].data.tags
    assert (tags["vc.kind"], tags["vc.experiment"], tags["vc.seed"]) == ("experiment", "tiny", "0")
    assert [m.step for m in client.get_metric_history(runs[0].info.run_id, "g/cyc")] == [2, 4]

    main(args)  # the same params, data and code: resumed at the last checkpoint, nothing left to train
    again = client.search_runs([runs[0].info.experiment_id], "tags.`vc.resumed_from_iteration` = '4'")
    assert len(again) == 1 and again[0].info.status == "FINISHED"


def test_step_decay_multiplies_the_rates_every_decay_every_iterations(tmp_path: Path) -> None:
    opt = {
        "name": "rmsprop",
        "lr_g": 1e-3,
        "lr_d": 1e-3,
        "decay": "step",
        "decay_every": 4,
        "decay_gamma": 0.5,
    }
    trainer = Trainer(
        make_exp(iterations=10, optimizer=opt, log_every=1), make_bank(), tmp_path, progress=False
    )
    lrs = [row["lr/g"] for row in trainer.fit().history]  # the rate after each iteration's scheduler step
    assert lrs == pytest.approx([1e-3] * 3 + [5e-4] * 4 + [2.5e-4] * 3)


class _Curve:
    """A validator that scores the generator's first weight and counts its calls."""

    def __init__(self, scores: list[float]) -> None:
        self.scores = scores
        self.calls: list[bool] = []

    def __call__(self, generator: torch.nn.Module) -> dict[str, float]:
        self.calls.append(generator.training or torch.is_grad_enabled())  # must be eval mode, no grad
        return {"val/mcd_db": self.scores[len(self.calls) - 1], "val/mcd_db_source": 10.0}


def test_validation_runs_every_n_iterations_and_keeps_the_best_generator(tmp_path: Path) -> None:
    logged: list[tuple[int, dict]] = []
    curve = _Curve([9.0, 8.0, 8.5])  # iterations 4, 8 and the last (10): the best is at 8
    trainer = Trainer(
        make_exp(iterations=10, validate_every=4, checkpoint_every=100),
        make_bank(),
        tmp_path,
        progress=False,
        validator=curve,
        on_log=lambda step, row: logged.append((step, row)),
    )
    trainer.fit()
    assert [r["step"] for r in trainer.validation] == [4, 8, 10] and curve.calls == [False] * 3
    assert [r["val/mcd_db"] for r in trainer.validation] == [9.0, 8.0, 8.5]
    assert all(r["time/validation_sec"] >= 0 for r in trainer.validation)
    assert (8, trainer.validation[1] | {}) in [(s, r | {"step": s}) for s, r in logged if "val/mcd_db" in r]
    assert trainer.best["step"] == 8 and trainer.best["score"] == 8.0
    best = trainer.best_generator()
    last = trainer.state.generator
    assert best is not last and not all(
        torch.equal(a, b) for a, b in zip(best.state_dict().values(), last.state_dict().values(), strict=True)
    )
    assert trainer.state.generator.training  # back in training mode after each validation
    # a validator never changes training: the same weights as a run without one
    plain = Trainer(
        make_exp(iterations=10, validate_every=4, checkpoint_every=100),
        make_bank(),
        tmp_path / "plain",
        progress=False,
    )
    plain.fit()
    a, b = weights(plain), weights(trainer)
    assert all(torch.equal(a[k], b[k]) for k in a) and plain.validation == [] and plain.best is None


def test_a_resumed_run_keeps_its_validation_curve_and_best_generator(tmp_path: Path) -> None:
    exp = make_exp(iterations=10, validate_every=2, checkpoint_every=100)
    whole = Trainer(exp, make_bank(), tmp_path / "whole", progress=False, validator=_Curve([5, 3, 4, 6, 7]))
    whole.fit()

    def interrupt(step: int, row: dict) -> None:
        if step == 6 and "val/mcd_db" in row:
            os.kill(os.getpid(), signal.SIGTERM)

    first = Trainer(exp, make_bank(), tmp_path / "split", progress=False, validator=_Curve([5, 3, 4]))
    first.on_log = interrupt
    with pytest.raises(TrainingInterrupted):
        first.fit()
    resumed = Trainer(exp, make_bank(), tmp_path / "split", progress=False, validator=_Curve([6, 7]))
    resumed.fit()
    assert [r["step"] for r in resumed.validation] == [2, 4, 6, 8, 10]
    assert resumed.best["step"] == whole.best["step"] == 4
    for a, b in zip(resumed.best["state"].values(), whole.best["state"].values(), strict=True):
        assert torch.equal(a, b)
