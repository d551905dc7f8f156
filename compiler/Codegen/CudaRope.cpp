//===- CudaRope.cpp - Rotary embedding and its gradient -------------------===//
//
// The frequencies (YaRN included) come from the CPU backend's own function
// and are baked into the module; the angles are computed in double.
//
//===----------------------------------------------------------------------===//
#include "Codegen/CudaGenerator.h"

#include "runtime/backends/cpu/Kernels.h"

#include <algorithm>

namespace dsflow::codegen {

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

} // namespace dsflow::codegen
