//===- Fp8Emulation.cpp - FP8 GEMM operands on the CPU backend ------------===//
#include "exec/Fp8Emulation.h"

#include "io/BFloat16.h"
#include "runtime/backends/cpu/Fp8.h"
#include "runtime/backends/cpu/Parallel.h"

#include <algorithm>

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

// Quantizes rows [r0, r1) of x ([rows, cols]) into y; r0 is a multiple of 128
// so that weight blocks never straddle two calls.
template <typename T>
static void fakeQuantizeRows(const T *x, T *y, int64_t r0, int64_t r1,
                             int64_t cols, Fp8Role role,
                             const cpu::Fp8ScaleOptions &options) {
  int64_t rows = r1 - r0;
  x += r0 * cols;
  y += r0 * cols;
  std::vector<uint8_t> codes(rows * cols);
  if (role == Fp8Role::Blocks) {
    std::vector<float> scales(cpu::fp8Tiles(rows) * cpu::fp8Tiles(cols));
    cpu::quantizeFp8Blocks128x128(x, codes.data(), scales.data(), rows, cols,
                                  options);
    cpu::dequantizeFp8Blocks128x128(codes.data(), scales.data(), y, rows, cols);
    return;
  }
  if (role == Fp8Role::ColumnTiles) {
    std::vector<float> scales(cpu::fp8Tiles(rows) * cols);
    cpu::quantizeFp8Tiles128x1(x, codes.data(), scales.data(), rows, cols,
                               options);
    cpu::dequantizeFp8Tiles128x1(codes.data(), scales.data(), y, rows, cols);
    return;
  }
  std::vector<float> scales(rows * cpu::fp8Tiles(cols));
  cpu::quantizeFp8Tiles1x128(x, codes.data(), scales.data(), rows, cols,
                             options);
  cpu::dequantizeFp8Tiles1x128(codes.data(), scales.data(), y, rows, cols);
}

// Every 128-row band is independent (tiles and blocks never cross one), so the
// bands run in parallel and the result does not depend on the thread count.
template <typename T>
static void fakeQuantizeBands(const T *x, T *y, int64_t rows, int64_t cols,
                              Fp8Role role,
                              const cpu::Fp8ScaleOptions &options) {
  int64_t bands = cpu::fp8Tiles(rows);
  cpu::parallelFor(bands, [&](int64_t band) {
    int64_t r0 = band * cpu::kFp8Tile;
    fakeQuantizeRows(x, y, r0, std::min(rows, r0 + cpu::kFp8Tile), cols, role,
                     options);
  });
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
  fakeQuantizeBands(x, y, rows, cols, role, options);
}

template void fakeQuantize<float>(const float *, float *, int64_t, int64_t,
                                  Fp8Role, bool);
template void fakeQuantize<double>(const double *, double *, int64_t, int64_t,
                                   Fp8Role, bool);

} // namespace dsflow::exec
