"""StarGAN-VC2 networks built from the ``model`` params section: the generator, the projection
discriminator and StarGAN-VC1's domain classifier.

The constructors have no size defaults of their own: each section (:class:`vc.config.GeneratorConfig`,
:class:`vc.config.DiscriminatorConfig`) maps onto its constructor's keyword arguments, so the config's
defaults (equal to ``params.yaml``'s) are the only ones.
"""

from __future__ import annotations

from vc.config import GeneratorConfig, ModelConfig
from vc.stargan.discriminator import Discriminator, DomainClassifier
from vc.stargan.generator import Generator

__all__ = ["Discriminator", "DomainClassifier", "Generator", "build_generator", "build_models"]


def build_generator(num_speakers: int, feature_dim: int, cfg: GeneratorConfig) -> Generator:
    """The generator of the ``model.generator`` section (training and the exported model both build it)."""
    return Generator(num_speakers, feature_dim, **cfg.model_dump())


def build_models(
    num_speakers: int, feature_dim: int, model_cfg: ModelConfig
) -> tuple[Generator, Discriminator, DomainClassifier | None]:
    """Build G, D and, when ``discriminator.conditioning`` is ``classifier``, the domain classifier."""
    d_cfg = model_cfg.discriminator
    generator = build_generator(num_speakers, feature_dim, model_cfg.generator)
    discriminator = Discriminator(num_speakers, feature_dim, **d_cfg.model_dump())
    classifier = None
    if d_cfg.conditioning == "classifier":
        classifier = DomainClassifier(num_speakers, feature_dim, channels=d_cfg.classifier_channels)
    return generator, discriminator, classifier
