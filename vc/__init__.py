"""StarGAN-VC2 voice conversion: corpora, WORLD features, models, training, conversion, metrics, tracking."""

__version__ = "0.1.0"

import warnings as _warnings

# pyworld 0.3.5 and pysptk 1.0.1 import pkg_resources (setuptools<81 is pinned for it); the warning is theirs.
_warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
