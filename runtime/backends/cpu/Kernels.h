//===- Kernels.h - The CPU backend's reference kernels ----------*- C++ -*-===//
//
// Forward and backward kernels for every op of the `graph` dialect
// (dialects/Graph/IR/GraphOps.td). This is the reference backend: every other
// backend is checked against these functions, so they favour clarity over
// speed. Only the GEMMs go to OpenBLAS.
//
// Conventions shared by every function here:
//  - Tensors are contiguous, row-major raw pointers; sizes are explicit
//    int64_t. Shapes are the caller's contract (the plan loader checks them
//    against the graph); integer *data* (token ids, labels, expert indices,
//    counts) is untrusted and checked: such kernels return a Status and write
//    nothing when it is not Status::Ok.
//  - Each function is a template on the element type T, explicitly
//    instantiated for float and double. Reductions run in T, in a fixed order,
//    so results are deterministic (OpenBLAS may thread a GEMM; that does not
//    change the value of a GEMM across runs on one machine).
//  - Forward functions OVERWRITE their outputs.
//  - Backward functions ACCUMULATE (+=) into every gradient output, so that a
//    value used twice receives the sum of both gradients. Zero the gradient
//    buffers before the first contribution.
//  - Ops with weights have separate activation-gradient (`...BackwardB`) and
//    weight-gradient (`...BackwardW`) functions: zero-bubble schedules run the
//    W part later. Neither depends on the other having run.
//  - "Saved" buffers are extra outputs of a forward that its backward reads
//    (e.g. a log-sum-exp per row); they are part of the kernel's interface.
//  - Each dimension handed to a GEMM (rows, columns, leading dimensions) must
//    fit in a 32-bit int (OpenBLAS's blasint).
//
//===----------------------------------------------------------------------===//

#ifndef DSFLOW_RUNTIME_BACKENDS_CPU_KERNELS_H
#define DSFLOW_RUNTIME_BACKENDS_CPU_KERNELS_H

#include <cstdint>
#include <vector>

