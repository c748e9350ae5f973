"""The propagation op: compiled kernels against the reference, gradients, transpose, stability, errors."""
import pytest
import torch

import tpn_cli.ops as ops
from tpn_cli.ops import reference

compiled = pytest.importorskip("tpn_cli.ops.compiled", reason="compiled kernels not built")

# (N, C, H, W): H = 1, W = 1, odd and non-square sizes, batch > 1, C in {1, 2, 3, 32}
SHAPES = [(1, 1, 1, 9), (2, 2, 7, 1), (1, 3, 5, 8), (3, 2, 9, 6), (2, 32, 6, 11), (1, 1, 1, 1)]
GRAD_SHAPES = [(1, 1, 1, 5), (2, 2, 4, 1), (2, 3, 3, 5), (1, 32, 3, 2)]


def make(n, c, h, w, shared, per_direction_input=False, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x_shape = (n, 4, c, h, w) if per_direction_input else (n, c, h, w)
    x = torch.randn(x_shape, generator=g, dtype=dtype)
    raw = torch.randn((n, 4, 3, 1 if shared else c, h, w), generator=g, dtype=dtype)
    return x, ops.normalize_gates(raw)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("per_dir", [False, True])
def test_compiled_equals_reference(shape, shared, per_dir):
    x, w = make(*shape, shared, per_dir)
    torch.testing.assert_close(compiled.scan(x, w), reference.scan(x, w), atol=1e-5, rtol=0)
    torch.testing.assert_close(compiled.scan_transpose(x, w), reference.scan_transpose(x, w), atol=1e-5, rtol=0)


@pytest.mark.parametrize("shape", SHAPES[:4])
def test_compiled_gradients_equal_reference_autograd(shape):
    x, w = make(*shape, shared=True)
    gout = torch.randn(shape[0], 4, *shape[1:])
    grads = []
    for impl in (compiled, reference):
        xs, ws = x.clone().requires_grad_(), w.clone().requires_grad_()
        (impl.scan(xs, ws) * gout).sum().backward()
        grads.append((xs.grad, ws.grad))
    torch.testing.assert_close(grads[0][0], grads[1][0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(grads[0][1], grads[1][1], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("shape", GRAD_SHAPES)
@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("per_dir", [False, True])
def test_gradcheck_float64(shape, shared, per_dir):
    x, w = make(*shape, shared, per_dir, dtype=torch.float64)
    x.requires_grad_()
    w.requires_grad_()
    assert torch.autograd.gradcheck(compiled.scan, (x, w), fast_mode=True)
    assert torch.autograd.gradcheck(compiled.scan_transpose, (x, w), fast_mode=True)


# Sizes past the kernels' block and band widths (16 columns, 16×16 transposes, 8×8
# edges, lines of 64 with masked remainders), ragged and aligned; several images and
# channel groups.
LARGE_SHAPES = [(1, 2, 37, 70), (2, 3, 64, 48), (1, 9, 33, 17), (3, 2, 16, 80)]


@pytest.mark.parametrize("shape", LARGE_SHAPES)
@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("per_dir", [False, True])
def test_large_shapes_forward_and_gradients_equal_reference(shape, shared, per_dir):
    x, w = make(*shape, shared, per_dir, seed=1)
    gout = torch.randn(shape[0], 4, *shape[1:], generator=torch.Generator().manual_seed(2))
    results = []
    for impl in (compiled, reference):
        xs, ws = x.clone().requires_grad_(), w.clone().requires_grad_()
        ys = impl.scan(xs, ws)
        (ys * gout).sum().backward()
        results.append((ys.detach(), impl.scan_transpose(x, w), xs.grad, ws.grad))
    for got, want in zip(*results):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["sum", "row_broadcast", "transposed", "sliced"])
def test_strided_grad_output(kind):
    # The op reads dL/dys with its own strides: ys.sum() hands over all-zero strides.
    x, w = make(2, 3, 20, 19, shared=True)
    g = torch.randn(2, 4, 3, 20, 19, generator=torch.Generator().manual_seed(3))
    grad = {
        "sum": None,
        "row_broadcast": g[..., :1, :].expand_as(g),
        "transposed": g.transpose(-1, -2).contiguous().transpose(-1, -2),
        "sliced": torch.randn(2, 4, 3, 20, 38, generator=torch.Generator().manual_seed(4))[..., ::2],
    }[kind]
    grads = []
    for impl in (compiled, reference):
        xs, ws = x.clone().requires_grad_(), w.clone().requires_grad_()
        ys = impl.scan(xs, ws)
        if grad is None:
            ys.sum().backward()
        else:
            ys.backward(grad)
        grads.append((xs.grad, ws.grad))
    torch.testing.assert_close(grads[0][0], grads[1][0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(grads[0][1], grads[1][1], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("shape", SHAPES)
def test_transpose_is_adjoint(shape):
    # float64 and fixed seeds: the identity is exact, and a float32 sum over a whole
    # image drifts past 1e-5 for some random draws (about 1 in 120 unseeded)
    a, w = make(*shape, shared=False, dtype=torch.float64)
    b = torch.randn(shape[0], 4, *shape[1:], generator=torch.Generator().manual_seed(1),
                    dtype=torch.float64)
    ga = ops.scan(a, w)
    gtb = ops.scan_transpose(b, w)
    for d in range(4):
        lhs = (ga[:, d] * b[:, d]).sum()
        rhs = (a * gtb[:, d]).sum()
        assert abs(lhs - rhs) <= 1e-5 * max(1.0, abs(lhs))


def test_non_contiguous_inputs():
    x, w = make(2, 3, 8, 10, shared=False)
    xt = x.transpose(-1, -2).contiguous().transpose(-1, -2)  # same values, permuted strides
    wide = torch.randn(2, 4, 3, 6, 8, 10)
    wn = wide[:, :, :, ::2]  # a channel-strided view
    wn.copy_(w)
    assert not xt.is_contiguous() and not wn.is_contiguous()
    torch.testing.assert_close(ops.scan(xt, wn), reference.scan(x, w), atol=1e-5, rtol=0)


def test_merge_tie_rule_first_direction_wins():
    ys = torch.zeros(1, 4, 1, 1, 1, requires_grad=True)
    ops.merge_max(ys).sum().backward()
    assert ys.grad.flatten().tolist() == [1.0, 0.0, 0.0, 0.0]


def test_propagate_matches_reference_merge():
    x, w = make(2, 2, 9, 7, shared=True)
    expected = reference.scan(x, w).max(dim=1).values
    torch.testing.assert_close(ops.propagate(x, w), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("size", [(1, 512), (512, 1)])
def test_nonnegative_gates_never_exceed_input_range(size):
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, 1, *size, generator=g) * 2 - 1
    w = ops.normalize_gates(torch.rand(1, 4, 3, 1, *size, generator=g) * 10, margin=0.0)
    assert ops.scan(x, w).abs().max() <= x.abs().max() + 1e-6


@pytest.mark.parametrize("size", [(1, 512), (512, 1)])
def test_signed_gates_grow_at_most_linearly(size):
    # Adversarial: straight-through gate -1 and alternating input (worst case, grows ~2 per step).
    n = max(size)
    x = torch.ones(1, 1, n).reshape(1, 1, *size)
    x.view(-1)[1::2] = -1
    w = torch.zeros(1, 4, 3, 1, *size)
    w[:, :, 1] = -1.0
    y = ops.scan(x, w)
    assert y.abs().max() <= 2 * n + 1
    assert y.abs().max() > n  # the bound is tight: this really is the worst case
    g = torch.Generator().manual_seed(2)
    rnd = ops.normalize_gates(torch.randn(1, 4, 3, 1, *size, generator=g), margin=0.0)
    assert ops.scan(x, rnd).abs().max() <= 2 * n + 1


def test_normalize_gates_bounds_sum():
    w = ops.normalize_gates(torch.randn(2, 4, 3, 5, 6, 7) * 5)
    assert w.abs().sum(dim=2).max() <= 1 - 1e-3 + 1e-6
    small = torch.full((1, 4, 3, 1, 2, 2), 0.1)
    torch.testing.assert_close(ops.normalize_gates(small), small)


@pytest.mark.parametrize(
    "x_shape, w_shape, dtype_w, match",
    [
        ((2, 3, 4), (2, 4, 3, 1, 3, 4), torch.float32, "x must have shape"),
        ((1, 2, 3, 4), (1, 4, 3, 1, 3, 4, 1), torch.float32, r"w must have shape \(N, 4, 3"),
        ((1, 2, 3, 4), (1, 4, 2, 1, 3, 4), torch.float32, r"w must have shape \(N, 4, 3"),
        ((1, 2, 3, 4), (1, 4, 3, 1, 3, 5), torch.float32, "same batch size and spatial size"),
        ((2, 2, 3, 4), (1, 4, 3, 1, 3, 4), torch.float32, "same batch size"),
        ((1, 2, 3, 4), (1, 4, 3, 3, 3, 4), torch.float32, "Cw=3"),
        ((1, 2, 3, 4), (1, 4, 3, 1, 3, 4), torch.float64, "x is torch.float32 but w is torch.float64"),
        ((1, 3, 2, 3, 4), (1, 4, 3, 1, 3, 4), torch.float32, "one input per direction"),
    ],
)
def test_bad_arguments_are_named(x_shape, w_shape, dtype_w, match):
    x = torch.randn(x_shape)
    w = torch.rand(w_shape, dtype=dtype_w)
    with pytest.raises((ValueError, TypeError), match=match):
        ops.scan(x, w)


def test_integer_input_rejected():
    with pytest.raises(TypeError, match="floating-point"):
        ops.scan(torch.ones(1, 1, 2, 2, dtype=torch.int64), torch.zeros(1, 4, 3, 1, 2, 2))


def test_direct_op_call_checks_arguments():
    # torch.ops.tpn.* guards itself too (no crash on a bad direct call).
    with pytest.raises(RuntimeError, match="must be"):
        torch.ops.tpn.scan(torch.randn(1, 2, 3, 4), torch.zeros(1, 4, 3, 1, 3, 4))
    with pytest.raises(RuntimeError, match="contiguous"):
        torch.ops.tpn.scan(torch.randn(1, 1, 1, 4, 3).transpose(-1, -2), torch.zeros(1, 4, 3, 1, 3, 4))


def test_grad_output_is_not_modified():
    x, w = make(1, 2, 5, 6, shared=True)
    x.requires_grad_()
    w.requires_grad_()
    y = ops.scan(x, w)
    g = torch.randn_like(y)
    keep = g.clone()
    y.backward(g)
    assert torch.equal(g, keep)


def test_opcheck_and_compile():
    x, w = make(1, 2, 5, 6, shared=True)
    torch.library.opcheck(torch.ops.tpn.scan.default, (x.unsqueeze(1), w))
    torch.library.opcheck(torch.ops.tpn.scan_transpose.default, (x.unsqueeze(1), w))
    compiled_fn = torch.compile(lambda a, b: ops.propagate(a, b), fullgraph=True, backend="eager")
    torch.testing.assert_close(compiled_fn(x, w), ops.propagate(x, w))


def test_backend_reports_compiled():
    assert ops.backend() == "compiled"


def test_reference_fallback_is_reported(tmp_path):
    # TPN_FORCE_REFERENCE=1 selects the reference, as a missing extension would; doctor says so.
    import json
    import subprocess
    import sys

    code = (
        "import json, torch, tpn_cli.ops as o; from tpn_cli.doctor import report;"
        "x = torch.ones(1, 1, 3, 3); w = torch.zeros(1, 4, 3, 1, 3, 3);"
        "print(json.dumps([o.backend(), o.propagate(x, w).sum().item(), report()['backend']]))"
    )
    env = {**__import__("os").environ, "TPN_FORCE_REFERENCE": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == ["reference", 9.0, "reference"]


def test_missing_extension_falls_back_with_one_line_notice(tmp_path):
    # A real ImportError of tpn_cli._C (as in an install without a compiler): the op gives
    # the compiled results through the reference, a whole CLI run still writes its output,
    # and stderr carries exactly one notice line.
    import os
    import subprocess
    import sys

    from _cli_util import DOG, extract_keys

    x, w = make(2, 3, 7, 9, shared=False)
    torch.save((x, w, ops.propagate(x, w)), tmp_path / "case.pt")
    keys = extract_keys(DOG, tmp_path / "keys", [0, 6])
    out = tmp_path / "dog_color.mp4"
    code = (
        "import sys; sys.modules['tpn_cli._C'] = None\n"  # makes `from .. import _C` fail
        "import torch, tpn_cli.ops as o\n"
        f"x, w, want = torch.load({str(tmp_path / 'case.pt')!r})\n"
        "torch.testing.assert_close(o.propagate(x, w), want)\n"
        "assert o.backend() == 'reference'\n"
        "from tpn_cli.cli import main\n"
        f"sys.argv = ['tpn', 'colorize', {str(DOG)!r}, '--keyframes', {str(keys)!r}, '-o', {str(out)!r}, '-q']\n"
        "main()\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=300)
    assert r.returncode == 0, r.stderr
    assert out.is_file()
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tpn: notice: compiled propagation kernels unavailable")
    assert "reference" in lines[0] and "pip install --no-build-isolation" in lines[0]
