"""How many times one training step makes the host wait for the GPU (``distgan bench gpu``'s last column).

``tests/train/test_step_syncs_ranks.py`` counts the host reads that Python makes (``.item()``,
``float()``, ...) on the CPU; a GPU also waits for what C++ does by itself (a device-to-host copy
inside an operator, a ``cudaStreamSynchronize``). PyTorch's sync debug mode sees both: in ``warn``
mode every synchronising CUDA call issues a warning, which this counts for one step of each side.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch

MESSAGE = "synchronizing CUDA operation"  # what PyTorch's warning says (c10/cuda, warn_or_error_on_sync)


def count_syncs(run: Callable[[int], object], index: int, device: torch.device) -> int | None:
    """Synchronising CUDA calls made by ``run(index)``; None off CUDA, where nothing is counted."""
    if device.type != "cuda":
        return None
    torch.cuda.synchronize(device)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            run(index)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    torch.cuda.synchronize(device)
    return sum(MESSAGE in str(warning.message) for warning in caught)
