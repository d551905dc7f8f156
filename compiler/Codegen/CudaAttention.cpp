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

/// The sizes of an attention core whose q_nope, q_pe, k_nope, k_pe and v are
/// inputs `first` to `first + 4`.
struct MlaDims {
  int64_t batch = 0, seq = 0, heads = 0, nope = 0, rope = 0, value = 0;
  int64_t rows() const { return batch * seq * heads; }
  int64_t dim() const { return nope + rope; }
  /// "constexpr int S = .., H, N, R, V, D, VL, DL" and the scale.
  std::string constants(double scale) const {
    return "  constexpr int S = " + std::to_string(seq) +
           ", H = " + std::to_string(heads) + ", N = " + std::to_string(nope) +
           ", R = " + std::to_string(rope) + ", V = " + std::to_string(value) +
           ", D = " + std::to_string(dim()) +
           ", VL = (V + 31) / 32, DL = (D + 31) / 32, NL = (N + 31) / 32, "
           "RL = (R + 31) / 32;\n"
           "  const float scale = float(" +
           literal(scale) + ");\n";
  }
};

std::optional<MlaDims> mlaDims(const Operands &o, int first) {
  for (int i = first; i < first + 5; ++i)
    if (o.input(i).shape_size() != 4)
      return std::nullopt;
  const Buffer &qNope = o.input(first);
  MlaDims m{qNope.shape(0),
            qNope.shape(1),
            qNope.shape(2),
            qNope.shape(3),
            o.input(first + 1).shape(3),
            o.input(first + 4).shape(3)};
  if (o.elements(o.input(first + 1)) != m.rows() * m.rope ||
      o.elements(o.input(first + 2)) != m.rows() * m.nope ||
      o.elements(o.input(first + 3)) != m.batch * m.seq * m.rope ||
      o.elements(o.input(first + 4)) != m.rows() * m.value)
    return std::nullopt;
  return m;
}

/// Decodes a block per (batch, head, tile of kQueryRows queries): b, h, i0.
std::string queryTileBlock(int64_t tiles) {
  return "  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;\n"
         "  const long long tile = blockIdx.x % " +
         std::to_string(tiles) + ", bh = blockIdx.x / " +
         std::to_string(tiles) +
         ";\n"
         "  const long long b = bh / H, h = bh % H, i0 = tile * Q;\n";
}

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

namespace dsflow::codegen {
namespace {

// mla_attention_grad's inputs: in0 dOut, in1 q_nope, in2 q_pe, in3 k_nope,
// in4 k_pe, in5 v, in6 lse; outputs: out0 dq_nope, out1 dq_pe, out2 dk_nope,
// out3 dk_pe, out4 dv. With p_ij = exp(s_ij - lse_i), dp_ij = <dO_i, v_j> and
// D_i = sum_j p_ij dp_ij: ds_ij = p_ij (dp_ij - D_i) scale, dq_i = sum_j
// ds_ij k_j, dk_j = sum_i ds_ij q_i, dv_j = sum_i p_ij dO_i. Three launches:
// D_i per query (kept as an FP32 value at the start of dq_pe's row i, which
// the third launch overwrites; FP32 even in a BF16 plan: two slots), then
// per key dk, dv and dk_pe (summed over heads in the block: no atomics),
// then per query dq.

/// Launches 1 and 3 start alike: the block's query rows and output
/// gradients into shared memory; then, for each tile of keys, the keys.
const char *kQueryTileLoads =
    R"(  __shared__ float qs[Q][D], dos[Q][V], ks[K][D + 1];
  for (int e = threadIdx.x; e < Q * D; e += blockDim.x) {
    const long long i = i0 + e / D, row = (b * S + i) * H + h;
    const int c = e % D;
    qs[e / D][c] = i >= S ? 0.f : c < N ? ld(in1, row * N + c) : ld(in2, row * R + c - N);
  }
  for (int e = threadIdx.x; e < Q * V; e += blockDim.x) {
    const long long i = i0 + e / V;
    dos[e / V][e % V] = i >= S ? 0.f : ld(in0, ((b * S + i) * H + h) * V + e % V);
  }
)";
const char *kKeyTileLoop =
    R"(  const long long lastKey = min(i0 + Q - 1, (long long)S - 1);
  for (long long j0 = 0; j0 <= lastKey; j0 += K) {
    __syncthreads();
    for (int e = threadIdx.x; e < K * D; e += blockDim.x) {
      const long long j = j0 + e / D, key = b * S + j;
      const int c = e % D;
      ks[e / D][c] = j >= S ? 0.f : c < N ? ld(in3, (key * H + h) * N + c) : ld(in4, key * R + c - N);
    }
    __syncthreads();
)";

/// Launch 1: a block per (b, h, 16 queries), a lane per key of a tile:
/// kQueryTileLoads + kRowDotsSetup + kKeyTileLoop + kRowDotsBody.
const char *kRowDotsSetup = R"(  float rowDot[2] = {0.f, 0.f};
)";
const char *kRowDotsBody = R"(    for (int u = 0; u < 2; ++u) {
      const int q = warp * 2 + u;
      const long long i = i0 + q, j = j0 + lane;
      if (i >= S || j0 > i) continue;
      float pd = 0.f;
      if (j <= i) {
        float dot = 0.f, dp = 0.f;
        for (int c = 0; c < D; ++c) dot += qs[q][c] * ks[lane][c];
        const long long vj = ((b * S + j) * H + h) * V;
        for (int c = 0; c < V; ++c) dp += dos[q][c] * ld(in5, vj + c);
        pd = expf(dot * scale - ld(in6, (b * S + i) * H + h)) * dp;
      }
      for (int w = 16; w > 0; w >>= 1) pd += __shfl_xor_sync(0xffffffffu, pd, w);
      rowDot[u] += pd;
    }
  }
  for (int u = 0; u < 2; ++u) {
    const long long i = i0 + warp * 2 + u;
    // A float whatever the storage: two BF16 slots of the row when BF16.
    if (i < S && lane == 0) *reinterpret_cast<float *>(out1 + ((b * S + i) * H + h) * R) = rowDot[u];
  }
)";

