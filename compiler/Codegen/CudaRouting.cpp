//===- CudaRouting.cpp - The router and the balance loss ------------------===//
//
// moe_gate (the gate GEMM, scores, group-limited top-k and routing weights),
// moe_gate_grad (d logits from the gradients of the routing weights and of
// the scores), balance_loss and balance_loss_grad, as the CPU backend
// computes them (runtime/backends/cpu/MoeGate.cpp, BalanceLoss.cpp): the
// per-token sums in the CPU's order where they decide the result, the
// selection with the CPU's comparisons and ties, the balance loss's sums in
// double.
//
//===----------------------------------------------------------------------===//
#include "Codegen/CudaGenerator.h"

#include <algorithm>

namespace dsflow::codegen {
namespace {

/// Tokens per block for the per-token kernels: a warp each.
constexpr int64_t kTokensPerBlock = 8;

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

/// The router's scoring attributes, shared by moe_gate and moe_gate_grad.
struct Scoring {
  double routeScale;
  bool sigmoid, normalize;
};

std::optional<Scoring> scoringOf(const Operands &o) {
  std::optional<double> routeScale = o.f64("route_scale");
  std::optional<std::string> function = o.str("score_function");
  std::optional<bool> normalize = o.boolean("normalize_topk");
  if (!routeScale || !normalize || !function ||
      (*function != "sigmoid" && *function != "softmax"))
    return std::nullopt;
  return Scoring{*routeScale, *function == "sigmoid", *normalize};
}

/// moe_gate's sizes (x [T, H], w [E, H], bias [E] -> weights [T, k],
/// indices [T, k], scores [T, E]) and group limit.
struct Gate {
  int64_t tokens, hidden, experts, topK, groups, groupsPerToken;
};

/// The largest router generated: a block's logits tile holds 16 tokens of
/// at most this many experts.
constexpr int64_t kMaxGateExperts = 512;

/// None when the operands disagree or the CPU would refuse the group limit
/// (validGateConfig in MoeGate.cpp: every token must find k experts).
std::optional<Gate> gateOf(const Operands &o) {
  if (!o.arity(3, 3) || o.input(1).shape_size() != 2 ||
      o.output(1).dtype() != DTYPE_I32)
    return std::nullopt;
  Gate g;
  g.hidden = o.last(o.input(0));
  g.experts = o.input(1).shape(0);
  g.tokens = g.hidden ? o.elements(o.input(0)) / g.hidden : 0;
  g.topK = g.tokens ? o.elements(o.output(0)) / g.tokens : 0;
  g.groups = o.i64("expert_groups").value_or(1);
  g.groupsPerToken = o.i64("groups_per_token").value_or(1);
  bool sizes = g.tokens > 0 && g.experts > 0 &&
               o.elements(o.input(0)) == g.tokens * g.hidden &&
               o.elements(o.input(1)) == g.experts * g.hidden &&
               o.elements(o.input(2)) == g.experts &&
               o.elements(o.output(0)) == g.tokens * g.topK &&
               o.elements(o.output(1)) == g.tokens * g.topK &&
               o.elements(o.output(2)) == g.tokens * g.experts;
  bool groups = g.groups >= 1 && g.experts % g.groups == 0 &&
                g.groupsPerToken >= 1 && g.groupsPerToken <= g.groups;
  if (!sizes || !groups || g.topK < 1 ||
      g.topK > g.groupsPerToken * (g.experts / g.groups) ||
      g.experts > kMaxGateExperts)
    return std::nullopt;
  return g;
}

/// Floats of the shared tile that holds a KC-wide chunk of w, then the
/// block's logits: 33 KB.
constexpr int64_t kGateTileFloats = 33 * 256;

/// The gate GEMM of a block's TB tokens into tile [TB, RS] (logits, a row
/// per token): thread pair q is token p / E and expert p % E of the block,
/// p = threadIdx.x + THREADS q, its sum in FP32 over KC-wide chunks of x
/// (xs [TB, KC]) and w (tile [KC, RS], rows of an odd stride: no bank
/// conflicts).
const char *kGateLogits = R"(  __shared__ __align__(16) float xs[TB * KC];
  __shared__ float tile[TILE];
  __shared__ float bias[E];
  const long long t0 = (long long)blockIdx.x * TB;
  for (int e = threadIdx.x; e < E; e += blockDim.x)
    bias[e] = ld(in2, e);
  float acc[Q];
#pragma unroll
  for (int q = 0; q < Q; ++q)
    acc[q] = 0.f;
  for (long long h0 = 0; h0 < H; h0 += KC) {
    __syncthreads();
    for (int i = threadIdx.x; i < TB * KC; i += blockDim.x) {
      const long long t = t0 + i / KC, h = h0 + i % KC;
      xs[i] = t < T && h < H ? ld(in0, t * H + h) : 0.f;
    }
    for (int i = threadIdx.x; i < E * KC; i += blockDim.x) {
      const long long h = h0 + i % KC;
      tile[i % KC * RS + i / KC] = h < H ? ld(in1, i / KC * H + h) : 0.f;
    }
    __syncthreads();
#pragma unroll
    for (int h = 0; h < KC; h += 4) {
#pragma unroll
      for (int q = 0; q < Q; ++q) {
        const unsigned p = threadIdx.x + THREADS * q;
        if (p >= TB * E)
          continue;
        const float4 x = *reinterpret_cast<const float4 *>(xs + p / E * KC + h);
        const float *w = tile + h * RS + p % E;
        acc[q] += x.x * w[0];
        acc[q] += x.y * w[RS];
        acc[q] += x.z * w[2 * RS];
        acc[q] += x.w * w[3 * RS];
      }
    }
  }
  __syncthreads();
#pragma unroll
  for (int q = 0; q < Q; ++q) {
    const unsigned p = threadIdx.x + THREADS * q;
    if (p < TB * E)
      tile[p / E * RS + p % E] = acc[q];
  }
  __syncthreads();
  const int t = threadIdx.x; // the token whose scores and choice it makes
  float *s = tile + t * RS;
  const bool mine = t < TB && t0 + t < T;
)";

/// The scores in place, a thread per token, in the CPU's order.
const char *kSigmoidScores = R"(  if (mine)
    for (int e = 0; e < E; ++e)
      s[e] = sigmoid(s[e]);
)";
const char *kSoftmaxScores = R"(  if (mine) {
    float most = -__int_as_float(0x7f800000);
    for (int e = 0; e < E; ++e)
      most = most < s[e] ? s[e] : most;
    float sum = 0.f;
    for (int e = 0; e < E; ++e) {
      s[e] = expf(s[e] - most);
      sum += s[e];
    }
    for (int e = 0; e < E; ++e)
      s[e] /= sum;
  }
)";

