"""The collective counter of ``distgan bench step --traffic`` sees DDP's gradient all-reduce and
distgan's own collectives, with their payload sizes, in a one-rank gloo group."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from distgan.bench.traffic import CollectiveCounter, route_ddp_through_python


@pytest.fixture
def one_rank_group(tmp_path: Path) -> Iterator[None]:
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()


def _backward(model: torch.nn.Module) -> None:
    model(torch.randn(3, 40)).square().sum().backward()


def test_ddp_gradients_and_distgans_collectives_are_counted_with_their_sizes(one_rank_group: None) -> None:
    counter = CollectiveCounter().install()
    try:
        model = torch.nn.Sequential(torch.nn.Linear(40, 300), torch.nn.Linear(300, 7))
        param_bytes = sum(p.numel() * 4 for p in model.parameters())
        unrouted, routed = DistributedDataParallel(model), DistributedDataParallel(model)
        route_ddp_through_python([routed])
        counter.counting = True
        _backward(unrouted)  # DDP's C++ reducer: invisible without the hook
        assert counter.bytes["all_reduce"] == 0
        _backward(routed)
        assert counter.bytes["all_reduce"] == param_bytes
        dist.broadcast(torch.zeros(25, dtype=torch.float64), src=0)
        assert counter.bytes["broadcast"] == 200
        dist.all_gather_object([None], "a word")  # all_gathers inside: the sizes, then the pickled bytes
        assert counter.calls["all_gather"] >= 2
        gathered = counter.bytes["all_gather"]
        dist.all_gather_into_tensor(torch.empty(1000), torch.ones(1000))
        assert counter.bytes["all_gather"] - gathered == 4000
        counter.counting = False
        _backward(routed)
        assert counter.bytes["all_reduce"] < 2 * param_bytes
    finally:
        counter.uninstall()
    assert dist.all_reduce.__name__ == "all_reduce" and not hasattr(dist.all_reduce, "__self__")
    assert "counted" not in repr(dist.distributed_c10d.all_reduce)