namespace dsflow::cpu {

/// The outcome of a kernel that reads untrusted integer data.
enum class Status {
  Ok,
  /// A token id outside [0, vocab).
  TokenIdOutOfRange,
  /// A label outside [0, vocab).
  LabelOutOfRange,
  /// An expert index outside [0, experts).
  ExpertIndexOutOfRange,
  /// Per-expert row counts that are negative or do not add up to the rows.
  BadExpertCounts,
  /// A dispatch permutation that is not a permutation of [0, rows).
  BadPermutation,
  /// Router attributes that cannot select k experts (groups not dividing the
  /// experts, more groups per token than groups, k above the allowed experts).
  BadGateConfig,
  /// An exchange with other ranks failed (expert parallelism); the
  /// communicator's error says how.
  CommunicationFailed,
};

/// A one-line description of `status`, for error messages.
const char *toString(Status status);

//===----------------------------------------------------------------------===//
// Embedding: table [V, H], ids [N] (N = B*S) -> y [N, H]
//===----------------------------------------------------------------------===//

/// y[n, :] = table[ids[n], :].
template <typename T>
[[nodiscard]] Status embeddingForward(const T *table, const int32_t *ids, T *y,
                                      int64_t tokens, int64_t vocab,
                                      int64_t hidden);

/// W-grad: dtable[ids[n], :] += dy[n, :], in increasing n.
template <typename T>
[[nodiscard]] Status embeddingBackwardW(const T *dy, const int32_t *ids,
                                        T *dtable, int64_t tokens,
                                        int64_t vocab, int64_t hidden);

//===----------------------------------------------------------------------===//
// RMSNorm over the last dimension: x [rows, dim], weight [dim]
//===----------------------------------------------------------------------===//

/// y = x * w / sqrt(mean(x^2) + eps). Saves invRms[rows] = 1/sqrt(...).
template <typename T>
void rmsNormForward(const T *x, const T *w, T *y, T *invRms, int64_t rows,
                    int64_t dim, double eps);

/// B-grad: dx += r*w*dy - x * r^3/dim * sum(dy*w*x), r = invRms[row].
template <typename T>
void rmsNormBackwardB(const T *dy, const T *x, const T *w, const T *invRms,
                      T *dx, int64_t rows, int64_t dim);

/// W-grad: dw += sum over rows of dy * x * invRms.
template <typename T>
void rmsNormBackwardW(const T *dy, const T *x, const T *invRms, T *dw,
                      int64_t rows, int64_t dim);

//===----------------------------------------------------------------------===//
// Linear: x [M, K], weight [N, K] -> y [M, N]
//===----------------------------------------------------------------------===//

/// y = x W^T.
template <typename T>
void linearForward(const T *x, const T *w, T *y, int64_t m, int64_t n,
                   int64_t k);

/// B-grad: dx += dy W.
template <typename T>
void linearBackwardB(const T *dy, const T *w, T *dx, int64_t m, int64_t n,
                     int64_t k);

/// W-grad: dW += dy^T x.
template <typename T>
void linearBackwardW(const T *dy, const T *x, T *dw, int64_t m, int64_t n,
                     int64_t k);

//===----------------------------------------------------------------------===//
// MTP projection: e [M, H], h [M, H], ehProj [H, 2H] -> y [M, H]
//===----------------------------------------------------------------------===//

/// y = concat(e, h) ehProj^T (embedding first, docs/decisions.md).
template <typename T>
void mtpProjectForward(const T *e, const T *h, const T *ehProj, T *y, int64_t m,
                       int64_t hidden);

/// B-grad: de += dy ehProj[:, :H], dh += dy ehProj[:, H:].
template <typename T>
void mtpProjectBackwardB(const T *dy, const T *ehProj, T *de, T *dh, int64_t m,
                         int64_t hidden);

/// W-grad: dehProj[:, :H] += dy^T e, dehProj[:, H:] += dy^T h.
template <typename T>
void mtpProjectBackwardW(const T *dy, const T *e, const T *h, T *dehProj,
                         int64_t m, int64_t hidden);

//===----------------------------------------------------------------------===//
// Rotary position embedding: x [B, S, heads, D], D even, position = s
//===----------------------------------------------------------------------===//

/// YaRN's parameters (graph.rope's yarn_* attributes).
struct YarnParams {
  double factor;
  int64_t originalMaxPosition;
  double betaFast;
  double betaSlow;
};

/// The D/2 rotation frequencies: invFreq[i] = theta^(-2i/D), rescaled by
/// DeepSeek-V3's precompute_freqs_cis when `yarn` is given (correction range
/// from betaFast/betaSlow, floor/ceil clamped to [0, D-1], linear ramp over
/// D/2, freqs/factor*(1-smooth) + freqs*smooth). Computed in double; YaRN is
/// applied whenever `yarn` is non-null (the compiler decides when to ask).
std::vector<double> ropeInvFreq(int64_t dim, double theta,
                                const YarnParams *yarn);

/// Rotates each interleaved pair (x[2i], x[2i+1]) at position s by the angle
/// s * invFreq[i]: y[2i] = x[2i] cos - x[2i+1] sin,
/// y[2i+1] = x[2i] sin + x[2i+1] cos. Angles, cos and sin in double.
template <typename T>
void ropeForward(const T *x, const double *invFreq, T *y, int64_t batch,
                 int64_t seq, int64_t heads, int64_t dim);

/// dx += the inverse rotation of dy.
template <typename T>
void ropeBackward(const T *dy, const double *invFreq, T *dx, int64_t batch,
                  int64_t seq, int64_t heads, int64_t dim);

//===----------------------------------------------------------------------===//
// MLA attention core (causal)
//   qNope [B,S,H,N], qPe [B,S,H,R], kNope [B,S,H,N], kPe [B,S,1,R],
//   v [B,S,H,V] -> out [B,S,H,V]; saved lse [B,S,H]
//===----------------------------------------------------------------------===//

/// Shapes of one mla_attention.
struct MlaShape {
  int64_t batch, seq, heads;
  int64_t nopeDim, ropeDim, valueDim;
};

/// out = softmax(q k^T * scale, keys j <= i) v per head, with
/// q = [qNope, qPe], k = [kNope, kPe broadcast to every head]. Saves the
/// log-sum-exp of each softmax row in lse[b, i, h].
template <typename T>
void mlaAttentionForward(const T *qNope, const T *qPe, const T *kNope,
                         const T *kPe, const T *v, T *out, T *lse,
                         const MlaShape &shape, double scale);

/// Gradients of every input, from dOut and the saved lse (the softmax
/// probabilities are recomputed from q, k and lse; nothing else is saved).
/// dkPe sums the contributions of all heads.
template <typename T>
void mlaAttentionBackward(const T *dOut, const T *qNope, const T *qPe,
                          const T *kNope, const T *kPe, const T *v,
                          const T *lse, T *dqNope, T *dqPe, T *dkNope, T *dkPe,
                          T *dv, const MlaShape &shape, double scale);

//===----------------------------------------------------------------------===//
// Elementwise and data movement (n elements unless stated otherwise)
//===----------------------------------------------------------------------===//

/// y = silu(g) * u.
template <typename T>
void swigluForward(const T *g, const T *u, T *y, int64_t n);

/// dg += dy * u * silu'(g), du += dy * silu(g).
template <typename T>
void swigluBackward(const T *dy, const T *g, const T *u, T *dg, T *du,
                    int64_t n);

/// y = a + b.
template <typename T> void addForward(const T *a, const T *b, T *y, int64_t n);

/// da += dy, db += dy (da and db may be the same buffer: x + x).
template <typename T> void addBackward(const T *dy, T *da, T *db, int64_t n);

/// y = factor * x.
template <typename T>
void scaleForward(const T *x, double factor, T *y, int64_t n);

/// dx += factor * dy.
template <typename T>
void scaleBackward(const T *dy, double factor, T *dx, int64_t n);

/// Reshape keeps the elements in order: it is a view. When the runtime gives
/// it its own buffer, y = x (a copy; x == y is allowed).
template <typename T> void reshapeForward(const T *x, T *y, int64_t n);

/// dx += dy.
template <typename T> void reshapeBackward(const T *dy, T *dx, int64_t n);

/// Splits the last dimension of x [rows, sum(widths)] into `pieces` outputs
/// ys[p] [rows, widths[p]], in order.
template <typename T>
void splitForward(const T *x, T *const *ys, const int64_t *widths,
                  int64_t pieces, int64_t rows);

/// dx[:, piece p] += dys[p] (a concat of the pieces' gradients). A null
/// dys[p] means that piece has no gradient (an unused result).
template <typename T>
void splitBackward(const T *const *dys, T *dx, const int64_t *widths,
                   int64_t pieces, int64_t rows);

/// ids [B, inSeq] -> y [B, outSeq] = ids[:, offset : offset + outSeq].
/// Precondition: offset + outSeq <= inSeq. Integer data: no gradient.
void tokenWindow(const int32_t *ids, int32_t *y, int64_t batch, int64_t inSeq,
                 int64_t offset, int64_t outSeq);

//===----------------------------------------------------------------------===//
// Cross-entropy: logits [N, V], labels [N] -> mean over N of -log p[label]
//===----------------------------------------------------------------------===//

/// Writes the loss to *loss (the sum over tokens is accumulated in double,
/// then divided by N) and saves lse[N], the log-sum-exp of each row.
template <typename T>
[[nodiscard]] Status crossEntropyForward(const T *logits, const int32_t *labels,
                                         T *loss, T *lse, int64_t tokens,
                                         int64_t vocab);

/// dlogits += (softmax(logits) - onehot(label)) * dLoss / N.
template <typename T>
[[nodiscard]] Status
crossEntropyBackward(const T *logits, const int32_t *labels, const T *lse,
                     T dLoss, T *dlogits, int64_t tokens, int64_t vocab);

//===----------------------------------------------------------------------===//
// MoE router: x [T, H], weight [E, H], bias [E]
//   -> weights [T, k], indices [T, k] int32, scores [T, E]
//===----------------------------------------------------------------------===//

enum class ScoreFunction { Sigmoid, Softmax };

/// graph.moe_gate's attributes, plus the sizes.
struct MoeGateParams {
  int64_t tokens, hidden, experts;
  /// Experts chosen per token.
  int64_t topK;
  /// expert_groups and groups_per_token; experts % groups == 0.
  int64_t groups, groupsPerToken;
  double routeScale;
  ScoreFunction scoreFunction;
  bool normalizeTopK;
};

/// logits = x W^T; scores = sigmoid(logits) or softmax over E (computed in T:
/// FP32 for float). Selection ranks biased = scores + bias: a group's score is
/// the sum of its top 2 biased scores (sigmoid; its only one when a group has
/// one expert) or its max (softmax); the top `groupsPerToken` groups are kept;
/// the top-k biased scores among their experts are chosen. Every tie goes to
/// the lower index. indices[t, :] lists the chosen experts in descending
/// biased score; weights are their unbiased scores, divided by
/// (sum + 1e-20) when normalizeTopK, times routeScale.
template <typename T>
[[nodiscard]] Status moeGateForward(const T *x, const T *w, const T *bias,
                                    T *weights, int32_t *indices, T *scores,
                                    const MoeGateParams &p);

/// dlogits [T, E] (overwritten) from the gradients of the weights and, when
/// non-null, of the scores (a balance loss). Either gradient may be null.
/// Selection is piecewise constant and not differentiated.
template <typename T>
[[nodiscard]] Status moeGateLogitsGrad(const T *dWeights, const T *dScores,
                                       const T *scores, const int32_t *indices,
                                       T *dLogits, const MoeGateParams &p);

/// B-grad: dx += dlogits W, dlogits recomputed by moeGateLogitsGrad.
template <typename T>
[[nodiscard]] Status moeGateBackwardB(const T *dWeights, const T *dScores,
                                      const T *scores, const int32_t *indices,
                                      const T *w, T *dx,
                                      const MoeGateParams &p);

/// W-grad: dW += dlogits^T x, dlogits recomputed by moeGateLogitsGrad.
template <typename T>
[[nodiscard]] Status moeGateBackwardW(const T *dWeights, const T *dScores,
                                      const T *scores, const int32_t *indices,
                                      const T *x, T *dw,
                                      const MoeGateParams &p);

//===----------------------------------------------------------------------===//
// Sequence-wise balance loss: scores [T, E], indices [T, k], T = seqs * S
//===----------------------------------------------------------------------===//

/// DeepSeek-V3's complementary balance loss, the mean over the `sequences`
/// runs of S = T / sequences tokens of alpha * sum_i f_i P_i, where
/// f_i = E / (k S) * (tokens of the run choosing expert i) and P_i = the run's
/// mean of s_i / sum_j s_j. Written to *loss (summed in double).
template <typename T>
[[nodiscard]] Status balanceLossForward(const T *scores, const int32_t *indices,
                                        T *loss, int64_t tokens,
                                        int64_t experts, int64_t topK,
                                        int64_t sequences, double alpha);
/// dScores += dLoss * d loss / d scores (f is a count and has no gradient).
template <typename T>
[[nodiscard]] Status
balanceLossBackward(T dLoss, const T *scores, const int32_t *indices,
                    T *dScores, int64_t tokens, int64_t experts, int64_t topK,
                    int64_t sequences, double alpha);

//===----------------------------------------------------------------------===//
// Dispatch and combine: T tokens, k experts each, E experts, R = T*k rows
//===----------------------------------------------------------------------===//

/// rows [R, H]: the token copies grouped by expert 0..E-1, within an expert in
/// increasing token order. counts[E]: rows per expert. rowSource[R]: the
/// position t*k + j in `indices` that row r copies (token t = rowSource/k);
/// combine and both backwards take it and check that it is a permutation.
/// Precondition: R = T*k fits in int32.
template <typename T>
[[nodiscard]] Status
dispatchForward(const T *x, const int32_t *indices, T *rows, int32_t *counts,
                int32_t *rowSource, int64_t tokens, int64_t topK,
                int64_t experts, int64_t hidden);

/// dx[t] += sum over j of drows[row of (t, j)], in increasing j.
template <typename T>
[[nodiscard]] Status dispatchBackward(const T *dRows, const int32_t *rowSource,
                                      T *dx, int64_t tokens, int64_t topK,
                                      int64_t hidden);

/// y[t] = sum over j of weights[t, j] * rows[row of (t, j)], increasing j.
template <typename T>
[[nodiscard]] Status
combineForward(const T *rows, const T *weights, const int32_t *rowSource, T *y,
               int64_t tokens, int64_t topK, int64_t hidden);

/// drows[row of (t, j)] += weights[t, j] * dy[t].
template <typename T>
[[nodiscard]] Status
combineBackward(const T *dy, const T *weights, const int32_t *rowSource,
                T *dRows, int64_t tokens, int64_t topK, int64_t hidden);

/// dweights[t, j] += rowDots[row of (t, j)] / weights[t, j] (0 where the
/// weight is 0): with rowDots = weights * <dy[t], rows[row]> from the experts'
/// B-grad, <dy[t], rows[row of (t, j)]> without the rows.
template <typename T>
[[nodiscard]] Status combineWeightsBackward(const T *rowDots, const T *weights,
                                            const int32_t *rowSource,
                                            T *dWeights, int64_t tokens,
                                            int64_t topK);

//===----------------------------------------------------------------------===//
// SwiGLU FFNs: down(silu(gate x) * up x), gate/up [I, H], down [H, I]
//===----------------------------------------------------------------------===//
//
// `fp8` (optional) applies DeepSeek-V3's FP8 recipe to the activation operand
// of every GEMM inside the FFN: x, the SwiGLU output A, dy and the
// pre-activation gradients are read quantized to E4M3 and back (Fp8.h), in
// 1x128 tiles along the GEMM's contraction, 128x1 tiles (per expert) in the
// weight gradients. The weights are the caller's to quantize.

struct Fp8ScaleOptions;

/// Routed experts over dispatched rows [R, H]: the counts[e] rows of expert e
/// (consecutive, experts in order) use gate[e], up[e], down[e]. Saves the
/// pre-activations savedGate = x gate^T and savedUp = x up^T, both [R, I].
template <typename T>
[[nodiscard]] Status
expertFfnForward(const T *rows, const int32_t *counts, const T *const *gate,
                 const T *const *up, const T *const *down, T *y, T *savedGate,
                 T *savedUp, int64_t numRows, int64_t experts, int64_t hidden,
                 int64_t inter, const Fp8ScaleOptions *fp8 = nullptr);

/// B-grad: drows += dG gate + dU up, where dA = dy down,
/// dG = dA * U * silu'(G), dU = dA * silu(G) (G, U: the saved buffers);
/// rowDots[r] = <dA_r, A_r> (A = silu(G) * U as the down-projection read it):
/// for dy = w dy', w <dy', y_r>, what combineWeightsBackward needs.
template <typename T>
[[nodiscard]] Status
expertFfnBackwardB(const T *dy, const int32_t *counts, const T *const *gate,
                   const T *const *up, const T *const *down, const T *savedGate,
                   const T *savedUp, T *dRows, T *rowDots, int64_t numRows,
                   int64_t experts, int64_t hidden, int64_t inter,
                   const Fp8ScaleOptions *fp8 = nullptr);

/// W-grad per expert: ddown[e] += dy^T A, dgate[e] += dG^T x, dup[e] += dU^T x
/// (A = silu(G) * U; dA = dy down is recomputed, not saved by the B part).
template <typename T>
[[nodiscard]] Status
expertFfnBackwardW(const T *dy, const T *rows, const int32_t *counts,
                   const T *const *down, const T *savedGate, const T *savedUp,
                   T *const *dGate, T *const *dUp, T *const *dDown,
                   int64_t numRows, int64_t experts, int64_t hidden,
                   int64_t inter, const Fp8ScaleOptions *fp8 = nullptr);

/// The shared experts: the same FFN over all `tokens` rows of x [T, H].
template <typename T>
void sharedExpertsForward(const T *x, const T *gate, const T *up, const T *down,
                          T *y, T *savedGate, T *savedUp, int64_t tokens,
                          int64_t hidden, int64_t inter,
                          const Fp8ScaleOptions *fp8 = nullptr);

/// B-grad: dx += dG gate + dU up (as expertFfnBackwardB).
template <typename T>
void sharedExpertsBackwardB(const T *dy, const T *gate, const T *up,
                            const T *down, const T *savedGate, const T *savedUp,
                            T *dx, int64_t tokens, int64_t hidden,
                            int64_t inter,
                            const Fp8ScaleOptions *fp8 = nullptr);

/// W-grad: dgate, dup, ddown (as expertFfnBackwardW).
template <typename T>
void sharedExpertsBackwardW(const T *dy, const T *x, const T *down,
                            const T *savedGate, const T *savedUp, T *dGate,
                            T *dUp, T *dDown, int64_t tokens, int64_t hidden,
                            int64_t inter,
                            const Fp8ScaleOptions *fp8 = nullptr);

} // namespace dsflow::cpu

#endif // DSFLOW_RUNTIME_BACKENDS_CPU_KERNELS_H
