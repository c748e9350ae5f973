"""One dtype policy for the scan on every backend: float32 and float64 run, float16 and
bfloat16 are refused with a TypeError that names the cast (tpn_cli.ops.validate.SCAN_DTYPES)."""
import pytest
import torch

import tpn_cli.ops as ops
from tpn_cli.ops import reference
from tpn_cli.ops.dispatch import compiled_available


def backends():
    yield pytest.param("reference", id="reference")
    yield pytest.param(
        "compiled", id="compiled",
        marks=pytest.mark.skipif(not compiled_available(), reason="compiled kernels not built"),
    )


def _impl(name):
    if name == "reference":
        return reference
    from tpn_cli.ops import compiled

    return compiled


def _inputs(dtype):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 2, 5, 6, generator=g).to(dtype)
    w = ops.normalize_gates(torch.randn(1, 4, 3, 1, 5, 6, generator=g)).to(dtype)
    return x, w


@pytest.mark.parametrize("backend", backends())
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_supported_dtypes_run_on_every_backend(monkeypatch, backend, dtype):
    monkeypatch.setattr(ops, "get_impl", lambda: _impl(backend))
    x, w = _inputs(dtype)
    for fn in (ops.scan, ops.scan_transpose):
        out = fn(x, w)
        assert out.dtype == dtype
        torch.testing.assert_close(out, getattr(reference, fn.__name__)(x, w), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("backend", backends())
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_dtypes_are_refused_on_every_backend(monkeypatch, backend, dtype):
    monkeypatch.setattr(ops, "get_impl", lambda: _impl(backend))
    x, w = _inputs(dtype)
    for fn in (ops.scan, ops.scan_transpose, ops.propagate):
        with pytest.raises(TypeError, match=r"float32 or float64.*\.float\(\)"):
            fn(x, w)
    # The documented cast works.
    assert ops.scan(x.float(), w.float()).dtype == torch.float32


@pytest.mark.skipif(not compiled_available(), reason="compiled kernels not built")
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_compiled_op_refuses_half_dtypes_when_called_directly(dtype):
    # torch.ops.tpn.* bypasses the Python checks; its own check (kernels/scan_checks.h)
    # applies the same policy.
    x, w = _inputs(dtype)
    with pytest.raises(RuntimeError, match="float32 or float64"):
        torch.ops.tpn.scan(x.unsqueeze(1), w)
    with pytest.raises(RuntimeError, match="float32 or float64"):
        torch.ops.tpn.scan_transpose(x.unsqueeze(1), w)
