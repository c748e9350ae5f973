// CPU kernels of the tpn scan ops. Scheduling only: the arithmetic is in scan_step.h.
//
// Every direction runs as a line scan over contiguous lines, so the inner loop
// over l is unit-stride and vectorises. Vertical scans (T→B, B→T) use the image
// rows as lines directly; horizontal scans (L→R, R→L) transpose into per-thread
// scratch: the forward in bands of 16 columns (written back with streaming
// stores), the backward whole planes. Forward tasks are (n, direction, channel
// chunk); backward tasks are (n, channel group) over all four directions, so the
// gradient of an x shared by the directions is summed in the task and shared-gate
// gradients are summed over the group's channels without write races. Outputs come
// from a cache of freed blocks (OutputCache) instead of fresh, zeroed pages.
#include <ATen/EmptyTensor.h>
#include <ATen/Parallel.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <torch/library.h>

#include <algorithm>
#if defined(__SSE2__)
#include <immintrin.h>
#endif
#include <atomic>
#include <memory>
#include <mutex>
#include <type_traits>
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
// the DataPtr deleter), so results are ordinary, independent tensors. Bounds on
// the memory held: at most kCacheBytes of free blocks (oldest go first), and a free
// block that none of the next kMaxAge allocations reused goes back to the system,
// so sizes from earlier work (another resolution) are not kept.
class OutputCache final : public c10::Allocator {
 public:
  static OutputCache& get() {
    static OutputCache* cache = new OutputCache();  // never destroyed: outputs may outlive static destruction
    return *cache;
  }

