//===- CudaDispatch.cpp - MoE dispatch, combine and their gradients -------===//
//
// dispatch (a stable counting sort of the token slots by expert, then the
// rows copied in that order), dispatch_grad and combine (per token, the sum
// over its k slots' rows), and combine's two gradients, as the CPU backend
// computes them (runtime/backends/cpu/Dispatch.cpp): every sum in the CPU's
// order, no atomics on data.
//
//===----------------------------------------------------------------------===//
#include "Codegen/CudaGenerator.h"

#include <algorithm>

namespace dsflow::codegen {
namespace {

/// The routing operands: int32 indices [T, k] at input `at` (T and k), and
/// when `sources`, int32 row sources [T*k] after them.
bool slots(const Operands &o, int at, int64_t &tokens, int64_t &topK,
           bool sources = true) {
  topK = o.last(o.input(at));
  tokens = topK ? o.elements(o.input(at)) / topK : 0;
  if (tokens < 1 || o.input(at).dtype() != DTYPE_I32 ||
      o.elements(o.input(at)) != tokens * topK)
    return false;
  return !sources ||
         (o.inputs() > at + 1 && o.input(at + 1).dtype() == DTYPE_I32 &&
          o.elements(o.input(at + 1)) == tokens * topK);
}

/// combine's operands [x, weights [T, k], indices, rowSource]: T and k.
bool combineRouting(const Operands &o, int64_t &tokens, int64_t &topK) {
  return o.arity(4, 1) && slots(o, 2, tokens, topK) &&
         o.elements(o.input(1)) == tokens * topK;
}

/// A block per row r of the dispatched order (perRow), its slot p =
/// `source`[r] read first, then `setup`: `body` runs for each W-wide piece
/// at e of token p / k's row of input 0, loaded into x[W].
std::optional<CudaFunction> perSlotRow(const Operands &o, int64_t rows,
                                       int64_t hidden, int64_t topK,
                                       const std::string &source,
                                       const std::string &setup,
                                       const std::string &body) {
  return perRow(o, rows, hidden,
                "  constexpr int W = " + std::to_string(vectorWidth(hidden)) +
                    ";\n"
                    "  const int p = " +
                    source + "[r];\n" + setup +
                    "  const long long from = (long long)(p / " +
                    std::to_string(topK) +
                    ") * dim;\n"
                    "  for (long long e = threadIdx.x * W; e < dim; e += "
                    "blockDim.x * W) {\n"
                    "    float x[W];\n"
                    "    ldv<W>(in0, from + e, x);\n" +
                    body + "  }\n",
                rowThreads(hidden));
}

/// dispatch's first launch, one block: counts[E] (out1) and rowSource (out2)
/// of a stable counting sort of the N = T*k slots by their expert (in1).
/// Each warp takes SEG consecutive slots: it counts its slots per expert,
/// the counts give each warp's first row per expert, then the warp places
/// its slots in order, 32 at a time, each after the lanes before it with
/// the same expert (__match_any_sync). Indices out of range are left out.
const char *kSortSlots =
    R"(  __shared__ int next[WARPS][E]; // per warp and expert: count, then next row
  __shared__ int first[E];       // per expert: count, then first row
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const long long begin = warp * SEG, end = min(begin + SEG, N);
  for (int i = threadIdx.x; i < WARPS * E; i += blockDim.x)
    next[i / E][i % E] = 0;
  __syncthreads();
  for (long long i = begin + lane; i < end; i += 32) {
    const int e = in1[i];
    if (e >= 0 && e < E)
      atomicAdd(&next[warp][e], 1);
  }
  __syncthreads();
  for (int e = threadIdx.x; e < E; e += blockDim.x) {
    int count = 0;
    for (int w = 0; w < WARPS; ++w) {
      const int c = next[w][e];
      next[w][e] = count; // the warp's rows of e start after the earlier warps'
      count += c;
    }
    out1[e] = count;
    first[e] = count;
  }
  __syncthreads();
  if (warp == 0) { // first[e] = sum of the counts before e
    constexpr int PER = (E + 31) / 32;
    int sum = 0;
    for (int q = 0; q < PER; ++q)
      if (lane * PER + q < E)
        sum += first[lane * PER + q];
    int before = sum;
    for (int o = 1; o < 32; o <<= 1) {
      const int v = __shfl_up_sync(0xffffffffu, before, o);
      if (lane >= o)
        before += v;
    }
    before -= sum;
    for (int q = 0; q < PER; ++q) {
      const int e = lane * PER + q;
      if (e < E) {
        const int c = first[e];
        first[e] = before;
        before += c;
      }
    }
  }
  __syncthreads();
  for (long long i0 = begin; i0 < end; i0 += 32) {
    const long long i = i0 + lane;
    const int e = i < end ? in1[i] : -1;
    const bool valid = e >= 0 && e < E;
    const unsigned peers = __match_any_sync(0xffffffffu, valid ? e : -1);
    if (valid)
      out2[first[e] + next[warp][e] + __popc(peers & ((1u << lane) - 1u))] =
          int(i);
    __syncwarp();
    if (valid && (peers >> lane) == 1u) // the group's last lane moves it on
      next[warp][e] += __popc(peers);
    __syncwarp();
  }
)";

/// The sort's warps' counts, WARPS x E ints in shared memory (32 KB): 32
/// warps up to 256 experts, fewer for more, 4 for the most experts sorted.
constexpr int64_t kSortCounts = 8192;
constexpr int64_t kMaxSortExperts = 2048;

/// out0 [T, H]: out0[t] = sum_j c_j in0[row of slot t k + j] (in0 the rows
/// [T*k, H]; c_j the weight from input 1 when `weighted`, else 1; j in
/// order), a block per token t (r); added into out0 when it `adds` (the
/// kernel's starting values), else from zero. rowOfSlot (the prelude) finds
/// the rows from the indices at input `indicesAt` and the row sources.
std::optional<CudaFunction> gatherSlots(const Operands &o, int64_t tokens,
                                        int64_t topK, int indicesAt,
                                        bool weighted, bool adds) {
  int64_t hidden = o.last(o.input(0));
  if (o.elements(o.input(0)) != tokens * topK * hidden ||
      o.elements(o.output(0)) != tokens * hidden)
    return std::nullopt;
  std::string in = "in" + std::to_string(indicesAt),
              sources = "in" + std::to_string(indicesAt + 1);
  std::string code =
      "  constexpr int W = " + std::to_string(vectorWidth(hidden)) +
      ", K = " + std::to_string(topK) +
      ";\n"
      "  __shared__ long long row[K];\n" +
      (weighted ? "  __shared__ float weight[K];\n" : "") +
      "  for (int j = threadIdx.x; j < K; j += blockDim.x) {\n"
      "    row[j] = rowOfSlot(" +
      in + ", " + sources + ", " + std::to_string(tokens * topK) +
      "LL, r * K + j);\n" +
      (weighted ? "    weight[j] = ld(in1, r * K + j);\n" : "") +
      "  }\n"
      "  __syncthreads();\n"
      "  for (long long e = threadIdx.x * W; e < dim; e += blockDim.x * W) "
      "{\n" +
      (adds ? o.startOutput(0, "d", "r * dim + e")
            : "    float d[W];\n"
              "    for (int q = 0; q < W; ++q) d[q] = 0.f;\n") +
      "    for (int j = 0; j < K; ++j) {\n"
      "      if (row[j] < 0) continue;\n"
      "      float v[W];\n"
      "      ldv<W>(in0, row[j] * dim + e, v);\n"
      "#pragma unroll\n"
      "      for (int q = 0; q < W; ++q) d[q] += " +
      (weighted ? "weight[j] * v[q]" : "v[q]") +
      ";\n"
      "    }\n"
      "    stv<W>(out0, r * dim + e, d);\n"
      "  }\n";
  return perRow(o, tokens, hidden, code, rowThreads(hidden));
}

} // namespace

