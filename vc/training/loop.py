"""The resumable training loop every trainer of the project shares: checkpoints, signals, logged curves.

:class:`ResumableLoop` runs ``step_losses()`` until ``iterations``; subclasses (the StarGAN-VC2
:class:`vc.stargan.trainer.Trainer`, the HiFi-GAN :class:`vc.vocoders.finetune.VocoderFinetuner`) supply
the models, optimizers and schedulers (a :class:`LoopState`) and what one iteration does. The loop:

- checkpoints every ``checkpoint_every`` iterations, at the end, and on SIGINT/SIGTERM (then raises
  :class:`TrainingInterrupted`); :meth:`ResumableLoop.maybe_resume` continues from the newest checkpoint made
  by the same configuration (its fingerprint) and identity, and starts over otherwise;
- averages each iteration's losses over ``log_every`` iterations with one host transfer per interval (a GPU
  step returns device tensors and is not waited for in between), adds the learning rates and
  ``time/sec_per_iter``, keeps the rows as ``state.history`` and hands them to ``on_log`` on rank 0;
- every ``validate_every`` iterations and at the last, on rank 0, calls :meth:`ResumableLoop.validate` (a
  subclass scores its models there) and keeps the row in :attr:`ResumableLoop.validation` (checkpointed,
  handed to ``on_log``, its time kept out of ``time/sec_per_iter``);
- under DDP, rank 0 writes checkpoints while every rank waits, and all ranks stop at the same iteration.
"""

from __future__ import annotations

import contextlib
import logging
import random
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn
from tqdm import tqdm

import vc
from vc.training.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from vc.training.distributed import DistContext

__all__ = [
    "LogHook",
    "LoopSchedule",
    "LoopState",
    "ResumableLoop",
    "Row",
    "TrainingInterrupted",
    "configure_device",
]

log = logging.getLogger(__name__)

LogHook = Callable[[int, dict[str, float]], None]
Row = dict[str, torch.Tensor]  # one iteration's losses: detached 0-d tensors on the training device


def configure_device(device: torch.device) -> None:
    """Process-wide switches for training on ``device``; nothing changes on a CPU.

    CUDA: ``cudnn.benchmark`` (every batch has the same shape, so the autotuned kernels are reused) and TF32
    for fp32 matmuls and convolutions (Ampere and later; with bf16 autocast most of the work is bf16 anyway).
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


class LoopSchedule(Protocol):
    """The loop's settings, read from a config section (``train``, ``vocoder.finetune``)."""

    iterations: int
    log_every: int
    checkpoint_every: int
    keep_checkpoints: int


class LoopState(Protocol):
    """What the loop checkpoints: named modules, optimizers and schedulers, the step and the curves."""

    step: int
    history: list[dict[str, float]]

    def modules(self) -> dict[str, nn.Module]: ...
    def optimizers(self) -> dict[str, torch.optim.Optimizer]: ...
    def schedulers(self) -> dict[str, torch.optim.lr_scheduler.LRScheduler]: ...


