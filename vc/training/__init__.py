"""The shared training framework: the resumable loop, checkpoints and distributed helpers.

It knows no model family: :mod:`vc.stargan.trainer` and :mod:`vc.vocoders.finetune` build on it.
"""