/// An FP32 dispatch under the FP8 recipe: its rows are cached for the
/// experts' backward in FP8 (emulated: quantized per 1x128 tile and back).
bool quantizesRows(const Operands &o) {
  return o.str("graph.fp8.format") == "e4m3" &&
         o.output(0).dtype() == DTYPE_F32;
}

/// The row copy with that quantization fused: each tile's max-abs through
/// shared memory (NaN wins, as on the CPU), then the row's values quantized
/// to E4M3 and back (dsflow_rt::fakeQuantize, as the runtime's
/// dsflow_rt_fake_quant_1x128_f32 would after the copy).
std::optional<CudaFunction> quantizedRowCopy(const Operands &o, int64_t rows,
                                             int64_t hidden, int64_t topK) {
  std::string tiles = std::to_string((hidden + 127) / 128);
  std::string ue8m0 = o.str("graph.fp8.scales") == "ue8m0" ? "1" : "0";
  std::string loop = "  for (long long e = threadIdx.x * W; e < dim; e += "
                     "blockDim.x * W) {\n"
                     "    float x[W];\n"
                     "    ldv<W>(in0, from + e, x);\n";
  return perRow(
      o, rows, hidden,
      "  constexpr int W = " + std::to_string(vectorWidth(hidden)) +
          ";\n"
          "  const long long from = (long long)(out2[r] / " +
          std::to_string(topK) +
          ") * dim;\n"
          "  __shared__ unsigned tileMax[" +
          tiles +
          "];\n"
          "  for (int i = threadIdx.x; i < " +
          tiles +
          "; i += blockDim.x) tileMax[i] = 0u;\n"
          "  __syncthreads();\n" +
          loop +
          "    for (int j = 0; j < W; ++j)\n"
          "      atomicMax(&tileMax[(e + j) / 128], "
          "__float_as_uint(fabsf(x[j])));\n"
          "  }\n"
          "  __syncthreads();\n" +
          loop +
          "    for (int j = 0; j < W; ++j)\n"
          "      x[j] = dsflow_rt::fakeQuantize(x[j], dsflow_rt::scaleOf("
          "__uint_as_float(tileMax[(e + j) / 128]), " +
          ue8m0 +
          "));\n"
          "    stv<W>(out0, r * dim + e, x);\n"
          "  }\n",
      rowThreads(hidden));
}

