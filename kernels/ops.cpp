// Schema of the tpn propagation ops and the Python module that loads them.
// Kernels: scan_cpu.cpp (CPU) and scan_cuda.cu (CUDA). Autograd and the fake
// (meta) kernels are registered from Python in tpn_cli/ops/compiled.py.
#include <Python.h>
#include <torch/library.h>

extern "C" {
// Importing tpn_cli._C runs the static registrations below; the module itself is empty.
PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}
}

TORCH_LIBRARY(tpn, m) {
  // x: (N, Dx, C, H, W), Dx in {1, 4}; w: (N, 4, 3, Cw, H, W), Cw in {1, C}.
  // Returns the four directional scans (N, 4, C, H, W).
  m.def("scan(Tensor x, Tensor w) -> Tensor");
  // grad: (N, 4, C, H, W) = dL/dys, any strides. Returns (dL/dx with the shape of x
  // (N, Dx, C, H, W): per direction for Dx = 4, summed over the directions for Dx = 1,
  // dL/dw (N, 4, 3, Cw, H, W)); grad is never written.
  m.def("scan_backward(Tensor grad, Tensor x, Tensor w, Tensor ys) -> (Tensor, Tensor)");
  // u: (N, Du, C, H, W), Du in {1, 4}. Returns the exact transpose of each
  // directional scan applied to u: (N, 4, C, H, W).
  m.def("scan_transpose(Tensor u, Tensor w) -> Tensor");
}
