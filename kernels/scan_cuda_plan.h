// Launch plan of the tpn CUDA scan kernels: threads, staged tile, shared memory
// and channel groups of one launch. Plain C++ without torch or CUDA headers, so
// that three programs compute the very same plan:
//   - kernels/scan_cuda.cu, which launches the kernels on a GPU;
//   - scripts/emulate_cuda_kernels.cpp, which runs the kernels on the CPU;
//   - scripts/check_cuda_resources.cpp, which checks every plan for frames up to
//     4K against each architecture's register and shared-memory limits.
#pragma once
#include <algorithm>
#include <cstdint>

#if defined(__CUDACC__)
#define TPN_PLAN_HD __host__ __device__ __forceinline__
#else
#define TPN_PLAN_HD inline
#endif

namespace tpn {
namespace cuda_plan {

// Most threads a block of each kernel may have: the kernels' __launch_bounds__,
// so ptxas keeps registers × threads within the 64K registers of a block. The
// backward carries three gate gradients besides the carry and needs ~200
// registers a thread; 256 threads let it keep them all (512 would force 128 a
// thread and spill). Forward and transpose fit 512 threads without spilling.
constexpr int kForwardThreads = 512;
constexpr int kTransposeThreads = 512;
constexpr int kBackwardThreads = 256;
constexpr int64_t kMaxTileLines = 8;  // 8 floats = one 32-byte sector per row

enum class Kernel { kForward, kTranspose, kBackward };

constexpr int launch_bound(Kernel k) {
  return k == Kernel::kForward ? kForwardThreads : k == Kernel::kTranspose ? kTransposeThreads : kBackwardThreads;
}

// Lines of scalar_t staged in shared memory per tile of `tile` lines:
//   forward:   x and the 3 gates of the tile's lines;
//   transpose: u of the tile, the 3 gates of the tile and of its child line;
//   backward:  grad, x and ys of the tile, the 3 gates of the tile and its child line.
constexpr int64_t staged_lines(Kernel k, int64_t tile) {
  return k == Kernel::kForward ? 4 * tile : k == Kernel::kTranspose ? tile + 3 * (tile + 1) : 3 * tile + 3 * (tile + 1);
}

TPN_PLAN_HD int64_t align16(int64_t bytes) { return (bytes + 15) / 16 * 16; }

struct Plan {
  int threads = 0;           // block size
  int64_t blocks = 0;        // N · 2 directions · channel groups
  int tile = 0;              // lines per staged tile; 0 = read global memory directly
  bool line_in_smem = true;  // else the two line buffers live in a global scratch
  int64_t smem = 0;          // dynamic shared memory per block, bytes
};

// Plan of one launch (one direction group) with lines of L elements.
//   max_threads: the kernel's launch bound, lowered on a GPU to what
//                cudaFuncGetAttributes reports for the device;
//   smem_budget: the device's opt-in shared memory per block minus the kernel's
//                static shared memory.
inline Plan plan_launch(Kernel k, int64_t n, int64_t channel_groups, int64_t L, int64_t scalar_bytes,
                        int64_t acc_bytes, int max_threads, int64_t smem_budget) {
  Plan p;
  const int cap = std::max(32, max_threads / 32 * 32);  // whole warps
  p.threads = static_cast<int>(std::min<int64_t>(cap, (L + 31) / 32 * 32));
  p.blocks = n * 2 * channel_groups;
  int64_t line_bytes = align16(2 * L * acc_bytes);
  p.line_in_smem = line_bytes <= smem_budget;
  if (!p.line_in_smem) line_bytes = 0;
  for (int64_t tt = kMaxTileLines; tt >= 1; tt /= 2) {
    if (line_bytes + staged_lines(k, tt) * L * scalar_bytes <= smem_budget) {
      p.tile = static_cast<int>(tt);
      break;
    }
  }
  p.smem = line_bytes + (p.tile > 0 ? staged_lines(k, p.tile) * L * scalar_bytes : 0);
  return p;
}

// Channel groups of the backward. Per-channel gates: one block per channel.
// Shared gates (cw = 1): the gate gradient sums over channels, so a block loops
// over `per_block` channels and writes one partial sum (summed on the host
// afterwards); there are enough groups for about two blocks per SM.
struct ChannelGroups {
  int64_t groups, per_block;
};

inline ChannelGroups backward_channel_groups(int64_t n, int64_t c, int64_t cw, int64_t sms) {
  if (cw != 1 || c == 0) return {c, 1};
  const int64_t want = std::max<int64_t>(1, (2 * sms + n * 2 - 1) / (n * 2));
  const int64_t groups = std::min(c, want);
  const int64_t per_block = (c + groups - 1) / groups;
  return {(c + per_block - 1) / per_block, per_block};
}

}  // namespace cuda_plan
}  // namespace tpn
