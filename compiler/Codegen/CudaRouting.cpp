//===- CudaRouting.cpp - The router's gradient and the balance loss -------===//
//
// moe_gate_grad (d logits from the gradients of the routing weights and of
// the scores), balance_loss and balance_loss_grad, and combine's two
// gradients, as the CPU backend
// computes them (runtime/backends/cpu/MoeGate.cpp, BalanceLoss.cpp): the
// per-token sums in the CPU's order where they decide the result, the balance
// loss's sums in double.
//
//===----------------------------------------------------------------------===//
#include "Codegen/CudaGenerator.h"

namespace dsflow::codegen {
namespace {

/// Tokens per block for the per-token kernels: a warp each.
constexpr int64_t kTokensPerBlock = 8;

/// The sum of a double over the block (blockDim.x a multiple of 32), in
/// every thread; the fixed reduction order makes it deterministic.
const char *kBlockSumDouble = R"(
__device__ double blockSumDouble(double v) {
  __shared__ double partial[32];
  for (int o = 16; o > 0; o >>= 1)
    v += __shfl_xor_sync(0xffffffffu, v, o);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();
  if (lane == 0)
    partial[warp] = v;
  __syncthreads();
  v = lane < int(blockDim.x >> 5) ? partial[lane] : 0.0;
  for (int o = 16; o > 0; o >>= 1)
    v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
)";

/// Tokens of a run one balance-loss block takes (a warp takes every 8th).
constexpr int64_t kRunChunk = 64;

/// The code that fills `f`[E] (shared doubles) with a run's expert loads,
/// E / (k S) times the run's tokens that chose each expert, and sets the
/// block's tokens [begin, end): run blockIdx.x / C takes C blocks, each
/// kRunChunk of its tokens (every block counts the whole run's loads, from
/// the L2 cache). `in` is the indices [T, k].
std::string runLoads(const std::string &in) {
  return "  constexpr long long C = (S + " + std::to_string(kRunChunk) +
         " - 1) / " + std::to_string(kRunChunk) +
         ";\n"
         "  __shared__ double f[E];\n"
         "  __shared__ int count[E];\n"
         "  for (int e = threadIdx.x; e < E; e += blockDim.x) count[e] = 0;\n"
         "  __syncthreads();\n"
         "  const long long first = blockIdx.x / C * S;\n"
         "  const long long begin = first + blockIdx.x % C * " +
         std::to_string(kRunChunk) + ", end = min(begin + " +
         std::to_string(kRunChunk) +
         ", first + S);\n"
         "  for (long long i = threadIdx.x; i < S * K; i += blockDim.x) {\n"
         "    const int e = " +
         in +
         "[first * K + i];\n"
         "    if (e >= 0 && e < E) atomicAdd(&count[e], 1);\n"
         "  }\n"
         "  __syncthreads();\n"
         "  for (int e = threadIdx.x; e < E; e += blockDim.x)\n"
         "    f[e] = double(count[e]) * (double(E) / double(K * S));\n"
         "  __syncthreads();\n";
}

/// Scores [T, E] at input `scores`, indices [T, k] at the next input, and
/// the sequences attribute: the sizes, if they agree.
bool balanceShape(const Operands &o, int scores, int64_t &tokens,
                  int64_t &experts, int64_t &topK, int64_t &perRun) {
  std::optional<int64_t> sequences = o.i64("sequences");
  experts = o.last(o.input(scores));
  topK = o.last(o.input(scores + 1));
  tokens = experts ? o.elements(o.input(scores)) / experts : 0;
  if (!sequences || *sequences < 1 || tokens < 1 || tokens % *sequences ||
      o.input(scores + 1).dtype() != DTYPE_I32 ||
      o.elements(o.input(scores + 1)) != tokens * topK || experts > 2048)
    return false;
  perRun = tokens / *sequences;
  return true;
}

/// The code that sums the warp's token t's scores (input `in`), plain and
/// weighted by the run's loads, in double, into sum and weighted (in every
/// lane).
std::string tokenSums(const std::string &in) {
  return "    double sum = 0.0, weighted = 0.0;\n"
         "    for (int e = lane; e < E; e += 32) {\n"
         "      const double s = ld(" +
         in +
         ", t * E + e);\n"
         "      sum += s;\n"
         "      weighted += f[e] * s;\n"
         "    }\n"
         "    for (int w = 16; w > 0; w >>= 1) {\n"
         "      sum += __shfl_xor_sync(0xffffffffu, sum, w);\n"
         "      weighted += __shfl_xor_sync(0xffffffffu, weighted, w);\n"
         "    }\n";
}

/// Blocks of a balance-loss kernel: runLoads's C per run.
int64_t runBlocks(int64_t tokens, int64_t perRun) {
  return tokens / perRun * ((perRun + kRunChunk - 1) / kRunChunk);
}

std::string sizes(int64_t experts, int64_t topK, int64_t perRun) {
  return "  constexpr int E = " + std::to_string(experts) +
         ", K = " + std::to_string(topK) +
         ";\n  constexpr long long S = " + std::to_string(perRun) + "LL;\n";
}

} // namespace

std::optional<CudaFunction> moeGateGrad(const Operands &o) {
  // (dWeights [T, k], scores [T, E], indices [T, k] [, dScores [T, E]]).
  bool withScores = o.inputs() == 4;
  std::optional<double> routeScale = o.f64("route_scale");
  std::optional<std::string> scoreFunction = o.str("score_function");
  std::optional<bool> normalize = o.boolean("normalize_topk");
  if ((o.inputs() != 3 && !withScores) || o.outputs() != 1 || !routeScale ||
      !scoreFunction ||
      (*scoreFunction != "sigmoid" && *scoreFunction != "softmax") ||
      !normalize || o.input(2).dtype() != DTYPE_I32)
    return std::nullopt;
  int64_t experts = o.last(o.input(1));
  int64_t tokens = experts ? o.elements(o.input(1)) / experts : 0;
  int64_t topK = tokens ? o.elements(o.input(0)) / tokens : 0;
  if (tokens < 1 || topK < 1 || o.elements(o.input(0)) != tokens * topK ||
      o.elements(o.input(2)) != tokens * topK ||
      o.elements(o.output(0)) != tokens * experts ||
      (withScores && o.elements(o.input(3)) != tokens * experts))
    return std::nullopt;
  // A warp per token; lane l holds experts l, l + 32, ...
  std::string code = "  constexpr int E = " + std::to_string(experts) +
                     ", K = " + std::to_string(topK) +
                     ", EL = (E + 31) / 32;\n"
                     "  const float c = float(" +
                     literal(*routeScale) +
                     ");\n"
                     "  const int lane = threadIdx.x & 31;\n"
                     "  const long long t = blockIdx.x * " +
                     std::to_string(kTokensPerBlock) +
                     "LL + (threadIdx.x >> 5);\n"
                     "  if (t >= " +
                     std::to_string(tokens) +
                     "LL) return;\n"
                     "  const long long row = t * E;\n"
                     "  float dS[EL];\n"
                     "  for (int q = 0; q < EL; ++q) {\n"
                     "    const int e = lane + 32 * q;\n"
                     "    dS[q] = " +
                     (withScores ? "e < E ? ld(in3, row + e) : 0.f" : "0.f") +
                     ";\n"
                     "  }\n";
  if (*normalize)
    // w_j = c s_j / D, D = sum_l s_l + 1e-20: d s_l = c (dw_l / D -
    // sum_j dw_j s_j / D^2), the sums over j in order, as on the CPU.
    code += "  float denom = 0.f, dot = 0.f;\n"
            "  for (int j = 0; j < K; ++j) {\n"
            "    const float s = ld(in1, row + in2[t * K + j]);\n"
            "    denom += s;\n"
            "    dot += ld(in0, t * K + j) * s;\n"
            "  }\n"
            "  denom += 1e-20f;\n";
  code += "  for (int j = 0; j < K; ++j) {\n"
          "    const int e = in2[t * K + j];\n"
          "    if (e < 0 || e >= E || e % 32 != lane) continue;\n"
          "    const float dw = ld(in0, t * K + j);\n"
          "    for (int q = 0; q < EL; ++q)\n"
          "      if (q == e / 32) dS[q] += " +
          std::string(*normalize ? "c * (dw / denom - dot / (denom * denom))"
                                 : "c * dw") +
          ";\n"
          "  }\n";
  if (*scoreFunction == "sigmoid") {
    code += "  for (int q = 0; q < EL; ++q) {\n"
            "    const int e = lane + 32 * q;\n"
            "    if (e >= E) continue;\n"
            "    const float s = ld(in1, row + e);\n"
            "    st(out0, row + e, dS[q] * s * (1.f - s));\n"
            "  }\n";
  } else {
    code += "  float dot2 = 0.f;\n"
            "  for (int q = 0; q < EL; ++q)\n"
            "    if (lane + 32 * q < E) dot2 += dS[q] * ld(in1, row + lane + "
            "32 * q);\n"
            "  for (int w = 16; w > 0; w >>= 1)\n"
            "    dot2 += __shfl_xor_sync(0xffffffffu, dot2, w);\n"
            "  for (int q = 0; q < EL; ++q) {\n"
            "    const int e = lane + 32 * q;\n"
            "    if (e >= E) continue;\n"
            "    const float s = ld(in1, row + e);\n"
            "    st(out0, row + e, s * (dS[q] - dot2));\n"
            "  }\n";
  }
  return function(o, code, (tokens + kTokensPerBlock - 1) / kTokensPerBlock,
                  int32_t(kTokensPerBlock * 32));
}

std::optional<CudaFunction> balanceLoss(const Operands &o) {
  int64_t tokens, experts, topK, perRun;
  std::optional<double> alpha = o.f64("alpha");
  if (!o.arity(2, 1) || !alpha ||
      !balanceShape(o, 0, tokens, experts, topK, perRun) ||
      o.elements(o.output(0)) != 1)
    return std::nullopt;
  // Blocks of 64 tokens of a run: the run's loads, then the sum over the
  // block's tokens (a warp each) of sum_e f_e s_e / sum_e s_e, in double;
  // the blocks' shares are added to the loss (zeroed by the runtime) by
  // atomic adds, in the GPU's order.
  std::string code =
      sizes(experts, topK, perRun) + runLoads("in1") +
      "  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;\n"
      "  double total = 0.0;\n"
      "  for (long long t = begin + warp; t < end; t += blockDim.x >> 5) {\n" +
      tokenSums("in0") +
      "    if (lane == 0) total += weighted / sum;\n"
      "  }\n"
      "  total = blockSumDouble(total);\n"
      "  if (threadIdx.x == 0)\n"
      "    atomicAddTo(out0, float(" +
      literal(*alpha) + " * total / double(S) / " +
      std::to_string(tokens / perRun) + ".0));\n";
  return function(o, code, runBlocks(tokens, perRun), kBlock, kBlockSumDouble);
}

std::optional<CudaFunction> balanceLossGrad(const Operands &o) {
  int64_t tokens, experts, topK, perRun;
  std::optional<double> alpha = o.f64("alpha");
  if (!o.arity(3, 1) || !alpha ||
      !balanceShape(o, 1, tokens, experts, topK, perRun) ||
      o.elements(o.input(0)) != 1 ||
      o.elements(o.output(0)) != tokens * experts)
    return std::nullopt;
  // dScores[t, e] += dLoss alpha / (S runs) (f_e - weighted_t / sum_t) /
  // sum_t: blocks of 64 tokens of a run, a warp per token.
  std::string add = o.accumulates() ? "ld(out0, t * E + e) + " : "";
  std::string code =
      sizes(experts, topK, perRun) + runLoads("in2") +
      "  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;\n"
      "  const double scale = double(ld(in0, 0)) * " +
      literal(*alpha) + " / double(S) / " + std::to_string(tokens / perRun) +
      ".0;\n"
      "  for (long long t = begin + warp; t < end; t += blockDim.x >> 5) {\n" +
      tokenSums("in1") +
      "    for (int e = lane; e < E; e += 32)\n"
      "      st(out0, t * E + e, " +
      add +
      "float(scale * (f[e] - weighted / sum) / sum));\n"
      "  }\n";
  return function(o, code, runBlocks(tokens, perRun), kBlock);
}

/// combine's gradients read [x, weights [T, k], indices, rowSource [T*k]]:
/// T and k, if the routing operands agree.
static bool combineRouting(const Operands &o, int64_t &tokens, int64_t &topK) {
  topK = o.last(o.input(1));
  tokens = topK ? o.elements(o.input(1)) / topK : 0;
  return tokens > 0 && o.input(3).dtype() == DTYPE_I32 &&
         o.elements(o.input(2)) == tokens * topK &&
         o.elements(o.input(3)) == tokens * topK;
}

/// dRows[r] += w[p] dy[p / k] with p = rowSource[r]: a gather, a block per
/// row, W elements a thread step.
std::optional<CudaFunction> combineGrad(const Operands &o) {
  int64_t tokens, topK;
  if (!o.arity(4, 1) || !combineRouting(o, tokens, topK))
    return std::nullopt;
  int64_t hidden = o.last(o.input(0));
  if (o.elements(o.input(0)) != tokens * hidden ||
      o.elements(o.output(0)) != tokens * topK * hidden)
    return std::nullopt;
  return perRow(
      o, tokens * topK, hidden,
      "  constexpr int W = " + std::to_string(vectorWidth(hidden)) +
          ";\n"
          "  const int p = in3[r];\n"
          "  const float w = ld(in1, p);\n"
          "  const long long from = (long long)(p / " +
          std::to_string(topK) +
          ") * dim;\n"
          "  for (long long e = threadIdx.x * W; e < dim; e += blockDim.x * "
          "W) {\n"
          "    float dy[W];\n"
          "    ldv<W>(in0, from + e, dy);\n" +
          o.startOutput(0, "d", "r * dim + e") +
          "#pragma unroll\n"
          "    for (int j = 0; j < W; ++j) d[j] += w * dy[j];\n"
          "    stv<W>(out0, r * dim + e, d);\n"
          "  }\n",
      rowThreads(hidden));
}

/// dw[p] += rowDots[r] / w[p] for p = rowSource[r] (0 where w is 0): a
/// permutation, so one thread per row writes one weight.
std::optional<CudaFunction> combineWeightsGrad(const Operands &o) {
  int64_t tokens, topK;
  if (!o.arity(4, 1) || !combineRouting(o, tokens, topK) ||
      o.elements(o.input(0)) != tokens * topK ||
      o.elements(o.output(0)) != tokens * topK)
    return std::nullopt;
  return elementwise(o, tokens * topK,
                     "    int p = in3[i];\n"
                     "    float w = ld(in1, p);\n"
                     "    if (w != 0.f) acc(out0, p, ld(in0, i) / w);\n");
}

} // namespace dsflow::codegen
