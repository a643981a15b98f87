"""Reading and writing checkpoint files so that nothing in them can run code or go unnoticed.

Trust: every ``.pt`` file distgan reads is unpickled with ``torch.load(weights_only=True)``:
tensors, numbers, strings and containers only, plus the few plain records DeepSpeed stores in
its own files (its loss scaler, ZeRO stage enum and fragment addresses; ``DEEPSPEED_RECORDS``).
DeepSpeed's loaders and ``zero_to_fp32`` call ``torch.load(weights_only=False)`` themselves, so
distgan runs them inside ``weights_only_loads()``, which makes every ``torch.load`` in the block
load weights only. A file that holds anything else (a pickled object with code behind it) is
refused with ``UnsafeCheckpointFile`` naming it, before anything in it runs.

Integrity: ``digest`` fingerprints a file's bytes with XXH3-128 (about 18 GB/s here, against
1.6 GB/s for SHA-256: a corruption check, not a signature; what keeps a stranger's file from
running code is ``weights_only``). The checkpoint's completion marker lists every file with its
size and digest (``format.py``).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import mmap
import os
import pickle
import re
import resource
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import xxhash

HASH_NAME = "xxh3_128"
# errno values that mean "no room": disk full, quota exceeded, file size limit.
NO_ROOM = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class UnsafeCheckpointFile(ValueError):
    """A checkpoint file holds something ``weights_only`` loading refuses (it could run code)."""


def _unsafe_reason(err: pickle.UnpicklingError) -> str:
    """What the weights-only unpickler refused, without torch's advice to load it anyway."""
    found = re.search(r"GLOBAL ([\w.]+)", str(err))
    if found:
        return f"it pickles {found.group(1)}, which loading would call (distgan loads weights only)"
    return " ".join(str(err).split())[:300]


def deepspeed_records() -> list[type]:
    """The classes DeepSpeed pickles into its checkpoint files: plain records, no code runs
    when they are rebuilt. Imported only when DeepSpeed files are read."""
    from deepspeed.runtime.fp16.loss_scaler import DynamicLossScaler, LossScaler
    from deepspeed.runtime.zero.config import ZeroStageEnum
    from deepspeed.utils.tensor_fragment import fragment_address

    return [LossScaler, DynamicLossScaler, ZeroStageEnum, fragment_address]


def numpy_array_globals() -> list[Any]:
    """What a pickled numpy array needs (the RNG states of checkpoints written by distgan 0.1)."""
    import numpy as np

    return [np._core.multiarray._reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]


def load_file(path: Path, extra_globals: list[Any] | tuple[Any, ...] = (), mmap: bool = False) -> Any:
    """``torch.load`` of a checkpoint file, weights only, onto the CPU. With ``mmap`` the tensor
    data is mapped, not read: a cheap check that a file unpickles safely, before a library that
    would unpickle it otherwise (and may be inside a collective meanwhile) gets it."""
    try:
        with torch.serialization.safe_globals(list(extra_globals)):
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        raise UnsafeCheckpointFile(f"{path}: refused to unpickle it: {_unsafe_reason(err)}") from err


@contextlib.contextmanager
def weights_only_loads(extra_globals: list[Any] | tuple[Any, ...] = ()) -> Iterator[None]:
    """Every ``torch.load`` inside the block loads weights only, whatever its caller asked for.

    For libraries that ask for ``weights_only=False`` (DeepSpeed's checkpoint loading and
    ``zero_to_fp32``). Not thread-safe: it swaps ``torch.load`` for the duration.
    """
    original = torch.load

    @functools.wraps(original)
    def safe_load(f: Any, *args: Any, **kwargs: Any) -> Any:
        kwargs["weights_only"] = True
        try:
            return original(f, *args, **kwargs)
        except pickle.UnpicklingError as err:
            raise UnsafeCheckpointFile(f"{f}: refused to unpickle it: {_unsafe_reason(err)}") from err

    torch.load = safe_load
    try:
        with torch.serialization.safe_globals(list(extra_globals)):
            yield
    finally:
        torch.load = original


def save_file(obj: Any, path: Path) -> None:
    """``torch.save`` to ``path`` (its digest is taken afterwards, from the page cache: hashing the
    bytes on their way through a Python file object costs a copy of every byte)."""
    torch.save(obj, path)


def digest(path: Path, fsync: bool = False) -> dict[str, Any]:
    """``{"size", HASH_NAME}`` of a file's bytes, hashed straight from the page cache (mmap);
    with ``fsync``, also flush the file to the disk."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            value = xxhash.xxh3_128(b"").hexdigest()
        else:
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                value = xxhash.xxh3_128(mapped).hexdigest()
        if fsync:
            os.fsync(f.fileno())
    return {"size": size, HASH_NAME: value}


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def no_room_reason(err: BaseException, folder: Path) -> str | None:
    """Why a failed write means the disk (or a quota, or the file size limit) ran out, or None.

    ``torch.save`` reports a failed write as a ``RuntimeError`` ("unexpected pos") without its
    errno; then the free space and the process's file size limit tell.
    """
    if isinstance(err, OSError) and err.errno in NO_ROOM:
        return f"no room to write ({os.strerror(err.errno)})"
    if not isinstance(err, RuntimeError):
        return None
    with contextlib.suppress(OSError):
        free = shutil.disk_usage(folder).free
        if free < 64 << 20:
            return f"no room to write (disk full: {free / 2**20:.1f} MiB free on {folder})"
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit != resource.RLIM_INFINITY:
        return f"no room to write (the file size limit, ulimit -f, is {limit} bytes)"
    return None
