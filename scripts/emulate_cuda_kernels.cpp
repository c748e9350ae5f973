// Runs the CUDA scan kernels (kernels/scan_cuda_kernels.cuh) on the CPU with
// emulated CUDA built-ins: every CUDA thread of a block is a std::thread and
// __syncthreads is a std::barrier, so the kernels' indexing, tiling, channel
// grouping and barrier placement are exercised without a GPU. Every launch takes
// the block size, tile, shared memory, line scratch and channel groups from the
// launch plan that kernels/scan_cuda.cu uses (kernels/scan_cuda_plan.h), on
// simulated devices of several sizes, in float64 and float32, with blocks up to
// the kernels' launch bounds (512 threads). Results are compared with a naive
// float64 scan written here from the formulas of kernels/scan_step.h, and the
// transpose with the adjoint identity <G a, b> = <a, G^T b>.
// Build and run: scripts/check_cuda_emulation.sh
#include <algorithm>
#include <barrier>
#include <cstdlib>
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
#define __launch_bounds__(...)
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

// ---- kernel runs with scan_cuda.cu's launch plan (kernels/scan_cuda_plan.h) ----
// A simulated device: its opt-in shared memory per block, its SM count, and the
// thread cap cudaFuncGetAttributes would report (0 = the kernels' launch bounds).
struct Device {
  int64_t smem_budget;
  int64_t sms;
  int thread_cap;
};

template <typename scalar_t, typename Kern>
void run_launch(cuda_plan::Kernel which, const Shape& s, const Device& dev, int64_t groups, int64_t per_block,
                Kern kern, int& max_threads_seen) {
  const int bound = cuda_plan::launch_bound(which);
  const cuda_plan::Plan p = cuda_plan::plan_launch(which, s.n, groups, s.h, s.w, sizeof(scalar_t), sizeof(scalar_t),
                                                   dev.thread_cap ? std::min(bound, dev.thread_cap) : bound,
                                                   dev.smem_budget);
  if (p.smem > static_cast<int64_t>(sizeof(tpn_smem)) || p.threads > bound) {
    std::printf("FAIL plan: smem %lld threads %d\n", (long long)p.smem, p.threads);
    std::exit(1);
  }
  max_threads_seen = std::max(max_threads_seen, p.threads);
  Geom geom{s.n, s.dx, s.c, s.h, s.w, s.cw, {p.tile[0], p.tile[1]}, {p.line_in_smem[0], p.line_in_smem[1]},
            per_block, groups};
  std::vector<scalar_t> scratch(p.scratch_elems);
  launch(static_cast<unsigned>(p.blocks), static_cast<unsigned>(p.threads),
         [&] { kern(geom, p.scratch_elems ? scratch.data() : nullptr); });
}

template <typename T>
double max_err(const std::vector<T>& a, const Vec& b) {
  double e = 0;
  for (size_t i = 0; i < a.size(); ++i) e = std::max(e, std::fabs(static_cast<double>(a[i]) - b[i]));
  return a.size() == b.size() ? e : 1e30;
}

int failures = 0, checks = 0, max_threads_run = 0;
template <typename scalar_t>
void expect(bool ok, const char* what, const Shape& s, const Device& dev, double err) {
  ++checks;
  if (!ok) {
    ++failures;
    std::printf("FAIL %s (%s): N=%lld Dx=%lld C=%lld H=%lld W=%lld Cw=%lld smem=%lld sms=%lld cap=%d err=%g\n", what,
                sizeof(scalar_t) == 4 ? "float32" : "float64", (long long)s.n, (long long)s.dx, (long long)s.c,
                (long long)s.h, (long long)s.w, (long long)s.cw, (long long)dev.smem_budget, (long long)dev.sms,
                dev.thread_cap, err);
  }
}