  c10::DataPtr allocate(size_t n) override {
    if (n == 0) return c10::GetDefaultCPUAllocator()->allocate(0);
    void* p = nullptr;
    std::vector<Block*> stale;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++tick_;
      for (auto it = free_.rbegin(); it != free_.rend(); ++it) {  // most recently freed first
        if ((*it)->size != n) continue;
        Block* b = *it;
        free_.erase(std::next(it).base());
        cached_ -= n;
        p = b->ptr;
        delete b;
        break;
      }
      while (!free_.empty() && tick_ - free_.front()->freed_at > kMaxAge) pop_oldest(stale);
    }
    release(stale);
    if (p == nullptr) p = c10::alloc_cpu(n);  // the default CPU allocation (alignment, huge pages)
    return {p, new Block{p, n, 0}, &give_back, c10::Device(c10::DeviceType::CPU)};
  }

  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }

 private:
  struct Block {
    void* ptr;
    size_t size;
    uint64_t freed_at;  // allocation count when it was freed
  };
  static constexpr size_t kCacheBytes = size_t(512) << 20;
  static constexpr uint64_t kMaxAge = 64;

  static void give_back(void* ctx) {
    Block* b = static_cast<Block*>(ctx);
    OutputCache& self = get();
    std::vector<Block*> evicted;
    {
      std::lock_guard<std::mutex> lock(self.mutex_);
      b->freed_at = self.tick_;
      self.free_.push_back(b);
      self.cached_ += b->size;
      while (self.cached_ > kCacheBytes) self.pop_oldest(evicted);
    }
    release(evicted);
  }

  void pop_oldest(std::vector<Block*>& out) {  // with mutex_ held
    out.push_back(free_.front());
    cached_ -= free_.front()->size;
    free_.erase(free_.begin());
  }

  static void release(const std::vector<Block*>& blocks) {
    for (Block* b : blocks) {
      c10::free_cpu(b->ptr);
      delete b;
    }
  }

  std::mutex mutex_;
  std::vector<Block*> free_;  // oldest first
  size_t cached_ = 0;
  uint64_t tick_ = 0;
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
void transpose_rect8(const T* __restrict src, int64_t src_stride, T* __restrict dst, int64_t dst_stride,
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

#if defined(__AVX512F__)
// float on AVX-512: 16×16 blocks, so every load and store is a whole 64-byte row
// of the block (one cache line when aligned) and a block costs 64 shuffles for
// 256 elements (8×8 AVX2: 24 for 64). Measured on the horizontal forward, where
// the strided writes of the transposed band dominated.
__attribute__((always_inline)) inline void transpose16(__m512 r[16]) {
  __m512 t[16];
  // After these two stages, 128-bit lane q of r[g + m] (g = 0, 4, 8, 12) holds
  // rows g..g+3 of column 4q + m.
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  // Column 4q + m = lane q of r[m], r[4 + m], r[8 + m], r[12 + m]: gather those lanes.
  for (int m = 0; m < 4; ++m) {
    t[m] = _mm512_shuffle_f32x4(r[m], r[4 + m], 0x44);
    t[4 + m] = _mm512_shuffle_f32x4(r[m], r[4 + m], 0xEE);
    t[8 + m] = _mm512_shuffle_f32x4(r[8 + m], r[12 + m], 0x44);
    t[12 + m] = _mm512_shuffle_f32x4(r[8 + m], r[12 + m], 0xEE);
  }
  for (int m = 0; m < 4; ++m) {
    r[m] = _mm512_shuffle_f32x4(t[m], t[8 + m], 0x88);
    r[4 + m] = _mm512_shuffle_f32x4(t[m], t[8 + m], 0xDD);
    r[8 + m] = _mm512_shuffle_f32x4(t[4 + m], t[12 + m], 0x88);
    r[12 + m] = _mm512_shuffle_f32x4(t[4 + m], t[12 + m], 0xDD);
  }
}

template <bool kStream>
__attribute__((always_inline)) inline void transpose_block16(const float* __restrict src, float* __restrict dst,
                                                             int64_t src_stride, int64_t dst_stride) {
  __m512 r[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(src + i * src_stride);
  transpose16(r);
  for (int i = 0; i < 16; ++i) {
    if (kStream) _mm512_stream_ps(dst + i * dst_stride, r[i]);
    else _mm512_storeu_ps(dst + i * dst_stride, r[i]);
  }
}
#endif

// Orders the streaming (non-temporal) stores of this thread before what follows.
inline void store_fence() {
#if defined(__SSE2__)
  _mm_sfence();
#endif
}

// dst[j][i] = src[i][j] for a rows × cols block; strides are row pitches. With
// kStream, whole-line stores bypass the cache (non-temporal) when dst allows it:
// for large outputs written once, that saves reading every line before writing
// it. The caller must _mm_sfence() before the data is read by another thread.
template <typename T, bool kStream = false>
void transpose_rect(const T* __restrict src, int64_t src_stride, T* __restrict dst, int64_t dst_stride,
                    int64_t rows, int64_t cols) {
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    const int64_t rows16 = rows - rows % 16, cols16 = cols - cols % 16;
    const bool aligned = reinterpret_cast<uintptr_t>(dst) % 64 == 0 && dst_stride % 16 == 0;
    for (int64_t j = 0; j < cols16; j += 16)
      for (int64_t i = 0; i < rows16; i += 16) {
        if (kStream && aligned) transpose_block16<true>(src + i * src_stride + j, dst + j * dst_stride + i, src_stride, dst_stride);
        else transpose_block16<false>(src + i * src_stride + j, dst + j * dst_stride + i, src_stride, dst_stride);
      }
    // The strips left of 16×16 blocks: columns cols16.. of all rows, rows rows16.. of the rest.
    if (cols16 < cols) transpose_rect8(src + cols16, src_stride, dst + cols16 * dst_stride, dst_stride, rows, cols - cols16);
    if (rows16 < rows && cols16 > 0)
      transpose_rect8(src + rows16 * src_stride, src_stride, dst + rows16, dst_stride, rows - rows16, cols16);
    return;
  }
#endif
  transpose_rect8(src, src_stride, dst, dst_stride, rows, cols);
}

template <typename T>
void transpose_plane(const T* src, T* dst, int64_t rows, int64_t cols) {
  transpose_rect(src, cols, dst, rows, rows, cols);
}

// Tasks 0..tasks-1 over the intra-op threads. Each thread starts on its own
// contiguous range, so consecutive tasks reuse what it loaded (gates); a thread
// that runs out takes tasks from the end of the others' ranges. The machines this
// runs on are shared (training next to other jobs): a thread can lose its core for
// a while, and with a fixed split the other would wait for its whole share.
class TaskRanges {
 public:
  TaskRanges(int64_t tasks, int64_t parts) : parts_(parts), ranges_(new std::atomic<uint64_t>[parts]) {
    TORCH_CHECK(tasks < (int64_t(1) << 31), "tpn scan: too many tasks (", tasks, ")");
    for (int64_t p = 0; p < parts; ++p)
      ranges_[p].store(pack(tasks * p / parts, tasks * (p + 1) / parts));
  }
  // The next task for part p, or -1 when all are taken.
  int64_t next(int64_t p) {
    for (int64_t i = 0; i < parts_; ++i) {
      const int64_t t = take(ranges_[(p + i) % parts_], /*front=*/i == 0);
      if (t >= 0) return t;
    }
    return -1;
  }

 private:
  static uint64_t pack(int64_t front, int64_t back) { return (uint64_t(front) << 32) | uint64_t(back); }
  static int64_t take(std::atomic<uint64_t>& range, bool front) {
    uint64_t r = range.load();
    for (;;) {
      const int64_t f = int64_t(r >> 32), b = int64_t(r & 0xffffffffu);
      if (f >= b) return -1;
      if (range.compare_exchange_weak(r, front ? pack(f + 1, b) : pack(f, b - 1))) return front ? f : b - 1;
    }
  }
  int64_t parts_;
  std::unique_ptr<std::atomic<uint64_t>[]> ranges_;
};

// Runs body(next) once per thread; next() yields that thread's tasks (-1 at the end).
template <typename Body>
void parallel_tasks(int64_t tasks, Body body) {
  if (tasks <= 0) return;
  const int64_t parts = std::min<int64_t>(tasks, at::get_num_threads());
  TaskRanges ranges(tasks, parts);
  at::parallel_for(0, parts, 1, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) body([&] { return ranges.next(p); });
  });
}

