// CUDA kernels of the tpn scan ops. Scheduling only: every multiply-add is a
// step function from scan_step.h, the same code the CPU kernels run.
//
// Layout of the work:
// - One launch per op call for all four directions (not 2W + 2H launches, one
//   per column). The grid covers (n, direction, channel group); one thread
//   block owns a whole plane and loops over the scan axis t internally. The
//   horizontal scans (W steps over lines of H) run beside the vertical ones
//   (H steps over lines of W): for small C a launch per direction pair would
//   leave most SMs idle and run the two pairs' steps one after the other.
// - Each thread owns the elements l = tid, tid + B, ... of every line, with B
//   at most the kernel's __launch_bounds__ (scan_cuda_plan.h). The
//   previous line (y for the forward, the carry v for the reverse scans) lives
//   in a double-buffered shared-memory line, so the l-1/l+1 neighbours of any
//   element are one shared load away; one __syncthreads per step. (A warp-only
//   shuffle design would avoid the barrier but caps the line at 32·R elements;
//   lines here are up to ~2000 long and a block-wide line keeps one code path.)
// - Inputs are staged a tile of `tile` lines at a time into shared memory with
//   loads whose consecutive threads read consecutive addresses: along l for
//   vertical scans (lines are image rows), along t for horizontal scans (lines
//   are image columns, so a tile of 8 float columns is one 32-byte sector per
//   row). This also issues the loads of `tile` steps at once instead of one
//   dependent load per step. If even a one-line tile does not fit, the kernel
//   reads global memory directly (same code, different view).
// - Outputs are written straight from registers: stores do not stall the scan
//   and partial sectors are merged in L2.
// - Shared gates (Cw = 1): the gate gradient sums over channels. A block loops
//   over a group of channels and accumulates into its own plane of a partial
//   buffer (the same thread always owns the same element, so no atomics, and the
//   result is deterministic); the host sums the groups afterwards.
#include <ATen/ATen.h>
#include <ATen/AccumulateType.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <algorithm>
#include <limits>

#include "scan_checks.h"
#include "scan_cuda_kernels.cuh"
#include "scan_cuda_plan.h"
#include "scan_step.h"

namespace tpn {
namespace {

using namespace cuda_detail;

// ---------------------------------------------------------------------------
// Host side.

// Launch of one op: the plan (scan_cuda_plan.h) and, for lines too long for
// shared memory, a global scratch for the line buffers.
struct Launch {
  cuda_plan::Plan plan;
  Geom geom;
  at::Tensor scratch;  // empty unless some line buffers live in global memory
};

// Attribute of the current device. (Not at::cuda::getCurrentDeviceProperties:
// ATen/cuda/CUDAContext.h pulls in cuBLAS/cuSPARSE headers, which a bare CUDA
// toolkit may lack, and this file needs nothing from them.)
int64_t device_attribute(cudaDeviceAttr attr) {
  int value = 0;
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&value, attr, c10::cuda::current_device()));
  return value;
}

template <typename scalar_t, typename acc_t, typename KernelFn>
Launch make_launch(cuda_plan::Kernel which, const ScanShape& sh, int64_t channel_groups, int64_t channels_per_block,
                   const at::Tensor& like, KernelFn kernel) {
  const int64_t longest = std::max(sh.h, sh.w);
  TORCH_CHECK(sh.n * 4 * channel_groups <= std::numeric_limits<int32_t>::max(), "tpn scan: too many planes (",
              sh.n * 4 * channel_groups, ")");
  TORCH_CHECK(longest * (cuda_plan::kMaxTileLines + 1) * 8 < std::numeric_limits<int32_t>::max(),
              "tpn scan: image line of ", longest, " elements is too long");
  // The kernel's own limits on this device: its launch bound is the plan's cap,
  // and cudaFuncGetAttributes lowers it should the device's registers not hold
  // that many threads (the resource check in CI says they do on every arch we
  // build for); its static shared memory comes off the opt-in budget.
  cudaFuncAttributes attr{};
  C10_CUDA_CHECK(cudaFuncGetAttributes(&attr, kernel));
  const int max_threads = std::min(cuda_plan::launch_bound(which), attr.maxThreadsPerBlock);
  const int64_t budget =
      device_attribute(cudaDevAttrMaxSharedMemoryPerBlockOptin) - static_cast<int64_t>(attr.sharedSizeBytes);

  Launch ln;
  ln.plan = cuda_plan::plan_launch(which, sh.n, channel_groups, sh.h, sh.w, sizeof(scalar_t), sizeof(acc_t),
                                   max_threads, budget);
  if (ln.plan.scratch_elems > 0)
    ln.scratch = at::empty({ln.plan.scratch_elems}, like.options().dtype(c10::CppTypeToScalarType<acc_t>::value));
  if (ln.plan.smem > 48 * 1024)  // above the default limit a kernel must opt in
    C10_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        static_cast<int>(ln.plan.smem)));
  ln.geom = Geom{sh.n,
                 sh.dx,
                 sh.c,
                 sh.h,
                 sh.w,
                 sh.cw,
                 {ln.plan.tile[0], ln.plan.tile[1]},
                 {ln.plan.line_in_smem[0], ln.plan.line_in_smem[1]},
                 channels_per_block,
                 channel_groups};
  return ln;
}

