//===- CudaAttention.cpp - The MLA attention core's forward as CUDA -------===//
//
// mla_attention: out = softmax(scale q k^T, keys j <= i) v per head, with
// q = [qNope, qPe] and k = [kNope, kPe broadcast to every head], and the
// log-sum-exp of each row saved (runtime/backends/cpu/Kernels.h). One fused
// kernel: scores, the causal mask, the softmax and the weighted sum never
// leave the chip (an online softmax over tiles of keys, as FlashAttention
// does). It runs on the FP32 units, not the tensor cores: a correct
// reference for a wgmma version, not its speed.
//
//===----------------------------------------------------------------------===//
#include "Codegen/CudaGenerator.h"

namespace dsflow::codegen {
namespace {

/// Query rows a block takes (two per warp) and keys a tile holds (one per
/// lane).
constexpr int64_t kQueryRows = 16, kKeyTile = 32;
/// Static shared memory a block may use.
constexpr int64_t kSharedLimit = 48 * 1024;

} // namespace

std::optional<CudaFunction> mlaAttention(const Operands &o) {
  std::optional<double> scale = o.f64("softmax_scale");
  if (!o.arity(5, 2) || !scale)
    return std::nullopt;
  for (int i = 0; i < 5; ++i)
    if (o.input(i).shape_size() != 4)
      return std::nullopt;
  const Buffer &qNope = o.input(0);
  int64_t batch = qNope.shape(0), seq = qNope.shape(1), heads = qNope.shape(2),
          nope = qNope.shape(3), rope = o.input(1).shape(3),
          value = o.input(4).shape(3);
  int64_t rows = batch * seq * heads, dim = nope + rope;
  if (o.elements(o.input(1)) != rows * rope ||
      o.elements(o.input(2)) != rows * nope ||
      o.elements(o.input(3)) != batch * seq * rope ||
      o.elements(o.input(4)) != rows * value ||
      o.elements(o.output(0)) != rows * value ||
      o.elements(o.output(1)) != rows)
    return std::nullopt;
  // The block's query rows and one tile of keys ([nope, rope], padded by one
  // so that lanes reading their own key hit different banks) in FP32.
  if ((kQueryRows * dim + kKeyTile * (dim + 1)) * 4 > kSharedLimit)
    return std::nullopt;
  std::string s = std::to_string(seq), h = std::to_string(heads),
              n = std::to_string(nope), r = std::to_string(rope),
              v = std::to_string(value), d = std::to_string(dim);
  int64_t tiles = (seq + kQueryRows - 1) / kQueryRows;
  std::string code =
      "  constexpr int S = " + s + ", H = " + h + ", N = " + n + ", R = " + r +
      ", V = " + v + ", D = " + d + ", Q = " + std::to_string(kQueryRows) +
      ", K = " + std::to_string(kKeyTile) +
      ", VL = (V + 31) / 32;\n"
      "  const float scale = float(" +
      literal(*scale) +
      ");\n"
      "  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;\n"
      "  const long long tile = blockIdx.x % " +
      std::to_string(tiles) + ", bh = blockIdx.x / " + std::to_string(tiles) +
      ";\n"
      "  const long long b = bh / H, h = bh % H, i0 = tile * Q;\n"
      "  __shared__ float qs[Q][D], ks[K][D + 1];\n"
      "  for (int e = threadIdx.x; e < Q * D; e += blockDim.x) {\n"
      "    const long long i = i0 + e / D, row = (b * S + i) * H + h;\n"
      "    const int c = e % D;\n"
      "    qs[e / D][c] = i >= S ? 0.f : c < N ? ld(in0, row * N + c) : "
      "ld(in1, row * R + c - N);\n"
      "  }\n"
      // Two query rows per warp: running max m, sum l and output o per row.
      "  float m[2], l[2], o[2][VL];\n"
      "  for (int u = 0; u < 2; ++u) {\n"
      "    m[u] = -__int_as_float(0x7f800000), l[u] = 0.f;\n"
      "    for (int c = 0; c < VL; ++c) o[u][c] = 0.f;\n"
      "  }\n"
      "  const long long lastKey = min(i0 + Q - 1, (long long)S - 1);\n"
      "  for (long long j0 = 0; j0 <= lastKey; j0 += K) {\n"
      "    __syncthreads(); // qs written, or the last tile read\n"
      "    for (int e = threadIdx.x; e < K * D; e += blockDim.x) {\n"
      "      const long long j = j0 + e / D, key = b * S + j;\n"
      "      const int c = e % D;\n"
      "      ks[e / D][c] = j >= S ? 0.f : c < N ? ld(in2, (key * H + h) * N + "
      "c) : ld(in3, key * R + c - N);\n"
      "    }\n"
      "    __syncthreads();\n"
      "    for (int u = 0; u < 2; ++u) {\n"
      "      const int q = warp * 2 + u;\n"
      "      const long long i = i0 + q, j = j0 + lane;\n"
      "      if (i >= S || j0 > i) continue; // the same for the whole warp\n"
      "      const bool seen = j <= i;\n"
      "      float score = -__int_as_float(0x7f800000);\n"
      "      if (seen) {\n"
      "        float dot = 0.f;\n"
      "        for (int c = 0; c < D; ++c) dot += qs[q][c] * ks[lane][c];\n"
      "        score = dot * scale;\n"
      "      }\n"
      "      float top = score;\n"
      "      for (int w = 16; w > 0; w >>= 1)\n"
      "        top = fmaxf(top, __shfl_xor_sync(0xffffffffu, top, w));\n"
      "      const float mNew = fmaxf(m[u], top);\n"
      "      const float p = seen ? expf(score - mNew) : 0.f;\n"
      "      const float keep = expf(m[u] - mNew);\n"
      "      float sum = p;\n"
      "      for (int w = 16; w > 0; w >>= 1)\n"
      "        sum += __shfl_xor_sync(0xffffffffu, sum, w);\n"
      "      l[u] = l[u] * keep + sum;\n"
      "      m[u] = mNew;\n"
      "      for (int c = 0; c < VL; ++c) o[u][c] *= keep;\n"
      "      for (int t = 0; t < K; ++t) {\n"
      "        const float pt = __shfl_sync(0xffffffffu, p, t);\n"
      "        if (pt == 0.f) continue;\n"
      "        const long long value = ((b * S + j0 + t) * H + h) * V;\n"
      "        for (int c = 0; c < VL; ++c)\n"
      "          if (lane + 32 * c < V) o[u][c] += pt * ld(in4, value + lane + "
      "32 * c);\n"
      "      }\n"
      "    }\n"
      "  }\n"
      "  for (int u = 0; u < 2; ++u) {\n"
      "    const long long i = i0 + warp * 2 + u;\n"
      "    if (i >= S) continue;\n"
      "    const long long row = (b * S + i) * H + h;\n"
      "    for (int c = 0; c < VL; ++c)\n"
      "      if (lane + 32 * c < V) st(out0, row * V + lane + 32 * c, o[u][c] "
      "/ "
      "l[u]);\n"
      "    if (lane == 0) st(out1, row, m[u] + logf(l[u]));\n"
      "  }\n";
  // Q / 2 warps.
  return function(o, code, batch * heads * tiles, int32_t(kQueryRows / 2 * 32));
}

} // namespace dsflow::codegen
