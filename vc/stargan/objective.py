"""The StarGAN-VC2 training objective: the discriminator's and the generator's losses on one batch.

Kaneko et al., Interspeech 2019, Sec. 2 (StarGAN-VC's adversarial, classification, cycle-consistency and
identity-mapping losses) and Sec. 3.1 (the source-and-target conditional adversarial loss). Each loss method
returns ``(total, logs)``: the total to backpropagate and detached scalars under stable names.

The modules are taken as plain callables so that a trainer may pass ``DistributedDataParallel`` wrappers;
this module never touches optimizers, gradients of other modules or process groups.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from vc.config import LossWeights
from vc.stargan.losses import (
    ADV_LOSSES,
    adversarial_d_terms,
    adversarial_g_loss,
    classification_loss,
    cycle_loss,
    identity_loss,
    mean_feature_matching_loss,
)

__all__ = ["Batch", "StarGANObjective"]

GeneratorFn = Callable[[Tensor, Tensor, Tensor], Tensor]
DiscriminatorFn = Callable[[Tensor, Tensor, Tensor], tuple[Tensor, list[Tensor]]]
ClassifierFn = Callable[[Tensor], Tensor]
Logs = dict[str, Tensor]


@dataclass
class Batch:
    """One non-parallel training batch.

    ``x`` ``(B, D, T)``: crops of source speakers ``src`` ``(B,)`` long; ``y`` ``(B, D, T)``: crops of other
    utterances by the target speakers ``tgt`` ``(B,)`` long (real samples for the discriminator).
    """

    x: Tensor
    src: Tensor
    y: Tensor
    tgt: Tensor

    def to(self, device: torch.device | str, *, non_blocking: bool = False) -> Batch:
        return Batch(
            x=self.x.to(device, non_blocking=non_blocking),
            src=self.src.to(device, non_blocking=non_blocking),
            y=self.y.to(device, non_blocking=non_blocking),
            tgt=self.tgt.to(device, non_blocking=non_blocking),
        )

    def pin_memory(self) -> Batch:
        """The batch in page-locked host memory, for a non-blocking copy to a GPU."""
        return Batch(*(t.pin_memory() for t in (self.x, self.src, self.y, self.tgt)))

    def __len__(self) -> int:
        return self.x.shape[0]


def _zero(like: Tensor) -> Tensor:
    return like.new_zeros(())


class StarGANObjective:
    """Losses of one StarGAN-VC(2) training iteration; the ablations are constructor arguments.

    ``adv_loss``: ``lsgan``, ``hinge``, ``bce`` or ``wasserstein``; ``lambdas``: the weight of each
    generator term (a term with weight 0 is not computed); the identity-mapping term is used while
    ``step < id_loss_until``. With a ``classifier`` (StarGAN-VC1), it is trained on real samples in
    :meth:`discriminator_loss` and guides G in :meth:`generator_loss`, both weighted by ``lambdas.cls``; its
    parameters belong with D's optimizer.
    """

    def __init__(
        self,
        generator: GeneratorFn,
        discriminator: DiscriminatorFn,
        classifier: ClassifierFn | None = None,
        *,
        adv_loss: str,
        lambdas: LossWeights,
        id_loss_until: int,
    ) -> None:
        if adv_loss not in ADV_LOSSES:
            raise ValueError(f"unknown adversarial loss '{adv_loss}' (expected one of {ADV_LOSSES})")
        self.generator = generator
        self.discriminator = discriminator
        self.classifier = classifier
        self.adv_loss = adv_loss
        self.lambdas = lambdas
        self.id_loss_until = id_loss_until

    def uses_identity(self, step: int) -> bool:
        """Whether the identity-mapping term is on at iteration ``step`` (StarGAN-VC2 Sec. 4.1)."""
        return self.lambdas.id > 0 and step < self.id_loss_until

    def _uses_classifier(self) -> bool:
        return self.classifier is not None and self.lambdas.cls > 0

    def discriminator_loss(self, batch: Batch) -> tuple[Tensor, Logs]:
        """D's loss: real ``y`` vs ``G(x, src, tgt)``, both judged under the condition ``(src, tgt)``.

        Sec. 3.1: a real target-speaker sample is paired with the source code of the fake it competes with.
        Real and fake go through D in one call (instance norm is per sample, so batching changes nothing).
        Logs: ``d/adv`` (= ``d/real`` + ``d/fake``, the per-side adversarial losses), ``d/cls`` (the
        classifier's cross entropy on real ``y``, with a classifier), ``d/total`` = ``d/adv`` +
        ``lambdas.cls * d/cls``. The adversarial term is not weighted: ``lambdas`` weight G's terms.
        """
        n = len(batch)
        with torch.no_grad():
            fake = self.generator(batch.x, batch.src, batch.tgt)
        logits, _ = self.discriminator(torch.cat([batch.y, fake]), batch.src.repeat(2), batch.tgt.repeat(2))
        real_term, fake_term = adversarial_d_terms(self.adv_loss, logits[:n], logits[n:])
        adv = real_term + fake_term
        total = adv
        logs: Logs = {"d/adv": adv, "d/real": real_term, "d/fake": fake_term}
        if self.classifier is not None:
            cls = _zero(adv)
            if self._uses_classifier():
                cls = classification_loss(self.classifier(batch.y), batch.tgt)
                total = total + self.lambdas.cls * cls
            logs["d/cls"] = cls
        logs["d/total"] = total
        return total, {k: v.detach() for k, v in logs.items()}

    def generator_loss(self, batch: Batch, step: int) -> tuple[Tensor, Logs]:
        """G's loss: ``sum(lambdas[k] * term_k)`` over adversarial, cycle, identity, classification and
        feature-matching terms; terms with weight 0 are skipped (no forward pass).

        The conversion ``G(x, src, tgt)`` and the identity mapping ``G(x, src, src)`` share one call
        (concatenated on the batch axis). Logs ``g/adv``, ``g/cyc``, ``g/id``, ``g/fm`` (0 when off),
        ``g/cls`` (with a classifier) and ``g/total``.
        """
        lam = self.lambdas
        x, src, tgt = batch.x, batch.src, batch.tgt
        n = len(batch)
        if self.uses_identity(step):
            mapped = self.generator(torch.cat([x, x]), src.repeat(2), torch.cat([tgt, src]))
            fake, same = mapped[:n], mapped[n:]
        else:
            fake, same = self.generator(x, src, tgt), None

        terms: Logs = {}  # the terms that are on, unweighted
        if lam.adv > 0 or lam.fm > 0:
            fake_logits, fake_features = self.discriminator(fake, src, tgt)
            if lam.adv > 0:
                terms["g/adv"] = adversarial_g_loss(self.adv_loss, fake_logits)
            if lam.fm > 0:
                # Real features need no graph: a separate no-grad call saves D's backward on them.
                with torch.no_grad():
                    _, real_features = self.discriminator(batch.y, src, tgt)
                terms["g/fm"] = mean_feature_matching_loss(real_features, fake_features)
        if lam.cyc > 0:
            terms["g/cyc"] = cycle_loss(x, self.generator(fake, tgt, src))
        if same is not None:
            terms["g/id"] = identity_loss(x, same)
        if self._uses_classifier():
            terms["g/cls"] = classification_loss(self.classifier(fake), tgt)

        weights = {"g/adv": lam.adv, "g/cyc": lam.cyc, "g/id": lam.id, "g/fm": lam.fm, "g/cls": lam.cls}
        total = _zero(fake)
        for name, term in terms.items():
            total = total + weights[name] * term
        names = ["g/adv", "g/cyc", "g/id", "g/fm"] + (["g/cls"] if self.classifier is not None else [])
        logs = {name: terms.get(name, _zero(fake)).detach() for name in names}
        logs["g/total"] = total.detach()
        return total, logs