/// Launch 2: a block per (b, 16 keys), every head; a warp takes 2 keys, a
/// lane a query of a tile of 32 (scores), then a dimension (sums).
const char *kKeyGrads =
    R"(  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const long long tiles = (S + Q - 1) / Q, b = blockIdx.x / tiles, j0 = blockIdx.x % tiles * Q;
  __shared__ float qs[32][D + 1], dos[32][V + 1], rowDot[32], rowLse[32];
  float dkp[2][RL];
  for (int u = 0; u < 2; ++u) for (int c = 0; c < RL; ++c) dkp[u][c] = 0.f;
  for (int h = 0; h < H; ++h) {
    float dkn[2][NL], dvv[2][VL];
    for (int u = 0; u < 2; ++u) {
      for (int c = 0; c < NL; ++c) dkn[u][c] = 0.f;
      for (int c = 0; c < VL; ++c) dvv[u][c] = 0.f;
    }
    for (long long t0 = j0; t0 < S; t0 += 32) {
      __syncthreads();
      for (int e = threadIdx.x; e < 32 * D; e += blockDim.x) {
        const long long i = t0 + e / D, row = (b * S + i) * H + h;
        const int c = e % D;
        qs[e / D][c] = i >= S ? 0.f : c < N ? ld(in1, row * N + c) : ld(in2, row * R + c - N);
      }
      for (int e = threadIdx.x; e < 32 * V; e += blockDim.x) {
        const long long i = t0 + e / V;
        dos[e / V][e % V] = i >= S ? 0.f : ld(in0, ((b * S + i) * H + h) * V + e % V);
      }
      if (threadIdx.x < 32) {
        const long long i = t0 + threadIdx.x, row = (b * S + i) * H + h;
        rowDot[threadIdx.x] = i < S ? *reinterpret_cast<const float *>(out1 + row * R) : 0.f;
        rowLse[threadIdx.x] = i < S ? ld(in6, row) : 0.f;
      }
      __syncthreads();
      for (int u = 0; u < 2; ++u) {
        const long long j = j0 + warp * 2 + u, i = t0 + lane;
        if (j >= S) continue;
        const long long key = b * S + j;
        float p = 0.f, ds = 0.f;
        if (i >= j && i < S) {
          float dot = 0.f, dp = 0.f;
          for (int c = 0; c < N; ++c) dot += qs[lane][c] * ld(in3, (key * H + h) * N + c);
          for (int c = 0; c < R; ++c) dot += qs[lane][N + c] * ld(in4, key * R + c);
          for (int c = 0; c < V; ++c) dp += dos[lane][c] * ld(in5, (key * H + h) * V + c);
          p = expf(dot * scale - rowLse[lane]);
          ds = p * (dp - rowDot[lane]) * scale;
        }
        for (int t = 0; t < 32; ++t) {
          const float pt = __shfl_sync(0xffffffffu, p, t), dt = __shfl_sync(0xffffffffu, ds, t);
          if (pt == 0.f && dt == 0.f) continue;
          for (int c = 0; c < VL; ++c) if (lane + 32 * c < V) dvv[u][c] += pt * dos[t][lane + 32 * c];
          for (int c = 0; c < NL; ++c) if (lane + 32 * c < N) dkn[u][c] += dt * qs[t][lane + 32 * c];
          for (int c = 0; c < RL; ++c) if (lane + 32 * c < R) dkp[u][c] += dt * qs[t][N + lane + 32 * c];
        }
      }
    }
    for (int u = 0; u < 2; ++u) {
      const long long j = j0 + warp * 2 + u;
      if (j >= S) continue;
      const long long row = (b * S + j) * H + h;
      for (int c = 0; c < NL; ++c) if (lane + 32 * c < N) st(out2, row * N + lane + 32 * c, dkn[u][c]);
      for (int c = 0; c < VL; ++c) if (lane + 32 * c < V) st(out4, row * V + lane + 32 * c, dvv[u][c]);
    }
  }
  for (int u = 0; u < 2; ++u) {
    const long long j = j0 + warp * 2 + u;
    if (j >= S) continue;
    for (int c = 0; c < RL; ++c) if (lane + 32 * c < R) st(out3, (b * S + j) * R + lane + 32 * c, dkp[u][c]);
  }
)";

