// CPU kernels of the tpn scan ops. Scheduling only: the arithmetic is in scan_step.h.
//
// Every direction runs as a line scan over contiguous lines, so the inner loop
// over l is unit-stride and vectorises. Vertical scans (T→B, B→T) use the image
// rows as lines directly; horizontal scans (L→R, R→L) first transpose the plane
// (cache-blocked) into a per-thread scratch, scan its rows and transpose back.
// OpenMP runs over (n, direction, channel) planes; when gates are shared across
// channels the gate gradient is a sum over channels, so the backward pass runs
// over (n, direction) and loops channels inside to avoid write races.
#include <ATen/EmptyTensor.h>
#include <ATen/Parallel.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <torch/library.h>

#include <algorithm>
#if defined(__AVX2__)
#include <immintrin.h>
#endif
#include <mutex>
#include <vector>

#include "scan_checks.h"
#include "scan_step.h"

namespace tpn {
namespace {

// ---------------------------------------------------------------------------
// Output buffers.
//
// The ops' outputs are large and fresh on every call (a 512², C=32 forward
// returns 128 MiB). From the default allocator each call gets new pages from the
// OS, which the kernel zeroes on first touch: measured, a quarter of a 512²
// forward and of a training-shape forward+backward went to clear_page. This
// allocator keeps the blocks of freed outputs and hands one back to the next
// request of the same size, so a training loop reuses already-mapped memory.
// A block is reused only after every tensor using it was freed (it goes back in
// the DataPtr deleter), so results are ordinary, independent tensors. At most
// kCacheBytes of free blocks are kept; older ones go back to the system.
class OutputCache final : public c10::Allocator {
 public:
  static OutputCache& get() {
    static OutputCache* cache = new OutputCache();  // never destroyed: outputs may outlive static destruction
    return *cache;
  }

  c10::DataPtr allocate(size_t n) override {
    if (n == 0) return c10::GetDefaultCPUAllocator()->allocate(0);
    void* p = take(n);
    if (p == nullptr) p = c10::alloc_cpu(n);  // the default CPU allocation (alignment, huge pages)
    return {p, new Block{p, n}, &give_back, c10::Device(c10::DeviceType::CPU)};
  }

  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }

 private:
  struct Block {
    void* ptr;
    size_t size;
  };
  static constexpr size_t kCacheBytes = size_t(1) << 30;

  void* take(size_t n) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = free_.rbegin(); it != free_.rend(); ++it) {  // most recently freed first
      if ((*it)->size != n) continue;
      Block* b = *it;
      free_.erase(std::next(it).base());
      cached_ -= n;
      void* p = b->ptr;
      delete b;
      return p;
    }
    return nullptr;
  }

  static void give_back(void* ctx) {
    Block* b = static_cast<Block*>(ctx);
    OutputCache& self = get();
    std::vector<Block*> evicted;
    {
      std::lock_guard<std::mutex> lock(self.mutex_);
      self.free_.push_back(b);
      self.cached_ += b->size;
      while (self.cached_ > kCacheBytes) {  // oldest first
        evicted.push_back(self.free_.front());
        self.cached_ -= self.free_.front()->size;
        self.free_.erase(self.free_.begin());
      }
    }
    for (Block* e : evicted) {
      c10::free_cpu(e->ptr);
      delete e;
    }
  }

  std::mutex mutex_;
  std::vector<Block*> free_;  // oldest first
  size_t cached_ = 0;
};

at::Tensor empty_output(at::IntArrayRef sizes, const at::Tensor& like) {
  return at::detail::empty_generic(sizes, &OutputCache::get(), c10::DispatchKeySet(c10::DispatchKey::CPU),
                                   like.scalar_type(), std::nullopt);
}

// Transposes in 8×8 blocks (one cache line of doubles, half of floats, per row):
// small enough that the 8 strided rows of a block never evict each other, fixed
// size so the compiler keeps the block in registers.
constexpr int64_t kBlock = 8;
constexpr int64_t kPanel = 64;  // blocks are visited panel by panel for L1 reuse

