"""EMA codebooks under the engines, in one process: which modules get the all-reduce, and fp32
buffers and statistics in a bf16 run (DeepSpeed's buffer cast, autocast, bf16 inputs)."""

from __future__ import annotations

import torch
from torch import nn

from distgan.models.ema_quantize import EMAResidualVQ, EuclideanCodebook, LocalReducer
from distgan.train.codebook_sync import ProcessGroupReducer, attach_codebook_reducers
from distgan.train.deepspeed_engine import cast_buffers


def model() -> nn.Module:
    return nn.Sequential(nn.BatchNorm1d(4), EMAResidualVQ(4, 3, 8, kmeans_iters=2))


def test_every_codebook_gets_the_process_group_reducer_only_with_several_ranks() -> None:
    alone, several = model(), model()
    assert attach_codebook_reducers(alone, world_size=1) == 0
    assert attach_codebook_reducers(several, world_size=2) == 3
    codebooks = [m for m in several.modules() if isinstance(m, EuclideanCodebook)]
    assert all(isinstance(c.reducer, ProcessGroupReducer) for c in codebooks)
    assert all(isinstance(m.reducer, LocalReducer) for m in alone.modules() if isinstance(m, EuclideanCodebook))


def test_deepspeeds_buffer_cast_leaves_codebooks_fp32() -> None:
    net = model()
    cast_buffers(net, torch.bfloat16)
    assert net[0].running_mean.dtype == torch.bfloat16  # other buffers take the run's dtype
    for name, buffer in net[1].named_buffers():
        assert buffer.dtype == (torch.long if name.endswith("steps") else torch.float32), name


def test_bf16_latents_train_fp32_codebooks_and_come_back_bf16() -> None:
    x = torch.randn(2, 4, 12, generator=torch.Generator().manual_seed(0))
    fp32, bf16 = EMAResidualVQ(4, 2, 8, kmeans_iters=2).train(), EMAResidualVQ(4, 2, 8, kmeans_iters=2).train()
    fp32(x.bfloat16().float())
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the DDP path's autocast; DeepSpeed passes bf16 inputs
        quantized, codes, loss = bf16(x.bfloat16().requires_grad_())
    assert quantized.dtype == torch.bfloat16 and loss.dtype == torch.float32 and codes.dtype == torch.long
    for name, value in fp32.state_dict().items():
        assert bf16.state_dict()[name].dtype == value.dtype, name
        if name.startswith("layers.0."):  # the same fp32 arithmetic on the same (bf16) values; layer 1's
            assert torch.equal(bf16.state_dict()[name], value), name  # input, a bf16 residual, is not
