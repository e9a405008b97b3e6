"""The training loop: one Trainer with small named steps, its state in one :class:`TrainState`.

One iteration is ``train.d_steps_per_g`` discriminator updates then one generator update, each on a fresh
batch. Checkpoints every ``train.checkpoint_every`` iterations and on SIGINT/SIGTERM; :meth:`Trainer.fit`
resumes from the newest checkpoint in its folder when that checkpoint was made by the same configuration
(its fingerprint), and starts over otherwise.

On a GPU the loop never waits for the device between log intervals: a step returns its losses as device
tensors, and :meth:`Trainer._record` averages them with one host transfer per ``train.log_every``
iterations. Batches are copied from pinned memory without blocking; ``cudnn.benchmark`` picks kernels for
the fixed crop and TF32 is allowed for fp32 matmuls and convolutions (see :func:`configure_device`).
"""

from __future__ import annotations

import contextlib
import logging
import random
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

import vc
from vc.config import ExperimentConfig, OptimizerConfig
from vc.configlib import to_dict
from vc.models import build_models
from vc.parallel import cpus_per_job
from vc.training.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from vc.training.data import FeatureBank
from vc.training.distributed import DistContext
from vc.training.objectives import StarGANObjective

__all__ = ["TrainState", "Trainer", "TrainingInterrupted"]

log = logging.getLogger(__name__)

LogHook = Callable[[int, dict[str, float]], None]
Row = dict[str, torch.Tensor]  # one iteration's losses: detached 0-d tensors on the training device


def configure_device(device: torch.device) -> None:
    """Process-wide switches for training on ``device``; nothing changes on a CPU.

    CUDA: ``cudnn.benchmark`` (every batch has the same shape, ``train.crop_frames``, so the autotuned
    kernels are reused) and TF32 for fp32 matmuls and convolutions (Ampere and later; with ``amp: bf16``
    most of the work is bf16 anyway).
    """
    if device.type != "cuda":
        return
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True


class TrainingInterrupted(Exception):
    """Training stopped on a signal after saving a checkpoint at ``step``."""

    def __init__(self, step: int, signum: int) -> None:
        self.step = step
        self.signum = signum
        super().__init__(
            f"training interrupted by {signal.Signals(signum).name} at iteration {step}; "
            "a checkpoint was saved and the next run resumes from it"
        )


@dataclass
class TrainState:
    """Everything that changes during training."""

    generator: nn.Module
    discriminator: nn.Module
    classifier: nn.Module | None
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    sched_g: torch.optim.lr_scheduler.LRScheduler
    sched_d: torch.optim.lr_scheduler.LRScheduler
    step: int = 0  # completed iterations (generator updates)
    history: list[dict[str, float]] = field(default_factory=list)  # one row per log interval

    def modules(self) -> dict[str, nn.Module]:
        out = {"generator": self.generator, "discriminator": self.discriminator}
        if self.classifier is not None:
            out["classifier"] = self.classifier
        return out


def _optimizer(cfg: OptimizerConfig, params: list[nn.Parameter], lr: float) -> torch.optim.Optimizer:
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=cfg.betas)
    return torch.optim.RMSprop(params, lr=lr)


def _linear_decay(cfg: OptimizerConfig, iterations: int) -> Callable[[int], float]:
    """Learning-rate factor after ``step`` updates: 1 until ``decay_start``, then linearly to 0 at the end."""

    def factor(step: int) -> float:
        if cfg.decay == "none" or step < cfg.decay_start:
            return 1.0
        return max(0.0, 1.0 - (step - cfg.decay_start) / (iterations - cfg.decay_start))

    return factor


