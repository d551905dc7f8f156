//===- DeviceFp8Gemm.cpp - Linear layers on the FP8 tensor cores ----------===//
#include "runtime/backends/cuda/DeviceFp8Gemm.h"
#include "exec/Fp8Emulation.h"
#include "plan/ComposedOps.h"
#include "runtime/backends/cuda/DeviceGemms.h"

#include <vector>

namespace dsflow::cuda {

namespace {
int64_t aligned(int64_t bytes) { return (bytes + 255) / 256 * 256; }

int64_t operandBytes(const Fp8Operand &o) {
  return aligned(o.codeBytes()) + aligned(o.scaleCount() * 4);
}

/// Codes and scales of one operand in the scratch.
struct Quantized {
  CUdeviceptr codes = 0, scales = 0;
};

/// Room for `o` in the scratch, the padding of its codes zeroed.
io::Expected<Quantized> operandRoom(DeviceKit &kit, const Fp8Operand &o) {
  io::Expected<CUdeviceptr> codes = kit.scratch.take(o.codeBytes());
  if (!codes)
    return codes.error();
  io::Expected<CUdeviceptr> scales = kit.scratch.take(o.scaleCount() * 4);
  if (!scales)
    return scales.error();
  if (o.paddedDepth() != o.depth())
    if (io::Status e =
            kit.driver.zeroAsync(*codes, size_t(o.codeBytes()), kit.stream))
      return *e;
  return Quantized{*codes, *scales};
}

/// `o` quantized from `sources` (the function's pointer arguments before the
/// codes): x, or for SwiGLU's fusion g and u.
io::Expected<Quantized> quantize(DeviceKit &kit, const Fp8Operand &o,
                                 std::vector<CUdeviceptr> sources, bool ue8m0,
                                 bool swiglu = false) {
  io::Expected<Quantized> q = operandRoom(kit, o);
  if (!q)
    return q;
  long long rows = o.rows, cols = o.cols, ld = o.paddedDepth();
  int scaleKind = ue8m0 ? 1 : 0;
  int transposed = o.transposed() ? 1 : 0;
  std::vector<void *> arguments;
  for (CUdeviceptr &p : sources)
    arguments.push_back(&p);
  for (void *a : {(void *)&q->codes, (void *)&q->scales, (void *)&rows,
                  (void *)&cols, (void *)&ld, (void *)&scaleKind})
    arguments.push_back(a);
  if (o.blockScaled())
    arguments.push_back(&transposed);
  int64_t tiles = (o.cols + 127) / 128, bands = (o.rows + 127) / 128;
  io::Status launched;
  // Launch shapes as the emulation's (DeviceEmulation.cpp).
  switch (o.how) {
  case Fp8Quantization::Rows: // a warp per 1x128 tile, 8 per block
    launched = kit.driver.launch(
        swiglu ? kit.support.swigluQuantizeRows : kit.support.quantizeRows,
        (o.rows * tiles + 7) / 8, 256, 0, arguments.data(), kit.stream);
    break;
  case Fp8Quantization::ColumnsTransposed: // a thread per 128x1 tile
    launched = kit.driver.launch(kit.support.quantizeColumnsTransposed,
                                 (bands * o.cols + 255) / 256, 256, 0,
                                 arguments.data(), kit.stream);
    break;
  default: // a block per 128x128 block
    launched = kit.driver.launch(kit.support.quantizeBlocks, bands * tiles, 256,
                                 0, arguments.data(), kit.stream);
  }
  if (launched)
    return *launched;
  return q;
}

/// The scratch taken after it is given back when it goes: the GEMM is
/// queued after the quantization and before whatever takes the scratch
/// next, on the same stream.
struct ScratchMark {
  DeviceScratch &scratch;
  int64_t mark = scratch.used;
  ~ScratchMark() { scratch.used = mark; }
};

io::Expected<bool> multiply(DeviceKit &kit, CublasLtGemm &gemm,
                            const Fp8Gemm &g, const io::Expected<Quantized> &x,
                            const io::Expected<Quantized> &w, CUdeviceptr c) {
  if (!x)
    return x.error();
  if (!w)
    return w.error();
  auto pointer = [](CUdeviceptr p) { return reinterpret_cast<void *>(p); };
  return gemm.fp8Fp32Out(
      pointer(x->codes), static_cast<const float *>(pointer(x->scales)),
      pointer(w->codes), static_cast<const float *>(pointer(w->scales)),
      !g.w.blockScaled(), g.beta, static_cast<float *>(pointer(c)), g.m, g.n,
      g.k, kit.stream);
}
} // namespace

std::optional<Fp8Gemm> fp8TensorCoreGemm(const Plan &plan,
                                         const Kernel &kernel) {
  if (!isLinearGemmOp(kernel.op()) || !exec::KernelEmulation::of(kernel).fp8 ||
      composedPrecision(plan, kernel) != DTYPE_F32)
    return std::nullopt;
  LinearShape s = linearShapeOf(plan, kernel);
  std::optional<Fp8Gemm> g = fp8LinearGemm(kernel.op(), s.tokens, s.out, s.in);
  if (!g || !fp8GemmSizesSupported(*g))
    return std::nullopt;
  return g;
}

int64_t fp8GemmScratchBytes(const Fp8Gemm &g) {
  return operandBytes(g.x) + operandBytes(g.w);
}

io::Expected<bool> runFp8Gemm(DeviceKit &kit, CublasLtGemm &gemm,
                              const Fp8Gemm &g, CUdeviceptr xSource,
                              CUdeviceptr wSource, CUdeviceptr c, bool ue8m0) {
  ScratchMark mark{kit.scratch};
  io::Expected<Quantized> x = quantize(kit, g.x, {xSource}, ue8m0);
  io::Expected<Quantized> w = x ? quantize(kit, g.w, {wSource}, ue8m0)
                                : io::Expected<Quantized>(x.error());
  return multiply(kit, gemm, g, x, w, c);
}

io::Expected<bool> runFp8SwigluGemm(DeviceKit &kit, CublasLtGemm &gemm,
                                    const Fp8Gemm &g, CUdeviceptr gate,
                                    CUdeviceptr up, CUdeviceptr wSource,
                                    CUdeviceptr c, bool ue8m0) {
  ScratchMark mark{kit.scratch};
  io::Expected<Quantized> x = quantize(kit, g.x, {gate, up}, ue8m0, true);
  io::Expected<Quantized> w = x ? quantize(kit, g.w, {wSource}, ue8m0)
                                : io::Expected<Quantized>(x.error());
  return multiply(kit, gemm, g, x, w, c);
}

io::Expected<bool>
runFp8Gemm(DeviceKit &kit, CublasLtGemm &gemm, const Plan &plan, int32_t kernel,
           const Fp8Gemm &g, const std::function<CUdeviceptr(int32_t)> &address,
           std::optional<Fp8OperandCache::Slot> quantizedX) {
  const Kernel &k = plan.kernels(kernel);
  bool ue8m0 = exec::KernelEmulation::of(k).ue8m0;
  if (!quantizedX)
    return runFp8Gemm(kit, gemm, g, address(k.inputs(g.x.input)),
                      address(k.inputs(g.w.input)), address(k.outputs(0)),
                      ue8m0);
  ScratchMark mark{kit.scratch};
  io::Expected<Quantized> x = Quantized{quantizedX->codes, quantizedX->scales};
  io::Expected<Quantized> w =
      quantize(kit, g.w, {address(k.inputs(g.w.input))}, ue8m0);
  return multiply(kit, gemm, g, x, w, address(k.outputs(0)));
}

} // namespace dsflow::cuda
