// CPU kernels of the tpn scan ops. Scheduling only: the arithmetic is in scan_step.h.
//
// Every direction runs as a line scan over contiguous lines, so the inner loop
// over l is unit-stride and vectorises. Vertical scans (T→B, B→T) use the image
// rows as lines directly; horizontal scans (L→R, R→L) first transpose the plane
// (cache-blocked) into a per-thread scratch, scan its rows and transpose back.
// OpenMP runs over (n, direction, channel) planes; when gates are shared across
// channels the gate gradient is a sum over channels, so the backward pass runs
// over (n, direction) and loops channels inside to avoid write races.
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "scan_checks.h"
#include "scan_step.h"

namespace tpn {
namespace {

constexpr int64_t kTile = 32;

// dst[j][i] = src[i][j] for src of rows × cols.
template <typename T>
void transpose_plane(const T* __restrict src, T* __restrict dst, int64_t rows, int64_t cols) {
  for (int64_t i0 = 0; i0 < rows; i0 += kTile) {
    const int64_t i1 = std::min(i0 + kTile, rows);
    for (int64_t j0 = 0; j0 < cols; j0 += kTile) {
      const int64_t j1 = std::min(j0 + kTile, cols);
      for (int64_t i = i0; i < i1; ++i)
        for (int64_t j = j0; j < j1; ++j) dst[j * rows + i] = src[i * cols + j];
    }
  }
}

bool is_horizontal(int d) { return d == kLeftToRight || d == kRightToLeft; }
bool is_reversed(int d) { return d == kRightToLeft || d == kBottomToTop; }

// Forward scan of one plane in line form: lines t of L contiguous elements.
// Gates p0/p1/p2 are in the same layout. Reversed scans run t from the end.
template <typename T>
void line_forward(const T* __restrict x, const T* __restrict p0, const T* __restrict p1,
                  const T* __restrict p2, T* __restrict y, int64_t lines, int64_t L, bool reverse) {
  const int64_t first = reverse ? lines - 1 : 0;
  const int64_t step = reverse ? -1 : 1;
  std::copy(x + first * L, x + first * L + L, y + first * L);
  for (int64_t i = 1; i < lines; ++i) {
    const int64_t t = first + i * step, o = t * L, po = (t - step) * L;
    const T* xr = x + o; const T* a = p0 + o; const T* b = p1 + o; const T* c = p2 + o;
    const T* prev = y + po;
    T* out = y + o;
    if (L == 1) { out[0] = forward_step<T>(xr[0], a[0], b[0], c[0], 0, prev[0], 0, false, false); continue; }
    out[0] = forward_step<T>(xr[0], a[0], b[0], c[0], 0, prev[0], prev[1], false, true);
    for (int64_t l = 1; l < L - 1; ++l)
      out[l] = forward_step<T>(xr[l], a[l], b[l], c[l], prev[l - 1], prev[l], prev[l + 1], true, true);
    out[L - 1] = forward_step<T>(xr[L - 1], a[L - 1], b[L - 1], c[L - 1], prev[L - 2], prev[L - 1], 0, true, false);
  }
}

// Backward of one plane in line form, or the exact transpose when dp0 is null.
// v runs against the scan order; dx = λ ⊙ v; dp_k = v ⊙ (y_prev - x). With
// `accumulate`, gate gradients are added (shared gates summed over channels).
template <typename T>
void line_backward(const T* __restrict g, const T* __restrict x, const T* __restrict y,
                   const T* __restrict p0, const T* __restrict p1, const T* __restrict p2,
                   T* __restrict dx, T* __restrict dp0, T* __restrict dp1, T* __restrict dp2,
                   bool accumulate, int64_t lines, int64_t L, bool reverse, std::vector<T>& vbuf) {
  const int64_t first = reverse ? lines - 1 : 0;
  const int64_t step = reverse ? -1 : 1;
  vbuf.resize(2 * L);
  T* v = vbuf.data();
  T* vn = vbuf.data() + L;  // carry of the next line in scan order
  for (int64_t i = lines - 1; i >= 0; --i) {
    const int64_t t = first + i * step, o = t * L;
    const T* gr = g + o;
    if (i == lines - 1) {
      std::copy(gr, gr + L, v);
    } else {
      const int64_t no = (t + step) * L;
      const T* a = p0 + no; const T* b = p1 + no; const T* c = p2 + no;
      for (int64_t l = 0; l < L; ++l) {
        const bool lo = l > 0, hi = l < L - 1;
        v[l] = backward_carry<T>(gr[l], lo ? c[l - 1] : T(0), lo ? vn[l - 1] : T(0), b[l], vn[l],
                                 hi ? a[l + 1] : T(0), hi ? vn[l + 1] : T(0), lo, hi);
      }
    }
    T* dxr = dx + o;
    if (i == 0) {  // first line: y = x, λ = 1, gates unused
      std::copy(v, v + L, dxr);
      if (dp0 && !accumulate) {
        std::fill(dp0 + o, dp0 + o + L, T(0));
        std::fill(dp1 + o, dp1 + o + L, T(0));
        std::fill(dp2 + o, dp2 + o + L, T(0));
      }
    } else {
      const T* a = p0 + o; const T* b = p1 + o; const T* c = p2 + o;
      for (int64_t l = 0; l < L; ++l)
        dxr[l] = (T(1) - valid_gate_sum<T>(a[l], b[l], c[l], l > 0, l < L - 1)) * v[l];
      if (dp0) {
        const T* xr = x + o; const T* prev = y + (t - step) * L;
        T* da = dp0 + o; T* db = dp1 + o; T* dc = dp2 + o;
        for (int64_t l = 0; l < L; ++l) {
          const bool lo = l > 0, hi = l < L - 1;
          const T ga = gate_grad<T>(v[l], lo ? prev[l - 1] : T(0), xr[l], lo);
          const T gb = gate_grad<T>(v[l], prev[l], xr[l], true);
          const T gc = gate_grad<T>(v[l], hi ? prev[l + 1] : T(0), xr[l], hi);
          if (accumulate) { da[l] += ga; db[l] += gb; dc[l] += gc; }
          else { da[l] = ga; db[l] = gb; dc[l] = gc; }
        }
      }
    }
    std::swap(v, vn);
  }
}

// Pointers into the 5-D/6-D tensors for one (n, d, c) plane.
struct Layout {
  ScanShape s;
  int64_t plane() const { return s.h * s.w; }
  int64_t x_off(int64_t dx, int64_t n, int d, int64_t c) const {  // x is (N, dx, C, H, W)
    return ((n * dx + (dx == 1 ? 0 : d)) * s.c + c) * plane();
  }
  int64_t y_off(int64_t n, int d, int64_t c) const { return ((n * 4 + d) * s.c + c) * plane(); }
  int64_t w_off(int64_t n, int d, int k, int64_t c) const {  // w is (N, 4, 3, Cw, H, W)
    return (((n * 4 + d) * 3 + k) * s.cw + (s.cw == 1 ? 0 : c)) * plane();
  }
};

// Lines of a plane for direction d: rows for vertical scans, columns (after transposing) for horizontal.
int64_t num_lines(const ScanShape& s, int d) { return is_horizontal(d) ? s.w : s.h; }
int64_t line_len(const ScanShape& s, int d) { return is_horizontal(d) ? s.h : s.w; }

// Copies a plane into line form (transposing for horizontal scans) or returns it as is.
template <typename T>
const T* as_lines(const T* src, const ScanShape& s, int d, std::vector<T>& buf) {
  if (!is_horizontal(d)) return src;
  buf.resize(s.h * s.w);
  transpose_plane(src, buf.data(), s.h, s.w);
  return buf.data();
}

// The 3 gate planes of (n, d, c) in line form; per-thread scratch for horizontal scans.
template <typename T>
struct Gates {
  const T* p[3];
  std::vector<T> buf[3];
  void load(const T* w, const Layout& lay, int64_t n, int d, int64_t c) {
    for (int k = 0; k < 3; ++k) p[k] = as_lines(w + lay.w_off(n, d, k, c), lay.s, d, buf[k]);
  }
};

template <typename T>
void scan_forward_impl(const at::Tensor& x, const at::Tensor& w, at::Tensor& ys, const ScanShape& s) {
  const Layout lay{s};
  const T* xp = x.data_ptr<T>(); const T* wp = w.data_ptr<T>(); T* yp = ys.data_ptr<T>();
  const int64_t tasks = s.n * 4 * s.c;
  at::parallel_for(0, tasks, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> xbuf, ybuf;
    Gates<T> gates;
    int64_t loaded = -1;  // (n, d, gate channel) whose gates are in `gates`
    for (int64_t task = begin; task < end; ++task) {
      const int64_t n = task / (4 * s.c), c = task % s.c;
      const int d = static_cast<int>((task / s.c) % 4);
      const int64_t key = (n * 4 + d) * s.cw + (s.cw == 1 ? 0 : c);
      if (key != loaded) { gates.load(wp, lay, n, d, c); loaded = key; }
      const T* xl = as_lines(xp + lay.x_off(s.dx, n, d, c), s, d, xbuf);
      T* out = yp + lay.y_off(n, d, c);
      const int64_t lines = num_lines(s, d), L = line_len(s, d);
      if (is_horizontal(d)) {
        ybuf.resize(s.h * s.w);
        line_forward(xl, gates.p[0], gates.p[1], gates.p[2], ybuf.data(), lines, L, is_reversed(d));
        transpose_plane(ybuf.data(), out, s.w, s.h);
      } else {
        line_forward(xl, gates.p[0], gates.p[1], gates.p[2], out, lines, L, is_reversed(d));
      }
    }
  });
}

// Backward (dw != nullptr) or exact transpose (x, ys, dw null). Outputs dx per direction.
template <typename T>
void scan_backward_impl(const T* gp, const T* xp, const T* wp, const T* yp, T* dxp, T* dwp,
                        const ScanShape& s) {
  const Layout lay{s};
  const bool shared_grad = dwp && s.cw == 1;
  // Shared gate gradients sum over channels: one task per (n, d) then.
  const int64_t per_task_c = shared_grad ? s.c : 1;
  const int64_t tasks = s.n * 4 * (s.c / per_task_c);
  at::parallel_for(0, tasks, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> gbuf, xbuf, ybuf, dxbuf, vbuf, dwbuf[3];
    Gates<T> gates;
    int64_t loaded = -1;
    for (int64_t task = begin; task < end; ++task) {
      const int64_t groups = s.c / per_task_c;
      const int64_t n = task / (4 * groups);
      const int d = static_cast<int>((task / groups) % 4);
      const int64_t c0 = (task % groups) * per_task_c;
      const int64_t lines = num_lines(s, d), L = line_len(s, d);
      const bool hz = is_horizontal(d);
      T* dw_lines[3] = {nullptr, nullptr, nullptr};
      if (dwp) {
        for (int k = 0; k < 3; ++k) {
          T* dst = dwp + lay.w_off(n, d, k, c0);
          if (hz) { dwbuf[k].assign(s.h * s.w, T(0)); dw_lines[k] = dwbuf[k].data(); }
          else { dw_lines[k] = dst; if (shared_grad) std::fill(dst, dst + s.h * s.w, T(0)); }
        }
      }
      for (int64_t c = c0; c < c0 + per_task_c; ++c) {
        const int64_t key = (n * 4 + d) * s.cw + (s.cw == 1 ? 0 : c);
        if (key != loaded) { gates.load(wp, lay, n, d, c); loaded = key; }
        const T* gl = as_lines(gp + lay.y_off(n, d, c), s, d, gbuf);
        const T* xl = dwp ? as_lines(xp + lay.x_off(s.dx, n, d, c), s, d, xbuf) : nullptr;
        const T* yl = dwp ? as_lines(yp + lay.y_off(n, d, c), s, d, ybuf) : nullptr;
        T* dx_out = dxp + lay.y_off(n, d, c);
        T* dxl = dx_out;
        if (hz) { dxbuf.resize(s.h * s.w); dxl = dxbuf.data(); }
        line_backward(gl, xl, yl, gates.p[0], gates.p[1], gates.p[2], dxl, dw_lines[0], dw_lines[1],
                      dw_lines[2], shared_grad, lines, L, is_reversed(d), vbuf);
        if (hz) transpose_plane(dxl, dx_out, s.w, s.h);
      }
      if (dwp && hz)
        for (int k = 0; k < 3; ++k) transpose_plane(dw_lines[k], dwp + lay.w_off(n, d, k, c0), s.w, s.h);
    }
  });
}