template <typename T>
__attribute__((always_inline)) inline void transpose_block(const T* __restrict src, T* __restrict dst, int64_t src_stride, int64_t dst_stride) {
  T tile[kBlock][kBlock];
  for (int64_t i = 0; i < kBlock; ++i)
    for (int64_t j = 0; j < kBlock; ++j) tile[j][i] = src[i * src_stride + j];
  for (int64_t j = 0; j < kBlock; ++j)
    for (int64_t i = 0; i < kBlock; ++i) dst[j * dst_stride + i] = tile[j][i];
}

#if defined(__AVX2__)
// float: 8×8 in registers with AVX2 shuffles (unpack pairs, then quads, then 128-bit halves).
template <>
__attribute__((always_inline)) inline void transpose_block<float>(const float* __restrict src, float* __restrict dst,
                                                                  int64_t src_stride, int64_t dst_stride) {
  __m256 r[8], t[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * src_stride);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    r[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  for (int i = 0; i < 4; ++i) {
    _mm256_storeu_ps(dst + i * dst_stride, _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
    _mm256_storeu_ps(dst + (i + 4) * dst_stride, _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
  }
}
#endif

// dst[j][i] = src[i][j] for a rows × cols block; strides are row pitches.
template <typename T>
void transpose_rect(const T* __restrict src, int64_t src_stride, T* __restrict dst, int64_t dst_stride,
                    int64_t rows, int64_t cols) {
  const int64_t rows8 = rows - rows % kBlock, cols8 = cols - cols % kBlock;
  for (int64_t i0 = 0; i0 < rows8; i0 += kPanel) {
    const int64_t i1 = std::min(i0 + kPanel, rows8);
    for (int64_t j = 0; j < cols8; j += kBlock)
      for (int64_t i = i0; i < i1; i += kBlock)
        transpose_block(src + i * src_stride + j, dst + j * dst_stride + i, src_stride, dst_stride);
  }
  // Ragged edges (sizes not divisible by 8).
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = (i < rows8 ? cols8 : 0); j < cols; ++j) dst[j * dst_stride + i] = src[i * src_stride + j];
}

template <typename T>
void transpose_plane(const T* src, T* dst, int64_t rows, int64_t cols) {
  transpose_rect(src, cols, dst, rows, rows, cols);
}

// Direction order of tasks: alternating horizontal and vertical, because
// at::parallel_for hands each thread a contiguous task range and horizontal scans
// (with their transposes) cost about twice as much as vertical ones. Channels vary
// fastest so a thread loads (and for horizontal scans transposes) each gate set once.
constexpr int kTaskDirection[4] = {kLeftToRight, kTopToBottom, kRightToLeft, kBottomToTop};

bool is_horizontal(int d) { return d == kLeftToRight || d == kRightToLeft; }
bool is_reversed(int d) { return d == kRightToLeft || d == kBottomToTop; }

// One forward step: line `out` from the previous line `prev` (all L long, distinct).
template <typename T>
__attribute__((always_inline)) inline void forward_line(
    const T* __restrict x, const T* __restrict a, const T* __restrict b, const T* __restrict c,
    const T* __restrict prev, T* __restrict out, int64_t L) {
  if (L == 1) { out[0] = forward_step<T>(x[0], a[0], b[0], c[0], 0, prev[0], 0, false, false); return; }
  out[0] = forward_step<T>(x[0], a[0], b[0], c[0], 0, prev[0], prev[1], false, true);
  for (int64_t l = 1; l < L - 1; ++l)
    out[l] = forward_step<T>(x[l], a[l], b[l], c[l], prev[l - 1], prev[l], prev[l + 1], true, true);
  out[L - 1] = forward_step<T>(x[L - 1], a[L - 1], b[L - 1], c[L - 1], prev[L - 2], prev[L - 1], 0, true, false);
}

// Forward scan in line form (lines t of L contiguous elements) of `nc` planes that
// share one set of gates. Lines go in blocks of kLineBlock: within a block each
// channel runs through all its lines, so the block's gate lines are read from
// memory once and reused from cache for every channel, while each channel still
// streams through its own plane (channel planes are often a power-of-two bytes
// apart, so interleaving them line by line would thrash cache sets).
constexpr int64_t kLineBlock = 16;

template <typename T>
void line_forward(const T* const* x, T* const* y, int64_t nc, const T* p0, const T* p1, const T* p2,
                  int64_t lines, int64_t L, bool reverse) {
  const int64_t first = reverse ? lines - 1 : 0;
  const int64_t step = reverse ? -1 : 1;
  for (int64_t c = 0; c < nc; ++c) std::copy(x[c] + first * L, x[c] + first * L + L, y[c] + first * L);
  for (int64_t i0 = 1; i0 < lines; i0 += kLineBlock) {
    const int64_t i1 = std::min(i0 + kLineBlock, lines);
    for (int64_t c = 0; c < nc; ++c)
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t o = (first + i * step) * L;
        forward_line(x[c] + o, p0 + o, p1 + o, p2 + o, y[c] + o - step * L, y[c] + o, L);
      }
  }
}

// Horizontal forward scan of `nc` H × W planes sharing gates, without full-plane
// transposes: bands of kBand columns are transposed into small scratch lines
// (they stay in L1/L2), scanned, and transposed back. Gates come in line form
// (W lines of H); a band's gate lines are reused from cache for every channel.
constexpr int64_t kBand = 16;

template <typename T>
void horizontal_forward(const T* const* x, T* const* y, int64_t nc, const T* p0, const T* p1, const T* p2,
                        int64_t H, int64_t W, bool reverse, std::vector<T>& scratch) {
  scratch.resize((2 * kBand + nc) * H);
  T* xs = scratch.data();
  T* ys = xs + kBand * H;
  T* carry = ys + kBand * H;  // per channel: last line of the previous band
  const int64_t bands = (W + kBand - 1) / kBand;
  for (int64_t bi = 0; bi < bands; ++bi) {
    const int64_t band = reverse ? bands - 1 - bi : bi;
    const int64_t w0 = band * kBand, nb = std::min(kBand, W - w0);
    for (int64_t c = 0; c < nc; ++c) {
      T* carry_c = carry + c * H;
      transpose_rect(x[c] + w0, W, xs, H, H, nb);
      for (int64_t j = 0; j < nb; ++j) {
        const int64_t k = reverse ? nb - 1 - j : j;  // line within the band, in scan order
        const int64_t t = w0 + k;
        T* out = ys + k * H;
        if (bi == 0 && j == 0) { std::copy(xs + k * H, xs + k * H + H, out); continue; }
        const T* prev = j == 0 ? carry_c : ys + (reverse ? k + 1 : k - 1) * H;
        forward_line(xs + k * H, p0 + t * H, p1 + t * H, p2 + t * H, prev, out, H);
      }
      const int64_t last = reverse ? 0 : nb - 1;
      std::copy(ys + last * H, ys + last * H + H, carry_c);
      transpose_rect(ys, H, y[c] + w0, W, nb, H);
    }
  }
}

// Calls f(l, has_lo, has_hi) for l = 0..L-1 with the borders peeled off, so the
// interior loop has constant flags and vectorises (ivdep: the callers' lines never alias).
template <typename F>
__attribute__((always_inline)) inline void for_each_in_line(int64_t L, F&& f) {
  if (L == 1) { f(0, false, false); return; }
  f(0, false, true);
#pragma GCC ivdep
  for (int64_t l = 1; l < L - 1; ++l) f(l, true, true);
  f(L - 1, true, false);
}

// Backward of one plane in line form, or the exact transpose when dp0 is null.
// v runs against the scan order; dx = λ ⊙ v; dp_k = v ⊙ (y_prev - x). With
// `accumulate`, gate gradients are added (shared gates summed over channels).
template <typename T>
void line_backward(const T* g, const T* x, const T* y, const T* p0, const T* p1, const T* p2,
                   T* dx, T* dp0, T* dp1, T* dp2, bool accumulate, int64_t lines, int64_t L, bool reverse,
                   std::vector<T>& vbuf) {
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
      T* vc = v; const T* vx = vn;
      for_each_in_line(L, [&](int64_t l, bool lo, bool hi) {
        vc[l] = backward_carry<T>(gr[l], lo ? c[l - 1] : T(0), lo ? vx[l - 1] : T(0), b[l], vx[l],
                                  hi ? a[l + 1] : T(0), hi ? vx[l + 1] : T(0), lo, hi);
      });
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
      const T* vc = v;
      for_each_in_line(L, [&](int64_t l, bool lo, bool hi) {
        dxr[l] = (T(1) - valid_gate_sum<T>(a[l], b[l], c[l], lo, hi)) * vc[l];
      });
      if (dp0) {
        const T* xr = x + o; const T* prev = y + (t - step) * L;
        T* da = dp0 + o; T* db = dp1 + o; T* dc = dp2 + o;
        // Add to (shared gates) or overwrite (the buffer may hold garbage) the gate gradients.
        for_each_in_line(L, [&](int64_t l, bool lo, bool hi) {
          const T ga = gate_grad<T>(vc[l], lo ? prev[l - 1] : T(0), xr[l], lo);
          const T gb = gate_grad<T>(vc[l], prev[l], xr[l], true);
          const T gc = gate_grad<T>(vc[l], hi ? prev[l + 1] : T(0), xr[l], hi);
          da[l] = accumulate ? da[l] + ga : ga;
          db[l] = accumulate ? db[l] + gb : gb;
          dc[l] = accumulate ? dc[l] + gc : gc;
        });
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

// Channels per forward task when gates are shared: enough to reuse each gate line
// many times, few enough to leave tasks for every thread.
constexpr int64_t kChannelChunk = 8;

template <typename T>
void scan_forward_impl(const at::Tensor& x, const at::Tensor& w, at::Tensor& ys, const ScanShape& s) {
  const Layout lay{s};
  const T* xp = x.data_ptr<T>(); const T* wp = w.data_ptr<T>(); T* yp = ys.data_ptr<T>();
  const int64_t chunk = s.cw == 1 ? kChannelChunk : 1;
  const int64_t chunks = (s.c + chunk - 1) / chunk;
  const int64_t tasks = s.n * 4 * chunks;
  at::parallel_for(0, tasks, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> scratch;
    std::vector<const T*> xin(chunk);
    std::vector<T*> out(chunk);
    Gates<T> gates;
    int64_t loaded = -1;  // (n, d, gate channel) whose gates are in `gates`
    for (int64_t task = begin; task < end; ++task) {
      const int64_t n = task / (4 * chunks), c0 = (task % chunks) * chunk;
      const int d = kTaskDirection[(task / chunks) % 4];
      const int64_t nc = std::min(chunk, s.c - c0);
      const int64_t key = (n * 4 + d) * s.cw + (s.cw == 1 ? 0 : c0);
      if (key != loaded) { gates.load(wp, lay, n, d, c0); loaded = key; }
      for (int64_t c = 0; c < nc; ++c) {
        xin[c] = xp + lay.x_off(s.dx, n, d, c0 + c);
        out[c] = yp + lay.y_off(n, d, c0 + c);
      }
      if (is_horizontal(d))
        horizontal_forward(xin.data(), out.data(), nc, gates.p[0], gates.p[1], gates.p[2], s.h, s.w, is_reversed(d), scratch);
      else
        line_forward(xin.data(), out.data(), nc, gates.p[0], gates.p[1], gates.p[2], s.h, s.w, is_reversed(d));
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
      const int d = kTaskDirection[(task / groups) % 4];
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
  at::Tensor ys = empty_output({s.n, 4, s.c, s.h, s.w}, x);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "tpn_scan_cpu", [&] { scan_forward_impl<scalar_t>(x, w, ys, s); });
  return ys;
}

std::tuple<at::Tensor, at::Tensor> scan_backward_cpu(const at::Tensor& grad, const at::Tensor& x,
                                                     const at::Tensor& w, const at::Tensor& ys) {
  const ScanShape s = check_scan_args(x, w, "x");
  check_grad(grad, s, "grad");
  check_grad(ys, s, "ys");
  at::Tensor dx = empty_output({s.n, 4, s.c, s.h, s.w}, x);
  at::Tensor dw = empty_output(w.sizes(), w);
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
  at::Tensor z = empty_output({s.n, 4, s.c, s.h, s.w}, u);
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
