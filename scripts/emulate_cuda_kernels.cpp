// Runs the CUDA scan kernels (kernels/scan_cuda_kernels.cuh) on the CPU with
// emulated CUDA built-ins: every CUDA thread of a block is a std::thread and
// __syncthreads is a std::barrier, so the kernels' indexing, tiling, channel
// grouping and barrier placement are exercised without a GPU. Results are
// compared with a naive scan written here from the formulas (DESIGN.md §1), and
// the transpose with the adjoint identity <G a, b> = <a, G^T b>.
// Build and run: scripts/check_cuda_emulation.sh
#include <algorithm>
#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <random>
#include <thread>
#include <vector>

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
};
thread_local dim3 threadIdx, blockIdx;
dim3 blockDim;
std::barrier<>* g_barrier = nullptr;
inline void __syncthreads() { g_barrier->arrive_and_wait(); }
using std::max;
using std::min;

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__
#define __align__(n) __attribute__((aligned(n)))
#include "../kernels/scan_cuda_kernels.cuh"

namespace tpn::cuda_detail {
alignas(16) unsigned char tpn_smem[1 << 22];
}

using namespace tpn;
using namespace tpn::cuda_detail;
using Vec = std::vector<double>;

// Runs kernel for every block of the grid, blockDim threads at a time.
void launch(unsigned blocks, unsigned threads, const std::function<void()>& kernel) {
  blockDim.x = threads;
  for (unsigned b = 0; b < blocks; ++b) {
    std::barrier<> bar(threads);
    g_barrier = &bar;
    std::vector<std::thread> pool;
    for (unsigned t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        threadIdx.x = t;
        blockIdx.x = b;
        kernel();
      });
    for (auto& th : pool) th.join();
  }
}

// ---- naive oracle in image coordinates --------------------------------------
struct Shape {
  int64_t n, dx, c, h, w, cw;
};
// Pixel (h, w) of line t, element l for direction d.
void pixel(int d, int64_t t, int64_t l, const Shape& s, int64_t& h, int64_t& w) {
  if (d == 0) { h = l; w = t; }
  else if (d == 1) { h = l; w = s.w - 1 - t; }
  else if (d == 2) { h = t; w = l; }
  else { h = s.h - 1 - t; w = l; }
}
int64_t xi(const Shape& s, int64_t n, int d, int64_t c, int64_t h, int64_t w, int64_t D) {
  return (((n * D + (D == 4 ? d : 0)) * s.c + c) * s.h + h) * s.w + w;
}
int64_t wi(const Shape& s, int64_t n, int d, int k, int64_t c, int64_t h, int64_t w) {
  return ((((n * 4 + d) * 3 + k) * s.cw + (s.cw == 1 ? 0 : c)) * s.h + h) * s.w + w;
}

