//===- CudaDevice.h - A plan's buffers and kernels on one GPU ---*- C++ -*-===//
//
// The CUDA backend's exec::Device: the plan's module (the cubin the compiler
// embedded; nothing compiles at run time) loaded through the driver API, and
// the plan's memory in one device arena laid out as the compiler planned it
// (parameters, gradients, inputs, then the activation arena, each at its plan
// offsets). A kernel runs on the device through its generated functions, or
// the runtime composes it: the linear layers' GEMMs through cuBLASLt
// (DeviceGemms.h), the SwiGLU FFNs (DeviceFfn.h). Around each, the FP8
// recipe's and BF16 rounding's emulation as the CPU backend does it
// (DeviceEmulation.h). It can keep the training state and run AdamW
// (DeviceAdamW.h). Kernels run in order on a compute stream; copies go on
// a copy stream, ordered against the kernels by events, so that a later
// communication stream (NCCL) can overlap computation the same way.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_RUNTIME_BACKENDS_CUDA_CUDADEVICE_H
#define DSFLOW_RUNTIME_BACKENDS_CUDA_CUDADEVICE_H

#include "dist/Communicator.h"
#include "exec/Device.h"
#include "runtime/backends/cuda/CudaDriver.h"
#include "runtime/backends/cuda/DeviceAdamW.h"
#include "runtime/backends/cuda/DeviceGemms.h"
#include "runtime/backends/cuda/DeviceKit.h"
#include "schemas/plan.pb.h"
#ifdef DSFLOW_WITH_CUBLASLT
#include "runtime/backends/cuda/DeviceFfn.h"
#include "runtime/backends/cuda/Fp8OperandCache.h"
#endif

#include <map>

#include <functional>
#include <memory>
#include <vector>

namespace dsflow::cuda {

/// Where each region starts in the arena (256-byte aligned, as cudaMalloc
/// aligns), and the arena's size.
struct ArenaLayout {
  int64_t parameters = 0, gradients = 0, inputs = 0, activations = 0;
  int64_t bytes = 0;
};
ArenaLayout arenaLayout(const MemoryPlan &memory);

class CudaDevice : public exec::Device {
public:
  /// Refuses plans compiled without --cuda; `source` names the plan in
  /// errors.
  static io::Status accepts(const Plan &plan, const std::string &source);
  /// How the composed kernels' GEMMs multiply.
  struct Options {
    /// The FP32 plan's GEMMs (DeviceGemms.h).
    Fp32Gemms gemms = Fp32Gemms::Fp32;
    /// The linear layers under the FP8 recipe on the FP8 tensor cores
    /// (DeviceFp8Gemm.h); else emulated in FP32 as on the CPU.
    bool fp8TensorCores = true;
  };
  static io::Expected<std::unique_ptr<CudaDevice>>
  create(const Plan &plan, const std::string &source,
         std::unique_ptr<CudaDriver> driver, const Options &options);
  ~CudaDevice() override;

