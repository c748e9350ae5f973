// Device code of the tpn CUDA scan kernels (scheduling only; the arithmetic is
// in scan_step.h). Launched from scan_cuda.cu, which explains the design. Kept
// free of torch headers so that tests/tools can compile it as plain C++ with
// emulated CUDA built-ins (see scripts/emulate_cuda_kernels.cpp).
#pragma once
#include <cstdint>

#include "scan_cuda_plan.h"
#include "scan_step.h"

namespace tpn {
namespace cuda_detail {

using cuda_plan::align16;

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

// Geometry of one launch. A launch covers all four directions; index [0] of the
// per-group fields is for the horizontal scans (lines of H elements), [1] for the
// vertical ones (lines of W).
struct Geom {
  int64_t n, dx, c, h, w, cw;
  int tile[2];                 // lines per staged tile; 0 = read global memory directly
  bool line_in_smem[2];        // else the line buffers are in the global scratch
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
  wk.d = static_cast<int>(rest % 4);
  wk.n = rest / 4;
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

// Shared memory: [line buffers: 2 × L acc_t][staged tiles: scalar_t]; the launch
// gives each block the larger of the two groups' needs.
extern __shared__ __align__(16) unsigned char tpn_smem[];

// What every scan kernel block starts from: its plane group, line geometry, the two
// line buffers (shared memory, or global scratch when they do not fit) and the
// staging area for tiles behind them.
template <typename scalar_t, typename acc_t>
struct BlockSetup {
  BlockWork wk;
  int d;
  bool horizontal;
  int64_t HW, T, L;
  int tile;
  int64_t step;
  acc_t* line;
  scalar_t* tiles;
};

template <typename scalar_t, typename acc_t>
__device__ inline BlockSetup<scalar_t, acc_t> block_setup(const Geom& s, acc_t* line_scratch) {
  const BlockWork wk = block_work(s);
  const bool horizontal = wk.d == kLeftToRight || wk.d == kRightToLeft;
  const int group = horizontal ? 0 : 1;
  const int64_t T = horizontal ? s.w : s.h, L = horizontal ? s.h : s.w;
  const bool in_smem = s.line_in_smem[group];
  // Scratch: 2 lines of the longer kind per block.
  acc_t* line = in_smem ? reinterpret_cast<acc_t*>(tpn_smem)
                        : line_scratch + static_cast<int64_t>(blockIdx.x) * 2 * max(s.h, s.w);
  scalar_t* tiles = reinterpret_cast<scalar_t*>(
      tpn_smem + (in_smem ? align16(2 * L * static_cast<int64_t>(sizeof(acc_t))) : 0));
  const int tile = s.tile[group];
  return {wk, wk.d, horizontal, s.h * s.w, T, L, tile, tile > 0 ? tile : T, line, tiles};
}

// ---------------------------------------------------------------------------
// Forward: ys = the four directional scans of x.
template <typename scalar_t, typename acc_t>
__global__ void __launch_bounds__(cuda_plan::kForwardThreads)
scan_forward_kernel(const scalar_t* __restrict__ x, const scalar_t* __restrict__ w, scalar_t* __restrict__ ys,
                    Geom s, acc_t* line_scratch) {
  const auto [wk, d, horizontal, HW, T, L, tile, step, line, tiles] =
      block_setup<scalar_t>(s, line_scratch);
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
__global__ void __launch_bounds__(kGrad ? cuda_plan::kBackwardThreads : cuda_plan::kTransposeThreads)
scan_reverse_kernel(const scalar_t* __restrict__ g,   // u or grad: (N, Dg, C, H, W)
                    int64_t dg,
                    const scalar_t* __restrict__ w,
                    const scalar_t* __restrict__ x,   // kGrad only
                    const scalar_t* __restrict__ ys,  // kGrad only
                    scalar_t* __restrict__ out,       // (N, 4, C, H, W)
                    scalar_t* __restrict__ gw,        // kGrad only: gate gradients, planes below
                    Geom s, acc_t* line_scratch) {
  const auto [wk, d, horizontal, HW, T, L, tile, step, line, tiles] =
      block_setup<scalar_t>(s, line_scratch);
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


}  // namespace cuda_detail
}  // namespace tpn