/// The scores out (coalesced), then each token's experts allowed.
const char *kGateChoiceStart = R"(  __syncthreads();
  for (int i = threadIdx.x; i < TB * E; i += blockDim.x)
    if (t0 + i / E < T)
      st(out2, t0 * E + i, tile[i / E * RS + i % E]);
  if (!mine)
    return;
  unsigned allowed[(E + 31) / 32];
  for (int i = 0; i < (E + 31) / 32; ++i)
    allowed[i] = ~0u;
)";

/// The group limit (selectExperts in MoeGate.cpp): each group's score is
/// the sum of its two best biased scores (TOP_TWO) or the best, the M best
/// groups are kept (ties to the lower group), the others' experts left
/// out.
const char *kGroupLimit = R"(  float groupScore[G];
  for (int g = 0; g < G; ++g) {
    float best = -__int_as_float(0x7f800000), second = best;
    for (int i = g * GS; i < (g + 1) * GS; ++i) {
      const float v = s[i] + bias[i];
      if (v > best) {
        second = best;
        best = v;
      } else if (v > second) {
        second = v;
      }
    }
    groupScore[g] = TOP_TWO ? best + second : best;
  }
  unsigned kept[(G + 31) / 32] = {};
  for (int m = 0; m < M; ++m) {
    int top = -1;
    for (int g = 0; g < G; ++g)
      if (!(kept[g >> 5] >> (g & 31) & 1u) &&
          (top < 0 || groupScore[g] > groupScore[top]))
        top = g;
    kept[top >> 5] |= 1u << (top & 31);
  }
  for (int e = 0; e < E; ++e)
    if (!(kept[e / GS >> 5] >> (e / GS & 31) & 1u))
      allowed[e >> 5] &= ~(1u << (e & 31));
)";

