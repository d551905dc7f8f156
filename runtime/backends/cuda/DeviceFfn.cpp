//===- DeviceFfn.cpp - The SwiGLU FFNs on a GPU ---------------------------===//
#include "runtime/backends/cuda/DeviceFfn.h"
#include "exec/FfnKernels.h"
#include "runtime/backends/cuda/DeviceEmulation.h"
#include "runtime/backends/cuda/DeviceFp8Gemm.h"
#include "runtime/backends/cuda/Fp8FfnGemms.h"

#include <algorithm>
#include <vector>

namespace dsflow::cuda {

namespace {

class DeviceFfnEngine;
using EmulatedDeviceGemms =
    cpu::EmulatedFfnGemms<DeviceFfnEngine, DeviceArray, DeviceArray>;

/// The device's engine for FfnSteps.h (FP32); keeps the first error. Its
/// scratch is given back when it goes (engines nest per expert block).
class DeviceFfnEngine : public Fp8FfnGemms<DeviceFfnEngine, EmulatedDeviceGemms,
                                           DeviceArray, DeviceArray> {
public:
  DeviceFfnEngine(FfnDevice &d, const exec::KernelEmulation &emulation)
      : device(d), kit(d.kit), emulation(emulation),
        bf16(d.mode == Fp32Gemms::Bf16 && !emulation.fp8),
        tensorCores(emulation.fp8 && d.fp8TensorCores),
        gemmEngine{d.gemm, d.mode == Fp32Gemms::Tf32, d.kit.stream,
                   std::nullopt},
        mark(d.kit.scratch.used) {}
  DeviceFfnEngine(const DeviceFfnEngine &) = delete;
  ~DeviceFfnEngine() { kit.scratch.used = mark; }
  io::Status error() const {
    return gemmEngine.error ? gemmEngine.error : failure;
  }

  void gemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k,
            float alpha, DeviceArray a, int64_t lda, DeviceArray b, int64_t ldb,
            float beta, DeviceArray c, int64_t ldc) {
    if (!failure)
      gemmEngine(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  }
  /// Zeroed, as the CPU's scratch vectors are.
  DeviceArray scratch(int64_t elements) {
    DeviceArray array = take(elements);
    if (!failure && elements)
      check(kit.driver.zeroAsync(array.address, size_t(elements * 4),
                                 kit.stream));
    return array;
  }
  void swiglu(DeviceArray g, DeviceArray u, DeviceArray act, int64_t count) {
    if (!failure)
      check(kit.elementwise(kit.support.swiglu, count,
                            {g.address, u.address, act.address}));
  }
  void swigluGrad(DeviceArray dAct, DeviceArray g, DeviceArray u,
                  DeviceArray dG, DeviceArray dU, int64_t count) {
    if (!failure)
      check(kit.elementwise(
          kit.support.swigluGrad, count,
          {dAct.address, g.address, u.address, dG.address, dU.address}));
  }
  void rowDots(DeviceArray a, DeviceArray b, DeviceArray dots, int64_t rows,
               int64_t cols) {
    if (rows == 0 || failure)
      return;
    long long r = rows, c = cols;
    void *arguments[] = {&a.address, &b.address, &dots.address, &r, &c};
    check(kit.driver.launch(b.elementBytes == 2 ? kit.support.rowDotsBf16
                                                : kit.support.rowDots,
                            (rows + 7) / 8, 256, 0, arguments, kit.stream));
  }
  /// The operand as a GEMM contracting over its columns (rows) reads it:
  /// under the FP8 recipe quantized per 1x128 (128x1) tile; with BF16 GEMMs
  /// a BF16 copy.
  DeviceArray readCopy(DeviceArray x, int64_t rows, int64_t cols,
                       bool overRows) {
    return quantized(x, rows, cols,
                     overRows ? exec::Fp8Role::ColumnTiles
                              : exec::Fp8Role::RowTiles);
  }
  /// Fp8FfnGemms' hooks: a GEMM on the FP8 tensor cores.
  bool fp8Linear(const Fp8Gemm &g, DeviceArray x, DeviceArray w,
                 DeviceArray c) {
    if (!tensorCores)
      return false;
    if (failure)
      return true; // nothing more runs
    io::Expected<bool> ran = runFp8Gemm(kit, device.gemm, g, x.address,
                                        w.address, c.address, emulation.ue8m0);
    if (!ran) {
      check(ran.error());
      return true;
    }
    return *ran;
  }
  bool fp8SwigluLinear(const Fp8Gemm &g, DeviceArray gate, DeviceArray up,
                       DeviceArray w, DeviceArray c) {
    if (!tensorCores)
      return false;
    if (failure)
      return true; // nothing more runs
    io::Expected<bool> ran =
        runFp8SwigluGemm(kit, device.gemm, g, gate.address, up.address,
                         w.address, c.address, emulation.ue8m0);
    if (!ran) {
      check(ran.error());
      return true;
    }
    return *ran;
  }
  /// A weight as the emulation reads it: the runtime quantized it already,
  /// unless the tensor cores were to take it.
  DeviceArray blockQuantized(DeviceArray w, int64_t rows, int64_t cols) {
    if (!tensorCores || failure)
      return w;
    DeviceArray copy = take(rows * cols);
    if (!failure)
      check(fakeQuantizeOnDevice(kit, exec::Fp8Role::Blocks, emulation.ue8m0,
                                 w.address, copy.address, rows, cols));
    return copy;
  }
  void counted(bool onTensorCores) {
    if (emulation.fp8)
      ++(onTensorCores ? device.fp8Gemms : device.fp8GemmsEmulated);
  }

private:
  DeviceArray take(int64_t elements, int64_t elementBytes = 4) {
    io::Expected<CUdeviceptr> at = kit.scratch.take(elements * elementBytes);
    if (!at) {
      check(at.error());
      return {};
    }
    return {*at, elementBytes};
  }
  DeviceArray quantized(DeviceArray x, int64_t rows, int64_t cols,
                        exec::Fp8Role role) {
    if (bf16 && !failure) {
      DeviceArray copy = take(rows * cols, 2);
      if (!failure)
        check(kit.elementwise(kit.support.toBf16, rows * cols,
                              {x.address, copy.address}));
      return copy;
    }
    if (!emulation.fp8 || failure)
      return x;
    DeviceArray copy = take(rows * cols);
    if (!failure)
      check(fakeQuantizeOnDevice(kit, role, emulation.ue8m0, x.address,
                                 copy.address, rows, cols));
    return copy;
  }
  void check(io::Status status) {
    if (status && !failure)
      failure = status;
  }

  FfnDevice &device;
  DeviceKit &kit;
  exec::KernelEmulation emulation;
  /// GEMM activations through BF16 copies (--bf16-gemms, not with FP8).
  bool bf16;
  bool tensorCores;
  GemmEngine gemmEngine;
  io::Status failure;
  int64_t mark;
};

/// The routed experts' row counts, checked as the CPU backend checks them
/// (read back once per time they are written).
io::Expected<std::vector<int32_t>> countsOf(FfnDevice &d, const Plan &plan,
                                            int32_t buffer, int64_t rows) {
  auto known = d.counts.find(buffer);
  if (known == d.counts.end()) {
    std::vector<int32_t> counts(size_t(numElements(plan.buffers(buffer))));
    if (io::Status e =
            d.download(buffer, reinterpret_cast<std::byte *>(counts.data())))
      return *e;
    known = d.counts.emplace(buffer, std::move(counts)).first;
  }
  const std::vector<int32_t> &counts = known->second;
  int64_t total = 0;
  for (int32_t c : counts) {
    if (c < 0)
      return io::makeError("cuda", "a negative expert row count");
    total += c;
  }
  if (total != rows)
    return io::makeError("cuda", "the expert row counts add up to " +
                                     std::to_string(total) + ", not " +
                                     std::to_string(rows));
  return counts;
}

} // namespace

bool hasDeviceFfn(const Plan &plan, const Kernel &kernel) {
  return isFfnOp(kernel.op()) && composedPrecision(plan, kernel);
}

int64_t ffnScratchBytes(const Plan &plan, const Kernel &kernel) {
  if (!hasDeviceFfn(plan, kernel))
    return 0;
  const Buffer &saved = exec::ffnSavedGate(plan, kernel);
  int64_t inter = saved.shape(saved.shape_size() - 1);
  int64_t rows = inter ? numElements(saved) / inter : 0;
  const Buffer &x = plan.buffers(kernel.inputs(
      kernel.op() == "expert_ffn" || kernel.op() == "shared_experts" ? 0 : 1));
  int64_t hidden = x.shape(x.shape_size() - 1);
  // At most 8 [rows, inter] and 4 [rows, hidden] arrays at once (FfnSteps.h,
  // with the FP8 recipe's quantized copies), each aligned to 256 bytes, and
  // one FP8 tensor-core GEMM's codes and scales.
  int64_t fp8 = 0;
  if (exec::KernelEmulation::of(kernel).fp8)
    for (const char *op : {"linear", "linear_grad", "linear_wgrad"})
      for (auto [out, in] :
           {std::pair(inter, hidden), std::pair(hidden, inter)})
        fp8 = std::max(fp8,
                       fp8GemmScratchBytes(*fp8LinearGemm(op, rows, out, in)));
  return (8 * inter + 4 * hidden) * rows * 4 + 12 * 256 + fp8;
}

io::Status runDeviceFfn(FfnDevice &d, const Plan &plan, int32_t index,
                        const std::function<DeviceArray(int32_t)> &operand) {
  const Kernel &k = plan.kernels(index);
  exec::KernelEmulation emulation = exec::KernelEmulation::of(k);
  io::Status status = exec::runFfnKernel<DeviceArray>(
      plan, k, [&] { return DeviceFfnEngine(d, emulation); }, operand,
      [&](int32_t b, int64_t rows) { return countsOf(d, plan, b, rows); });
  if (status)
    return io::makeError("kernel " + std::to_string(index) + " (" + k.op() +
                             ")",
                         status->message);
  return std::nullopt;
}

} // namespace dsflow::cuda
