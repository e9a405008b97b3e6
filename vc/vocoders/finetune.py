"""Fine-tuning a pretrained HiFi-GAN generator on a corpus with the HiFi-GAN recipe (stage ``vocoder``).

Kong et al. 2020, Sec. 2: per iteration, a batch of random waveform segments ``x`` ``(B, 1, N)`` from the
training split, their log-mels ``s`` (the vocoder's analysis, :func:`vc.features.mel.log_mel_torch`) and
the generated ``G(s)``; then

- one update of the multi-period and multi-scale discriminators with the least-squares loss on ``x`` and
  ``G(s)`` (``d/mpd``, ``d/msd``, ``d/total``);
- one update of the generator with ``adv * L_adv + fm * L_fm + mel * L_mel`` (+ ``stft * (L_sc + L_mag)``,
  ParallelWaveGAN's multi-resolution STFT loss, when its weight is positive) (``g/...``).

AdamW for both, both rates multiplied by ``lr_decay`` every ``decay_every`` iterations (the original decays
per epoch). Networks run under bf16 autocast with ``amp: bf16``; the spectral losses are computed in fp32.
Checkpoints, resuming after SIGTERM, logged curves and DDP are the shared
:class:`vc.training.loop.ResumableLoop`. At every log interval ``val/mel_l1`` is the mel L1 of the
generator's copy-synthesis of a few validation-split utterances (never a test sentence).

The stage saves the result with :mod:`vc.vocoders.store`, which conversion reads.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from vc.config import FinetuneConfig
from vc.configlib import to_dict
from vc.errors import InputError
from vc.features.mel import HIFIGAN_22K, log_mel_torch
from vc.parallel import cpus_per_job
from vc.training.distributed import DistContext
from vc.training.loop import LogHook, ResumableLoop, Row, configure_device
from vc.vocoders.discriminators import MultiPeriodDiscriminator, MultiScaleDiscriminator
from vc.vocoders.hifigan import HiFiGANGenerator
from vc.vocoders.losses import (
    MelL1Loss,
    MultiResolutionSTFTLoss,
    discriminator_terms,
    generator_adversarial_terms,
    weighted_total,
)

__all__ = ["FinetuneState", "VocoderFinetuner", "WaveBank", "build_discriminators"]

log = logging.getLogger(__name__)


class WaveBank:
    """Training waveforms in memory (float32, at the vocoder's 22,050 Hz) and random segments of them.

    A draw picks utterances uniformly and a uniform offset in each; an utterance shorter than the segment is
    zero-padded at its end (as the original does). Draws are keyed by ``(seed, rank, step)``, so a resumed
    run sees exactly the batches an uninterrupted one would.
    """

    def __init__(self, waves: Sequence[np.ndarray], segment_samples: int) -> None:
        self.waves = [torch.from_numpy(np.ascontiguousarray(w, dtype=np.float32)) for w in waves if len(w)]
        if not self.waves:
            raise InputError("no training audio for the vocoder (every utterance is empty or skipped)")
        self.segment = segment_samples

    def __len__(self) -> int:
        return len(self.waves)

    def sample(self, batch_size: int, rng: np.random.Generator) -> Tensor:
        """``batch_size`` segments ``(B, 1, segment_samples)``."""
        out = torch.zeros(batch_size, 1, self.segment)
        for i, k in enumerate(rng.integers(len(self.waves), size=batch_size)):
            wave = self.waves[k]
            start = int(rng.integers(max(1, len(wave) - self.segment + 1)))
            piece = wave[start : start + self.segment]
            out[i, 0, : len(piece)] = piece
        return out


def build_discriminators(cfg: FinetuneConfig) -> dict[str, nn.Module]:
    """The MPD and MSD of ``cfg`` (``{"mpd": ..., "msd": ...}``), freshly initialised."""
    return {
        "mpd": MultiPeriodDiscriminator(cfg.mpd.periods, channels=cfg.mpd.channels),
        "msd": MultiScaleDiscriminator(cfg.msd.scales, channels=cfg.msd.channels, groups=cfg.msd.groups),
    }


@dataclass
class FinetuneState:
    """Everything that changes during fine-tuning (the :class:`vc.training.loop.LoopState` of the loop)."""

    generator: HiFiGANGenerator
    mpd: nn.Module
    msd: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    sched_g: torch.optim.lr_scheduler.LRScheduler
    sched_d: torch.optim.lr_scheduler.LRScheduler
    step: int = 0
    history: list[dict[str, float]] = field(default_factory=list)

    def modules(self) -> dict[str, nn.Module]:
        return {"generator": self.generator, "mpd": self.mpd, "msd": self.msd}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"g": self.opt_g, "d": self.opt_d}

    def schedulers(self) -> dict[str, torch.optim.lr_scheduler.LRScheduler]:
        return {"g": self.sched_g, "d": self.sched_d}


class VocoderFinetuner(ResumableLoop):
    """Fine-tunes ``generator`` (weight norm in place: ``load_pretrained(..., inference=False)``) on ``bank``.

    ``validation``: whole waveforms ``(N,)`` at 22,050 Hz whose copy-synthesis mel L1 is logged as
    ``val/mel_l1`` at every log interval. ``fingerprint`` identifies the params, base checkpoint, audio and
    code (a checkpoint with another one is not resumed).
    """

    description = "fine-tune HiFi-GAN"
    postfix = ("d/total", "g/mel")

    def __init__(
        self,
        cfg: FinetuneConfig,
        generator: HiFiGANGenerator,
        bank: WaveBank,
        checkpoint_dir: str | Path,
        *,
        validation: Sequence[np.ndarray] = (),
        fingerprint: str = "",
        dist: DistContext | None = None,
        on_log: LogHook | None = None,
        progress: bool = True,
    ) -> None:
        super().__init__(
            cfg, checkpoint_dir, fingerprint=fingerprint, dist=dist, on_log=on_log, progress=progress
        )
        if cfg.batch_size % self.dist.world_size:
            raise ValueError(
                f"vocoder.finetune.batch_size ({cfg.batch_size}) must be divisible by the number of "
                f"processes ({self.dist.world_size})"
            )
        if bank.segment != cfg.segment_samples:
            raise ValueError(f"bank segments of {bank.segment} samples, config {cfg.segment_samples}")
        self.cfg = cfg
        self.bank = bank
        torch.set_num_threads(cfg.num_threads or cpus_per_job())
        self.device = self.dist.device(cfg.device, "vocoder.finetune.device")
        configure_device(self.device)
        self.dist.init(self.device)
        torch.manual_seed(cfg.seed)
        discs = build_discriminators(cfg)
        generator.to(self.device)
        for d in discs.values():
            d.to(self.device)
        d_params = [p for d in discs.values() for p in d.parameters()]
        opt_g = torch.optim.AdamW(
            generator.parameters(), cfg.lr_g, betas=cfg.betas, weight_decay=cfg.weight_decay
        )
        opt_d = torch.optim.AdamW(d_params, cfg.lr_d, betas=cfg.betas, weight_decay=cfg.weight_decay)

        def decay(step: int) -> float:
            return cfg.lr_decay ** (step // cfg.decay_every)

        self.state: FinetuneState = FinetuneState(
            generator,
            discs["mpd"],
            discs["msd"],
            opt_g,
            opt_d,
            torch.optim.lr_scheduler.LambdaLR(opt_g, decay),
            torch.optim.lr_scheduler.LambdaLR(opt_d, decay),
        )
        wrap = self.dist.wrap
        self._g = wrap(generator, self.device)
        # D's update goes through the DDP wrappers; G's update judges with the bare, frozen discriminators
        self._d_wrapped = {name: wrap(d, self.device) for name, d in discs.items()}
        self._d_bare = discs
        self.mel_loss = MelL1Loss()  # full band, fp32
        self.stft_loss = MultiResolutionSTFTLoss() if cfg.lambdas.stft > 0 else None
        self.g_lambdas = {"adv": cfg.lambdas.adv, "fm": cfg.lambdas.fm, "mel": cfg.lambdas.mel}
        if self.stft_loss is not None:
            self.g_lambdas["stft"] = cfg.lambdas.stft
        self.validation = [
            torch.from_numpy(np.asarray(w[: len(w) // HIFIGAN_22K.hop_length * HIFIGAN_22K.hop_length]))
            .float()
            .view(1, 1, -1)
            for w in validation
            if len(w) >= 4 * HIFIGAN_22K.hop_length
        ]

    def config(self) -> dict[str, Any]:
        return to_dict(self.cfg)

    # ------------------------------------------------------------------------------------------ steps
    def _autocast(self) -> contextlib.AbstractContextManager:
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cfg.amp == "bf16")

    def _batch(self) -> Tensor:
        rng = np.random.default_rng([self.cfg.seed, self.dist.rank, self.state.step])
        batch = self.bank.sample(self.cfg.batch_size // self.dist.world_size, rng)
        if self.device.type == "cuda":
            return batch.pin_memory().to(self.device, non_blocking=True)
        return batch.to(self.device)

    def step_losses(self) -> Row:
        """One D update, then one G update, on one batch of segments."""
        st = self.state
        real = self._batch()  # (B, 1, N)
        with torch.no_grad():
            mel = log_mel_torch(real)  # (B, 80, N / 256), the vocoder's input analysis, fp32
        with self._autocast():
            fake = self._g(mel)
        fake = fake.float()  # (B, 1, N)

        st.opt_d.zero_grad(set_to_none=True)
        with self._autocast():
            d_terms = discriminator_terms(self._d_wrapped, real, fake)
        d_terms = {k: v.float() for k, v in d_terms.items()}
        d_total, _ = weighted_total(d_terms, {"mpd": 1.0, "msd": 1.0}, log=False)
        d_total.backward()
        st.opt_d.step()

        st.opt_g.zero_grad(set_to_none=True)
        with self.frozen(st.mpd, st.msd):
            with self._autocast():
                terms = generator_adversarial_terms(self._d_bare, real, fake)
            terms = {k: v.float() for k, v in terms.items()}
            terms["mel"] = self.mel_loss(fake, real)
            if self.stft_loss is not None:
                sc, mag = self.stft_loss(fake, real)
                terms["stft"] = sc + mag
            g_total, _ = weighted_total(terms, self.g_lambdas, log=False)
            g_total.backward()
        st.opt_g.step()

        row = {f"d/{k}": v.detach() for k, v in d_terms.items()}
        row["d/total"] = d_total.detach()
        row.update({f"g/{k}": v.detach() for k, v in terms.items()})
        row["g/total"] = g_total.detach()
        return row

    @torch.no_grad()
    def validation_mel_l1(self) -> float | None:
        """Mean copy-synthesis mel L1 over the validation waveforms (None without any)."""
        if not self.validation:
            return None
        generator = self.state.generator
        generator.eval()
        losses = []
        for wave in self.validation:
            wave = wave.to(self.device)
            losses.append(float(self.mel_loss(generator(log_mel_torch(wave)).float(), wave)))
        generator.train()
        return float(np.mean(losses))

    def _record(self, row: Row) -> None:
        before = len(self.state.history)
        super()._record(row)
        if len(self.state.history) > before and (value := self.validation_mel_l1()) is not None:
            self.state.history[-1]["val/mel_l1"] = value
            if self.on_log is not None and self.dist.is_main:
                self.on_log(self.state.step, {"val/mel_l1": value})
