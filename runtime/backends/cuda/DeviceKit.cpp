//===- DeviceKit.cpp - What the runtime's own device steps use ------------===//
#include "runtime/backends/cuda/DeviceKit.h"

#include <algorithm>
#include <utility>
#include <vector>

namespace dsflow::cuda {

io::Expected<SupportFunctions>
SupportFunctions::load(CudaDriver &driver, CUmodule module, const Plan &plan) {
  SupportFunctions s;
  std::pair<CUfunction *, const char *> wanted[] = {
      {&s.swiglu, "dsflow_rt_swiglu_f32"},
      {&s.swigluGrad, "dsflow_rt_swiglu_grad_f32"},
      {&s.rowDots, "dsflow_rt_row_dots_f32"},
      {&s.quantize1x128, "dsflow_rt_fake_quant_1x128_f32"},
      {&s.quantize128x1, "dsflow_rt_fake_quant_128x1_f32"},
      {&s.quantize128x128, "dsflow_rt_fake_quant_128x128_f32"},
      {&s.roundBf16, "dsflow_rt_round_bf16_f32"},
      {&s.adamw, "dsflow_rt_adamw_f32"},
      {&s.adamwBf16Moments, "dsflow_rt_adamw_bf16m_f32"},
      {&s.sumSquares, "dsflow_rt_sum_squares_f32"},
      {&s.toBf16, "dsflow_rt_to_bf16_f32"},
      {&s.rowDotsBf16, "dsflow_rt_row_dots_bf16b_f32"},
      {&s.quantizeRows, "dsflow_rt_quantize_rows_f32"},
      {&s.quantizeColumnsTransposed, "dsflow_rt_quantize_columns_t_f32"},
      {&s.quantizeBlocks, "dsflow_rt_quantize_blocks_f32"},
      {&s.swigluQuantizeRows, "dsflow_rt_swiglu_quantize_rows_f32"}};
  const auto &names = plan.cuda().support_functions();
  for (auto [to, name] : wanted) {
    if (std::find(names.begin(), names.end(), name) == names.end())
      return io::makeError("cuda", std::string("the plan's module lacks the "
                                               "runtime's function ") +
                                       name + " (compile it again)");
    io::Expected<CUfunction> f = driver.function(module, name);
    if (!f)
      return f.error();
    *to = *f;
  }
  return s;
}

io::Expected<CUdeviceptr> DeviceScratch::take(int64_t bytes) {
  int64_t aligned = (bytes + 255) / 256 * 256;
  if (used + aligned > capacity)
    return io::makeError("cuda", "the kernels' scratch (" +
                                     std::to_string(capacity) +
                                     " bytes) is too small");
  CUdeviceptr at = base + static_cast<CUdeviceptr>(used);
  used += aligned;
  return at;
}

io::Status DeviceKit::elementwise(CUfunction f, int64_t count,
                                  std::initializer_list<CUdeviceptr> pointers) {
  if (count == 0)
    return std::nullopt;
  std::vector<CUdeviceptr> values(pointers);
  long long n = count;
  std::vector<void *> arguments;
  for (CUdeviceptr &p : values)
    arguments.push_back(&p);
  arguments.push_back(&n);
  constexpr int kBlock = 256;
  int64_t grid = std::min<int64_t>((count + kBlock - 1) / kBlock, 4096);
  return driver.launch(f, grid, kBlock, 0, arguments.data(), stream);
}

} // namespace dsflow::cuda
