// Per-step arithmetic of the TPN/SPN 3-neighbour linear scan, shared by the CPU
// (scan_cpu.cpp) and CUDA (scan_cuda.cu) kernels. Those files only decide how
// steps are scheduled; every multiply-add lives here, so the CPU tests exercise
// exactly the arithmetic the GPU runs.
//
// Every direction is expressed as a "line scan": the plane is seen as T lines of
// L elements, the scan runs over t (forward: t = 0..T-1, or reversed), and the
// three neighbours of element l on line t are l-1, l, l+1 of the previous line.
//   L->R / R->L: lines are image columns (t = w, l = h).
//   T->B / B->T: lines are image rows    (t = h, l = w).
// Gate k in {0,1,2} (p1,p2,p3 in the paper) weights neighbour offset k-1 and is
// stored at the pixel being computed. Out-of-image neighbours are dropped from
// both the weighted sum and the (1 - sum p) term; the first line gives y = x.
#pragma once

#if defined(__CUDACC__)
#define TPN_HD __host__ __device__ __forceinline__
#else
#define TPN_HD inline
#endif

namespace tpn {

// Number of scan directions and their order. The max-merge tie rule (first
// direction in this order wins) is applied by the Python layer.
constexpr int kDirections = 4;
enum Direction : int { kLeftToRight = 0, kRightToLeft = 1, kTopToBottom = 2, kBottomToTop = 3 };

// Gate sum over the neighbours that exist: lambda = 1 - this.
template <typename acc_t>
TPN_HD acc_t valid_gate_sum(acc_t p0, acc_t p1, acc_t p2, bool has_lo, bool has_hi) {
  return (has_lo ? p0 : acc_t(0)) + p1 + (has_hi ? p2 : acc_t(0));
}

// Forward: y = (1 - sum p) x + sum p_k y_prev[l+k-1], valid neighbours only.
// Call only for lines that have a previous line (t > 0 in scan order).
template <typename acc_t>
TPN_HD acc_t forward_step(acc_t x, acc_t p0, acc_t p1, acc_t p2,
                          acc_t prev_lo, acc_t prev_mid, acc_t prev_hi,
                          bool has_lo, bool has_hi) {
  acc_t s = p1;
  acc_t acc = p1 * prev_mid;
  if (has_lo) { s += p0; acc += p0 * prev_lo; }
  if (has_hi) { s += p2; acc += p2 * prev_hi; }
  return (acc_t(1) - s) * x + acc;
}

// Backward carry (also the exact transpose recursion):
//   v[t][l] = g[t][l] + sum_k p_k[t+1][l-k+1] * v[t+1][l-k+1]
// where the "next" line t+1 (in scan order) holds the children. next_p{k}_at_*
// are gate k read at the child that uses (t, l) as its neighbour:
//   child l+1 uses gate 0 (its lo neighbour is l), child l uses gate 1,
//   child l-1 uses gate 2. Call only for lines that have a next line.
template <typename acc_t>
TPN_HD acc_t backward_carry(acc_t g,
                            acc_t next_p2_at_lo, acc_t next_v_lo,    // child l-1
                            acc_t next_p1_at_mid, acc_t next_v_mid,  // child l
                            acc_t next_p0_at_hi, acc_t next_v_hi,    // child l+1
                            bool has_lo, bool has_hi) {
  acc_t v = g + next_p1_at_mid * next_v_mid;
  if (has_lo) v += next_p2_at_lo * next_v_lo;
  if (has_hi) v += next_p0_at_hi * next_v_hi;
  return v;
}

// Gradient of one gate given the carry v at the pixel, the neighbour's output and
// the pixel's input: dp_k = v * (y_prev[l+k-1] - x). Zero for missing neighbours.
template <typename acc_t>
TPN_HD acc_t gate_grad(acc_t v, acc_t prev_y, acc_t x, bool valid) {
  return valid ? v * (prev_y - x) : acc_t(0);
}

// Gradient of x (and the transpose's output) from the carry: lambda * v with
// lambda = 1 - valid gate sum, and lambda = 1 on the first line in scan order
// (y = x there). p* are the gates stored at the pixel itself.
template <typename acc_t>
TPN_HD acc_t input_grad(acc_t v, acc_t p0, acc_t p1, acc_t p2, bool has_lo, bool has_hi,
                        bool first_line) {
  return first_line ? v : (acc_t(1) - valid_gate_sum(p0, p1, p2, has_lo, has_hi)) * v;
}

}  // namespace tpn