// Direction order of tasks: alternating horizontal and vertical, because each
// thread starts on a contiguous task range and horizontal scans (with their
// transposes) cost more than vertical ones. Channels vary fastest so a thread
// loads (and for horizontal scans transposes) each gate set once.
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
      // Streaming stores: each row of y gets one cache line from this band, and
      // with ordinary stores every such line is first read from memory (strided,
      // so not prefetched): 28 -> 15 ms for one direction at 512², C=32.
      transpose_rect<T, /*kStream=*/true>(ys, H, y[c] + w0, W, nb, H);
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

// One line of the backward (or transpose) recursion, against the scan order:
//   v  = g + Σ_k p_k[next] ⊙ v[next]   (backward_carry; just g on the last line, kNext = false)
//   dx = λ ⊙ v                          (λ = 1 on the first line, kFirst)
//   dp_k = v ⊙ (y_prev - x)             (kGates; zero on the first line)
// in one pass, so v is used while it is in registers. kAccDx / kAccDw add to the
// outputs instead of overwriting them (x shared by the four directions; gates
// shared by the channels). All pointers are distinct lines of L elements.
template <typename T>
struct BackLine {
  const T* g;                   // dL/dy on this line
  const T *p0, *p1, *p2;        // gates at this line (unused on the first line)
  const T *n0, *n1, *n2, *vn;   // gates and carry of the next line in scan order (kNext)
  const T *x, *prev;            // input at this line and output of the previous line (kGates)
  T* v;                         // carry of this line (written)
  T* dx;
  T *d0, *d1, *d2;              // gate gradients (kGates)
};

template <typename T, bool kNext, bool kFirst, bool kGates, bool kAccDx, bool kAccDw>
__attribute__((always_inline)) inline void backward_line(const BackLine<T>& r, int64_t L) {
  const T* __restrict g = r.g;
  const T* __restrict p0 = r.p0; const T* __restrict p1 = r.p1; const T* __restrict p2 = r.p2;
  const T* __restrict n0 = r.n0; const T* __restrict n1 = r.n1; const T* __restrict n2 = r.n2;
  const T* __restrict vn = r.vn;
  const T* __restrict x = r.x; const T* __restrict prev = r.prev;
  T* __restrict v = r.v; T* __restrict dx = r.dx;
  T* __restrict d0 = r.d0; T* __restrict d1 = r.d1; T* __restrict d2 = r.d2;
  for_each_in_line(L, [&](int64_t l, bool lo, bool hi) {
    T vl = g[l];
    if (kNext)
      vl = backward_carry<T>(g[l], lo ? n2[l - 1] : T(0), lo ? vn[l - 1] : T(0), n1[l], vn[l],
                             hi ? n0[l + 1] : T(0), hi ? vn[l + 1] : T(0), lo, hi);
    v[l] = vl;
    const T gx = kFirst ? vl : input_grad<T>(vl, p0[l], p1[l], p2[l], lo, hi, false);
    dx[l] = kAccDx ? dx[l] + gx : gx;
    if (kGates && !(kFirst && kAccDw)) {  // first line: gates unused, their gradient is 0
      const T ga = kFirst ? T(0) : gate_grad<T>(vl, lo ? prev[l - 1] : T(0), x[l], lo);
      const T gb = kFirst ? T(0) : gate_grad<T>(vl, prev[l], x[l], true);
      const T gc = kFirst ? T(0) : gate_grad<T>(vl, hi ? prev[l + 1] : T(0), x[l], hi);
      d0[l] = kAccDw ? d0[l] + ga : ga;
      d1[l] = kAccDw ? d1[l] + gb : gb;
      d2[l] = kAccDw ? d2[l] + gc : gc;
    }
  });
}

