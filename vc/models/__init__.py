"""StarGAN-VC2 networks: the generator, the projection discriminator and StarGAN-VC1's domain classifier."""

from __future__ import annotations

from vc.config import ModelConfig
from vc.models.discriminator import Discriminator, DomainClassifier
from vc.models.generator import Generator

__all__ = ["Discriminator", "DomainClassifier", "Generator", "build_models"]


def build_models(
    num_speakers: int, feature_dim: int, model_cfg: ModelConfig
) -> tuple[Generator, Discriminator, DomainClassifier | None]:
    """Build G, D and, when ``discriminator.conditioning`` is ``classifier``, the domain classifier."""
    d_cfg = model_cfg.discriminator
    generator = Generator(num_speakers, feature_dim, **model_cfg.generator.model_dump())
    discriminator = Discriminator(num_speakers, feature_dim, **d_cfg.model_dump())
    classifier = None
    if d_cfg.conditioning == "classifier":
        classifier = DomainClassifier(num_speakers, feature_dim, channels=d_cfg.classifier_channels)
    return generator, discriminator, classifier
