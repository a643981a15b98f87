"""Stand-ins for the original packages' heavy imports, so that their step runs on a bare GPU machine.

``hifi-gan`` and ``bigvgan`` import librosa (for one function, the Slaney mel filterbank) and
matplotlib (to plot spectrograms in their logs) at module level. On a machine with only torch,
every missing wheel has to be carried in: librosa brings numba and llvmlite (about 64 MB), and
the GPU machine's carry limit is 64 MiB in all, so with them the benchmark could not be carried
at all. What the timed step uses of them is the filterbank, computed once and cached by both
originals, which torchaudio computes too (the same Slaney scale and normalisation; equal to
librosa's to 2e-5 of the largest weight, as torchaudio computes in float32,
``tests/bench/test_reference_imports.py``).

``provide_missing`` registers a stand-in only for a module that is NOT installed; where librosa
and matplotlib are present (this machine, CI) the originals import their own. A stand-in raises
a clear error for anything but what the step uses.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import types

import numpy as np


def slaney_mel(sr: float, n_fft: int, n_mels: int = 128, fmin: float = 0.0, fmax: float | None = None,
               **unused: object) -> np.ndarray:
    """librosa.filters.mel's default filterbank (Slaney scale and area normalisation), [n_mels, 1 + n_fft // 2]
    float32, by torchaudio; positional arguments accepted, as old callers pass them."""
    from torchaudio.functional import melscale_fbanks

    if unused.get("htk") or unused.get("norm", "slaney") != "slaney":
        raise NotImplementedError("the librosa stand-in computes only the Slaney filterbank (htk=False, norm='slaney')")
    fbank = melscale_fbanks(1 + n_fft // 2, float(fmin), float(sr / 2 if fmax is None else fmax), n_mels,
                            int(sr), norm="slaney", mel_scale="slaney")
    return fbank.T.contiguous().numpy().astype(np.float32)


def _module(name: str, **attributes: object) -> types.ModuleType:
    module = types.ModuleType(name, f"distgan's stand-in for {name} (distgan/bench/reference_imports.py)")
    module.__spec__ = importlib.machinery.ModuleSpec(name, None)  # what find_spec reads once it is registered
    module.__dict__.update(attributes)

    def missing(attribute: str) -> object:
        raise AttributeError(f"{name}.{attribute}: {name.split('.')[0]} is not installed and distgan's benchmark "
                             "stand-in provides only what the original training step uses")

    module.__getattr__ = missing
    return module


def _stand_ins(name: str) -> dict[str, types.ModuleType]:
    if name == "librosa":
        filters = _module("librosa.filters", mel=slaney_mel)
        util = _module("librosa.util")
        return {"librosa": _module("librosa", filters=filters, util=util),
                "librosa.filters": filters, "librosa.util": util}
    pylab = _module("matplotlib.pylab")
    return {"matplotlib": _module("matplotlib", use=lambda *args, **kwargs: None, pylab=pylab),
            "matplotlib.pylab": pylab}


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # a finder that refuses it
        return False


def provide_missing() -> list[str]:
    """Register stand-ins for librosa and matplotlib where they are not installed; the ones registered."""
    provided = []
    for name in ("librosa", "matplotlib"):
        if name not in sys.modules and not _installed(name):
            sys.modules.update(_stand_ins(name))
            provided.append(name)
    return provided
