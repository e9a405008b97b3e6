"""StarGAN-VC2 (and StarGAN-VC, its ablations): the model family's wing, beside :mod:`vc.vocoders`.

- :mod:`vc.stargan.layers`, :mod:`vc.stargan.generator`, :mod:`vc.stargan.discriminator`: the networks;
  :mod:`vc.stargan.networks` builds them from the ``model`` params section;
- :mod:`vc.stargan.losses` (one idea each) and :mod:`vc.stargan.objective` (their weighted sum per update);
- :mod:`vc.stargan.data`: random crops of normalised features, random source and target speakers;
- :mod:`vc.stargan.trainer`: the StarGAN updates on the shared resumable loop (:mod:`vc.training`);
- :mod:`vc.stargan.store`: the exported model that conversion loads.

The package imports none of them: code that needs only the store does not build the training graph.
"""