void oracle(const Shape& s, const Vec& x, const Vec& wt, const Vec& g, Vec& y, Vec& gx, Vec& gw) {
  y.assign(s.n * 4 * s.c * s.h * s.w, 0);
  gx = y;
  gw.assign(s.n * 4 * 3 * s.cw * s.h * s.w, 0);
  for (int64_t n = 0; n < s.n; ++n)
    for (int d = 0; d < 4; ++d)
      for (int64_t c = 0; c < s.c; ++c) {
        const int64_t T = d < 2 ? s.w : s.h, L = d < 2 ? s.h : s.w;
        auto P = [&](int k, int64_t t, int64_t l) { int64_t h, w; pixel(d, t, l, s, h, w); return wt[wi(s, n, d, k, c, h, w)]; };
        auto X = [&](int64_t t, int64_t l) { int64_t h, w; pixel(d, t, l, s, h, w); return x[xi(s, n, d, c, h, w, s.dx)]; };
        auto Y = [&](int64_t t, int64_t l) -> double& { int64_t h, w; pixel(d, t, l, s, h, w); return y[xi(s, n, d, c, h, w, 4)]; };
        auto valid = [&](int64_t t, int64_t l, int k) { return t > 0 && l + k - 1 >= 0 && l + k - 1 < L; };
        for (int64_t t = 0; t < T; ++t)
          for (int64_t l = 0; l < L; ++l) {
            double lam = 1, acc = 0;
            for (int k = 0; k < 3; ++k)
              if (valid(t, l, k)) { lam -= P(k, t, l); acc += P(k, t, l) * Y(t - 1, l + k - 1); }
            Y(t, l) = lam * X(t, l) + acc;
          }
        std::vector<double> v(T * L, 0);
        for (int64_t t = T - 1; t >= 0; --t)
          for (int64_t l = 0; l < L; ++l) {
            int64_t h, w; pixel(d, t, l, s, h, w);
            double vv = g[xi(s, n, d, c, h, w, 4)];
            for (int k = 0; k < 3; ++k) {  // children on line t+1 that use (t, l) as neighbour k
              const int64_t lc = l - (k - 1);
              if (t + 1 < T && lc >= 0 && lc < L) vv += P(k, t + 1, lc) * v[(t + 1) * L + lc];
            }
            v[t * L + l] = vv;
            double lam = 1;
            for (int k = 0; k < 3; ++k) if (valid(t, l, k)) lam -= P(k, t, l);
            gx[xi(s, n, d, c, h, w, 4)] = lam * vv;
            for (int k = 0; k < 3; ++k)
              if (valid(t, l, k)) gw[wi(s, n, d, k, c, h, w)] += vv * (Y(t - 1, l + k - 1) - X(t, l));
          }
      }
}

// ---- kernel runs, mirroring the host code in kernels/scan_cuda.cu -----------
struct Config {
  unsigned threads;
  int tile;          // 0 = unstaged
  bool line_global;  // line buffers in "global" scratch
  int64_t groups;    // channel groups for the shared-gate backward
};

template <typename Kern>
void run_groups(const Shape& s, const Config& cf, int64_t groups, int64_t per_block, Kern kern) {
  for (int group = 0; group < 2; ++group) {
    const int64_t L = group == 0 ? s.h : s.w;
    Geom geom{s.n, s.dx, s.c, s.h, s.w, s.cw, group, cf.tile, per_block, groups};
    const unsigned blocks = static_cast<unsigned>(s.n * 2 * groups);
    std::vector<double> scratch(cf.line_global ? blocks * 2 * L : 0);
    launch(blocks, cf.threads, [&] { kern(geom, cf.line_global ? scratch.data() : nullptr); });
  }
}

double max_err(const Vec& a, const Vec& b) {
  double e = 0;
  for (size_t i = 0; i < a.size(); ++i) e = std::max(e, std::fabs(a[i] - b[i]));
  return a.size() == b.size() ? e : 1e30;
}

int failures = 0, checks = 0;
void expect(bool ok, const char* what, const Shape& s, const Config& cf, double err) {
  ++checks;
  if (!ok) {
    ++failures;
    std::printf("FAIL %s: N=%lld Dx=%lld C=%lld H=%lld W=%lld Cw=%lld threads=%u tile=%d global=%d groups=%lld err=%g\n",
                what, (long long)s.n, (long long)s.dx, (long long)s.c, (long long)s.h, (long long)s.w,
                (long long)s.cw, cf.threads, cf.tile, cf.line_global, (long long)cf.groups, err);
  }
}