std::vector<CudaFunction> dispatch(const Operands &o) {
  // (x [T, H], indices [T, k]) -> (rows [T*k, H], counts [E], rowSource).
  int64_t tokens, topK;
  if (!o.arity(2, 3) || o.output(1).dtype() != DTYPE_I32 ||
      o.output(2).dtype() != DTYPE_I32 ||
      !slots(o, 1, tokens, topK, /*sources=*/false))
    return {};
  int64_t hidden = o.last(o.input(0)), experts = o.elements(o.output(1));
  int64_t numSlots = tokens * topK;
  if (o.elements(o.input(0)) != tokens * hidden ||
      o.elements(o.output(0)) != numSlots * hidden ||
      o.elements(o.output(2)) != numSlots || experts < 1 ||
      experts > kMaxSortExperts)
    return {};
  int64_t warps = std::clamp<int64_t>(
      std::min(kSortCounts / experts, (numSlots + 31) / 32), 1, 32);
  int64_t segment = ((numSlots + warps - 1) / warps + 31) / 32 * 32;
  std::optional<CudaFunction> sort = function(
      o,
      "  constexpr int E = " + std::to_string(experts) +
          ", WARPS = " + std::to_string(warps) +
          ";\n  constexpr long long N = " + std::to_string(numSlots) +
          "LL, SEG = " + std::to_string(segment) + "LL;\n" + kSortSlots,
      1, int32_t(warps * 32));
  // Then a block per row copies its token's row: rows[r] = x[p / k].
  std::optional<CudaFunction> copy =
      quantizesRows(o) ? quantizedRowCopy(o, numSlots, hidden, topK)
                       : perSlotRow(o, numSlots, hidden, topK, "out2", "",
                                    "    stv<W>(out0, r * dim + e, x);\n");
  if (!sort || !copy)
    return {};
  copy->quantizesOutput = quantizesRows(o);
  return {*sort, *copy};
}

/// dx[t] += sum_j dRows[row of slot t k + j], a block per token.
std::optional<CudaFunction> dispatchGrad(const Operands &o) {
  // (dRows [T*k, H], indices [T, k], rowSource [T*k]) -> dx [T, H].
  int64_t tokens, topK;
  if (!o.arity(3, 1) || !slots(o, 1, tokens, topK))
    return std::nullopt;
  return gatherSlots(o, tokens, topK, 1, /*weighted=*/false, /*adds=*/true);
}

/// y[t] = sum_j w[t, j] rows[row of slot t k + j], a block per token; the
/// CPU overwrites y, so it starts from zero whatever `accumulates` says.
std::optional<CudaFunction> combine(const Operands &o) {
  int64_t tokens, topK;
  if (!combineRouting(o, tokens, topK))
    return std::nullopt;
  return gatherSlots(o, tokens, topK, 2, /*weighted=*/true, /*adds=*/false);
}

/// dRows[r] += w[p] dy[p / k] with p = rowSource[r]: a gather, a block per
/// row, W elements a thread step.
std::optional<CudaFunction> combineGrad(const Operands &o) {
  int64_t tokens, topK;
  if (!combineRouting(o, tokens, topK))
    return std::nullopt;
  int64_t hidden = o.last(o.input(0));
  if (o.elements(o.input(0)) != tokens * hidden ||
      o.elements(o.output(0)) != tokens * topK * hidden)
    return std::nullopt;
  return perSlotRow(o, tokens * topK, hidden, topK, "in3",
                    "  const float w = ld(in1, p);\n",
                    o.startOutput(0, "d", "r * dim + e") +
                        "#pragma unroll\n"
                        "    for (int j = 0; j < W; ++j) d[j] += w * x[j];\n"
                        "    stv<W>(out0, r * dim + e, d);\n");
}

/// dw[p] += rowDots[r] / w[p] for p = rowSource[r] (0 where w is 0): a
/// permutation, so one thread per row writes one weight.
std::optional<CudaFunction> combineWeightsGrad(const Operands &o) {
  int64_t tokens, topK;
  if (!combineRouting(o, tokens, topK) ||
      o.elements(o.input(0)) != tokens * topK ||
      o.elements(o.output(0)) != tokens * topK)
    return std::nullopt;
  return elementwise(o, tokens * topK,
                     "    int p = in3[i];\n"
                     "    float w = ld(in1, p);\n"
                     "    if (w != 0.f) acc(out0, p, ld(in0, i) / w);\n");
}

} // namespace dsflow::codegen
