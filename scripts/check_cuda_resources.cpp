// Checks, without a GPU, that every CUDA scan kernel launches within its
// architecture's limits for every size we support (frames up to 4K, so lines of
// up to 4096 elements, C up to 64, N up to 8).
//
// Input on stdin, one line per kernel and architecture, from ptxas -v on
// kernels/scan_cuda.cu (scripts/check_cuda_resources.sh makes it):
//   sm_XX KIND DTYPE REGISTERS STATIC_SMEM_BYTES
// with KIND forward|transpose|backward and DTYPE float32|float64.
// For each line it computes the launch plan that scan_cuda.cu would use
// (kernels/scan_cuda_plan.h, with the kernel's launch bound as the thread cap,
// i.e. without the runtime safety net of cudaFuncGetAttributes) and fails when
//   registers × threads (allocated per warp, 256-register units) > 64K a block,
//   threads > 1024, registers > 255, or static + dynamic shared memory > the
//   architecture's opt-in limit per block.
// Prints one line per architecture and exits 1 on any violation.
#include <cstdio>
#include <cstring>
#include <map>
#include <string>

#include "../kernels/scan_cuda_plan.h"

using namespace tpn::cuda_plan;

struct ArchLimits {
  int64_t smem_optin;  // cudaDevAttrMaxSharedMemoryPerBlockOptin, bytes
  int64_t sms;         // a typical SM count (changes only the backward's channel groups)
};

// CUDA C Programming Guide, "Technical Specifications per Compute Capability".
// Registers: 64K 32-bit registers a block and 255 a thread on all of these.
const std::map<std::string, ArchLimits> kArchs = {
    {"sm_75", {65536, 72}},   {"sm_80", {166912, 108}}, {"sm_86", {101376, 84}},
    {"sm_87", {166912, 16}},  {"sm_89", {101376, 128}}, {"sm_90", {232448, 132}},
    {"sm_100", {232448, 148}}, {"sm_103", {232448, 148}}, {"sm_110", {232448, 20}},
    {"sm_120", {101376, 84}}, {"sm_121", {101376, 48}},
};
constexpr int64_t kRegsPerBlock = 65536, kMaxRegsPerThread = 255, kMaxThreadsPerBlock = 1024;
constexpr int64_t kMaxLine = 4096, kMaxC = 64, kMaxN = 8;

int64_t block_registers(int64_t regs, int threads) {
  const int64_t per_warp = (regs * 32 + 255) / 256 * 256;
  return per_warp * ((threads + 31) / 32);
}

int main() {
  char arch[32], kind[32], dtype[32];
  long long regs_in, smem_in;
  std::map<std::string, std::string> summary;
  std::map<std::string, bool> arch_ok;
  int lines = 0, failures = 0;
  while (std::scanf("%31s %31s %31s %lld %lld", arch, kind, dtype, &regs_in, &smem_in) == 5) {
    ++lines;
    const int64_t regs = regs_in, static_smem = smem_in;
    const auto lim = kArchs.find(arch);
    if (lim == kArchs.end()) {
      std::printf("check_cuda_resources: FAIL unknown architecture %s (add its limits)\n", arch);
      ++failures;
      continue;
    }
    const Kernel k = !std::strcmp(kind, "forward") ? Kernel::kForward
                     : !std::strcmp(kind, "transpose") ? Kernel::kTranspose : Kernel::kBackward;
    const int64_t bytes = !std::strcmp(dtype, "float64") ? 8 : 4;
    const int64_t budget = lim->second.smem_optin - static_smem;
    // Worst case over every line length, batch and channel count.
    int worst_threads = 0;
    int64_t worst_smem = 0, worst_regs = 0;
    bool ok = regs <= kMaxRegsPerThread && budget > 0;
    for (int64_t L = 1; L <= kMaxLine; ++L)
      for (int64_t n = 1; n <= kMaxN; n *= 2)
        for (int64_t c = 1; c <= kMaxC; ++c) {
          const int64_t groups = k == Kernel::kBackward ? backward_channel_groups(n, c, 1, lim->second.sms).groups : c;
          // H = W = L: the plan's threads follow the longer line and its shared
          // memory the larger group, so square planes are each L's worst case.
          const Plan p = plan_launch(k, n, groups, L, L, bytes, bytes, launch_bound(k), budget);
          const int64_t r = block_registers(regs, p.threads);
          worst_threads = std::max(worst_threads, p.threads);
          worst_smem = std::max(worst_smem, p.smem + static_smem);
          worst_regs = std::max(worst_regs, r);
          const bool fits = r <= kRegsPerBlock && p.threads <= kMaxThreadsPerBlock &&
                            p.smem + static_smem <= lim->second.smem_optin;
          if (!fits && ok) {
            std::printf("check_cuda_resources: FAIL %s %s %s: %lld registers x %d threads = %lld > %lld, "
                        "or shared memory %lld > %lld (line of %lld)\n",
                        arch, kind, dtype, (long long)regs, p.threads, (long long)r, (long long)kRegsPerBlock,
                        (long long)(p.smem + static_smem), (long long)lim->second.smem_optin, (long long)L);
          }
          ok = ok && fits;
        }
    if (!ok) ++failures;
    arch_ok.emplace(arch, true);
    arch_ok[arch] = arch_ok[arch] && ok;
    char buf[160];
    std::snprintf(buf, sizeof buf, " %s/%s %lldx%d=%lldK regs %lldK smem;", kind, bytes == 8 ? "f64" : "f32", (long long)regs,
                  worst_threads, (long long)(worst_regs / 1024), (long long)(worst_smem / 1024));
    summary[arch] += buf;
  }
  for (const auto& [a, text] : summary)
    std::printf("check_cuda_resources: %s %s (opt-in smem %lldK):%s\n", arch_ok[a] ? "OK  " : "FAIL", a.c_str(),
                (long long)(kArchs.at(a).smem_optin / 1024), text.c_str());
  if (lines == 0) {
    std::printf("check_cuda_resources: FAIL no kernels read\n");
    return 1;
  }
  return failures ? 1 : 0;
}
