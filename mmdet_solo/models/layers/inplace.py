"""Sums that reuse their first operand's memory when autograd does not need it."""
import torch


def accumulate(total: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``total + x``: written into ``total`` when autograd is off (inference), a new tensor
    otherwise (``total`` may be an activation's output that backward reads). The same bits
    either way; in place it spares a fresh feature-map allocation, whose page faults cost more
    than the addition on a CPU."""
    return total + x if torch.is_grad_enabled() else total.add_(x)
