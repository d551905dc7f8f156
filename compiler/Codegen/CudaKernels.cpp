//===- CudaKernels.cpp - CUDA C++ for the plan's memory-bound kernels -----===//
#include "Codegen/CudaKernels.h"
#include "Codegen/CudaGenerator.h"

#include "runtime/backends/cpu/Kernels.h"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>
#include <sstream>

namespace dsflow::codegen {
namespace {

/// One thread per element (grid-stride): `statement` uses index i; n elements.
std::optional<CudaFunction> elementwise(const Operands &o, int64_t n,
                                        const std::string &statement) {
  int64_t grid = std::min((n + kBlock - 1) / kBlock, kMaxGrid);
  return function(o,
                  "  const long long n = " + std::to_string(n) +
                      "LL;\n  DSFLOW_GRID_STRIDE(i, n) {\n" + statement +
                      "  }\n",
                  grid, kBlock);
}

/// Elements per thread step: 8 (16-byte BF16 accesses) when `n` allows.
int vectorWidth(int64_t n) { return n % 8 == 0 ? 8 : 1; }

/// W elements per thread step (grid-stride over n / W, W = vectorWidth):
/// x<k>[W] hold inputs `loaded` at element i, y<k>[W] the outputs (when the
/// body `adds` into them: their values if the kernel accumulates, else
/// zeros), and `body` runs for each j < W.
std::optional<CudaFunction> vectorized(const Operands &o, int64_t n,
                                       const std::vector<int> &loaded,
                                       int outputs, bool adds,
                                       const std::string &body) {
  int width = vectorWidth(n);
  std::string w = std::to_string(width),
              code = "  constexpr int W = " + w +
                     ";\n  const long long n = " + std::to_string(n) + "LL;\n" +
                     "  DSFLOW_GRID_STRIDE(b, n / W) "
                     "{\n    const long long i = b * W;\n";
  for (int k : loaded)
    code += "    float x" + std::to_string(k) + "[W];\n    ldv<W>(in" +
            std::to_string(k) + ", i, x" + std::to_string(k) + ");\n";
  for (int k = 0; k < outputs; ++k)
    code += adds ? o.startOutput(k, "y" + std::to_string(k), "i")
                 : "    float y" + std::to_string(k) + "[W];\n";
  code +=
      "#pragma unroll\n    for (int j = 0; j < W; ++j) {\n" + body + "    }\n";
  for (int k = 0; k < outputs; ++k)
    code += "    stv<W>(out" + std::to_string(k) + ", i, y" +
            std::to_string(k) + ");\n";
  code += "  }\n";
  int64_t grid = std::min((n / width + kBlock - 1) / kBlock, kMaxGrid);
  return function(o, code, std::max<int64_t>(grid, 1), kBlock);
}

/// All inputs and outputs of the same size n.
std::optional<int64_t> sameSize(const Operands &o, int inputs, int outputs) {
  if (!o.arity(inputs, outputs))
    return std::nullopt;
  int64_t n = outputs ? o.elements(o.output(0)) : o.elements(o.input(0));
  for (int i = 0; i < inputs; ++i)
    if (o.elements(o.input(i)) != n)
      return std::nullopt;
  for (int i = 0; i < outputs; ++i)
    if (o.elements(o.output(i)) != n)
      return std::nullopt;
  return n;
}

std::optional<CudaFunction> add(const Operands &o) {
  std::optional<int64_t> n = sameSize(o, 2, 1);
  if (!n)
    return std::nullopt;
  return vectorized(o, *n, {0, 1}, 1, false, "      y0[j] = x0[j] + x1[j];\n");
}

std::optional<CudaFunction> scale(const Operands &o) {
  std::optional<int64_t> n = sameSize(o, 1, 1);
  std::optional<double> factor = o.f64("factor");
  if (!n || !factor)
    return std::nullopt;
  return vectorized(o, *n, {0}, 1, false,
                    "      y0[j] = x0[j] * float(" + literal(*factor) + ");\n");
}

std::optional<CudaFunction> fill(const Operands &o) {
  std::optional<int64_t> n = sameSize(o, 0, 1);
  std::optional<double> value = o.f64("value");
  if (!n || !value)
    return std::nullopt;
  return vectorized(o, *n, {}, 1, false,
                    "      y0[j] = float(" + literal(*value) + ");\n");
}

std::optional<CudaFunction> swiglu(const Operands &o) {
  std::optional<int64_t> n = sameSize(o, 2, 1);
  if (!n)
    return std::nullopt;
  return vectorized(o, *n, {0, 1}, 1, false,
                    "      y0[j] = x0[j] * sigmoid(x0[j]) * x1[j];\n");
}

std::optional<CudaFunction> swigluGrad(const Operands &o) {
  std::optional<int64_t> n = sameSize(o, 3, 2);
  if (!n)
    return std::nullopt;
  return vectorized(o, *n, {0, 1, 2}, 2, true,
                    "      float dy = x0[j], g = x1[j], u = x2[j], s = "
                    "sigmoid(g);\n"
                    "      y0[j] += dy * u * s * (1.f + g * (1.f - s));\n"
                    "      y1[j] += dy * g * s;\n");
}

std::optional<CudaFunction> accumulateGrad(const Operands &o) {
  std::optional<int64_t> n = sameSize(o, 1, 1);
  if (!n)
    return std::nullopt;
  return vectorized(o, *n, {0}, 1, true, "      y0[j] += x0[j];\n");
}

std::optional<CudaFunction> reshape(const Operands &o) {
  std::optional<int64_t> n = sameSize(o, 1, 1);
  if (!n)
    return std::nullopt;
  return vectorized(o, *n, {0}, 1, false, "      y0[j] = x0[j];\n");
}

/// The ids of each batch row's window [offset, offset + outSeq).
std::optional<CudaFunction> tokenWindow(const Operands &o) {
  std::optional<int64_t> offset = o.i64("offset");
  if (!o.arity(1, 1) || !offset || o.input(0).shape_size() != 2 ||
      o.input(0).dtype() != DTYPE_I32 || o.output(0).dtype() != DTYPE_I32)
    return std::nullopt;
  int64_t batch = o.input(0).shape(0), inSeq = o.input(0).shape(1);
  int64_t outSeq = batch ? o.elements(o.output(0)) / batch : 0;
  if (batch < 1 || outSeq * batch != o.elements(o.output(0)) || *offset < 0 ||
      *offset + outSeq > inSeq)
    return std::nullopt;
  std::string out = std::to_string(outSeq) + "LL";
  return elementwise(o, batch * outSeq,
                     "    out0[i] = in0[(i / " + out + ") * " +
                         std::to_string(inSeq) + "LL + " +
                         std::to_string(*offset) + "LL + i % " + out + "];\n");
}

/// split (x [rows, width] into pieces [rows, width_p]) or concat (the
/// reverse; a backward's, so it adds into its output when that
/// accumulates): W elements of a row a thread step, the piece found from
/// the column.
std::optional<CudaFunction> pieces(const Operands &o, bool split) {
  const Buffer &whole = split ? o.input(0) : o.output(0);
  int count = split ? o.outputs() : o.inputs();
  if ((split ? o.inputs() : o.outputs()) != 1 || count < 2)
    return std::nullopt;
  int64_t width = o.last(whole), rows = width ? o.elements(whole) / width : 0;
  std::vector<int64_t> widths;
  int64_t total = 0;
  bool eights = width % 8 == 0;
  for (int p = 0; p < count; ++p) {
    const Buffer &piece = split ? o.output(p) : o.input(p);
    int64_t w = rows ? o.elements(piece) / rows : 0;
    if (w < 1 || w * rows != o.elements(piece))
      return std::nullopt;
    widths.push_back(w);
    total += w;
    eights = eights && w % 8 == 0;
  }
  if (total != width || rows < 1)
    return std::nullopt;
  int wide = eights ? 8 : 1;
  std::string chunks = std::to_string(width / wide) + "LL",
              code = "  constexpr int W = " + std::to_string(wide) +
                     ";\n  DSFLOW_GRID_STRIDE(b, " +
                     std::to_string(rows * width / wide) +
                     "LL) {\n"
                     "    const long long r = b / " +
                     chunks + ", c = (b % " + chunks + ") * W;\n";
  if (split)
    code += "    float v[W];\n    ldv<W>(in0, r * " + std::to_string(width) +
            "LL + c, v);\n";
  int64_t offset = 0;
  for (int p = 0; p < count; ++p) {
    std::string piece = std::to_string(p), w = std::to_string(widths[p]),
                at = "r * " + w + "LL + c - " + std::to_string(offset);
    code +=
        std::string(p ? "    else " : "    ") +
        (p + 1 < count ? "if (c < " + std::to_string(offset + widths[p]) + ") "
                       : "") +
        "{\n";
    if (split) {
      code += "      stv<W>(out" + piece + ", " + at + ", v);\n";
    } else {
      std::string to = "r * " + std::to_string(width) + "LL + c";
      code += "      float v[W];\n      ldv<W>(in" + piece + ", " + at +
              ", v);\n  " + o.startOutput(0, "y", to) +
              "      for (int j = 0; j < W; ++j) y[j] += v[j];\n"
              "      stv<W>(out0, " +
              to + ", y);\n";
    }
    code += "    }\n";
    offset += widths[p];
  }
  code += "  }\n";
  int64_t steps = rows * width / wide;
  return function(o, code, std::min((steps + kBlock - 1) / kBlock, kMaxGrid),
                  kBlock);
}

/// x [rows, dim] at input `x`: rows and dim, if the other sizes agree.
bool rowsOf(const Operands &o, int x, int64_t &rows, int64_t &dim) {
  dim = o.last(o.input(x));
  rows = dim ? o.elements(o.input(x)) / dim : 0;
  return rows > 0 && rows * dim == o.elements(o.input(x));
}

/// One block per row; `code` runs with row r and dim, on `block` threads
/// (kBlock unless given).
std::optional<CudaFunction> perRow(const Operands &o, int64_t rows, int64_t dim,
                                   const std::string &code,
                                   int32_t block = kBlock) {
  return function(o,
                  "  const long long dim = " + std::to_string(dim) +
                      "LL, r = blockIdx.x;\n" + code,
                  rows, block);
}

/// Threads for a row of `dim` elements taken W at a time: enough for one
/// piece each, in whole warps, at most kBlock.
int32_t rowThreads(int64_t dim) {
  int64_t pieces = dim / vectorWidth(dim);
  return int32_t(std::clamp<int64_t>((pieces + 31) / 32 * 32, 32, kBlock));
}

/// A row's elements spread over the block in W-wide pieces, at most 16 per
/// thread so that a row stays in registers between passes: "constexpr int
/// W, C" (width, pieces per thread). None for rows too long to hold.
std::optional<std::string> rowPieces(int64_t dim) {
  int width = vectorWidth(dim);
  int64_t pieces = (dim / width + rowThreads(dim) - 1) / rowThreads(dim);
  if (pieces > 16)
    return std::nullopt;
  return "  constexpr int W = " + std::to_string(width) +
         ", C = " + std::to_string(std::max<int64_t>(pieces, 1)) + ";\n";
}

/// `code` for each piece c of this thread that lies in the row, with its
/// first element e.
std::string forEachPiece(const std::string &code) {
  return "#pragma unroll\n  for (int c = 0; c < C; ++c) {\n"
         "    const long long e = ((long long)c * blockDim.x + threadIdx.x) * "
         "W;\n    if (e < dim) {\n" +
         code + "    }\n  }\n";
}

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
  return perRow(
      o, rows, dim,
      *pieces + "  float x[C][W], sumSq = 0.f;\n" +
          forEachPiece("      ldv<W>(in0, r * dim + e, x[c]);\n"
                       "      for (int j = 0; j < W; ++j) sumSq += x[c][j] * "
                       "x[c][j];\n") +
          "  const float inv = 1.f / sqrtf(blockSum(sumSq) / float(dim) + "
          "float(" +
          literal(*eps) +
          "));\n"
          "  if (threadIdx.x == 0) st(out1, r, inv);\n" +
          forEachPiece("      float w[W], y[W];\n"
                       "      ldv<W>(in1, e, w);\n"
                       "      for (int j = 0; j < W; ++j) y[j] = x[c][j] * inv "
                       "* w[j];\n"
                       "      stv<W>(out0, r * dim + e, y);\n"),
      rowThreads(dim));
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
int wgradLanes(int64_t dim) { return dim >= 2048 ? 8 : dim >= 1024 ? 16 : 32; }

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

/// Rotary embedding of x [batch, seq, heads, dim]: one thread per pair, the
/// angle in double as on the CPU, the frequencies (YaRN included) computed by
/// the CPU backend's own function.
std::optional<CudaFunction> rope(const Operands &o, bool backward) {
  if (!o.arity(1, 1) || o.input(0).shape_size() != 4 ||
      o.elements(o.output(0)) != o.elements(o.input(0)))
    return std::nullopt;
  int64_t seq = o.input(0).shape(1), heads = o.input(0).shape(2),
          dim = o.input(0).shape(3);
  std::optional<double> theta = o.f64("theta");
  if (!theta || dim % 2)
    return std::nullopt;
  std::optional<cpu::YarnParams> yarn;
  if (std::optional<double> factor = o.f64("yarn_factor")) {
    std::optional<int64_t> original = o.i64("yarn_original_max_position");
    std::optional<double> fast = o.f64("yarn_beta_fast"),
                          slow = o.f64("yarn_beta_slow");
    if (!original || !fast || !slow)
      return std::nullopt;
    yarn = cpu::YarnParams{*factor, *original, *fast, *slow};
  }
  std::vector<double> invFreq =
      cpu::ropeInvFreq(dim, *theta, yarn ? &*yarn : nullptr);
  std::string table = "static __constant__ double @NAME@_inv_freq[] = {";
  for (size_t i = 0; i < invFreq.size(); ++i)
    table += (i ? ", " : "") + literal(invFreq[i]);
  table += "};\n";
  int64_t half = dim / 2, tokens = o.elements(o.input(0)) / (heads * dim);
  if (half > 1024)
    return std::nullopt;
  std::string rotate =
      backward ? "        r[2 * u] += float(x0 * c + x1 * sn);\n"
                 "        r[2 * u + 1] += float(x1 * c - x0 * sn);\n"
               : "        r[2 * u] = float(x0 * c - x1 * sn);\n"
                 "        r[2 * u + 1] = float(x0 * sn + x1 * c);\n";
  std::string h = std::to_string(half);
  // Four pairs (one 16-byte BF16 access) a thread step when a head has a
  // multiple of four.
  int perStep = half % 4 == 0 ? 4 : 1;
  // Rotates P pairs from pair q of token t, given `angle`: sn and c of
  // frequency i, in double as on the CPU.
  auto pairs = [&](const std::string &angle) {
    return "      const long long base = (t * pairs + q) * 2;\n"
           "      float x[2 * P];\n"
           "      ldv<2 * P>(in0, base, x);\n" +
           (backward ? "  " + o.startOutput(0, "r", "base", "2 * P")
                     : "      float r[2 * P];\n") +
           "#pragma unroll\n"
           "      for (int u = 0; u < P; ++u) {\n"
           "        const int i = int((q + u) % " +
           h + ");\n" + angle +
           "        const double x0 = x[2 * u], x1 = x[2 * u + 1];\n" + rotate +
           "      }\n"
           "      stv<2 * P>(out0, base, r);\n";
  };
  std::string sizes =
      "  constexpr int P = " + std::to_string(perStep) +
      ";\n  const long long tokens = " + std::to_string(tokens) +
      "LL, seq = " + std::to_string(seq) +
      "LL, pairs = " + std::to_string(heads * half) + "LL;\n";
  if (heads * half / perStep < 64) {
    // Few pairs a token (the keys' shared rotary part): a thread step per P
    // pairs of any token, each angle computed where it is used.
    int64_t steps = tokens * heads * half / perStep;
    return function(
        o,
        sizes + "  DSFLOW_GRID_STRIDE(b, " + std::to_string(steps) +
            "LL) {\n"
            "      const long long t = b * P / pairs, q = b * P % pairs;\n" +
            pairs("        double sn, c;\n"
                  "        sincos(double(t % seq) * @NAME@_inv_freq[i], &sn, "
                  "&c);\n") +
            "  }\n",
        std::min((steps + kBlock - 1) / kBlock, kMaxGrid), kBlock, table);
  }
  // A block per token: its angles' sines and cosines once, then every
  // head's pairs.
  return function(
      o,
      sizes + "  __shared__ double sines[" + h + "], cosines[" + h +
          "];\n"
          "  for (long long t = blockIdx.x; t < tokens; t += gridDim.x) {\n"
          "    __syncthreads(); // the last token's angles are read\n"
          "    for (int i = threadIdx.x; i < " +
          h +
          "; i += blockDim.x)\n"
          "      sincos(double(t % seq) * @NAME@_inv_freq[i], &sines[i], "
          "&cosines[i]);\n"
          "    __syncthreads();\n"
          "    for (long long q = threadIdx.x * P; q < pairs; q += blockDim.x "
          "* P) {\n" +
          pairs("        const double sn = sines[i], c = cosines[i];\n") +
          "    }\n"
          "  }\n",
      std::min(tokens, kMaxGrid), kBlock, table);
}

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

/// combine's gradients read [x, weights [T, k], indices, rowSource [T*k]]:
/// T and k, if the routing operands agree.
bool combineRouting(const Operands &o, int64_t &tokens, int64_t &topK) {
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

using Generator = std::function<std::optional<CudaFunction>(const Operands &)>;

const std::map<std::string, Generator> &generators() {
  static const std::map<std::string, Generator> table = {
      {"add", add},
      {"scale", scale},
      {"fill", fill},
      {"swiglu", swiglu},
      {"swiglu_grad", swigluGrad},
      {"accumulate_grad", accumulateGrad},
      {"reshape", reshape},
      {"token_window", tokenWindow},
      {"split", [](const Operands &o) { return pieces(o, true); }},
      {"concat", [](const Operands &o) { return pieces(o, false); }},
      {"mla_attention", mlaAttention},
      {"moe_gate_grad", moeGateGrad},
      {"balance_loss", balanceLoss},
      {"balance_loss_grad", balanceLossGrad},
      {"rms_norm", rmsNorm},
      {"rms_norm_grad", rmsNormGrad},
      {"rms_norm_wgrad", rmsNormWGrad},
      {"rope", [](const Operands &o) { return rope(o, false); }},
      {"rope_grad", [](const Operands &o) { return rope(o, true); }},
      {"embedding", embedding},
      {"embedding_wgrad", embeddingWGrad},
      {"cross_entropy", crossEntropy},
      {"cross_entropy_grad", crossEntropyGrad},
      {"combine_grad", combineGrad},
      {"combine_weights_grad", combineWeightsGrad},
  };
  return table;
}

} // namespace

std::vector<CudaFunction> generateCudaFunctions(const Plan &plan,
                                                const Kernel &kernel) {
  Operands o(plan, kernel);
  if (kernel.op() == "mla_attention_grad")
    return mlaAttentionGrad(o);
  std::optional<CudaFunction> f = generateCudaFunction(plan, kernel);
  return f ? std::vector<CudaFunction>{*f} : std::vector<CudaFunction>{};
}

std::optional<CudaFunction> generateCudaFunction(const Plan &plan,
                                                 const Kernel &kernel) {
  auto it = generators().find(kernel.op());
  if (it == generators().end())
    return std::nullopt;
  return it->second(Operands(plan, kernel));
}

} // namespace dsflow::codegen
