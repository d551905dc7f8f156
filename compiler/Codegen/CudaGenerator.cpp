//===- CudaGenerator.cpp - What the CUDA generators share -----------------===//
#include "Codegen/CudaGenerator.h"

#include <algorithm>
#include <cstdio>

namespace dsflow::codegen {

std::optional<std::string> cudaType(DType dtype) {
  switch (dtype) {
  case DTYPE_F32:
    return "float";
  case DTYPE_BF16:
    return "__nv_bfloat16";
  case DTYPE_I32:
    return "int";
  default:
    return std::nullopt;
  }
}

std::string literal(double value) {
  char text[40];
  std::snprintf(text, sizeof(text), "%.17g", value);
  return text;
}

std::optional<CudaFunction> function(const Operands &o, const std::string &code,
                                     int64_t grid, int32_t block,
                                     const std::string &before,
                                     const std::string &qualifiers,
                                     const std::string &extraParameters) {
  std::optional<std::string> parameters = o.parameters();
  if (!parameters || grid < 1)
    return std::nullopt;
  parameters->insert(parameters->size() - 1, extraParameters);
  CudaFunction f;
  f.body = before + "extern \"C\" __global__ void " + qualifiers +
           "__launch_bounds__(" + std::to_string(block) + ") @NAME@" +
           *parameters + " {\n" + code + "}\n";
  f.grid = grid;
  f.block = block;
  return f;
}

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

/// x [rows, dim] at input `x`: rows and dim, if the other sizes agree.
bool rowsOf(const Operands &o, int x, int64_t &rows, int64_t &dim) {
  dim = o.last(o.input(x));
  rows = dim ? o.elements(o.input(x)) / dim : 0;
  return rows > 0 && rows * dim == o.elements(o.input(x));
}

/// One block per row; `code` runs with row r and dim, on `block` threads
/// (kBlock unless given).
std::optional<CudaFunction> perRow(const Operands &o, int64_t rows, int64_t dim,
                                   const std::string &code, int32_t block,
                                   const std::string &extraParameters) {
  return function(o,
                  "  const long long dim = " + std::to_string(dim) +
                      "LL, r = blockIdx.x;\n" + code,
                  rows, block, "", "", extraParameters);
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

} // namespace dsflow::codegen
