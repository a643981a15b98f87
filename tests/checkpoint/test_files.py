"""Checkpoint files load weights only, whoever asks, and a failed write says why."""

from __future__ import annotations

import errno
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from distgan.checkpoint.files import (
    HASH_NAME,
    UnsafeCheckpointFile,
    digest,
    load_file,
    no_room_reason,
    save_file,
    weights_only_loads,
)
from tests.conftest import REPO_ROOT
from tests.train.helpers import TouchOnLoad, subprocess_env


def test_a_payload_is_refused_by_load_file_and_inside_weights_only_loads(tmp_path: Path) -> None:
    marker, file = tmp_path / "ran", tmp_path / "state.pt"
    torch.save({"weights": torch.ones(3), "payload": TouchOnLoad(marker)}, file)
    with pytest.raises(UnsafeCheckpointFile, match=f"{file}: refused to unpickle"):
        load_file(file)
    # What DeepSpeed and zero_to_fp32 do: ask for weights_only=False explicitly.
    with pytest.raises(UnsafeCheckpointFile), weights_only_loads():
        torch.load(file, map_location="cpu", weights_only=False)
    assert torch.load is not None and not marker.exists()
    torch.save({"weights": torch.ones(3)}, file)
    with weights_only_loads():
        assert torch.equal(torch.load(file, weights_only=False)["weights"], torch.ones(3))
    # The swap is undone: outside the block, torch.load is torch's own again.
    torch.save({"payload": TouchOnLoad(marker)}, file)
    torch.load(file, weights_only=False)
    assert marker.exists()


def test_deepspeeds_own_records_load_and_nothing_else_does(tmp_path: Path) -> None:
    from deepspeed.runtime.zero.config import ZeroStageEnum

    from distgan.checkpoint.files import deepspeed_records

    file = tmp_path / "optim_states.pt"
    torch.save({"zero_stage": ZeroStageEnum(2), "state": torch.zeros(2)}, file)
    with pytest.raises(UnsafeCheckpointFile):
        load_file(file)
    assert load_file(file, deepspeed_records())["zero_stage"] == ZeroStageEnum(2)


def test_digest_sees_every_byte(tmp_path: Path) -> None:
    file = tmp_path / "f"
    file.write_bytes(bytes(1000))
    before = digest(file)
    file.write_bytes(bytes(999) + b"\1")
    assert before["size"] == 1000 and digest(file)["size"] == 1000
    assert digest(file)[HASH_NAME] != before[HASH_NAME]


def test_a_failed_write_is_explained_as_no_room(tmp_path: Path) -> None:
    # torch.save reports a full disk, or the file size limit, only as "unexpected pos".
    code = ("import resource, signal, sys, torch\n"
            "from distgan.checkpoint.files import save_file, no_room_reason\n"
            "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
            "resource.setrlimit(resource.RLIMIT_FSIZE, (10000, 10000))\n"
            "try:\n"
            "    save_file({'w': torch.zeros(100000)}, sys.argv[1])\n"
            "except RuntimeError as err:\n"
            "    print(no_room_reason(err, sys.argv[1]))\n")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "big.pt")], cwd=REPO_ROOT,
                          env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert done.stdout == "no room to write (the file size limit, ulimit -f, is 10000 bytes)\n", done.stderr
    assert no_room_reason(OSError(errno.ENOSPC, "x"), tmp_path) == "no room to write (No space left on device)"
    assert no_room_reason(ValueError("x"), tmp_path) is None
    assert no_room_reason(RuntimeError("unexpected pos"), tmp_path) is None  # room enough, no limit here
    save_file({"w": torch.ones(2)}, tmp_path / "ok.pt")
    assert torch.equal(load_file(tmp_path / "ok.pt")["w"], torch.ones(2))
