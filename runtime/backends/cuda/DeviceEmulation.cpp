//===- DeviceEmulation.cpp - The CPU's FP8 emulation steps on a GPU -------===//
#include "runtime/backends/cuda/DeviceEmulation.h"
#include "plan/PlanFile.h"

namespace dsflow::cuda {

namespace {
int64_t lastDim(const Buffer &b) {
  return b.shape_size() ? b.shape(b.shape_size() - 1) : 1;
}
} // namespace

io::Status fakeQuantizeOnDevice(DeviceKit &kit, exec::Fp8Role role, bool ue8m0,
                                CUdeviceptr x, CUdeviceptr y, int64_t rows,
                                int64_t cols) {
  if (rows == 0 || cols == 0)
    return std::nullopt;
  if (role == exec::Fp8Role::Bf16)
    return kit.elementwise(kit.support.roundBf16, rows * cols, {x, y});
  long long r = rows, c = cols;
  int scales = ue8m0 ? 1 : 0;
  void *arguments[] = {&x, &y, &r, &c, &scales};
  int64_t tiles = (cols + 127) / 128, bands = (rows + 127) / 128;
  switch (role) {
  case exec::Fp8Role::RowTiles: // a warp per tile, 8 per block
    return kit.driver.launch(kit.support.quantize1x128, (rows * tiles + 7) / 8,
                             256, 0, arguments, kit.stream);
  case exec::Fp8Role::ColumnTiles: // a thread per band and column
    return kit.driver.launch(kit.support.quantize128x1,
                             (bands * cols + 255) / 256, 256, 0, arguments,
                             kit.stream);
  default: // a block per 128x128 block
    return kit.driver.launch(kit.support.quantize128x128, bands * tiles, 256, 0,
                             arguments, kit.stream);
  }
}

io::Expected<std::map<int32_t, CUdeviceptr>>
emulateInputs(DeviceKit &kit, const Plan &plan, int32_t index,
              const std::function<CUdeviceptr(int32_t)> &address) {
  const Kernel &kernel = plan.kernels(index);
  exec::KernelEmulation e = exec::KernelEmulation::of(kernel);
  std::map<int32_t, CUdeviceptr> copies;
  for (int i = 0; i < kernel.inputs_size(); ++i) {
    std::optional<exec::Fp8Role> role = e.inputRole(kernel, i);
    const Buffer &b = plan.buffers(kernel.inputs(i));
    if (!role || b.dtype() != DTYPE_F32)
      continue;
    io::Expected<CUdeviceptr> copy = kit.scratch.take(b.bytes());
    if (!copy)
      return copy.error();
    int64_t cols = lastDim(b);
    if (io::Status s =
            fakeQuantizeOnDevice(kit, *role, e.ue8m0, address(kernel.inputs(i)),
                                 *copy, cols ? numElements(b) / cols : 0, cols))
      return *s;
    copies[kernel.inputs(i)] = *copy;
  }
  return copies;
}

io::Status emulateOutputs(DeviceKit &kit, const Plan &plan, int32_t index,
                          const std::function<CUdeviceptr(int32_t)> &address) {
  const Kernel &kernel = plan.kernels(index);
  exec::KernelEmulation e = exec::KernelEmulation::of(kernel);
  if (!e.quantizesRowsAfter(kernel) || kernel.inputs_size() == 0)
    return std::nullopt;
  int64_t cols = lastDim(plan.buffers(kernel.inputs(0)));
  int32_t rows = kernel.outputs(0);
  return fakeQuantizeOnDevice(
      kit, exec::Fp8Role::RowTiles, e.ue8m0, address(rows), address(rows),
      cols ? numElements(plan.buffers(rows)) / cols : 0, cols);
}

int64_t emulationScratchBytes(const Plan &plan, int32_t index) {
  const Kernel &kernel = plan.kernels(index);
  exec::KernelEmulation e = exec::KernelEmulation::of(kernel);
  int64_t bytes = 0;
  for (int i = 0; i < kernel.inputs_size(); ++i)
    if (e.inputRole(kernel, i))
      bytes += (plan.buffers(kernel.inputs(i)).bytes() + 255) / 256 * 256;
  return bytes;
}

} // namespace dsflow::cuda
