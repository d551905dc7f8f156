//===- CudaVocabulary.cpp - Embedding and cross-entropy -------------------===//
//
// The ops over the vocabulary: the embedding lookup and its gradient, the
// cross-entropy loss and its gradient.
//
//===----------------------------------------------------------------------===//
#include "Codegen/CudaGenerator.h"

#include <algorithm>

namespace dsflow::codegen {

/// Token ids and labels are checked on the host (the data loader's tokens
/// are below the vocabulary); an id out of range leaves its row alone.

/// y[n, :] = table[ids[n], :]: W elements of a row per thread step.
std::optional<CudaFunction> embedding(const Operands &o) {
  if (!o.arity(2, 1) || o.input(0).shape_size() != 2 ||
      o.input(1).dtype() != DTYPE_I32)
    return std::nullopt;
  int64_t vocab = o.input(0).shape(0), hidden = o.input(0).shape(1),
          tokens = o.elements(o.input(1));
  if (o.elements(o.output(0)) != tokens * hidden)
    return std::nullopt;
  int width = vectorWidth(hidden);
  std::string w = std::to_string(width), hid = std::to_string(hidden) + "LL";
  return function(
      o,
      "  constexpr int W = " + w + ";\n  DSFLOW_GRID_STRIDE(b, " +
          std::to_string(tokens * hidden / width) +
          "LL) {\n"
          "    const long long i = b * W, t = i / " +
          hid + ", h = i % " + hid +
          ";\n"
          "    const int id = in1[t];\n"
          "    if (id < 0 || id >= " +
          std::to_string(vocab) +
          ") continue;\n"
          "    float v[W];\n"
          "    ldv<W>(in0, id * " +
          hid +
          " + h, v);\n"
          "    stv<W>(out0, i, v);\n"
          "  }\n",
      std::min((tokens * hidden / width + kBlock - 1) / kBlock, kMaxGrid),
      kBlock);
}

/// The vocabulary rows one embedding_wgrad block owns.
constexpr int64_t kEmbeddingRowsPerBlock = 64;

/// dtable[ids[n], :] += dy[n, :]. A block owns 64 vocabulary rows: it scans
/// the ids 256 at a time, lists the tokens whose id it owns in token order,
/// and adds their rows (W elements a thread step). Each table row is
/// updated by one block, its tokens in order, as the CPU adds them: no
/// atomics, the same result every run.
std::optional<CudaFunction> embeddingWGrad(const Operands &o) {
  if (!o.arity(2, 1) || o.input(1).dtype() != DTYPE_I32)
    return std::nullopt;
  int64_t hidden = o.last(o.input(0)), tokens = o.elements(o.input(1));
  int64_t vocab = hidden ? o.elements(o.output(0)) / hidden : 0;
  if (!vocab || o.elements(o.input(0)) != tokens * hidden ||
      o.elements(o.output(0)) != vocab * hidden)
    return std::nullopt;
  std::string rows = std::to_string(kEmbeddingRowsPerBlock);
  return function(
      o,
      "  constexpr int W = " + std::to_string(vectorWidth(hidden)) +
          ";\n"
          "  const long long hidden = " +
          std::to_string(hidden) + "LL, tokens = " + std::to_string(tokens) +
          "LL;\n"
          "  const int first = blockIdx.x * " +
          rows + ", last = min(first + " + rows + ", " + std::to_string(vocab) +
          ");\n"
          "  __shared__ int mine[256], perWarp[8];\n"
          "  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;\n"
          "  for (long long n0 = 0; n0 < tokens; n0 += 256) {\n"
          "    const long long n = n0 + threadIdx.x;\n"
          "    const int id = n < tokens ? in1[n] : -1;\n"
          "    const bool owned = id >= first && id < last;\n"
          "    const unsigned ballot = __ballot_sync(0xffffffffu, owned);\n"
          "    if (lane == 0) perWarp[warp] = __popc(ballot);\n"
          "    __syncthreads();\n"
          "    int before = 0, found = 0;\n"
          "    for (int w = 0; w < 8; ++w) {\n"
          "      before += w < warp ? perWarp[w] : 0;\n"
          "      found += perWarp[w];\n"
          "    }\n"
          "    if (owned) mine[before + __popc(ballot & ((1u << lane) - 1u))] "
          "= int(n - n0);\n"
          "    __syncthreads();\n"
          "    for (int f = 0; f < found; ++f) {\n"
          "      const long long t = n0 + mine[f], row = in1[t];\n"
          "      for (long long e = threadIdx.x * W; e < hidden; e += "
          "blockDim.x * W) {\n"
          "        float d[W], g[W];\n"
          "        ldv<W>(in0, t * hidden + e, d);\n"
          "        ldv<W>(out0, row * hidden + e, g);\n"
          "#pragma unroll\n"
          "        for (int j = 0; j < W; ++j) g[j] += d[j];\n"
          "        stv<W>(out0, row * hidden + e, g);\n"
          "      }\n"
          "    }\n"
          "    __syncthreads(); // mine and perWarp are reused\n"
          "  }\n",
      (vocab + kEmbeddingRowsPerBlock - 1) / kEmbeddingRowsPerBlock, kBlock);
}

/// Mean cross-entropy: a block per token reads its logits once, keeping a
/// running maximum and sum of exponentials (online softmax), saves the
/// log-sum-exp and adds (lse - logit[label]) / tokens to the loss, which
/// starts at zero (the runtime zeroes a forward kernel's outputs); the order
/// of those adds is the GPU's.
std::optional<CudaFunction> crossEntropy(const Operands &o) {
  if (!o.arity(2, 2) || o.input(1).dtype() != DTYPE_I32)
    return std::nullopt;
  int64_t vocab = o.last(o.input(0)), tokens = o.elements(o.input(1));
  if (o.elements(o.input(0)) != tokens * vocab ||
      o.elements(o.output(0)) != 1 || o.elements(o.output(1)) != tokens)
    return std::nullopt;
  return perRow(
      o, tokens, vocab,
      "  constexpr int W = " + std::to_string(vectorWidth(vocab)) +
          ";\n"
          "  float most = -__int_as_float(0x7f800000), sum = 0.f;\n"
          "  for (long long v = threadIdx.x * W; v < dim; v += blockDim.x * "
          "W) {\n"
          "    float x[W], top = most;\n"
          "    ldv<W>(in0, r * dim + v, x);\n"
          "    for (int j = 0; j < W; ++j) top = fmaxf(top, x[j]);\n"
          "    sum *= expf(most - top);\n"
          "    most = top;\n"
          "    for (int j = 0; j < W; ++j) sum += expf(x[j] - most);\n"
          "  }\n"
          "  blockMaxSum(most, sum);\n"
          "  const float lse = most + logf(sum);\n"
          "  const int label = in1[r];\n"
          "  if (threadIdx.x == 0 && label >= 0 && label < dim) {\n"
          "    st(out1, r, lse);\n"
          "    atomicAddTo(out0, (lse - ld(in0, r * dim + label)) / " +
          std::to_string(tokens) +
          ".f);\n"
          "  }\n");
}

/// dlogits += (softmax - onehot(label)) * dLoss / tokens: a block per
/// token, W logits a thread step.
std::optional<CudaFunction> crossEntropyGrad(const Operands &o) {
  if (!o.arity(4, 1) || o.input(2).dtype() != DTYPE_I32)
    return std::nullopt;
  int64_t vocab = o.last(o.input(1)), tokens = o.elements(o.input(2));
  if (o.elements(o.input(0)) != 1 || o.elements(o.input(1)) != tokens * vocab ||
      o.elements(o.input(3)) != tokens ||
      o.elements(o.output(0)) != tokens * vocab)
    return std::nullopt;
  return perRow(
      o, tokens, vocab,
      "  constexpr int W = " + std::to_string(vectorWidth(vocab)) +
          ";\n"
          "  const float g = ld(in0, 0) / " +
          std::to_string(tokens) +
          ".f, lse = ld(in3, r);\n"
          "  const int label = in2[r];\n"
          "  for (long long v = threadIdx.x * W; v < dim; v += blockDim.x * "
          "W) {\n"
          "    float x[W];\n"
          "    ldv<W>(in1, r * dim + v, x);\n" +
          o.startOutput(0, "d", "r * dim + v") +
          "#pragma unroll\n"
          "    for (int j = 0; j < W; ++j)\n"
          "      d[j] += (expf(x[j] - lse) - (v + j == label ? 1.f : 0.f)) * "
          "g;\n"
          "    stv<W>(out0, r * dim + v, d);\n"
          "  }\n");
}

} // namespace dsflow::codegen
