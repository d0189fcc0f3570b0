"""SyncBatchNorm from ``--sync-bn`` on CUDA: 2 processes with half a batch each give the
BatchNorm of the whole batch (outputs, running statistics, gradients). Skips without CUDA
(PyTorch's SyncBatchNorm synchronises GPU tensors only); on one GPU both processes share it
over gloo (NCCL refuses two ranks on one device)."""
from __future__ import annotations

import copy
import logging
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn


def _worker(rank: int, world: int, store: str, out: str) -> None:
    from mmdet_solo.apis.train import check_sync_bn, convert_sync_bn
    dist.init_process_group('gloo', init_method=f'file://{store}', rank=rank, world_size=world)
    device = torch.device('cuda', rank % torch.cuda.device_count())
    torch.cuda.set_device(device)
    torch.manual_seed(0)
    x = torch.randn(8, 4, 6, 6, device=device)
    w = torch.randn(8, 4, 6, 6, device=device)
    model = nn.Sequential(nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4)).to(device)
    reference = copy.deepcopy(model)
    assert convert_sync_bn(model, logging.getLogger('sync_bn_cuda')) == 1
    check_sync_bn(model, distributed=True, device=device)  # allowed on CUDA
    part = slice(rank * 4, rank * 4 + 4)
    xin = x[part].clone().requires_grad_()
    y = model(xin)
    (y * w[part]).sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    for g in grads:  # what DDP would do: the sum over the ranks of the local gradients
        dist.all_reduce(g)
    ref_in = x.clone().requires_grad_()
    y_ref = reference(ref_in)
    (y_ref * w).sum().backward()
    torch.testing.assert_close(y, y_ref[part], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(xin.grad, ref_in.grad[part], rtol=1e-4, atol=1e-5)
    for g, p in zip(grads, reference.parameters()):
        torch.testing.assert_close(g, p.grad, rtol=1e-4, atol=1e-4)
    bn, ref_bn = model[1], reference[1]
    torch.testing.assert_close(bn.running_mean, ref_bn.running_mean, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(bn.running_var, ref_bn.running_var, rtol=1e-4, atol=1e-6)
    open(os.path.join(out, f'ok{rank}'), 'w').close()
    dist.destroy_process_group()


@pytest.mark.skipif(not torch.cuda.is_available(), reason='SyncBatchNorm needs CUDA')
def test_sync_bn_two_processes_match_batchnorm_cuda(tmp_path):
    mp.spawn(_worker, args=(2, str(tmp_path / 'store'), str(tmp_path)), nprocs=2, join=True)
    assert (tmp_path / 'ok0').exists() and (tmp_path / 'ok1').exists()
