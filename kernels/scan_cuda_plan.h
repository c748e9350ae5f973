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
// backward carries three gate gradients besides the carry and needs ~180-205
// registers a thread; 256 threads let it keep them all (512 would force 128 a
// thread and spill). Forward and transpose fit 512 threads at 128 registers
// with no or a few bytes of spilling (ptxas -v; scripts/check_cuda_compile.sh
// prints each kernel's registers per architecture).
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

// One launch runs all four directions: N · 4 · channel groups blocks, the
// horizontal scans (lines of H elements, group [0]) beside the vertical ones
// (lines of W, group [1]), so that small C still gives twice the blocks and the
// two groups' steps overlap instead of running one launch after the other.
struct Plan {
  int threads = 0;                     // block size, for the longer line
  int64_t blocks = 0;                  // N · 4 directions · channel groups
  int tile[2] = {0, 0};                // lines per staged tile; 0 = read global memory directly
  bool line_in_smem[2] = {true, true};  // else the two line buffers live in a global scratch
  int64_t smem = 0;                    // dynamic shared memory per block: the larger group's
  int64_t scratch_elems = 0;           // acc_t elements of the global line scratch (0: none)
};

// Shared memory of one group with lines of L elements: line buffers, then tiles.
struct GroupSmem {
  int tile;
  bool line_in_smem;
  int64_t bytes;
};

inline GroupSmem plan_group(Kernel k, int64_t L, int64_t scalar_bytes, int64_t acc_bytes, int64_t smem_budget) {
  GroupSmem g{0, true, 0};
  int64_t line_bytes = align16(2 * L * acc_bytes);
  g.line_in_smem = line_bytes <= smem_budget;
  if (!g.line_in_smem) line_bytes = 0;
  for (int64_t tt = kMaxTileLines; tt >= 1; tt /= 2) {
    if (line_bytes + staged_lines(k, tt) * L * scalar_bytes <= smem_budget) {
      g.tile = static_cast<int>(tt);
      break;
    }
  }
  g.bytes = line_bytes + (g.tile > 0 ? staged_lines(k, g.tile) * L * scalar_bytes : 0);
  return g;
}

// Plan of the launch for H × W planes.
//   max_threads: the kernel's launch bound, lowered on a GPU to what
//                cudaFuncGetAttributes reports for the device;
//   smem_budget: the device's opt-in shared memory per block minus the kernel's
//                static shared memory.
inline Plan plan_launch(Kernel k, int64_t n, int64_t channel_groups, int64_t h, int64_t w, int64_t scalar_bytes,
                        int64_t acc_bytes, int max_threads, int64_t smem_budget) {
  Plan p;
  const int cap = std::max(32, max_threads / 32 * 32);  // whole warps
  const int64_t longest = std::max(h, w);
  p.threads = static_cast<int>(std::min<int64_t>(cap, (longest + 31) / 32 * 32));
  p.blocks = n * 4 * channel_groups;
  const int64_t L[2] = {h, w};
  for (int g = 0; g < 2; ++g) {
    const GroupSmem gs = plan_group(k, L[g], scalar_bytes, acc_bytes, smem_budget);
    p.tile[g] = gs.tile;
    p.line_in_smem[g] = gs.line_in_smem;
    p.smem = std::max(p.smem, gs.bytes);
    if (!gs.line_in_smem) p.scratch_elems = p.blocks * 2 * longest;
  }
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
  const int64_t want = std::max<int64_t>(1, (2 * sms + n * 4 - 1) / (n * 4));
  const int64_t groups = std::min(c, want);
  const int64_t per_block = (c + groups - 1) / groups;
  return {(c + per_block - 1) / per_block, per_block};
}

}  // namespace cuda_plan
}  // namespace tpn
