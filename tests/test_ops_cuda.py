"""The propagation op on CUDA tensors: the CUDA kernels against the CPU op and the reference.

Skipped (not absent) without a GPU; scripts/check_gpu.sh runs them on a GPU machine.
With a GPU present, an extension built without its CUDA kernels fails here instead
of skipping: that is a build problem to see.
"""
import pytest
import torch

import tpn_cli.ops as ops
from tpn_cli.ops import reference
from tpn_cli.ops.dispatch import compiled_available

from test_ops import make  # the same inputs as the CPU op's tests

pytestmark = [
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU"),
    pytest.mark.skipif(not compiled_available(), reason="compiled kernels not built"),
]


@pytest.fixture(scope="module")
def compiled():
    from tpn_cli.ops import compiled as module

    for op in ("scan", "scan_backward", "scan_transpose"):
        assert torch._C._dispatch_has_kernel_for_dispatch_key(f"tpn::{op}", "CUDA"), (
            f"tpn::{op} has no CUDA kernel: the extension was built without CUDA (TPN_BUILD_CUDA=1)"
        )
    return module


def run(impl, x, w, gout):
    """Forward, transpose and both gradients of one implementation."""
    xs, ws = x.clone().requires_grad_(), w.clone().requires_grad_()
    ys = impl.scan(xs, ws)
    ys.backward(gout)
    return [t.detach().cpu() for t in (ys, impl.scan_transpose(x, w), xs.grad, ws.grad)]


def assert_cuda_matches(oracle, compiled, shape, shared, per_dir, atol=1e-4, rtol=1e-4):
    x, w = make(*shape, shared, per_dir, seed=1)
    gout = torch.randn(shape[0], 4, *shape[1:], generator=torch.Generator().manual_seed(2))
    want = run(oracle, x, w, gout)
    got = run(compiled, x.cuda(), w.cuda(), gout.cuda())
    for name, g, e in zip(("scan", "transpose", "dx", "dw"), got, want):
        torch.testing.assert_close(g, e, atol=atol, rtol=rtol, msg=lambda m: f"{name}: {m}")


# Small shapes against the reference: H = 1, W = 1, odd and non-square, batch > 1.
SMALL = [(1, 1, 1, 9), (2, 2, 7, 1), (1, 3, 5, 8), (3, 2, 9, 6), (2, 32, 6, 11), (1, 1, 1, 1)]


@pytest.mark.parametrize("shape", SMALL)
@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("per_dir", [False, True])
def test_cuda_equals_reference(compiled, shape, shared, per_dir):
    assert_cuda_matches(reference, compiled, shape, shared, per_dir, atol=1e-5, rtol=1e-5)


# Lines past the launch bounds (512 threads forward/transpose, 256 backward), past a
# staged tile of 8 lines, ragged; many channels (the backward's channel groups).
LARGE = [(1, 2, 600, 37), (1, 3, 37, 530), (2, 2, 70, 13), (1, 64, 40, 300), (2, 5, 257, 129)]


@pytest.mark.parametrize("shape", LARGE)
@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("per_dir", [False, True])
def test_cuda_equals_cpu_op_on_large_shapes(compiled, shape, shared, per_dir):
    assert_cuda_matches(compiled, compiled, shape, shared, per_dir)


@pytest.mark.parametrize("size", [(1080, 1920), (2160, 3840)], ids=["1080p", "4K"])
def test_cuda_full_frames_equal_cpu_op(compiled, size):
    # The sizes the launch plan must hold: lines of 1080..3840 elements.
    assert_cuda_matches(compiled, compiled, (1, 2, *size), True, False, atol=1e-3, rtol=1e-3)


@pytest.mark.parametrize("shape", [(1, 1, 1, 5), (2, 2, 4, 1), (2, 3, 3, 5), (1, 32, 3, 2)])
@pytest.mark.parametrize("shared", [True, False])
def test_cuda_gradcheck_float64(compiled, shape, shared):
    x, w = make(*shape, shared, dtype=torch.float64)
    x, w = x.cuda().requires_grad_(), w.cuda().requires_grad_()
    assert torch.autograd.gradcheck(compiled.scan, (x, w), fast_mode=True)
    assert torch.autograd.gradcheck(compiled.scan_transpose, (x, w), fast_mode=True)


def test_cuda_gradcheck_1080p(compiled):
    # float64 at full size: the backward's launch plan (256-thread blocks, several
    # elements a thread, channel-group partial sums) under a finite-difference check.
    x, w = make(1, 2, 1080, 1920, shared=True, dtype=torch.float64)
    x, w = x.cuda().requires_grad_(), w.cuda().requires_grad_()
    assert torch.autograd.gradcheck(compiled.scan, (x, w), fast_mode=True, atol=1e-5, rtol=1e-4)
    assert torch.autograd.gradcheck(compiled.scan_transpose, (x, w), fast_mode=True, atol=1e-5, rtol=1e-4)


def test_cuda_runs_on_the_current_stream(compiled):
    x, w = make(2, 3, 33, 47, shared=True)
    x, w = x.cuda(), w.cuda()
    want = compiled.scan(x, w)
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        got = compiled.scan(x, w)
    side.synchronize()
    torch.testing.assert_close(got, want, atol=0, rtol=0)


def test_cuda_grad_output_is_not_modified(compiled):
    x, w = make(1, 2, 50, 60, shared=True)
    x, w = x.cuda().requires_grad_(), w.cuda().requires_grad_()
    y = compiled.scan(x, w)
    g = torch.randn_like(y)
    keep = g.clone()
    y.backward(g)
    assert torch.equal(g, keep)


def test_cuda_strided_inputs_and_dispatch(compiled):
    x, w = make(2, 3, 20, 19, shared=False)
    xt = x.cuda().transpose(-1, -2).contiguous().transpose(-1, -2)
    assert not xt.is_contiguous()
    assert ops.backend() == "compiled"
    torch.testing.assert_close(ops.scan(xt, w.cuda()).cpu(), reference.scan(x, w), atol=1e-5, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_cuda_half_dtypes_are_refused(compiled, dtype):
    x, w = make(1, 2, 5, 6, shared=True)
    with pytest.raises(TypeError, match="float32 or float64"):
        ops.scan(x.cuda().to(dtype), w.cuda().to(dtype))
    with pytest.raises(RuntimeError, match="float32 or float64"):
        torch.ops.tpn.scan(x.cuda().to(dtype).unsqueeze(1), w.cuda().to(dtype))
