//===- CudaGenerator.cpp - What the CUDA generators share -----------------===//
#include "Codegen/CudaGenerator.h"

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
                                     const std::string &qualifiers) {
  std::optional<std::string> parameters = o.parameters();
  if (!parameters || grid < 1)
    return std::nullopt;
  CudaFunction f;
  f.body = before + "extern \"C\" __global__ void " + qualifiers +
           "__launch_bounds__(" + std::to_string(block) + ") @NAME@" +
           *parameters + " {\n" + code + "}\n";
  f.grid = grid;
  f.block = block;
  return f;
}

} // namespace dsflow::codegen