/// The k best allowed biased scores in order (ties to the lower expert),
/// then their weights: scores over their sum (when NORMALIZE) times c.
const char *kTopK = R"(  int chosen[K];
  for (int j = 0; j < K; ++j) {
    int best = -1;
    float top = 0.f;
    for (int e = 0; e < E; ++e) {
      const float v = s[e] + bias[e];
      if (allowed[e >> 5] >> (e & 31) & 1u && (best < 0 || v > top)) {
        best = e;
        top = v;
      }
    }
    allowed[best >> 5] &= ~(1u << (best & 31));
    chosen[j] = best;
  }
  const long long at = (t0 + t) * K;
  float sum = 0.f;
  for (int j = 0; j < K; ++j)
    sum += s[chosen[j]];
  const float denom = NORMALIZE ? sum + 1e-20f : 1.f;
  for (int j = 0; j < K; ++j) {
    st(out0, at + j, s[chosen[j]] / denom * c);
    out1[at + j] = chosen[j];
  }
)";

} // namespace

/// The router's forward, a block per TB tokens: the gate GEMM into shared
/// memory, then a thread per token computes its scores, its group-limited
/// top-k and its weights sequentially, with the CPU's comparisons.
std::optional<CudaFunction> moeGate(const Operands &o) {
  std::optional<Scoring> scoring = scoringOf(o);
  std::optional<Gate> g = gateOf(o);
  if (!scoring || !g)
    return std::nullopt;
  int64_t e = g->experts, stride = e | 1;
  // Enough tokens for a pair a thread, at most 32 pairs a thread.
  int64_t perBlock =
      std::min({g->tokens, std::max<int64_t>(16, kBlock / e), 32 * kBlock / e});
  int64_t chunk = std::min<int64_t>(32, kGateTileFloats / stride / 4 * 4);
  int64_t groupSize = e / g->groups;
  std::string code =
      "  constexpr int E = " + std::to_string(e) +
      ", K = " + std::to_string(g->topK) +
      ", TB = " + std::to_string(perBlock) + ", KC = " + std::to_string(chunk) +
      ", RS = " + std::to_string(stride) +
      ", Q = " + std::to_string((perBlock * e + kBlock - 1) / kBlock) +
      ", TILE = " + std::to_string(std::max(chunk, perBlock) * stride) +
      ";\n  constexpr unsigned THREADS = " + std::to_string(kBlock) +
      ";\n  constexpr long long T = " + std::to_string(g->tokens) +
      "LL, H = " + std::to_string(g->hidden) + "LL;\n  const float c = float(" +
      literal(scoring->routeScale) + ");\n" + kGateLogits +
      (scoring->sigmoid ? kSigmoidScores : kSoftmaxScores) + kGateChoiceStart;
  if (g->groups > 1 && g->groupsPerToken < g->groups)
    code += "  constexpr int G = " + std::to_string(g->groups) +
            ", M = " + std::to_string(g->groupsPerToken) +
            ", GS = " + std::to_string(groupSize) +
            ";\n  constexpr bool TOP_TWO = " +
            (scoring->sigmoid && groupSize > 1 ? "true" : "false") + ";\n" +
            kGroupLimit;
  code += std::string("  constexpr bool NORMALIZE = ") +
          (scoring->normalize ? "true" : "false") + ";\n" + kTopK;
  return function(o, code, (g->tokens + perBlock - 1) / perBlock, kBlock);
}

std::optional<CudaFunction> moeGateGrad(const Operands &o) {
  // (dWeights [T, k], scores [T, E], indices [T, k] [, dScores [T, E]]).
  bool withScores = o.inputs() == 4;
  std::optional<Scoring> scoring = scoringOf(o);
  if ((o.inputs() != 3 && !withScores) || o.outputs() != 1 || !scoring ||
      o.input(2).dtype() != DTYPE_I32)
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
                     literal(scoring->routeScale) +
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
  if (scoring->normalize)
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
          std::string(scoring->normalize
                          ? "c * (dw / denom - dot / (denom * denom))"
                          : "c * dw") +
          ";\n"
          "  }\n";
  if (scoring->sigmoid) {
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
  return function(o, code, runBlocks(tokens, perRun), kBlock);
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

} // namespace dsflow::codegen