  std::string name() const override { return "cuda: " + driver->deviceName(); }
  bool runs(int32_t kernel) const override;
  io::Status upload(int32_t buffer, const std::byte *from) override;
  io::Status download(int32_t buffer, std::byte *to) override;
  /// On the copy stream into page-locked memory, behind the compute
  /// stream's kernels so far (later ones wait for the copy).
  io::Status startDownload(int32_t buffer, std::byte *to) override;
  io::Status finishDownloads() override;
  io::Status zero(int32_t buffer) override;
  io::Status launch(int32_t kernel) override;
  /// A routed FFN whose experts' row counts were not read back since they
  /// were written.
  bool waitsBeforeLaunch(int32_t kernel) const override;
  /// AdamW on the GPU: with it the training state can stay there.
  exec::DeviceOptimizer *optimizer() override { return adam.get(); }
  void setTiming(bool on) override { timing = on; }
  io::Expected<std::vector<std::pair<int32_t, double>>>
  takeKernelTimes() override;
  /// Data parallelism over `world` (one GPU per rank): gradients summed by
  /// NCCL on a communication stream. Collective.
  io::Status joinRanks(dist::Communicator &world);
  int64_t arenaBytes() const { return layout.bytes; }
  /// Under the FP8 recipe, the GEMMs run so far on the FP8 tensor cores,
  /// and those emulated (--emulate-fp8; sizes or shapes the tensor cores do
  /// not take: the MTP projection's, unaligned outputs, no cuBLASLt
  /// algorithm).
  int64_t fp8TensorCoreGemms() const;
  int64_t fp8GemmsEmulated() const;
  /// Of the linear layers' FP8 GEMMs, those whose activation a fused RMSNorm
  /// quantized.
  int64_t fp8FusedActivations() const { return fp8FusedReads; }
  /// The FP8 operand a fused RMSNorm wrote for `buffer` [rows, cols], if it
  /// holds one: codes [rows, ld] (ld: cols rounded up to 16) and scales in
  /// cuBLASLt's VEC128 order (dsflow-cuda-check compares them with the
  /// quantization of the buffer).
  struct Fp8OperandBytes {
    std::vector<uint8_t> codes;
    std::vector<float> scales;
    bool ue8m0 = false;
  };
  io::Expected<std::optional<Fp8OperandBytes>> fp8Operand(int32_t buffer);

private:
  CudaDevice(const Plan &plan, std::unique_ptr<CudaDriver> driver)
      : plan(plan), driver(std::move(driver)) {}
  CUdeviceptr address(int32_t buffer) const;
  /// Orders `later` after everything queued on `earlier` so far.
  io::Status order(CUstream earlier, CUstream later);
  /// Drops what is kept about a buffer now being written: the FFNs' row
  /// counts, its FP8 operand.
  void forgetWritten(int32_t written);
  /// What runs a kernel on the device, decided once per kernel.
  enum class Code : uint8_t { None, Generated, Gemms, Fp8Gemms, Ffn };
  Code codeOf(const Kernel &kernel) const;
  /// Kernel k, emulation included (launch adds the timing).
  io::Status runKernel(int32_t kernel);
  /// runKernel between two timing events.
  io::Status timedRun(int32_t kernel);
  /// With BF16 GEMMs, kernel k's BF16 copies of what its GEMMs read: the
  /// linear layers' float inputs, the FFNs' weights.
  io::Status copyGemmOperandsToBf16(int32_t kernel,
                                    std::map<int32_t, DeviceArray> &operands);
  /// The generated functions of kernel k, reading buffer b at `read(b)`.
  io::Status launchGenerated(int32_t kernel,
                             const std::function<CUdeviceptr(int32_t)> &read);
  /// The scratch the kernels it runs need at most, allocated.
  io::Status allocateScratch();
  /// Finds the RMSNorm kernels to run with the FP8 quantization fused (those
  /// whose output only FP8 tensor-core linear layers with one scale kind
  /// read as their activation) and allocates the operand slots.
  io::Status planFusedQuantization();

  const Plan &plan;
  std::unique_ptr<CudaDriver> driver;
  ArenaLayout layout;
  CUdeviceptr arena = 0;
  CUmodule module = nullptr;
  /// Per plan launch (CudaModule.launches), its function.
  std::vector<CUfunction> functions;
  CUstream compute = nullptr, copies = nullptr;
  CUevent computeDone = nullptr, copiesDone = nullptr;
  CUstream communication = nullptr;
  CUevent computed = nullptr, reduced = nullptr;
  SupportFunctions support;
  DeviceScratch scratch;
  std::unique_ptr<DeviceKit> kit;
  std::unique_ptr<DeviceAdamW> adam;
  Fp32Gemms gemmMode = Fp32Gemms::Fp32;
  bool fp8TensorCores = true;
  /// The linear layers' FP8 GEMMs (the FFNs count their own), and those
  /// that read their activation as a fused RMSNorm wrote it.
  int64_t fp8Gemms = 0, fp8Emulated = 0, fp8FusedReads = 0;
  /// Per RMSNorm kernel with its quantization fused: the function (the
  /// plan's CudaLaunch.quantizing_function) and its readers' scale kind.
  struct FusedQuantization {
    CUfunction function = nullptr;
    int ue8m0 = 0;
    int64_t codeBytes = 0;
    bool padded = false;
  };
  std::map<int32_t, FusedQuantization> fusedQuantization;
  CUdeviceptr fp8OperandMemory = 0;
  /// Page-locked memory the started downloads land in (kept for the next
  /// ones), and where each goes from there.
  struct StartedDownload {
    std::byte *to;
    size_t offset, bytes;
  };
  std::byte *landing = nullptr;
  size_t landingBytes = 0, landingUsed = 0;
  std::vector<StartedDownload> started;
  /// Per plan kernel, its Code.
  std::vector<Code> codes;
  /// Kernels timed by event pairs on the compute stream (--profile).
  struct Timed {
    int32_t kernel;
    CUevent start, end;
  };
  bool timing = false;
  std::vector<Timed> timed;
  std::vector<CUevent> spareEvents;
  io::Expected<CUevent> timingEvent();
#ifdef DSFLOW_WITH_CUBLASLT
  std::unique_ptr<CublasLtGemm> gemms;
  std::unique_ptr<FfnDevice> ffn;
  std::unique_ptr<Fp8OperandCache> fp8Operands;
#endif
};

} // namespace dsflow::cuda

#endif // DSFLOW_RUNTIME_BACKENDS_CUDA_CUDADEVICE_H
