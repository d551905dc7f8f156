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
  // The fused FFNs quantize their activation operands themselves (each per
  // GEMM, Kernels.h); the binding quantizes their weights.
  // [x, gate, up, down] / [dy, x, gate, up, down, saved gate, saved up]
  if (op == "shared_experts")
    return input >= 1 ? std::optional<R>(R::Blocks) : std::nullopt;
  if (op == "shared_experts_grad" || op == "shared_experts_wgrad")
    return input >= 2 && input <= 4 ? std::optional<R>(R::Blocks)
                                    : std::nullopt;
  // [rows, counts, weights...] / [dy, rows, counts, weights..., saved x2]
  if (op == "expert_ffn")
    return input >= 2 ? std::optional<R>(R::Blocks) : std::nullopt;
  if (op == "expert_ffn_grad" || op == "expert_ffn_wgrad")
    return input >= 3 && input < numInputs - 2 ? std::optional<R>(R::Blocks)
                                               : std::nullopt;
  return std::nullopt;
}

KernelEmulation KernelEmulation::of(const Kernel &kernel) {
  auto find = [&](const std::string &name) -> const Attribute * {
    for (const Attribute &a : kernel.attributes())
      if (a.name() == name)
        return &a;
    return nullptr;
  };
  KernelEmulation e;
  if (const Attribute *format = find("graph.fp8.format")) {
    e.fp8 = format->str() == "e4m3";
    e.unsupportedFormat = !e.fp8;
    const Attribute *scales = find("graph.fp8.scales");
    e.ue8m0 = scales && scales->str() == "ue8m0";
  }
  const Attribute *precision = find("graph.precision");
  e.bf16Input = precision && precision->str() == "bf16";
  return e;
}

std::optional<Fp8Role> KernelEmulation::inputRole(const Kernel &kernel,
                                                  int input) const {
  if (fp8)
    return fp8InputRole(kernel.op(), input, kernel.inputs_size());
  if (bf16Input && input == 0)
    return Fp8Role::Bf16;
  return std::nullopt;
}

bool KernelEmulation::quantizesRowsAfter(const Kernel &kernel) const {
  return fp8 && kernel.op() == "dispatch" && kernel.outputs_size() > 0;
}

template <typename T>
void fakeQuantize(const T *x, T *y, int64_t rows, int64_t cols, Fp8Role role,
                  bool ue8m0) {
  if (role == Fp8Role::Bf16) {
    for (int64_t i = 0, n = rows * cols; i < n; ++i)
      y[i] = static_cast<T>(io::bf16ToFloat(io::floatToBf16(float(x[i]))));
    return;
  }
  cpu::Fp8ScaleOptions options;
  options.ue8m0Scales = ue8m0;
  cpu::Fp8Tiling tiling =
      role == Fp8Role::Blocks        ? cpu::Fp8Tiling::Blocks128x128
      : role == Fp8Role::ColumnTiles ? cpu::Fp8Tiling::Tiles128x1
                                     : cpu::Fp8Tiling::Tiles1x128;
  cpu::fakeQuantizeFp8(x, y, rows, cols, tiling, options);
}

template void fakeQuantize<float>(const float *, float *, int64_t, int64_t,
                                  Fp8Role, bool);
template void fakeQuantize<double>(const double *, double *, int64_t, int64_t,
                                   Fp8Role, bool);

} // namespace dsflow::exec
