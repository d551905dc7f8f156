//===- Fp8Emulation.cpp - FP8 GEMM operands on the CPU backend ------------===//
#include "exec/Fp8Emulation.h"

#include "io/BFloat16.h"
#include "runtime/backends/cpu/Fp8.h"

#include <vector>

namespace dsflow::exec {

std::optional<Fp8Role> fp8InputRole(const std::string &op, int input,
                                    int numInputs) {
  using R = Fp8Role;
  if (op == "linear" || op == "linear_grad")
    return input == 0 ? R::RowTiles : R::Blocks;
  if (op == "linear_wgrad")
    return R::ColumnTiles; // dy and x, contracted over the tokens
  if (op == "mtp_project")
    return input < 2 ? R::RowTiles : R::Blocks;
  if (op == "mtp_project_grad")
    return input == 0 ? R::RowTiles : R::Blocks;
  if (op == "mtp_project_wgrad")
    return R::ColumnTiles;
  // [x, gate, up, down] / [dy, x, gate, up, down, saved gate, saved up]
  if (op == "shared_experts")
    return input == 0 ? R::RowTiles : R::Blocks;
  if (op == "shared_experts_grad" || op == "shared_experts_wgrad") {
    bool weightGrad = op == "shared_experts_wgrad";
    if (input <= 1)
      return weightGrad ? R::ColumnTiles : std::optional<R>(R::RowTiles);
    if (input <= 4)
      return R::Blocks;
    return std::nullopt;
  }
  // [rows, counts, weights...] / [dy, rows, counts, weights..., saved x2]
  if (op == "expert_ffn")
    return input == 0 ? std::optional<R>(R::RowTiles)
                      : input >= 2 ? std::optional<R>(R::Blocks) : std::nullopt;
  if (op == "expert_ffn_grad" || op == "expert_ffn_wgrad") {
    bool weightGrad = op == "expert_ffn_wgrad";
    if (input <= 1)
      return weightGrad ? R::ColumnTiles : std::optional<R>(R::RowTiles);
    if (input >= 3 && input < numInputs - 2)
      return R::Blocks;
    return std::nullopt;
  }
  return std::nullopt;
}

template <typename T>
void fakeQuantize(const T *x, T *y, int64_t rows, int64_t cols, Fp8Role role,
                  bool ue8m0) {
  int64_t n = rows * cols;
  if (role == Fp8Role::Bf16) {
    for (int64_t i = 0; i < n; ++i)
      y[i] = static_cast<T>(io::bf16ToFloat(io::floatToBf16(float(x[i]))));
    return;
  }
  cpu::Fp8ScaleOptions options;
  options.ue8m0Scales = ue8m0;
  std::vector<uint8_t> codes(n);
  if (role == Fp8Role::Blocks) {
    std::vector<float> scales(cpu::fp8Tiles(rows) * cpu::fp8Tiles(cols));
    cpu::quantizeFp8Blocks128x128(x, codes.data(), scales.data(), rows, cols,
                                  options);
    cpu::dequantizeFp8Blocks128x128(codes.data(), scales.data(), y, rows, cols);
    return;
  }
  if (role == Fp8Role::RowTiles) {
    std::vector<float> scales(rows * cpu::fp8Tiles(cols));
    cpu::quantizeFp8Tiles1x128(x, codes.data(), scales.data(), rows, cols,
                               options);
    cpu::dequantizeFp8Tiles1x128(codes.data(), scales.data(), y, rows, cols);
    return;
  }
  // Column tiles: transpose, tile each row, transpose back.
  std::vector<T> t(n), q(n);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      t[c * rows + r] = x[r * cols + c];
  std::vector<float> scales(cols * cpu::fp8Tiles(rows));
  cpu::quantizeFp8Tiles1x128(t.data(), codes.data(), scales.data(), cols, rows,
                             options);
  cpu::dequantizeFp8Tiles1x128(codes.data(), scales.data(), q.data(), cols, rows);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      y[r * cols + c] = q[c * rows + r];
}

template void fakeQuantize<float>(const float *, float *, int64_t, int64_t,
                                  Fp8Role, bool);
template void fakeQuantize<double>(const double *, double *, int64_t, int64_t,
                                   Fp8Role, bool);

} // namespace dsflow::exec
