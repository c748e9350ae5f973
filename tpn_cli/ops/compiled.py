"""The compiled kernels (tpn_cli._C) under torch.library: autograd, fake kernels, entry points.

Importing this module raises ImportError when the extension was not built; the
dispatcher then falls back to the reference.
"""
from __future__ import annotations

import torch

from .. import _C  # noqa: F401  (loading it registers torch.ops.tpn.*)


@torch.library.register_fake("tpn::scan")
def _scan_fake(x, w):
    n, _, c, h, wd = x.shape
    return x.new_empty((n, 4, c, h, wd))


@torch.library.register_fake("tpn::scan_backward")
def _scan_backward_fake(grad, x, w, ys):
    return x.new_empty(x.shape), w.new_empty(w.shape)


@torch.library.register_fake("tpn::scan_transpose")
def _scan_transpose_fake(u, w):
    n, _, c, h, wd = u.shape
    return u.new_empty((n, 4, c, h, wd))


def _sum_if_shared(per_direction: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Gradient for an input given once for all directions (dim 1 of size 1) is the sum."""
    return per_direction.sum(dim=1, keepdim=True) if like.shape[1] == 1 else per_direction


def _scan_setup(ctx, inputs, output):
    x, w = inputs
    ctx.save_for_backward(x, w, output)


def _scan_backward(ctx, grad):
    x, w, ys = ctx.saved_tensors
    # dx comes back with x's shape (summed over directions when x is shared); the op
    # takes grad with any strides, so no .contiguous() copy here.
    return torch.ops.tpn.scan_backward(grad, x, w, ys)


def _transpose_setup(ctx, inputs, output):
    u, w = inputs
    ctx.save_for_backward(u, w)


def _transpose_backward(ctx, grad):
    # z = λ ⊙ (I - Aᵀ)⁻¹ u. Its adjoint in u is the forward scan r = G·grad, and
    # dL/dp_k = v ⊙ (r_neighbour - grad): exactly scan_backward with (g=u, x=grad, ys=r).
    u, w = ctx.saved_tensors
    grad = grad.contiguous()
    r = torch.ops.tpn.scan(grad, w)
    u4 = u.expand(-1, 4, -1, -1, -1)  # scan_backward reads grad with any strides
    _, dw = torch.ops.tpn.scan_backward(u4, grad, w, r)
    return _sum_if_shared(r, u), dw


torch.library.register_autograd("tpn::scan", _scan_backward, setup_context=_scan_setup)
torch.library.register_autograd("tpn::scan_transpose", _transpose_backward, setup_context=_transpose_setup)


def _five_d(x: torch.Tensor) -> torch.Tensor:
    return (x if x.dim() == 5 else x.unsqueeze(1)).contiguous()


def scan(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Compiled four-direction scan; see :func:`tpn_cli.ops.scan`."""
    return torch.ops.tpn.scan(_five_d(x), w.contiguous())


def scan_transpose(u: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Compiled exact transpose; see :func:`tpn_cli.ops.scan_transpose`."""
    return torch.ops.tpn.scan_transpose(_five_d(u), w.contiguous())