class ResumableLoop:
    """The loop around ``step_losses``; subclasses set :attr:`state` and implement :meth:`step_losses`.

    ``schedule`` gives ``iterations``, ``log_every``, ``checkpoint_every`` and ``keep_checkpoints``.

    ``fingerprint`` identifies what the iterations compute (params, data, code): a checkpoint with another
    fingerprint is deleted, not resumed. :meth:`identity` adds subclass facts that must match too (the
    StarGAN trainer's speaker list). ``description`` names the progress bar; ``postfix`` the loss keys it
    shows.
    """

    state: LoopState
    description: str = "train"
    postfix: tuple[str, ...] = ()

    def __init__(
        self,
        schedule: LoopSchedule,
        checkpoint_dir: str | Path,
        *,
        fingerprint: str = "",
        dist: DistContext | None = None,
        on_log: LogHook | None = None,
        progress: bool = True,
        validate_every: int = 0,
    ) -> None:
        self.iterations = schedule.iterations
        self.validate_every = validate_every
        #: one row per validation: ``step``, the scores of :meth:`validate` and ``time/validation_sec``
        self.validation: list[dict[str, float]] = []
        self.log_every = schedule.log_every
        self.checkpoint_every = schedule.checkpoint_every
        self.keep_checkpoints = schedule.keep_checkpoints
        self.checkpoint_dir = Path(checkpoint_dir)
        self.fingerprint = fingerprint
        self.dist = dist or DistContext()
        self.on_log = on_log
        self.progress = progress
        self.device = torch.device("cpu")  # subclasses set the training device
        self._stop_signal: int | None = None
        self._pending: list[Row] = []  # rows of the current log interval
        self._interval = (time.perf_counter(), 0)  # start and iterations of this process in the interval

    # ------------------------------------------------------------------------------ subclass interface
    def step_losses(self) -> Row:
        """One iteration's updates (without the scheduler step); its losses as detached device tensors."""
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """The resolved configuration, stored in every checkpoint for the record."""
        return {}

    def identity(self) -> dict[str, Any]:
        """Facts besides the fingerprint a checkpoint must share to be resumed (stored in it)."""
        return {}

    def validate(self) -> dict[str, float] | None:
        """Scores of the models as they are now (rank 0, every ``validate_every`` iterations); None: no
        validation (the default)."""
        return None

    def extra_state(self) -> dict[str, Any]:
        """What a subclass keeps in every checkpoint besides the loop's own state (restored by
        :meth:`load_extra_state`)."""
        return {}

    def load_extra_state(self, extra: dict[str, Any]) -> None:
        """Restore :meth:`extra_state` from a checkpoint (``{}`` from one made before it existed)."""

    # ------------------------------------------------------------------------------------------ steps
    @staticmethod
    @contextlib.contextmanager
    def frozen(*modules: nn.Module | None) -> Iterator[None]:
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
        """One iteration: :meth:`step_losses`, then every scheduler steps and ``state.step`` advances.

        Returns the losses as detached 0-d tensors on the training device (reading them waits for the
        device; :meth:`fit` does so once per log interval).
        """
        logs = self.step_losses()
        for scheduler in self.state.schedulers().values():
            scheduler.step()
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
            "config": self.config(),
            **self.identity(),
            "models": {name: m.state_dict() for name, m in st.modules().items()},
            "optimizers": {name: o.state_dict() for name, o in st.optimizers().items()},
            "schedulers": {name: s.state_dict() for name, s in st.schedulers().items()},
            "rng": {
                "torch": torch.get_rng_state(),
                "python": list(random.getstate()[1]),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            },
            "history": st.history,
            "validation": self.validation,
            "extra": self.extra_state(),
            # rows of the current log interval, so resumed curves are identical
            "pending": [{k: float(v) for k, v in row.items()} for row in self._pending],
        }

    def save_checkpoint(self) -> Path | None:
        """Rank 0 writes the checkpoint; every rank waits for it."""
        path = None
        if self.dist.is_main:
            path = save_checkpoint(
                self.checkpoint_dir, self.state.step, self._payload(), self.keep_checkpoints
            )
        self.dist.barrier()
        return path

    def load_checkpoint(self, path: str | Path) -> None:
        ckpt = load_checkpoint(path, map_location=self.device)
        st = self.state
        for name, module in st.modules().items():
            module.load_state_dict(ckpt["models"][name], strict=True)
        for name, opt in st.optimizers().items():
            opt.load_state_dict(ckpt["optimizers"][name])
        for name, scheduler in st.schedulers().items():
            scheduler.load_state_dict(ckpt["schedulers"][name])
        st.step = int(ckpt["step"])
        st.history = list(ckpt["history"])
        self.validation = list(ckpt.get("validation", []))
        self.load_extra_state(ckpt.get("extra", {}))
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
        same = meta.get("fingerprint") == self.fingerprint and all(
            meta.get(key) == value for key, value in self.identity().items()
        )
        if not same:
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
        log.info("resumed from %s (iteration %d of %d)", path, self.state.step, self.iterations)
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
        if step % self.log_every and step != self.iterations:
            return
        keys = list(row)
        table = torch.stack([torch.stack([r[k] for k in keys]) for r in self._pending])  # (rows, keys)
        mean = dict(zip(keys, table.double().mean(dim=0).tolist(), strict=True))
        now = time.perf_counter()
        mean["time/sec_per_iter"] = (now - start) / (count + 1)
        self._interval = (now, 0)
        for name, opt in self.state.optimizers().items():
            mean[f"lr/{name}"] = opt.param_groups[0]["lr"]
        self._pending.clear()
        self.state.history.append({"step": step, **mean})
        if self.on_log is not None and self.dist.is_main:
            self.on_log(step, mean)

    # ------------------------------------------------------------------------------------- validation
    def _validation_due(self) -> bool:
        step = self.state.step
        due = self.validate_every > 0 and (step % self.validate_every == 0 or step == self.iterations)
        return due and self.dist.is_main

    def _validate(self) -> None:
        """Run :meth:`validate`, keep and log its row; the seconds it took leave the iteration timing."""
        start = time.perf_counter()
        scores = self.validate()
        if scores is None:
            return
        seconds = time.perf_counter() - start
        row = {**scores, "time/validation_sec": seconds}
        self.validation.append({"step": self.state.step, **row})
        began, count = self._interval
        self._interval = (began + seconds, count)
        if self.on_log is not None:
            self.on_log(self.state.step, row)

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

    def fit(self, resume: bool = True) -> LoopState:
        """Run to ``iterations`` (resuming first, if ``resume``); TrainingInterrupted on a signal."""
        if resume:
            self.maybe_resume()
        st = self.state
        for m in st.modules().values():
            m.train()
        bar = tqdm(
            total=self.iterations,
            initial=st.step,
            desc=self.description,
            unit="it",
            disable=not self.progress or not self.dist.is_main,
            leave=False,
        )
        with self._signals():
            self._interval = (time.perf_counter(), 0)
            while st.step < self.iterations:
                row = self.train_step()
                bar.update()
                before = len(st.history)
                self._record(row)
                if len(st.history) > before:
                    bar.set_postfix({k: f"{st.history[-1][k]:.3f}" for k in self.postfix if k in row})
                if self._validation_due():
                    self._validate()
                stop = self.dist.any(self._stop_signal is not None, self.device)
                if stop or st.step % self.checkpoint_every == 0 or st.step == self.iterations:
                    self.save_checkpoint()
                if stop:
                    bar.close()
                    raise TrainingInterrupted(st.step, self._stop_signal or signal.SIGTERM)
        bar.close()
        return st
