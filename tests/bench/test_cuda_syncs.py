"""``distgan bench gpu``'s count of synchronising CUDA calls: nothing off CUDA; on CUDA, each warning
of PyTorch's sync debug mode during one step (simulated here: no GPU in CI)."""

from __future__ import annotations

import warnings

import pytest
import torch

from distgan.bench import cuda_syncs


def test_nothing_is_counted_off_cuda() -> None:
    ran = []
    assert cuda_syncs.count_syncs(ran.append, 3, torch.device("cpu")) is None
    assert ran == []  # the step is not run again for nothing


def test_each_synchronising_call_of_the_step_is_counted_and_the_mode_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    modes: list[str] = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)
    monkeypatch.setattr(torch.cuda, "set_sync_debug_mode", modes.append)

    def step(index: int) -> None:
        for _ in range(index):  # what PyTorch's warn mode issues for each synchronising call
            warnings.warn("called a synchronizing CUDA operation", UserWarning, stacklevel=1)
            warnings.warn("called a synchronizing CUDA operation", UserWarning, stacklevel=1)  # same place: still counted
        warnings.warn("something else", UserWarning, stacklevel=1)

    assert cuda_syncs.count_syncs(step, 2, torch.device("cuda")) == 4
    assert modes == ["warn", "default"]
    with pytest.raises(ZeroDivisionError):
        cuda_syncs.count_syncs(lambda index: 1 / 0, 0, torch.device("cuda"))
    assert modes[-1] == "default"
