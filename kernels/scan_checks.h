// Host-side argument checks shared by the CPU and CUDA kernels. The Python layer
// (tpn_cli/ops/validate.py) gives friendlier messages first; these guard direct
// torch.ops.tpn calls so a bad tensor is an error, never a crash or silent garbage.
#pragma once
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <torch/library.h>

namespace tpn {

struct ScanShape {
  int64_t n, dx, c, h, w, cw;
};

inline ScanShape check_scan_args(const at::Tensor& x, const at::Tensor& w, const char* xname) {
  TORCH_CHECK(x.dim() == 5, xname, " must be (N, D, C, H, W) with D in {1, 4}, got ", x.sizes());
  TORCH_CHECK(x.size(1) == 1 || x.size(1) == 4, xname, " dim 1 must be 1 or 4 directions, got ", x.size(1));
  TORCH_CHECK(w.dim() == 6 && w.size(1) == 4 && w.size(2) == 3,
              "w must be (N, 4, 3, Cw, H, W), got ", w.sizes());
  TORCH_CHECK(w.size(0) == x.size(0) && w.size(4) == x.size(3) && w.size(5) == x.size(4),
              "w ", w.sizes(), " does not match ", xname, " ", x.sizes(), " in N, H or W");
  TORCH_CHECK(w.size(3) == 1 || w.size(3) == x.size(2),
              "w must have 1 or C=", x.size(2), " gate channels, got ", w.size(3));
  TORCH_CHECK(x.scalar_type() == w.scalar_type(), xname, " and w must share a dtype, got ",
              x.scalar_type(), " and ", w.scalar_type());
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble,
              xname, " must be float32 or float64, got ", x.scalar_type());
  TORCH_CHECK(x.device() == w.device(), xname, " and w must be on one device");
  TORCH_CHECK(x.is_contiguous() && w.is_contiguous(), xname, " and w must be contiguous");
  return {x.size(0), x.size(1), x.size(2), x.size(3), x.size(4), w.size(3)};
}

inline void check_grad(const at::Tensor& t, const ScanShape& s, const char* name, bool contiguous = true) {
  TORCH_CHECK(t.dim() == 5 && t.size(0) == s.n && t.size(1) == 4 && t.size(2) == s.c &&
                  t.size(3) == s.h && t.size(4) == s.w,
              name, " must be (N, 4, C, H, W) = (", s.n, ", 4, ", s.c, ", ", s.h, ", ", s.w, "), got ",
              t.sizes());
  TORCH_CHECK(!contiguous || t.is_contiguous(), name, " must be contiguous");
}

}  // namespace tpn
