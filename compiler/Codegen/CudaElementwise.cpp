//===- CudaElementwise.cpp - Elementwise ops and data movement ------------===//
//
// add, scale, fill, SwiGLU and its gradient, accumulate_grad, and the copies
// (reshape, token_window, split, concat): 8 elements a thread step where the
// sizes allow (CudaGenerator.h's vectorized).
//
//===----------------------------------------------------------------------===//
#include "Codegen/CudaGenerator.h"

#include <algorithm>

namespace dsflow::codegen {

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

} // namespace dsflow::codegen