/// Launch 3: as launch 1, then dq_i = sum_j ds_ij k_j (a lane a dimension):
/// kQueryTileLoads + kQueryGradsSetup + kKeyTileLoop + kQueryGradsBody.
const char *kQueryGradsSetup = R"(  float rowDot[2], rowLse[2], dq[2][DL];
  for (int u = 0; u < 2; ++u) {
    const long long i = i0 + warp * 2 + u, row = (b * S + i) * H + h;
    rowDot[u] = i < S ? *reinterpret_cast<const float *>(out1 + row * R) : 0.f;
    rowLse[u] = i < S ? ld(in6, row) : 0.f;
    for (int c = 0; c < DL; ++c) dq[u][c] = 0.f;
  }
)";
const char *kQueryGradsBody = R"(    for (int u = 0; u < 2; ++u) {
      const int q = warp * 2 + u;
      const long long i = i0 + q, j = j0 + lane;
      if (i >= S || j0 > i) continue;
      float ds = 0.f;
      if (j <= i) {
        float dot = 0.f, dp = 0.f;
        for (int c = 0; c < D; ++c) dot += qs[q][c] * ks[lane][c];
        const long long vj = ((b * S + j) * H + h) * V;
        for (int c = 0; c < V; ++c) dp += dos[q][c] * ld(in5, vj + c);
        const float p = expf(dot * scale - rowLse[u]);
        ds = p * (dp - rowDot[u]) * scale;
      }
      for (int t = 0; t < K; ++t) {
        const float dt = __shfl_sync(0xffffffffu, ds, t);
        if (dt == 0.f) continue;
        for (int c = 0; c < DL; ++c) if (lane + 32 * c < D) dq[u][c] += dt * ks[t][lane + 32 * c];
      }
    }
  }
  for (int u = 0; u < 2; ++u) {
    const long long i = i0 + warp * 2 + u;
    if (i >= S) continue;
    const long long row = (b * S + i) * H + h;
    for (int c = 0; c < DL; ++c) {
      const int d = lane + 32 * c;
      if (d < N) st(out0, row * N + d, dq[u][c]);
      else if (d < D) st(out1, row * R + d - N, dq[u][c]);
    }
  }
)";

} // namespace

std::vector<CudaFunction> mlaAttentionGrad(const Operands &o) {
  std::optional<double> scale = o.f64("softmax_scale");
  // dq_pe holds D until the last launch: only for outputs that start empty,
  // with rows of an even number of elements (an FP32 value in BF16 slots).
  if (!o.arity(7, 5) || !scale || o.accumulates())
    return {};
  std::optional<MlaDims> m = mlaDims(o, 1);
  if (!m || m->rope < 2 || m->rope % 2 ||
      o.elements(o.input(0)) != m->rows() * m->value ||
      o.elements(o.input(6)) != m->rows() ||
      o.elements(o.output(0)) != m->rows() * m->nope ||
      o.elements(o.output(1)) != m->rows() * m->rope ||
      o.elements(o.output(2)) != m->rows() * m->nope ||
      o.elements(o.output(3)) != m->batch * m->seq * m->rope ||
      o.elements(o.output(4)) != m->rows() * m->value)
    return {};
  int64_t dim = m->dim();
  if ((kQueryRows * (dim + m->value) + kKeyTile * (dim + 1)) * 4 >
          kSharedLimit ||
      (32 * (dim + 1 + m->value + 1) + 64) * 4 > kSharedLimit)
    return {};
  int64_t tiles = (m->seq + kQueryRows - 1) / kQueryRows;
  std::string head = m->constants(*scale) +
                     "  constexpr int Q = " + std::to_string(kQueryRows) +
                     ", K = " + std::to_string(kKeyTile) + ";\n";
  int32_t block = int32_t(kQueryRows / 2 * 32);
  std::vector<CudaFunction> launches;
  auto queryPass = [&](const char *setup, const char *body) {
    return queryTileBlock(tiles) + kQueryTileLoads + setup + kKeyTileLoop +
           body;
  };
  // D per query, then dk, dv and dk_pe per key, then dq per query.
  for (const std::string &body :
       {queryPass(kRowDotsSetup, kRowDotsBody), std::string(kKeyGrads),
        queryPass(kQueryGradsSetup, kQueryGradsBody)}) {
    bool perKey = body == kKeyGrads;
    std::optional<CudaFunction> f = function(
        o, head + body, perKey ? m->batch * tiles : m->batch * m->heads * tiles,
        block);
    if (!f)
      return {};
    launches.push_back(*f);
  }
  return launches;
}

} // namespace dsflow::codegen