// Backward of one plane in line form (lines t of L elements), or the exact
// transpose when dp0 is null. v runs against the scan order in vbuf (2 L).
template <typename T, bool kGates, bool kAccDx, bool kAccDw>
void line_backward(const T* g, int64_t g_stride, const T* x, const T* y, const T* p0, const T* p1, const T* p2,
                   T* dx, T* dp0, T* dp1, T* dp2, int64_t lines, int64_t L, bool reverse, T* vbuf) {
  const int64_t first = reverse ? lines - 1 : 0;
  const int64_t step = reverse ? -1 : 1;
  T* v = vbuf;
  T* vn = vbuf + L;  // carry of the next line in scan order
  for (int64_t i = lines - 1; i >= 0; --i) {
    const int64_t t = first + i * step, o = t * L;
    const int64_t no = (t + step) * L, po = (t - step) * L;  // next / previous line (when they exist)
    BackLine<T> r{g + t * g_stride, p0 + o, p1 + o, p2 + o, nullptr, nullptr, nullptr, vn,
                  nullptr, nullptr, v, dx + o, nullptr, nullptr, nullptr};
    if (i < lines - 1) { r.n0 = p0 + no; r.n1 = p1 + no; r.n2 = p2 + no; }
    if (kGates) {
      r.x = x + o; r.d0 = dp0 + o; r.d1 = dp1 + o; r.d2 = dp2 + o;
      if (i > 0) r.prev = y + po;
    }
    if (i == lines - 1 && i == 0) backward_line<T, false, true, kGates, kAccDx, kAccDw>(r, L);
    else if (i == lines - 1) backward_line<T, false, false, kGates, kAccDx, kAccDw>(r, L);
    else if (i == 0) backward_line<T, true, true, kGates, kAccDx, kAccDw>(r, L);
    else backward_line<T, true, false, kGates, kAccDx, kAccDw>(r, L);
    std::swap(v, vn);
  }
}

// Runtime flags to the template above. g's lines are g_stride apart (0 for a
// gradient broadcast across lines); every other plane is L-strided.
template <typename T>
void line_backward(const T* g, int64_t g_stride, const T* x, const T* y, const T* p0, const T* p1, const T* p2,
                   T* dx, T* dp0, T* dp1, T* dp2, bool acc_dx, bool acc_dw, int64_t lines, int64_t L,
                   bool reverse, T* vbuf) {
#define TPN_LINE_BACKWARD(G, AX, AW) \
  line_backward<T, G, AX, AW>(g, g_stride, x, y, p0, p1, p2, dx, dp0, dp1, dp2, lines, L, reverse, vbuf)
  if (dp0 == nullptr) {
    if (acc_dx) TPN_LINE_BACKWARD(false, true, false);
    else TPN_LINE_BACKWARD(false, false, false);
  } else if (acc_dx) {
    if (acc_dw) TPN_LINE_BACKWARD(true, true, true);
    else TPN_LINE_BACKWARD(true, true, false);
  } else {
    if (acc_dw) TPN_LINE_BACKWARD(true, false, true);
    else TPN_LINE_BACKWARD(true, false, false);
  }
#undef TPN_LINE_BACKWARD
}

// The incoming gradient dL/dys, read with its own strides (N, 4, C, H, W): autograd
// may hand over a broadcast (ys.sum() gives all-zero strides) or otherwise strided
// tensor, and copying it to a contiguous one costs a full pass over 4·C planes.
template <typename T>
struct GradView {
  const T* p;
  int64_t sn, sd, sc, sh, sw;

