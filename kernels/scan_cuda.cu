// CUDA kernels of the tpn scan ops. Scheduling only: every multiply-add is a
// step function from scan_step.h, the same code the CPU kernels run.
//
// Layout of the work (see docs/reference/propagation-kernels.md §8):
// - One launch per direction group: horizontal (L->R, R->L) and vertical
//   (T->B, B->T). The grid covers (n, direction in group, channel group); one
//   thread block owns a whole plane and loops over the scan axis t internally.
//   No launch per column, so the launch count is 2 per op call, not 2W + 2H.
// - Each thread owns the elements l = tid, tid + B, ... of every line. The
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

#include "scan_checks.h"
#include "scan_step.h"

namespace tpn {
namespace {

constexpr int kMaxThreads = 512;
constexpr int64_t kMaxTileLines = 8;  // 8 floats = one 32-byte sector per row

// A plane seen as lines: element (t, l) is at ptr[(t - t0) * st + l * sl].
// Global planes use the direction's strides (negative st for reversed scans,
// t0 = 0); staged tiles in shared memory use st = L, sl = 1, t0 = first line.
template <typename T>
struct LineView {
  T* ptr;
  int64_t st, sl, t0;
  __device__ __forceinline__ T& operator()(int64_t t, int64_t l) const {
    return ptr[(t - t0) * st + l * sl];
  }
};

struct Geom {
  int64_t n, dx, c, h, w, cw;
  int group;                   // 0: horizontal pair, 1: vertical pair
  int tile;                    // lines per staged tile; 0 = read global memory directly
  int64_t channels_per_block;  // channels looped over inside one block
  int64_t channel_groups;      // blocks per (n, direction)
};

// View of one H×W plane in line form for direction d (matches reference.to_lines).
template <typename T>
__device__ __forceinline__ LineView<T> plane_view(T* plane, int d, int64_t H, int64_t W) {
  switch (d) {
    case kLeftToRight: return {plane, 1, W, 0};                  // t = w, l = h
    case kRightToLeft: return {plane + (W - 1), -1, W, 0};       // t = W-1-w
    case kTopToBottom: return {plane, W, 1, 0};                  // t = h, l = w
    default:           return {plane + (H - 1) * W, -W, 1, 0};   // t = H-1-h
  }
}

// Which plane a block works on, decoded from blockIdx.x.
struct BlockWork {
  int64_t n, g, c_begin, c_end;
  int d;
};

__device__ __forceinline__ BlockWork block_work(const Geom& s) {
  const int64_t b = blockIdx.x;
  BlockWork wk;
  wk.g = b % s.channel_groups;
  const int64_t rest = b / s.channel_groups;
  wk.d = s.group * 2 + static_cast<int>(rest % 2);
  wk.n = rest / 2;
  wk.c_begin = wk.g * s.channels_per_block;
  wk.c_end = min(s.c, wk.c_begin + s.channels_per_block);
  return wk;
}

// Copies lines [t_first, t_first + nlines) of `src` into dst (nlines × L,
// row-major by line); lines outside [0, T) are skipped. Consecutive threads
// take consecutive global addresses: along t for horizontal scans, along l for
// vertical ones.
template <typename T>
__device__ void stage_lines(T* __restrict__ dst, const LineView<const T>& src, int64_t t_first,
                            int nlines, int64_t T_len, int L, bool horizontal) {
  const int total = nlines * L;
  for (int idx = threadIdx.x; idx < total; idx += blockDim.x) {
    int j, l;
    if (horizontal) { l = idx / nlines; j = idx - l * nlines; }
    else            { j = idx / L;      l = idx - j * L; }
    const int64_t t = t_first + j;
    if (t >= 0 && t < T_len) dst[j * L + l] = src(t, l);
  }
}

// Shared memory: [line buffers: 2 × L acc_t][staged tiles: scalar_t].
extern __shared__ __align__(16) unsigned char tpn_smem[];

__host__ __device__ inline int64_t align16(int64_t bytes) { return (bytes + 15) / 16 * 16; }

// ---------------------------------------------------------------------------
// Forward: ys = the four directional scans of x.
template <typename scalar_t, typename acc_t>
__global__ void scan_forward_kernel(const scalar_t* __restrict__ x, const scalar_t* __restrict__ w,
                                    scalar_t* __restrict__ ys, Geom s, acc_t* line_scratch) {
  const BlockWork wk = block_work(s);
  const int d = wk.d;
  const bool horizontal = s.group == 0;
  const int64_t HW = s.h * s.w;
  const int64_t T = horizontal ? s.w : s.h, L = horizontal ? s.h : s.w;
  const int tile = s.tile;
  const int64_t step = tile > 0 ? tile : T;

  acc_t* line = line_scratch ? line_scratch + static_cast<int64_t>(blockIdx.x) * 2 * L
                             : reinterpret_cast<acc_t*>(tpn_smem);
  scalar_t* tiles = reinterpret_cast<scalar_t*>(
      tpn_smem + (line_scratch ? 0 : align16(2 * L * static_cast<int64_t>(sizeof(acc_t)))));
  const int64_t slot = static_cast<int64_t>(tile) * L;  // scalars per staged array

  for (int64_t c = wk.c_begin; c < wk.c_end; ++c) {
    const int64_t xd = s.dx == 4 ? d : 0;
    const int64_t cw = s.cw == 1 ? 0 : c;
    const LineView<const scalar_t> gx = plane_view(x + ((wk.n * s.dx + xd) * s.c + c) * HW, d, s.h, s.w);
    LineView<const scalar_t> gp[3];
    for (int k = 0; k < 3; ++k)
      gp[k] = plane_view(w + (((wk.n * 4 + d) * 3 + k) * s.cw + cw) * HW, d, s.h, s.w);
    const LineView<scalar_t> out = plane_view(ys + ((wk.n * 4 + d) * s.c + c) * HW, d, s.h, s.w);

    acc_t* prev = line;
    acc_t* cur = line + L;
    for (int64_t a = 0; a < T; a += step) {
      const int64_t b = min(T, a + step);
      LineView<const scalar_t> vx = gx, vp[3] = {gp[0], gp[1], gp[2]};
      if (tile > 0) {
        // The previous step ended with a barrier, so nobody still reads the tiles.
        stage_lines(tiles, gx, a, tile, T, static_cast<int>(L), horizontal);
        vx = {tiles, L, 1, a};
        for (int k = 0; k < 3; ++k) {
          stage_lines(tiles + (k + 1) * slot, gp[k], a, tile, T, static_cast<int>(L), horizontal);
          vp[k] = {tiles + (k + 1) * slot, L, 1, a};
        }
        __syncthreads();
      }
      for (int64_t t = a; t < b; ++t) {
        for (int64_t l = threadIdx.x; l < L; l += blockDim.x) {
          const acc_t xv = static_cast<acc_t>(vx(t, l));
          acc_t y;
          if (t == 0) {
            y = xv;  // first line: no previous line, y = x
          } else {
            const bool has_lo = l > 0, has_hi = l + 1 < L;
            y = forward_step<acc_t>(xv, static_cast<acc_t>(vp[0](t, l)), static_cast<acc_t>(vp[1](t, l)),
                                    static_cast<acc_t>(vp[2](t, l)), has_lo ? prev[l - 1] : acc_t(0),
                                    prev[l], has_hi ? prev[l + 1] : acc_t(0), has_lo, has_hi);
          }
          cur[l] = y;
          out(t, l) = static_cast<scalar_t>(y);
        }
        __syncthreads();  // line t complete before anyone reads it as "previous"
        acc_t* tmp = prev; prev = cur; cur = tmp;
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Reverse scans: the carry v runs from the last line to the first.
//   kGrad = false: transpose, out = λ ⊙ v with v seeded by u.
//   kGrad = true:  backward, out = dx = λ ⊙ v, plus the gate gradients.
template <typename scalar_t, typename acc_t, bool kGrad>
__global__ void scan_reverse_kernel(const scalar_t* __restrict__ g,   // u or grad: (N, Dg, C, H, W)
                                    int64_t dg,
                                    const scalar_t* __restrict__ w,
                                    const scalar_t* __restrict__ x,   // kGrad only
                                    const scalar_t* __restrict__ ys,  // kGrad only
                                    scalar_t* __restrict__ out,       // (N, 4, C, H, W)
                                    scalar_t* __restrict__ gw,        // kGrad only, see gw_plane
                                    Geom s, acc_t* line_scratch) {
  const BlockWork wk = block_work(s);
  const int d = wk.d;
  const bool horizontal = s.group == 0;
  const int64_t HW = s.h * s.w;
  const int64_t T = horizontal ? s.w : s.h, L = horizontal ? s.h : s.w;
  const int tile = s.tile;
  const int64_t step = tile > 0 ? tile : T;

  acc_t* line = line_scratch ? line_scratch + static_cast<int64_t>(blockIdx.x) * 2 * L
                             : reinterpret_cast<acc_t*>(tpn_smem);
  scalar_t* tiles = reinterpret_cast<scalar_t*>(
      tpn_smem + (line_scratch ? 0 : align16(2 * L * static_cast<int64_t>(sizeof(acc_t)))));
  // Staged arrays: g (tile lines), gates (tile + 1 lines: line t and the child
  // line t + 1), and for kGrad x (tile lines) and ys (the tile's previous lines).
  const int64_t gslot = static_cast<int64_t>(tile) * L, pslot = static_cast<int64_t>(tile + 1) * L;

  for (int64_t c = wk.c_begin; c < wk.c_end; ++c) {
    const int64_t cw = s.cw == 1 ? 0 : c;
    const LineView<const scalar_t> gg =
        plane_view(g + ((wk.n * dg + (dg == 4 ? d : 0)) * s.c + c) * HW, d, s.h, s.w);
    LineView<const scalar_t> gp[3];
    for (int k = 0; k < 3; ++k)
      gp[k] = plane_view(w + (((wk.n * 4 + d) * 3 + k) * s.cw + cw) * HW, d, s.h, s.w);
    const LineView<scalar_t> vout = plane_view(out + ((wk.n * 4 + d) * s.c + c) * HW, d, s.h, s.w);
    LineView<const scalar_t> gx{}, gy{};
    LineView<scalar_t> vgw[3];
    // Shared gates: the first channel of the block writes, later ones add.
    const bool accumulate = kGrad && s.cw == 1 && c > wk.c_begin;
    if constexpr (kGrad) {
      gx = plane_view(x + ((wk.n * s.dx + (s.dx == 4 ? d : 0)) * s.c + c) * HW, d, s.h, s.w);
      gy = plane_view(ys + ((wk.n * 4 + d) * s.c + c) * HW, d, s.h, s.w);
      for (int k = 0; k < 3; ++k) {
        // Per-channel gates: grad_w (N, 4, 3, C, H, W). Shared gates: partial
        // buffer (G, N, 4, 3, H, W), which is grad_w itself when G = 1.
        const int64_t plane = s.cw == 1 ? ((wk.g * s.n + wk.n) * 4 + d) * 3 + k
                                        : ((wk.n * 4 + d) * 3 + k) * s.cw + c;
        vgw[k] = plane_view(gw + plane * HW, d, s.h, s.w);
      }
    }

    acc_t* nxt = line;  // v of line t + 1
    acc_t* cur = line + L;
    for (int64_t b = T; b > 0; b -= step) {
      const int64_t a = max(int64_t(0), b - step);
      LineView<const scalar_t> vg = gg, vp[3] = {gp[0], gp[1], gp[2]}, vx = gx, vy = gy;
      if (tile > 0) {
        const int Li = static_cast<int>(L);
        stage_lines(tiles, gg, a, tile, T, Li, horizontal);
        vg = {tiles, L, 1, a};
        for (int k = 0; k < 3; ++k) {
          scalar_t* dst = tiles + gslot + k * pslot;
          stage_lines(dst, gp[k], a, tile + 1, T, Li, horizontal);
          vp[k] = {dst, L, 1, a};
        }
        if constexpr (kGrad) {
          scalar_t* dx_ = tiles + gslot + 3 * pslot;
          stage_lines(dx_, gx, a, tile, T, Li, horizontal);
          vx = {dx_, L, 1, a};
          scalar_t* dy_ = dx_ + gslot;
          stage_lines(dy_, gy, a - 1, tile, T, Li, horizontal);
          vy = {dy_, L, 1, a - 1};
        }
        __syncthreads();
      }
      for (int64_t t = b - 1; t >= a; --t) {
        for (int64_t l = threadIdx.x; l < L; l += blockDim.x) {
          const bool has_lo = l > 0, has_hi = l + 1 < L;
          const acc_t gv = static_cast<acc_t>(vg(t, l));
          acc_t v;
          if (t == T - 1) {
            v = gv;  // last line: no children
          } else {
            // Child l+1 reaches l through its gate 0, child l through gate 1,
            // child l-1 through gate 2 (all stored on line t + 1).
            v = backward_carry<acc_t>(
                gv, has_lo ? static_cast<acc_t>(vp[2](t + 1, l - 1)) : acc_t(0), has_lo ? nxt[l - 1] : acc_t(0),
                static_cast<acc_t>(vp[1](t + 1, l)), nxt[l],
                has_hi ? static_cast<acc_t>(vp[0](t + 1, l + 1)) : acc_t(0), has_hi ? nxt[l + 1] : acc_t(0),
                has_lo, has_hi);
          }
          cur[l] = v;
          const acc_t p0 = static_cast<acc_t>(vp[0](t, l)), p1 = static_cast<acc_t>(vp[1](t, l)),
                      p2 = static_cast<acc_t>(vp[2](t, l));
          vout(t, l) = static_cast<scalar_t>(input_grad<acc_t>(v, p0, p1, p2, has_lo, has_hi, t == 0));
          if constexpr (kGrad) {
            // dp_k = v · (y[t-1][l+k-1] - x); the first line has no neighbours,
            // so its gate gradients are written as exact zeros.
            acc_t d0 = 0, d1 = 0, d2 = 0;
            if (t > 0) {
              const acc_t xv = static_cast<acc_t>(vx(t, l));
              d0 = gate_grad<acc_t>(v, has_lo ? static_cast<acc_t>(vy(t - 1, l - 1)) : acc_t(0), xv, has_lo);
              d1 = gate_grad<acc_t>(v, static_cast<acc_t>(vy(t - 1, l)), xv, true);
              d2 = gate_grad<acc_t>(v, has_hi ? static_cast<acc_t>(vy(t - 1, l + 1)) : acc_t(0), xv, has_hi);
            }
            if (accumulate) {
              d0 += static_cast<acc_t>(vgw[0](t, l));
              d1 += static_cast<acc_t>(vgw[1](t, l));
              d2 += static_cast<acc_t>(vgw[2](t, l));
            }
            vgw[0](t, l) = static_cast<scalar_t>(d0);
            vgw[1](t, l) = static_cast<scalar_t>(d1);
            vgw[2](t, l) = static_cast<scalar_t>(d2);
          }
        }
        __syncthreads();  // line t complete before it is read as "next"
        acc_t* tmp = nxt; nxt = cur; cur = tmp;
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Host side.

// Launch shape of one direction group: threads, staged tile, shared memory and,
// for lines too long for shared memory, a global scratch for the line buffers.
struct Plan {
  dim3 grid, block;
  Geom geom;
  size_t smem = 0;
  at::Tensor scratch;  // empty unless the line buffers live in global memory
};

// Attribute of the current device. (Not at::cuda::getCurrentDeviceProperties:
// ATen/cuda/CUDAContext.h pulls in cuBLAS/cuSPARSE headers, which a bare CUDA
// toolkit may lack, and this file needs nothing from them.)
int64_t device_attribute(cudaDeviceAttr attr) {
  int value = 0;
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&value, attr, c10::cuda::current_device()));
  return value;
}

// staged_lines(tile) = lines of scalar_t staged per tile for one op.
template <typename scalar_t, typename acc_t, typename Kernel, typename StagedLines>
Plan make_plan(const ScanShape& sh, int group, int64_t channel_groups, int64_t channels_per_block,
               const at::Tensor& like, Kernel kernel, StagedLines staged_lines) {
  Plan p;
  const int64_t L = group == 0 ? sh.h : sh.w;
  const int threads = static_cast<int>(std::min<int64_t>(kMaxThreads, (L + 31) / 32 * 32));
  const int64_t blocks = sh.n * 2 * channel_groups;
  TORCH_CHECK(blocks <= std::numeric_limits<int32_t>::max(), "tpn scan: too many planes (", blocks, ")");
  TORCH_CHECK(L * static_cast<int64_t>(kMaxTileLines + 1) * 8 < std::numeric_limits<int32_t>::max(),
              "tpn scan: image line of ", L, " elements is too long");

  const int64_t budget = device_attribute(cudaDevAttrMaxSharedMemoryPerBlockOptin);
  int64_t line_bytes = align16(2 * L * static_cast<int64_t>(sizeof(acc_t)));
  const bool line_in_smem = line_bytes <= budget;
  if (!line_in_smem) line_bytes = 0;
  int tile = 0;
  for (int64_t tt = kMaxTileLines; tt >= 1; tt /= 2) {
    const int64_t bytes = line_bytes + staged_lines(tt) * L * static_cast<int64_t>(sizeof(scalar_t));
    if (bytes <= budget) { tile = static_cast<int>(tt); break; }
  }
  p.smem = static_cast<size_t>(line_bytes + (tile > 0 ? staged_lines(tile) * L * sizeof(scalar_t) : 0));
  if (!line_in_smem)
    p.scratch = at::empty({blocks * 2 * L}, like.options().dtype(c10::CppTypeToScalarType<acc_t>::value));
  if (p.smem > 48 * 1024)  // above the default limit a kernel must opt in
    C10_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        static_cast<int>(p.smem)));
  p.grid = dim3(static_cast<unsigned>(blocks));
  p.block = dim3(threads);
  p.geom = Geom{sh.n, sh.dx, sh.c, sh.h, sh.w, sh.cw, group, tile, channels_per_block, channel_groups};
  return p;
}

template <typename acc_t>
acc_t* scratch_ptr(const Plan& p) {
  return p.scratch.defined() ? p.scratch.data_ptr<acc_t>() : nullptr;
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
    auto kernel = scan_forward_kernel<scalar_t, acc_t>;
    const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
    for (int group = 0; group < 2; ++group) {
      const Plan p = make_plan<scalar_t, acc_t>(sh, group, sh.c, 1, x, kernel,
                                                [](int64_t tt) { return 4 * tt; });
      kernel<<<p.grid, p.block, p.smem, stream>>>(x.data_ptr<scalar_t>(), w.data_ptr<scalar_t>(),
                                                  ys.data_ptr<scalar_t>(), p.geom, scratch_ptr<acc_t>(p));
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
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
    auto kernel = scan_reverse_kernel<scalar_t, acc_t, false>;
    const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
    for (int group = 0; group < 2; ++group) {
      const Plan p = make_plan<scalar_t, acc_t>(sh, group, sh.c, 1, u, kernel,
                                                [](int64_t tt) { return tt + 3 * (tt + 1); });
      kernel<<<p.grid, p.block, p.smem, stream>>>(u.data_ptr<scalar_t>(), sh.dx, w.data_ptr<scalar_t>(),
                                                  nullptr, nullptr, z.data_ptr<scalar_t>(), nullptr, p.geom,
                                                  scratch_ptr<acc_t>(p));
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
  });
  return z;
}

std::tuple<at::Tensor, at::Tensor> scan_backward_cuda(const at::Tensor& grad, const at::Tensor& x,
                                                      const at::Tensor& w, const at::Tensor& ys) {
  const ScanShape sh = check_scan_args(x, w, "x");
  check_grad(grad, sh, "grad");
  check_grad(ys, sh, "ys");
  check_cuda(x, x, "x");
  check_cuda(w, x, "w");
  check_cuda(grad, x, "grad");
  check_cuda(ys, x, "ys");
  const c10::cuda::CUDAGuard guard(x.device());
  at::Tensor grad_x = at::empty({sh.n, 4, sh.c, sh.h, sh.w}, x.options());
  at::Tensor grad_w = at::empty({sh.n, 4, 3, sh.cw, sh.h, sh.w}, x.options());
  if (grad_x.numel() == 0) {
    grad_w.zero_();  // C = 0 with shared gates: an empty sum
    return {grad_x, grad_w};
  }

  // Shared gates: split the channels into groups so that there are enough
  // blocks to fill the GPU; each group writes its own partial gate gradient.
  int64_t groups = sh.c, per_block = 1;
  if (sh.cw == 1) {
    const int64_t sms = device_attribute(cudaDevAttrMultiProcessorCount);
    const int64_t want = std::max<int64_t>(1, (2 * sms + sh.n * 2 - 1) / (sh.n * 2));
    groups = std::min(sh.c, want);
    per_block = (sh.c + groups - 1) / groups;
    groups = (sh.c + per_block - 1) / per_block;
  }
  at::Tensor partial = (sh.cw == 1 && groups > 1)
                           ? at::empty({groups, sh.n, 4, 3, 1, sh.h, sh.w}, x.options())
                           : grad_w;

  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "tpn_scan_backward_cuda", [&] {
    using acc_t = at::acc_type<scalar_t, true>;
    auto kernel = scan_reverse_kernel<scalar_t, acc_t, true>;
    const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
    for (int group = 0; group < 2; ++group) {
      const Plan p = make_plan<scalar_t, acc_t>(sh, group, groups, per_block, x, kernel,
                                                [](int64_t tt) { return 3 * tt + 3 * (tt + 1); });
      kernel<<<p.grid, p.block, p.smem, stream>>>(grad.data_ptr<scalar_t>(), 4, w.data_ptr<scalar_t>(),
                                                  x.data_ptr<scalar_t>(), ys.data_ptr<scalar_t>(),
                                                  grad_x.data_ptr<scalar_t>(), partial.data_ptr<scalar_t>(),
                                                  p.geom, scratch_ptr<acc_t>(p));
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
  });
  if (partial.data_ptr() != grad_w.data_ptr()) at::sum_out(grad_w, partial, {0});
  return {grad_x, grad_w};
}

}  // namespace

TORCH_LIBRARY_IMPL(tpn, CUDA, m) {
  m.impl("scan", &scan_cuda);
  m.impl("scan_backward", &scan_backward_cuda);
  m.impl("scan_transpose", &scan_transpose_cuda);
}

}  // namespace tpn