at::Tensor scan_cpu(const at::Tensor& x, const at::Tensor& w) {
  const ScanShape s = check_scan_args(x, w, "x");
  at::Tensor ys = at::empty({s.n, 4, s.c, s.h, s.w}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "tpn_scan_cpu", [&] { scan_forward_impl<scalar_t>(x, w, ys, s); });
  return ys;
}

std::tuple<at::Tensor, at::Tensor> scan_backward_cpu(const at::Tensor& grad, const at::Tensor& x,
                                                     const at::Tensor& w, const at::Tensor& ys) {
  const ScanShape s = check_scan_args(x, w, "x");
  check_grad(grad, s, "grad");
  check_grad(ys, s, "ys");
  at::Tensor dx = at::empty({s.n, 4, s.c, s.h, s.w}, x.options());
  at::Tensor dw = at::empty_like(w);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "tpn_scan_backward_cpu", [&] {
    scan_backward_impl<scalar_t>(grad.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(), w.data_ptr<scalar_t>(),
                                 ys.data_ptr<scalar_t>(), dx.data_ptr<scalar_t>(), dw.data_ptr<scalar_t>(), s);
  });
  return {dx, dw};
}

at::Tensor scan_transpose_cpu(const at::Tensor& u, const at::Tensor& w) {
  const ScanShape s = check_scan_args(u, w, "u");
  // The transpose recursion reads one input per direction.
  const at::Tensor u4 = s.dx == 4 ? u : u.expand({s.n, 4, s.c, s.h, s.w}).contiguous();
  at::Tensor z = at::empty({s.n, 4, s.c, s.h, s.w}, u.options());
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "tpn_scan_transpose_cpu", [&] {
    scan_backward_impl<scalar_t>(u4.data_ptr<scalar_t>(), nullptr, w.data_ptr<scalar_t>(), nullptr,
                                 z.data_ptr<scalar_t>(), nullptr, s);
  });
  return z;
}

}  // namespace

TORCH_LIBRARY_IMPL(tpn, CPU, m) {
  m.impl("scan", &scan_cpu);
  m.impl("scan_backward", &scan_backward_cpu);
  m.impl("scan_transpose", &scan_transpose_cpu);
}

}  // namespace tpn
