//===- CudaNorms.cpp - RMSNorm and its gradients --------------------------===//
//
// A block per row holding the row in registers between its passes; the
// weight gradient's column sums split over a cluster of blocks.
//
//===----------------------------------------------------------------------===//
#include "Codegen/CudaGenerator.h"

#include <algorithm>

namespace dsflow::codegen {

std::optional<CudaFunction> rmsNorm(const Operands &o) {
  int64_t rows, dim;
  std::optional<double> eps = o.f64("epsilon");
  if (!o.arity(2, 2) || !rowsOf(o, 0, rows, dim) || !eps ||
      o.elements(o.input(1)) != dim || o.elements(o.output(1)) != rows)
    return std::nullopt;
  std::optional<std::string> pieces = rowPieces(dim);
  if (!pieces)
    return std::nullopt;
  // The row is read once, into registers.
  const std::string y =
      "      float w[W], y[W];\n"
      "      ldv<W>(in1, e, w);\n"
      "      for (int j = 0; j < W; ++j) y[j] = x[c][j] * inv "
      "* w[j];\n";
  std::string code =
      *pieces + "  float x[C][W], sumSq = 0.f;\n" +
      forEachPiece("      ldv<W>(in0, r * dim + e, x[c]);\n"
                   "      for (int j = 0; j < W; ++j) sumSq += x[c][j] * "
                   "x[c][j];\n") +
      "  const float inv = 1.f / sqrtf(blockSum(sumSq) / float(dim) + "
      "float(" +
      literal(*eps) +
      "));\n"
      "  if (threadIdx.x == 0) st(out1, r, inv);\n" +
      forEachPiece(y + "      stv<W>(out0, r * dim + e, y);\n");
  std::optional<CudaFunction> f = perRow(o, rows, dim, code, rowThreads(dim));
  if (!f || o.output(0).dtype() != DTYPE_F32)
    return f;
  // The quantizing variant: each 1x128 tile's max-abs from y recomputed
  // (the same products, so the same values as stored), then the codes.
  int64_t tiles = (dim + 127) / 128, ld = (dim + 15) / 16 * 16;
  std::string t = std::to_string(tiles);
  std::string quantize =
      "  __shared__ unsigned tileMax[" + t +
      "];\n"
      "  for (int i = threadIdx.x; i < " +
      t +
      "; i += blockDim.x) tileMax[i] = 0u;\n"
      "  __syncthreads();\n" +
      forEachPiece(y + "      for (int j = 0; j < W; ++j)\n"
                       "        atomicMax(&tileMax[(e + j) / 128], "
                       "__float_as_uint(fabsf(y[j])));\n") +
      "  __syncthreads();\n" +
      forEachPiece(y +
                   "      for (int j = 0; j < W; ++j)\n"
                   "        fp8Codes[r * " +
                   std::to_string(ld) +
                   "LL + e + j] = dsflow_rt::toE4M3(y[j] / "
                   "dsflow_rt::scaleOf(__uint_as_float(tileMax[(e + j) / "
                   "128]), fp8Ue8m0));\n") +
      "  for (int i = threadIdx.x; i < " + t +
      "; i += blockDim.x)\n"
      "    fp8Scales[dsflow_rt::tileScaleAt(r, i, " +
      std::to_string(rows) +
      "LL)] = dsflow_rt::scaleOf(__uint_as_float(tileMax[i]), fp8Ue8m0);\n";
  std::optional<CudaFunction> q =
      perRow(o, rows, dim, code + quantize, rowThreads(dim),
             ", unsigned char *__restrict__ fp8Codes, float *__restrict__ "
             "fp8Scales, int fp8Ue8m0");
  if (q)
    f->quantizingBody = q->body;
  return f;
}

std::optional<CudaFunction> rmsNormGrad(const Operands &o) {
  int64_t rows, dim;
  if (!o.arity(4, 1) || !rowsOf(o, 1, rows, dim) ||
      o.elements(o.input(0)) != rows * dim || o.elements(o.input(2)) != dim ||
      o.elements(o.input(3)) != rows)
    return std::nullopt;
  std::optional<std::string> pieces = rowPieces(dim);
  if (!pieces)
    return std::nullopt;
  // dx += inv w dy - x inv^3 <dy w, x> / dim; dy and x stay in registers.
  return perRow(
      o, rows, dim,
      *pieces + "  float dy[C][W], x[C][W], dot = 0.f;\n" +
          forEachPiece("      float w[W];\n"
                       "      ldv<W>(in0, r * dim + e, dy[c]);\n"
                       "      ldv<W>(in1, r * dim + e, x[c]);\n"
                       "      ldv<W>(in2, e, w);\n"
                       "      for (int j = 0; j < W; ++j) dot += dy[c][j] * "
                       "w[j] * x[c][j];\n") +
          "  const float inv = ld(in3, r);\n"
          "  const float coef = blockSum(dot) * inv * inv * inv / "
          "float(dim);\n" +
          forEachPiece(
              "      float w[W];\n"
              "      ldv<W>(in2, e, w);\n  " +
              o.startOutput(0, "dx", "r * dim + e") +
              "      for (int j = 0; j < W; ++j) dx[j] += inv * w[j] * "
              "dy[c][j] - x[c][j] * coef;\n"
              "      stv<W>(out0, r * dim + e, dx);\n"),
      rowThreads(dim));
}

/// rms_norm_wgrad: blocks of 32 columns x wgradLanes rows, in clusters of
/// kWGradSplits blocks that split the rows of the same columns; narrower
/// rows get more lanes, so that enough row streams are in flight.
constexpr int kWGradSplits = 8;
static int wgradLanes(int64_t dim) {
  return dim >= 2048 ? 8 : dim >= 1024 ? 16 : 32;
}

std::optional<CudaFunction> rmsNormWGrad(const Operands &o) {
  int64_t rows, dim;
  if (!o.arity(3, 1) || !rowsOf(o, 1, rows, dim) ||
      o.elements(o.input(0)) != rows * dim || o.elements(o.input(2)) != rows ||
      o.elements(o.output(0)) != dim)
    return std::nullopt;
  // dw[i] += sum over rows of dy[r, i] x[r, i] inv[r]. Each lane of a
  // cluster's blocks sums every (lanes x 8)th row (4 rows in flight), adds
  // its lanes in shared memory, and the cluster's first block adds the
  // blocks' sums through distributed shared memory, always in the same
  // order: deterministic.
  const int laneCount = wgradLanes(dim);
  std::string lanes = std::to_string(laneCount),
              splits = std::to_string(kWGradSplits),
              stride = std::to_string(laneCount * kWGradSplits);
  return function(
      o,
      "  namespace cg = cooperative_groups;\n"
      "  cg::cluster_group cluster = cg::this_cluster();\n"
      "  const long long rows = " +
          std::to_string(rows) + "LL, dim = " + std::to_string(dim) +
          "LL;\n"
          "  const int split = int(cluster.block_rank()), lane = threadIdx.x / "
          "32, x = threadIdx.x % 32;\n"
          "  const long long i = (blockIdx.x / " +
          splits +
          ") * 32LL + x;\n"
          "  float sum = 0.f;\n"
          "  if (i < dim) {\n"
          "    long long r = split * " +
          lanes +
          " + lane;\n"
          "    for (; r + 3 * " +
          stride + " < rows; r += 4 * " + stride +
          ") {\n"
          "      float a[4];\n"
          "#pragma unroll\n"
          "      for (int q = 0; q < 4; ++q) {\n"
          "        long long rq = r + q * " +
          stride +
          ";\n"
          "        a[q] = ld(in0, rq * dim + i) * ld(in1, rq * dim + i) * "
          "ld(in2, rq);\n"
          "      }\n"
          "      sum += (a[0] + a[1]) + (a[2] + a[3]);\n"
          "    }\n"
          "    for (; r < rows; r += " +
          stride +
          ")\n"
          "      sum += ld(in0, r * dim + i) * ld(in1, r * dim + i) * ld(in2, "
          "r);\n"
          "  }\n"
          "  __shared__ float part[" +
          lanes +
          "][33];\n"
          "  part[lane][x] = sum;\n"
          "  __syncthreads();\n"
          "  if (lane == 0) {\n"
          "    float blockTotal = 0.f;\n"
          "    for (int l = 0; l < " +
          lanes +
          "; ++l) blockTotal += part[l][x];\n"
          "    part[0][x] = blockTotal;\n"
          "  }\n"
          "  cluster.sync();\n"
          "  if (split == 0 && lane == 0 && i < dim) {\n"
          "    float total = 0.f;\n"
          "    for (int b = 0; b < " +
          splits +
          "; ++b)\n"
          "      total += *cluster.map_shared_rank(&part[0][x], b);\n"
          "    acc(out0, i, total);\n"
          "  }\n"
          "  cluster.sync(); // the first block has read the others' sums\n",
      (dim + 31) / 32 * kWGradSplits, 32 * laneCount,
      "#include <cooperative_groups.h>\n",
      "__cluster_dims__(" + splits + ", 1, 1) ");
}

} // namespace dsflow::codegen