// One launch of `kernel` for all four directions on the current stream: the
// sequence every op shares. `args` are the kernel's leading arguments; the Geom
// and line scratch, which the plan chooses, follow them.
template <typename scalar_t, typename acc_t, typename KernelFn, typename... Args>
void launch_all(cuda_plan::Kernel which, const ScanShape& sh, int64_t channel_groups, int64_t channels_per_block,
                const at::Tensor& like, KernelFn kernel, Args... args) {
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const Launch ln = make_launch<scalar_t, acc_t>(which, sh, channel_groups, channels_per_block, like, kernel);
  acc_t* scratch = ln.scratch.defined() ? ln.scratch.data_ptr<acc_t>() : nullptr;
  kernel<<<dim3(static_cast<unsigned>(ln.plan.blocks)), dim3(ln.plan.threads), ln.plan.smem, stream>>>(
      args..., ln.geom, scratch);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

void check_cuda(const at::Tensor& t, const at::Tensor& like, const char* name) {
  TORCH_CHECK(t.is_cuda(), name, " must be a CUDA tensor");
  TORCH_CHECK(t.device() == like.device(), name, " must be on ", like.device(), ", got ", t.device());
  TORCH_CHECK(t.scalar_type() == like.scalar_type(), name, " must be ", like.scalar_type(), ", got ",
              t.scalar_type());
}

at::Tensor scan_cuda(const at::Tensor& x, const at::Tensor& w) {
  const ScanShape sh = check_scan_args(x, w, "x");
  check_cuda(x, x, "x");
  check_cuda(w, x, "w");
  const c10::cuda::CUDAGuard guard(x.device());
  at::Tensor ys = at::empty({sh.n, 4, sh.c, sh.h, sh.w}, x.options());
  if (ys.numel() == 0) return ys;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "tpn_scan_cuda", [&] {
    using acc_t = at::acc_type<scalar_t, true>;
    launch_all<scalar_t, acc_t>(cuda_plan::Kernel::kForward, sh, sh.c, 1, x, scan_forward_kernel<scalar_t, acc_t>,
                                x.data_ptr<scalar_t>(), w.data_ptr<scalar_t>(), ys.data_ptr<scalar_t>());
  });
  return ys;
}

at::Tensor scan_transpose_cuda(const at::Tensor& u, const at::Tensor& w) {
  const ScanShape sh = check_scan_args(u, w, "u");
  check_cuda(u, u, "u");
  check_cuda(w, u, "w");
  const c10::cuda::CUDAGuard guard(u.device());
  at::Tensor z = at::empty({sh.n, 4, sh.c, sh.h, sh.w}, u.options());
  if (z.numel() == 0) return z;
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "tpn_scan_transpose_cuda", [&] {
    using acc_t = at::acc_type<scalar_t, true>;
    launch_all<scalar_t, acc_t>(cuda_plan::Kernel::kTranspose, sh, sh.c, 1, u,
                                scan_reverse_kernel<scalar_t, acc_t, false>,
                                u.data_ptr<scalar_t>(), sh.dx, w.data_ptr<scalar_t>(), nullptr, nullptr,
                                z.data_ptr<scalar_t>(), nullptr);
  });
  return z;
}

std::tuple<at::Tensor, at::Tensor> scan_backward_cuda(const at::Tensor& grad_in, const at::Tensor& x,
                                                      const at::Tensor& w, const at::Tensor& ys) {
  const ScanShape sh = check_scan_args(x, w, "x");
  check_grad(grad_in, sh, "grad", /*contiguous=*/false);
  const at::Tensor grad = grad_in.contiguous();
  check_grad(ys, sh, "ys");
  check_cuda(x, x, "x");
  check_cuda(w, x, "w");
  check_cuda(grad, x, "grad");
  check_cuda(ys, x, "ys");
  const c10::cuda::CUDAGuard guard(x.device());
  at::Tensor grad_x = at::empty({sh.n, 4, sh.c, sh.h, sh.w}, x.options());
  at::Tensor grad_w = at::empty({sh.n, 4, 3, sh.cw, sh.h, sh.w}, x.options());
  // dx has the shape of x: for an x shared by the four scans (Dx = 1), the sum over directions.
  auto shaped = [&](const at::Tensor& per_direction) {
    return sh.dx == 1 ? per_direction.sum(1, /*keepdim=*/true) : per_direction;
  };
  if (grad_x.numel() == 0) {
    grad_w.zero_();  // C = 0 with shared gates: an empty sum
    return {shaped(grad_x), grad_w};
  }

  // Shared gates: split the channels into groups so that there are enough
  // blocks to fill the GPU; each group writes its own partial gate gradient.
  const cuda_plan::ChannelGroups cg =
      cuda_plan::backward_channel_groups(sh.n, sh.c, sh.cw, device_attribute(cudaDevAttrMultiProcessorCount));
  const int64_t groups = cg.groups, per_block = cg.per_block;
  at::Tensor partial = (sh.cw == 1 && groups > 1)
                           ? at::empty({groups, sh.n, 4, 3, 1, sh.h, sh.w}, x.options())
                           : grad_w;

  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "tpn_scan_backward_cuda", [&] {
    using acc_t = at::acc_type<scalar_t, true>;
    launch_all<scalar_t, acc_t>(cuda_plan::Kernel::kBackward, sh, groups, per_block, x,
                                scan_reverse_kernel<scalar_t, acc_t, true>,
                                grad.data_ptr<scalar_t>(), 4, w.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(),
                                ys.data_ptr<scalar_t>(), grad_x.data_ptr<scalar_t>(),
                                partial.data_ptr<scalar_t>());
  });
  if (partial.data_ptr() != grad_w.data_ptr()) at::sum_out(grad_w, partial, {0});
  return {shaped(grad_x), grad_w};
}

}  // namespace

TORCH_LIBRARY_IMPL(tpn, CUDA, m) {
  m.impl("scan", &scan_cuda);
  m.impl("scan_backward", &scan_backward_cuda);
  m.impl("scan_transpose", &scan_transpose_cuda);
}

}  // namespace tpn
