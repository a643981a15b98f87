"""EMA codebooks (``distgan.models.ema_quantize``) that are one codebook over every data-parallel rank.

A codebook updated from each rank's slice of the batch alone would drift apart on every rank,
and a checkpoint (rank 0's copy) would keep one rank's codebook. The model module knows nothing
of ranks: each ``EuclideanCodebook`` hands its per-step statistics to a ``StatisticsReducer``.
``attach_codebook_reducers`` gives every codebook of a model ``ProcessGroupReducer`` (all-reduce
over the default process group: gloo on CPU, NCCL on GPUs) when there are several ranks; the
engine builder calls it next to the BatchNorm conversion. Per quantizer layer and training step
that is one all-reduce of the counts, sums, restart picks and per-rank vector counts together, so
the codebooks are those of one process on the concatenated batch (to fp32 summation) and
bit-identical on every rank (every rank receives the same sum and applies the same arithmetic);
a layer's first training step adds an all-reduce, an all-gather and an all-reduce for its
k-means start, once per run. ``tests/train/test_codebook_ranks.py`` checks all of it on two
gloo processes.

How each engine treats the codebook buffers (``cluster_size``, ``embed``, ``embed_avg``,
``inited``, ``steps``), all plain persistent buffers:

- **DDP** (``ddp_engine``): wrapping copies rank 0's buffers to every rank once (they are equal
  already: zeros, or a uniform start drawn from a generator keyed by the seed, not the global
  RNG); ``broadcast_buffers`` is off, so nothing copies them again, and nothing needs to. Rank 0
  writes ``model.state_dict()``, codebooks included; every rank loads that file.
- **DeepSpeed ZeRO-1/2/3** (``deepspeed_engine``, read in DeepSpeed 0.19.8's ``runtime/engine.py``):
  buffers are never partitioned; at initialisation ``_broadcast_model`` broadcasts parameters only
  and ``_cast_module_mixed_precision`` casts parameters only (buffers only with a ``buffer_dtype``
  in the config). distgan's own cast of floating buffers to bf16/fp16 (for ZeRO-3, whose forward
  would otherwise mix dtypes) skips modules with ``keeps_fp32_buffers``, so the codebooks stay fp32.
  ``save_checkpoint`` writes ``module.state_dict()`` (buffers whole, beside ZeRO-3's parameter
  placeholders) from data-parallel rank 0 into the model-states file under the ``zero`` tag, and
  ``load_checkpoint`` loads it into every rank's module. A universal checkpoint (another world
  size) holds no buffers; ``DeepSpeedEngine._restore_buffers`` copies them from that same module
  state, so the codebooks come back there too.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from distgan.models.ema_quantize import EuclideanCodebook, StatisticsReducer


class ProcessGroupReducer:
    """``StatisticsReducer`` over the default process group (read when called: the group may be
    created after the reducer is attached, as Accelerate does inside the engine builder)."""

    @property
    def world_size(self) -> int:
        return dist.get_world_size()

    @property
    def rank(self) -> int:
        return dist.get_rank()

    def all_reduce_sum(self, tensor: torch.Tensor) -> None:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)

    def all_gather(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        gathered = [torch.empty_like(tensor) for _ in range(self.world_size)]
        dist.all_gather(gathered, tensor.contiguous())
        return gathered


def attach_codebook_reducers(model: nn.Module, world_size: int, reducer: StatisticsReducer | None = None) -> int:
    """Give every EMA codebook in ``model`` ``reducer`` (``ProcessGroupReducer`` by default) when
    ``world_size`` > 1; one process keeps the codebooks' own. Returns how many it reached."""
    if world_size <= 1:
        return 0
    reducer = reducer if reducer is not None else ProcessGroupReducer()
    codebooks = [m for m in model.modules() if isinstance(m, EuclideanCodebook)]
    for codebook in codebooks:
        codebook.reducer = reducer
    return len(codebooks)