void check(const Shape& s, const Config& cf, std::mt19937& rng) {
  std::uniform_real_distribution<double> U(-1, 1);
  Vec x(s.n * s.dx * s.c * s.h * s.w), wt(s.n * 4 * 3 * s.cw * s.h * s.w), g(s.n * 4 * s.c * s.h * s.w);
  for (auto& v : x) v = U(rng);
  for (auto& v : wt) v = U(rng) / 3;  // sum |p| <= 1
  for (auto& v : g) v = U(rng);
  Vec y_ref, gx_ref, gw_ref;
  oracle(s, x, wt, g, y_ref, gx_ref, gw_ref);

  Vec ys(y_ref.size());
  run_groups(s, cf, s.c, 1, [&](Geom geom, double* scr) {
    scan_forward_kernel<double, double>(x.data(), wt.data(), ys.data(), geom, scr);
  });
  const double ey = max_err(ys, y_ref);
  expect(ey < 1e-12, "forward", s, cf, ey);

  // Backward: channel groups as the host code makes them for shared gates.
  int64_t groups = s.c, per_block = 1;
  if (s.cw == 1) {
    groups = std::min(s.c, cf.groups);
    per_block = (s.c + groups - 1) / groups;
    groups = (s.c + per_block - 1) / per_block;
  }
  Vec gx(gx_ref.size()), gw(gw_ref.size());
  Vec partial(s.cw == 1 ? groups * gw_ref.size() : gw_ref.size(), std::nan(""));
  run_groups(s, cf, groups, per_block, [&](Geom geom, double* scr) {
    scan_reverse_kernel<double, double, true>(g.data(), 4, wt.data(), x.data(), ys.data(), gx.data(),
                                              partial.data(), geom, scr);
  });
  if (s.cw == 1) {
    for (size_t i = 0; i < gw.size(); ++i) {
      gw[i] = 0;
      for (int64_t q = 0; q < groups; ++q) gw[i] += partial[q * gw.size() + i];
    }
  } else {
    gw = partial;
  }
  const double egx = max_err(gx, gx_ref), egw = max_err(gw, gw_ref);
  expect(egx < 1e-12, "backward dx", s, cf, egx);
  expect(egw < 1e-11, "backward dw", s, cf, egw);

  // Transpose of the per-direction scans with u = g: equals the oracle's dx, and
  // <G a, b> = <a, G^T b> with a = x broadcast to every direction.
  Vec z(gx_ref.size());
  run_groups(s, cf, s.c, 1, [&](Geom geom, double* scr) {
    scan_reverse_kernel<double, double, false>(g.data(), 4, wt.data(), nullptr, nullptr, z.data(), nullptr,
                                               geom, scr);
  });
  const double ez = max_err(z, gx_ref);
  expect(ez < 1e-12, "transpose", s, cf, ez);
  double lhs = 0, rhs = 0;
  for (int64_t n = 0; n < s.n; ++n)
    for (int d = 0; d < 4; ++d)
      for (int64_t c = 0; c < s.c; ++c)
        for (int64_t p = 0; p < s.h * s.w; ++p) {
          const int64_t i4 = ((n * 4 + d) * s.c + c) * s.h * s.w + p;
          const int64_t ix = ((n * s.dx + (s.dx == 4 ? d : 0)) * s.c + c) * s.h * s.w + p;
          lhs += ys[i4] * g[i4];
          rhs += x[ix] * z[i4];
        }
  expect(std::fabs(lhs - rhs) < 1e-9 * (1 + std::fabs(lhs)), "adjoint", s, cf, lhs - rhs);
}

int main() {
  std::mt19937 rng(7);
  const Shape shapes[] = {
      {1, 1, 1, 1, 1, 1},  {1, 1, 2, 1, 7, 1},   {1, 4, 2, 7, 1, 2},  {2, 1, 3, 5, 9, 1},
      {1, 4, 3, 9, 5, 3},  {2, 4, 2, 70, 13, 1}, {1, 1, 3, 13, 70, 3}, {1, 1, 5, 33, 31, 1},
  };
  const Config configs[] = {
      {32, 8, false, 1}, {32, 0, false, 2}, {64, 1, true, 3}, {32, 2, false, 5}, {1, 8, false, 2}, {96, 4, true, 1},
  };
  // Every shape with half of the configs (alternating), to keep the run short:
  // each emulated block starts one OS thread per CUDA thread.
  const int ns = sizeof(shapes) / sizeof(shapes[0]), nc = sizeof(configs) / sizeof(configs[0]);
  for (int i = 0; i < ns; ++i)
    for (int j = 0; j < nc; ++j)
      if ((i + j) % 2 == 0) check(shapes[i], configs[j], rng);
  std::printf("cuda kernel emulation: %d passed, %d failed\n", checks - failures, failures);
  return failures ? 1 : 0;
}