// Runs forward, backward and transpose in scalar_t (float: accumulate in float, as
// at::acc_type<float, true> does) and compares with the float64 oracle.
template <typename scalar_t>
void check(const Shape& s, const Device& dev, std::mt19937& rng) {
  std::uniform_real_distribution<double> U(-1, 1);
  Vec x(s.n * s.dx * s.c * s.h * s.w), wt(s.n * 4 * 3 * s.cw * s.h * s.w), g(s.n * 4 * s.c * s.h * s.w);
  // Values rounded to scalar_t first, so the oracle sees the kernel's inputs.
  auto fill = [&](Vec& v, double scale) { for (auto& e : v) e = static_cast<scalar_t>(U(rng) * scale); };
  fill(x, 1);
  fill(wt, 1.0 / 3);  // sum |p| <= 1
  fill(g, 1);
  Vec y_ref, gx_ref, gw_ref;
  oracle(s, x, wt, g, y_ref, gx_ref, gw_ref);
  using SVec = std::vector<scalar_t>;
  const SVec xs(x.begin(), x.end()), ws(wt.begin(), wt.end()), gs(g.begin(), g.end());
  // float32 accumulates rounding along the scan line; the scale keeps the bound relative.
  const double tol = sizeof(scalar_t) == 4 ? 2e-6 * (1 + std::max(s.h, s.w)) : 1e-11;

  SVec ys(y_ref.size());
  run_launch<scalar_t>(cuda_plan::Kernel::kForward, s, dev, s.c, 1, [&](Geom geom, scalar_t* scr) {
    scan_forward_kernel<scalar_t, scalar_t>(xs.data(), ws.data(), ys.data(), geom, scr);
  }, max_threads_run);
  const double ey = max_err(ys, y_ref);
  expect<scalar_t>(ey < tol, "forward", s, dev, ey);

  // Backward: channel groups and partial sums as the host code makes them.
  const cuda_plan::ChannelGroups cg = cuda_plan::backward_channel_groups(s.n, s.c, s.cw, dev.sms);
  SVec gx(gx_ref.size());
  SVec partial(s.cw == 1 ? cg.groups * gw_ref.size() : gw_ref.size(), static_cast<scalar_t>(std::nan("")));
  run_launch<scalar_t>(cuda_plan::Kernel::kBackward, s, dev, cg.groups, cg.per_block, [&](Geom geom, scalar_t* scr) {
    scan_reverse_kernel<scalar_t, scalar_t, true>(gs.data(), 4, ws.data(), xs.data(), ys.data(), gx.data(),
                                                  partial.data(), geom, scr);
  }, max_threads_run);
  SVec gw(gw_ref.size());
  for (size_t i = 0; i < gw.size(); ++i) {  // at::sum_out over the group dim
    scalar_t acc = 0;
    for (int64_t q = 0; q < (s.cw == 1 ? cg.groups : 1); ++q) acc += partial[q * gw.size() + i];
    gw[i] = acc;
  }
  const double egx = max_err(gx, gx_ref), egw = max_err(gw, gw_ref);
  expect<scalar_t>(egx < tol, "backward dx", s, dev, egx);
  expect<scalar_t>(egw < 10 * tol, "backward dw", s, dev, egw);

  // Transpose of the per-direction scans with u = g: equals the oracle's dx, and
  // <G a, b> = <a, G^T b> with a = x broadcast to every direction.
  SVec z(gx_ref.size());
  run_launch<scalar_t>(cuda_plan::Kernel::kTranspose, s, dev, s.c, 1, [&](Geom geom, scalar_t* scr) {
    scan_reverse_kernel<scalar_t, scalar_t, false>(gs.data(), 4, ws.data(), nullptr, nullptr, z.data(), nullptr,
                                                   geom, scr);
  }, max_threads_run);
  const double ez = max_err(z, gx_ref);
  expect<scalar_t>(ez < tol, "transpose", s, dev, ez);
  double lhs = 0, rhs = 0;
  for (int64_t n = 0; n < s.n; ++n)
    for (int d = 0; d < 4; ++d)
      for (int64_t c = 0; c < s.c; ++c)
        for (int64_t p = 0; p < s.h * s.w; ++p) {
          const int64_t i4 = ((n * 4 + d) * s.c + c) * s.h * s.w + p;
          const int64_t ix = ((n * s.dx + (s.dx == 4 ? d : 0)) * s.c + c) * s.h * s.w + p;
          lhs += static_cast<double>(ys[i4]) * g[i4];
          rhs += x[ix] * static_cast<double>(z[i4]);
        }
  const double adj_tol = sizeof(scalar_t) == 4 ? 1e-4 : 1e-9;
  expect<scalar_t>(std::fabs(lhs - rhs) < adj_tol * (1 + std::fabs(lhs)), "adjoint", s, dev, lhs - rhs);
}

int main() {
  std::mt19937 rng(7);
  const Shape shapes[] = {
      {1, 1, 1, 1, 1, 1},  {1, 1, 2, 1, 7, 1},   {1, 4, 2, 7, 1, 2},  {2, 1, 3, 5, 9, 1},
      {1, 4, 3, 9, 5, 3},  {2, 4, 2, 70, 13, 1}, {1, 1, 3, 13, 70, 3}, {1, 1, 5, 33, 31, 1},
  };
  // Budgets: an sm_90-sized one (whole tiles of 8 lines), smaller ones that force
  // tiles of 4/2/1 lines or none, and one too small for the line buffers, which
  // then live in global scratch. SM counts change the backward's channel groups;
  // a thread cap below the launch bound is what cudaFuncGetAttributes may report.
  const Device devices[] = {
      {232448, 132, 0}, {2048, 1, 0}, {1024, 3, 64}, {600, 2, 32}, {200, 5, 0}, {100000, 1, 96},
  };
  // Every shape with half of the devices (alternating) in both precisions, to keep
  // the run short: each emulated block starts one OS thread per CUDA thread.
  const int ns = sizeof(shapes) / sizeof(shapes[0]), nd = sizeof(devices) / sizeof(devices[0]);
  for (int i = 0; i < ns; ++i)
    for (int j = 0; j < nd; ++j)
      if ((i + j) % 2 == 0) {
        check<double>(shapes[i], devices[j], rng);
        check<float>(shapes[i], devices[j], rng);
      }
  // Lines longer than the launch bounds (512 threads forward/transpose, 256
  // backward): full-size blocks, several elements a thread, a ragged last warp.
  // Each step of such a block is a barrier of 512 OS threads, so these run once,
  // in float32, with whole tiles and with lines in global scratch.
  check<float>({1, 1, 1, 520, 2, 1}, devices[0], rng);
  check<float>({1, 4, 1, 2, 530, 1}, devices[4], rng);
  std::printf("cuda kernel emulation: largest block %d threads\n", max_threads_run);
  std::printf("cuda kernel emulation: %d passed, %d failed\n", checks - failures, failures);
  return failures ? 1 : 0;
}