def build_state(
    exp: ExperimentConfig, num_speakers: int, feature_dim: int, device: torch.device
) -> TrainState:
    """Fresh models (seeded by ``train.seed``), optimizers and schedulers."""
    torch.manual_seed(exp.train.seed)
    generator, discriminator, classifier = build_models(num_speakers, feature_dim, exp.model)
    generator.to(device)
    discriminator.to(device)
    d_params = list(discriminator.parameters())
    if classifier is not None:
        classifier.to(device)
        d_params += list(classifier.parameters())  # StarGAN-VC's classifier is updated with D
    opt = exp.train.optimizer
    opt_g = _optimizer(opt, list(generator.parameters()), opt.lr_g)
    opt_d = _optimizer(opt, d_params, opt.lr_d)
    decay = _linear_decay(opt, exp.train.iterations)
    return TrainState(
        generator,
        discriminator,
        classifier,
        opt_g,
        opt_d,
        torch.optim.lr_scheduler.LambdaLR(opt_g, decay),
        torch.optim.lr_scheduler.LambdaLR(opt_d, decay),
    )


class Trainer:
    """Trains one experiment. ``on_log(step, row)`` receives every logged row on rank 0 (for MLflow)."""

    def __init__(
        self,
        exp: ExperimentConfig,
        bank: FeatureBank,
        checkpoint_dir: str | Path,
        *,
        fingerprint: str = "",
        dist: DistContext | None = None,
        on_log: LogHook | None = None,
        progress: bool = True,
    ) -> None:
        self.exp = exp
        self.cfg = exp.train
        self.bank = bank
        self.checkpoint_dir = Path(checkpoint_dir)
        self.fingerprint = fingerprint
        self.dist = dist or DistContext()
        self.on_log = on_log
        self.progress = progress
        torch.set_num_threads(self.cfg.num_threads or cpus_per_job())
        if self.cfg.batch_size % self.dist.world_size:
            raise ValueError(
                f"train.batch_size ({self.cfg.batch_size}) must be divisible by the number of "
                f"processes ({self.dist.world_size})"
            )
        self.device = self.dist.device(self.cfg.device)
        configure_device(self.device)
        self.dist.init(self.device)
        self.state = build_state(exp, bank.num_speakers, bank.dim, self.device)
        self._stop_signal: int | None = None
        self._pending: list[Row] = []  # rows of the current log interval
        self._interval = (time.perf_counter(), 0)  # start and iterations of this process in the interval

        wrap = self.dist.wrap
        g = wrap(self.state.generator, self.device)
        d = wrap(self.state.discriminator, self.device)
        c = wrap(self.state.classifier, self.device) if self.state.classifier is not None else None
        common = {
            "adv_loss": self.cfg.adv_loss,
            "lambdas": self.cfg.lambdas,
            "id_loss_until": self.cfg.id_loss_until,
        }
        # D's update goes through the DDP wrappers (gradients are averaged across ranks); G's update judges
        # with the bare D and classifier, whose parameters it does not train.
        self.d_objective = StarGANObjective(g, d, c, **common)
        self.g_objective = StarGANObjective(g, self.state.discriminator, self.state.classifier, **common)

    # ------------------------------------------------------------------------------------------ steps
    def _batch(self, substep: int):
        rng = FeatureBank.rng(self.cfg.seed, self.dist.rank, self.state.step, substep)
        batch = self.bank.sample(self.cfg.batch_size // self.dist.world_size, rng)
        if self.device.type == "cuda":
            return batch.pin_memory().to(self.device, non_blocking=True)
        return batch.to(self.device)

    def _autocast(self) -> contextlib.AbstractContextManager:
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cfg.amp == "bf16")

    def discriminator_step(self, substep: int) -> dict[str, torch.Tensor]:
        st = self.state
        st.opt_d.zero_grad(set_to_none=True)
        with self._autocast():
            loss, logs = self.d_objective.discriminator_loss(self._batch(substep))
        loss.backward()
        st.opt_d.step()
        return logs

    def generator_step(self) -> dict[str, torch.Tensor]:
        st = self.state
        st.opt_g.zero_grad(set_to_none=True)
        with self._frozen(st.discriminator, st.classifier), self._autocast():
            loss, logs = self.g_objective.generator_loss(self._batch(self.cfg.d_steps_per_g), st.step)
        loss.backward()
        st.opt_g.step()
        return logs

    @staticmethod
    @contextlib.contextmanager
    def _frozen(*modules: nn.Module | None) -> Iterator[None]:
        """No parameter gradients for ``modules`` (G's update needs gradients through D, not of D)."""
        params = [p for m in modules if m is not None for p in m.parameters()]
        for p in params:
            p.requires_grad_(False)
        try:
            yield
        finally:
            for p in params:
                p.requires_grad_(True)

    def train_step(self) -> Row:
        """One iteration: ``d_steps_per_g`` D updates, one G update, a scheduler step.

        Returns the losses as detached 0-d tensors on the training device (reading them waits for the
        device; :meth:`fit` does so once per log interval).
        """
        logs: dict[str, torch.Tensor] = {}
        for k in range(self.cfg.d_steps_per_g):
            logs.update(self.discriminator_step(k))
        logs.update(self.generator_step())
        self.state.sched_g.step()
        self.state.sched_d.step()
        self.state.step += 1
        return logs

    # ------------------------------------------------------------------------------------ checkpoints
    def _payload(self) -> dict[str, Any]:
        st = self.state
        return {
            "format": 1,
            "vc_version": vc.__version__,
            "step": st.step,
            "fingerprint": self.fingerprint,
            "config": to_dict(self.exp),
            "speakers": self.bank.speakers,
            "models": {name: m.state_dict() for name, m in st.modules().items()},
            "optimizers": {"g": st.opt_g.state_dict(), "d": st.opt_d.state_dict()},
            "schedulers": {"g": st.sched_g.state_dict(), "d": st.sched_d.state_dict()},
            "rng": {
                "torch": torch.get_rng_state(),
                "python": list(random.getstate()[1]),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            },
            "history": st.history,
            # rows of the current log interval, so resumed curves are identical
            "pending": [{k: float(v) for k, v in row.items()} for row in self._pending],
        }

    def save_checkpoint(self) -> Path | None:
        """Rank 0 writes the checkpoint; every rank waits for it."""
        path = None
        if self.dist.is_main:
            path = save_checkpoint(
                self.checkpoint_dir, self.state.step, self._payload(), self.cfg.keep_checkpoints
            )
        self.dist.barrier()
        return path

    def load_checkpoint(self, path: str | Path) -> None:
        ckpt = load_checkpoint(path, map_location=self.device)
        st = self.state
        for name, module in st.modules().items():
            module.load_state_dict(ckpt["models"][name], strict=True)
        st.opt_g.load_state_dict(ckpt["optimizers"]["g"])
        st.opt_d.load_state_dict(ckpt["optimizers"]["d"])
        st.sched_g.load_state_dict(ckpt["schedulers"]["g"])
        st.sched_d.load_state_dict(ckpt["schedulers"]["d"])
        st.step = int(ckpt["step"])
        st.history = list(ckpt["history"])
        pending = ckpt.get("pending", [])
        self._pending = [{k: torch.tensor(v, device=self.device) for k, v in r.items()} for r in pending]
        torch.set_rng_state(ckpt["rng"]["torch"].cpu())
        random.setstate((3, tuple(ckpt["rng"]["python"]), None))
        if ckpt["rng"]["cuda"] and torch.cuda.is_available():
            # a run resumed on fewer or more GPUs restores the devices both runs have
            for index, state in enumerate(ckpt["rng"]["cuda"][: torch.cuda.device_count()]):
                torch.cuda.set_rng_state(state.cpu(), index)

    def maybe_resume(self) -> bool:
        """Resume from the newest checkpoint made by this configuration; return whether it did."""
        path = latest_checkpoint(self.checkpoint_dir)
        if path is None:
            return False
        meta = load_checkpoint(path)
        if meta.get("fingerprint") != self.fingerprint or meta.get("speakers") != self.bank.speakers:
            if self.dist.is_main:
                log.warning(
                    "checkpoints in %s were made by other params, data or training code; starting over",
                    self.checkpoint_dir,
                )
                for old in self.checkpoint_dir.glob("step-*.pt"):
                    old.unlink()
            self.dist.barrier()
            return False
        self.load_checkpoint(path)
        log.info("resumed from %s (iteration %d of %d)", path, self.state.step, self.cfg.iterations)
        return True

    # ---------------------------------------------------------------------------------------- logging
    def _record(self, row: Row) -> None:
        """Keep ``row``; at the end of a log interval, append the interval's means to the history.

        The means are computed on the device and read with one transfer; ``time/sec_per_iter`` is the wall
        time of the interval's iterations run by this process, divided by their number.
        """
        self._pending.append(row)
        start, count = self._interval
        self._interval = (start, count + 1)
        step = self.state.step
        if step % self.cfg.log_every and step != self.cfg.iterations:
            return
        keys = list(row)
        table = torch.stack([torch.stack([r[k] for k in keys]) for r in self._pending])  # (rows, keys)
        mean = dict(zip(keys, table.double().mean(dim=0).tolist(), strict=True))
        now = time.perf_counter()
        mean["time/sec_per_iter"] = (now - start) / (count + 1)
        self._interval = (now, 0)
        mean["lr/g"] = self.state.opt_g.param_groups[0]["lr"]
        mean["lr/d"] = self.state.opt_d.param_groups[0]["lr"]
        self._pending.clear()
        self.state.history.append({"step": step, **mean})
        if self.on_log is not None and self.dist.is_main:
            self.on_log(step, mean)

    # -------------------------------------------------------------------------------------------- fit
    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        """SIGINT/SIGTERM ask the loop to checkpoint and stop at the end of the current iteration.

        A second SIGINT (Ctrl-C again) stops at once. A repeated SIGTERM does not: one termination often
        arrives several times (Linux repeats the parent-death signal as the child passes from one exiting
        thread of a multi-threaded parent such as DVC to the next; a scheduler signals every process of a job
        while torchrun passes it on), and it must still end with a checkpoint.
        """

        def handler(signum: int, _frame: Any) -> None:
            if self._stop_signal is not None:
                if signum == signal.SIGINT:
                    raise KeyboardInterrupt
                log.info("%s received again; still saving a checkpoint first", signal.Signals(signum).name)
                return
            log.warning("%s received: saving a checkpoint after this iteration", signal.Signals(signum).name)
            self._stop_signal = signum

        try:
            previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        except ValueError:  # not the main thread: leave signals alone
            yield
            return
        try:
            yield
        finally:
            for s, h in previous.items():
                signal.signal(s, h)

    def fit(self, resume: bool = True) -> TrainState:
        """Train to ``train.iterations`` (resuming first, if ``resume``); TrainingInterrupted on a signal."""
        if resume:
            self.maybe_resume()
        st = self.state
        for m in st.modules().values():
            m.train()
        bar = tqdm(
            total=self.cfg.iterations,
            initial=st.step,
            desc=f"train {self.exp.name}",
            unit="it",
            disable=not self.progress or not self.dist.is_main,
            leave=False,
        )
        with self._signals():
            self._interval = (time.perf_counter(), 0)
            while st.step < self.cfg.iterations:
                row = self.train_step()
                bar.update()
                before = len(st.history)
                self._record(row)
                if len(st.history) > before:
                    bar.set_postfix({k: f"{st.history[-1][k]:.3f}" for k in ("d/adv", "g/adv", "g/cyc")})
                stop = self.dist.any(self._stop_signal is not None, self.device)
                if stop or st.step % self.cfg.checkpoint_every == 0 or st.step == self.cfg.iterations:
                    self.save_checkpoint()
                if stop:
                    bar.close()
                    raise TrainingInterrupted(st.step, self._stop_signal or signal.SIGTERM)
        bar.close()
        return st