  // Plane (n, d, c) as rows `row_stride` apart with unit column stride: in place
  // when the tensor allows, else gathered into buf (H × W).
  const T* plane(int64_t n, int d, int64_t c, const ScanShape& s, std::vector<T>& buf, int64_t& row_stride) const {
    const T* src = p + n * sn + d * sd + c * sc;
    if (sw == 1 || s.w == 1) { row_stride = sh; return src; }
    buf.resize(s.h * s.w);
    for (int64_t i = 0; i < s.h; ++i) {
      T* row = buf.data() + i * s.w;
      if (sw == 0) std::fill(row, row + s.w, src[i * sh]);
      else for (int64_t j = 0; j < s.w; ++j) row[j] = src[i * sh + j * sw];
    }
    row_stride = s.w;
    return buf.data();
  }
};

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
  parallel_tasks(tasks, [&](auto next_task) {
    std::vector<T> scratch;
    std::vector<const T*> xin(chunk);
    std::vector<T*> out(chunk);
    Gates<T> gates;
    int64_t loaded = -1;  // (n, d, gate channel) whose gates are in `gates`
    for (int64_t task; (task = next_task()) >= 0;) {
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
    store_fence();  // streaming stores visible before the threads join
  });
}

// Backward (dwp != nullptr) or exact transpose (xp, yp, dwp null).
//   g:  (N, 4, C, H, W) with any strides (sd = 0 for the transpose of an input shared
//       by the directions).
//   dx: (N, dx_dirs, C, H, W): one plane per direction (dx_dirs = 4), or their sum
//       (dx_dirs = 1): the gradient of an x shared by the four scans, summed here
//       instead of in a separate pass over a 4× larger tensor.
// A task is (n, group of channels) and runs all four directions, so the sum over
// directions stays in one thread, and (Dx = 1) x is transposed once for both
// horizontal scans. Horizontal scans work on transposed planes (lines = columns).
// Gate gradients: per-channel gates are written per channel (one channel per
// task). Shared gates sum over channels: the first channel of a group overwrites,
// the others add; with several groups per image (few images, to keep every thread
// busy) group gi writes its own set of planes at dwp + gi * dw_group_stride and the
// caller sums them.
template <typename T>
void scan_backward_impl(const GradView<T>& g, const T* xp, const T* wp, const T* yp, T* dxp,
                        int64_t dx_dirs, T* dwp, int64_t groups, int64_t dw_group_stride, const ScanShape& s) {
  const Layout lay{s};
  const bool grads = dwp != nullptr;
  const bool shared = grads && s.cw == 1;
  const int64_t per_group = (s.c + groups - 1) / groups;
  const int64_t HW = s.h * s.w;
  parallel_tasks(s.n * groups, [&](auto next_task) {
    std::vector<T> xbuf(grads ? HW : 0), gbuf(HW), gplane, ybuf(grads ? HW : 0), dxbuf(HW), vbuf(2 * std::max(s.h, s.w));
    std::vector<T> dwl[2][3];  // gate gradients of L→R, R→L in line form
    if (grads)
      for (auto& per_dir : dwl)
        for (auto& b : per_dir) b.resize(HW);
    Gates<T> gates[4];
    int64_t loaded[4] = {-1, -1, -1, -1};
    for (int64_t task; (task = next_task()) >= 0;) {
      const int64_t n = task / groups, gi = task % groups;
      const int64_t c0 = gi * per_group, c1 = std::min(s.c, c0 + per_group);
      // Where the gate gradient of (n, d, k) for channel c goes.
      auto dw_dst = [&](int d, int k, int64_t c) {
        return shared ? dwp + gi * dw_group_stride + lay.w_off(n, d, k, 0) : dwp + lay.w_off(n, d, k, c);
      };
      for (int64_t c = c0; c < c1; ++c) {
        const bool acc_dw = shared && c != c0;
        for (int d = 0; d < 4; ++d) {
          const int64_t key = (n * 4 + d) * s.cw + (s.cw == 1 ? 0 : c);
          if (key != loaded[d]) { gates[d].load(wp, lay, n, d, c); loaded[d] = key; }
        }
        T* dx_sum = dxp + lay.x_off(1, n, 0, c);  // dx_dirs == 1
        // Horizontal scans: W lines (columns) of H; R→L adds its dx to L→R's in line form.
        const T* xl = nullptr;
        for (int d : {kLeftToRight, kRightToLeft}) {
          const int hi = d == kLeftToRight ? 0 : 1;
          if (grads && (d == kLeftToRight || s.dx == 4)) {
            transpose_plane(xp + lay.x_off(s.dx, n, d, c), xbuf.data(), s.h, s.w);
            xl = xbuf.data();
          }
          int64_t g_stride;
          const T* gsrc = g.plane(n, d, c, s, gplane, g_stride);
          transpose_rect(gsrc, g_stride, gbuf.data(), s.h, s.h, s.w);
          if (grads) transpose_plane(yp + lay.y_off(n, d, c), ybuf.data(), s.h, s.w);
          const bool acc_dx = dx_dirs == 1 && d == kRightToLeft;
          line_backward(gbuf.data(), s.h, xl, grads ? ybuf.data() : nullptr, gates[d].p[0], gates[d].p[1], gates[d].p[2],
                        dxbuf.data(), grads ? dwl[hi][0].data() : nullptr, grads ? dwl[hi][1].data() : nullptr,
                        grads ? dwl[hi][2].data() : nullptr, acc_dx, acc_dw, s.w, s.h, is_reversed(d), vbuf.data());
          if (dx_dirs == 4) transpose_plane(dxbuf.data(), dxp + lay.y_off(n, d, c), s.w, s.h);
          if (grads && !shared)
            for (int k = 0; k < 3; ++k) transpose_plane(dwl[hi][k].data(), dw_dst(d, k, c), s.w, s.h);
        }
        if (dx_dirs == 1) transpose_plane(dxbuf.data(), dx_sum, s.w, s.h);
        // Vertical scans: H lines (rows) of W, straight from the tensors.
        for (int d : {kTopToBottom, kBottomToTop}) {
          T* dx_out = dx_dirs == 1 ? dx_sum : dxp + lay.y_off(n, d, c);
          int64_t g_stride;
          const T* gsrc = g.plane(n, d, c, s, gplane, g_stride);
          line_backward(gsrc, g_stride, grads ? xp + lay.x_off(s.dx, n, d, c) : nullptr,
                        grads ? yp + lay.y_off(n, d, c) : nullptr, gates[d].p[0], gates[d].p[1], gates[d].p[2],
                        dx_out, grads ? dw_dst(d, 0, c) : nullptr, grads ? dw_dst(d, 1, c) : nullptr,
                        grads ? dw_dst(d, 2, c) : nullptr, dx_dirs == 1, acc_dw, s.h, s.w, is_reversed(d),
                        vbuf.data());
        }
      }
      if (shared && c1 > c0)
        for (int d : {kLeftToRight, kRightToLeft})
          for (int k = 0; k < 3; ++k)
            transpose_plane(dwl[d == kLeftToRight ? 0 : 1][k].data(), dw_dst(d, k, c0), s.w, s.h);
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
  check_grad(grad, s, "grad", /*contiguous=*/false);
  check_grad(ys, s, "ys");
  at::Tensor dx = empty_output(x.sizes(), x);
  at::Tensor dw = empty_output(w.sizes(), w);
  if (s.c == 0 || s.n == 0 || s.h == 0 || s.w == 0) {
    dw.zero_();  // C = 0 with shared gates: an empty sum
    return {dx, dw};
  }
  // Shared gates and fewer images than threads: split the channels into groups
  // with partial gate gradients, so that every thread has work.
  const int64_t groups = s.cw == 1 ? std::min(s.c, (at::get_num_threads() + s.n - 1) / s.n) : s.c;
  const bool partial = s.cw == 1 && groups > 1;
  at::Tensor dw_parts = partial ? empty_output({groups, s.n, 4, 3, 1, s.h, s.w}, w) : dw;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "tpn_scan_backward_cpu", [&] {
    const GradView<scalar_t> g{grad.data_ptr<scalar_t>(), grad.stride(0), grad.stride(1), grad.stride(2),
                               grad.stride(3), grad.stride(4)};
    scan_backward_impl<scalar_t>(g, x.data_ptr<scalar_t>(), w.data_ptr<scalar_t>(),
                                 ys.data_ptr<scalar_t>(), dx.data_ptr<scalar_t>(), s.dx,
                                 dw_parts.data_ptr<scalar_t>(), groups, w.numel(), s);
  });
  if (partial) at::sum_out(dw, dw_parts, {0});
  return {dx, dw};
}

at::Tensor scan_transpose_cpu(const at::Tensor& u, const at::Tensor& w) {
  const ScanShape s = check_scan_args(u, w, "u");
  at::Tensor z = empty_output({s.n, 4, s.c, s.h, s.w}, u);
  if (z.numel() == 0) return z;
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "tpn_scan_transpose_cpu", [&] {
    const int64_t plane = s.h * s.w;  // u is contiguous (N, Du, C, H, W)
    const GradView<scalar_t> g{u.data_ptr<scalar_t>(), s.dx * s.c * plane, s.dx == 1 ? 0 : s.c * plane, plane, s.w, 1};
    scan_backward_impl<scalar_t>(g, nullptr, w.data_ptr<scalar_t>(), nullptr,
                                 z.data_ptr<scalar_t>(), 4, nullptr, s.c, 0, s);
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
