//===- CudaDevice.cpp - A plan's buffers and kernels on one GPU -----------===//
#include "runtime/backends/cuda/CudaDevice.h"
#include "plan/ComposedOps.h"
#include "plan/PlanFile.h"
#include "runtime/backends/cuda/DeviceEmulation.h"
#ifdef DSFLOW_WITH_CUBLASLT
#include "runtime/backends/cuda/DeviceFp8Gemm.h"
#endif

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>

namespace dsflow::cuda {

namespace {
int64_t alignUp(int64_t bytes) { return (bytes + 255) / 256 * 256; }

/// Whether, with BF16 GEMMs, kernel k's input `input` is read through a BF16
/// copy: the linear layers' float inputs and the FFNs' weights (not under
/// the FP8 recipe, which is emulated in FP32).
bool readsBf16Copy(const Plan &plan, const Kernel &k, int32_t input) {
  if (composedPrecision(plan, k) != DTYPE_F32 ||
      exec::KernelEmulation::of(k).fp8 ||
      plan.buffers(input).dtype() != DTYPE_F32)
    return false;
  return isLinearGemmOp(k.op()) ||
         (isFfnOp(k.op()) && plan.buffers(input).kind() == PARAMETER);
}
} // namespace

ArenaLayout arenaLayout(const MemoryPlan &memory) {
  ArenaLayout l;
  l.gradients = alignUp(memory.parameter_bytes());
  l.inputs = l.gradients + alignUp(memory.gradient_bytes());
  l.activations = l.inputs + alignUp(memory.input_bytes());
  l.bytes = l.activations + alignUp(memory.activation_bytes());
  return l;
}

io::Status CudaDevice::accepts(const Plan &plan, const std::string &source) {
  if (!plan.has_cuda() || plan.cuda().cubin().empty())
    return io::makeError(source, "the plan has no CUDA module (compile it "
                                 "with dsflow-compile --cuda)");
  return std::nullopt;
}

io::Expected<std::unique_ptr<CudaDevice>>
CudaDevice::create(const Plan &plan, const std::string &source,
                   std::unique_ptr<CudaDriver> driver, const Options &options) {
  if (io::Status e = accepts(plan, source))
    return *e;
  std::unique_ptr<CudaDevice> d(new CudaDevice(plan, std::move(driver)));
  CudaDriver &cuda = *d->driver;
  d->gemmMode = options.gemms;
  d->fp8TensorCores = options.fp8TensorCores;
  auto failed = [&](const io::IoError &e) {
    return io::makeError(source, e.message);
  };
  d->layout = arenaLayout(plan.memory());
  io::Expected<CUdeviceptr> arena = cuda.allocate(d->layout.bytes);
  if (!arena)
    return io::makeError(source, "the device arena (" +
                                     std::to_string(d->layout.bytes) +
                                     " bytes): " + arena.error().message);
  d->arena = *arena;
  io::Expected<CUmodule> module = cuda.loadModule(plan.cuda().cubin());
  if (!module)
    return failed(module.error());
  d->module = *module;
  for (const CudaLaunch &launch : plan.cuda().launches()) {
    io::Expected<CUfunction> f = cuda.function(d->module, launch.function());
    if (!f)
      return failed(f.error());
    d->functions.push_back(*f);
  }
  for (CUstream *s : {&d->compute, &d->copies}) {
    io::Expected<CUstream> stream = cuda.createStream();
    if (!stream)
      return failed(stream.error());
    *s = *stream;
  }
  for (CUevent *e : {&d->computeDone, &d->copiesDone}) {
    io::Expected<CUevent> event = cuda.createEvent();
    if (!event)
      return failed(event.error());
    *e = *event;
  }
  io::Expected<SupportFunctions> support =
      SupportFunctions::load(cuda, d->module, plan);
  if (!support)
    return failed(support.error());
  d->support = *support;
  d->kit.reset(new DeviceKit{cuda, d->support, d->compute, d->scratch});
  CudaDevice *device = d.get();
  d->adam = std::make_unique<DeviceAdamW>(
      *d->kit, plan, [device](int32_t b) { return device->address(b); },
      d->arena + static_cast<CUdeviceptr>(d->layout.gradients),
      plan.memory().gradient_bytes());
#ifdef DSFLOW_WITH_CUBLASLT
  io::Expected<std::unique_ptr<CublasLtGemm>> gemms = CublasLtGemm::create();
  if (!gemms)
    return failed(gemms.error());
  d->gemms = std::move(*gemms);
  d->ffn.reset(new FfnDevice{
      *d->kit,
      *d->gemms,
      options.gemms,
      options.fp8TensorCores,
      [device](int32_t b, std::byte *to) { return device->download(b, to); },
      {}});
#endif
  for (const Kernel &k : plan.kernels())
    d->codes.push_back(d->codeOf(k));
  if (io::Status e = d->allocateScratch())
    return failed(*e);
  if (io::Status e = d->planFusedQuantization())
    return failed(*e);
  return d;
}

io::Status CudaDevice::allocateScratch() {
  int64_t most = 0;
  for (int32_t k = 0; k < plan.kernels_size(); ++k) {
    if (!runs(k))
      continue;
    int64_t bytes = emulationScratchBytes(plan, k);
    if (gemmMode == Fp32Gemms::Bf16) // the BF16 copies
      for (int32_t b : plan.kernels(k).inputs())
        if (readsBf16Copy(plan, plan.kernels(k), b))
          bytes += (numElements(plan.buffers(b)) * 2 + 255) / 256 * 256;
#ifdef DSFLOW_WITH_CUBLASLT
    bytes += ffnScratchBytes(plan, plan.kernels(k));
    // An FP8 GEMM falls back to the emulation above if cuBLASLt refuses it.
    if (codes[size_t(k)] == Code::Fp8Gemms)
      bytes = std::max(bytes, fp8GemmScratchBytes(
                                  *fp8TensorCoreGemm(plan, plan.kernels(k))));
#endif
    most = std::max(most, bytes);
  }
  if (most == 0)
    return std::nullopt;
  io::Expected<CUdeviceptr> at = driver->allocate(size_t(most));
  if (!at)
    return io::makeError("cuda", "the kernels' scratch (" +
                                     std::to_string(most) +
                                     " bytes): " + at.error().message);
  scratch = {*at, most, 0};
  return std::nullopt;
}

io::Status CudaDevice::joinRanks(dist::Communicator &world) {
#ifdef DSFLOW_WITH_NCCL
  if (world.size() == 1)
    return std::nullopt;
  io::Expected<CUstream> stream = driver->createStream();
  if (!stream)
    return stream.error();
  communication = *stream;
  for (CUevent *e : {&computed, &reduced}) {
    io::Expected<CUevent> event = driver->createEvent();
    if (!event)
      return event.error();
    *e = *event;
  }
  io::Expected<std::unique_ptr<NcclGroup>> group = NcclGroup::create(world);
  if (!group)
    return group.error();
  adam->attach(std::move(*group), communication, computed, reduced);
  return std::nullopt;
#else
  if (world.size() == 1)
    return std::nullopt;
  return io::makeError("cuda", "this dsflow was built without NCCL: one "
                               "process per job on a GPU");
#endif
}

io::Expected<CUevent> CudaDevice::timingEvent() {
  if (spareEvents.empty())
    return driver->createEvent(/*timing=*/true);
  CUevent e = spareEvents.back();
  spareEvents.pop_back();
  return e;
}

io::Expected<std::vector<std::pair<int32_t, double>>>
CudaDevice::takeKernelTimes() {
  std::vector<std::pair<int32_t, double>> times;
  if (timed.empty())
    return times;
  if (io::Status e = driver->synchronize(compute))
    return *e;
  for (const Timed &t : timed) {
    io::Expected<float> ms = driver->elapsed(t.start, t.end);
    if (!ms)
      return ms.error();
    times.push_back({t.kernel, *ms / 1000.0});
    spareEvents.push_back(t.start);
    spareEvents.push_back(t.end);
  }
  timed.clear();
  return times;
}

CudaDevice::~CudaDevice() {
  driver->synchronize();
  for (const Timed &t : timed)
    spareEvents.insert(spareEvents.end(), {t.start, t.end});
  for (CUevent e : spareEvents)
    driver->destroy(e);
  adam.reset();
  driver->destroy(computed);
  driver->destroy(reduced);
  driver->destroy(communication);
  driver->release(scratch.base);
  driver->release(fp8OperandMemory);
  driver->destroy(computeDone);
  driver->destroy(copiesDone);
  driver->destroy(compute);
  driver->destroy(copies);
  driver->release(arena);
  driver->releaseHost(landing);
}

io::Status CudaDevice::planFusedQuantization() {
#ifdef DSFLOW_WITH_CUBLASLT
  // The FP8 tensor-core linear layers by the buffer they quantize in 1x128
  // tiles as their activation, with their scale kinds.
  std::map<int32_t, std::set<bool>> readers;
  for (int32_t c = 0; c < plan.kernels_size(); ++c)
    if (codes[size_t(c)] == Code::Fp8Gemms) {
      const Kernel &reader = plan.kernels(c);
      Fp8Gemm g = *fp8TensorCoreGemm(plan, reader);
      if (g.x.how == Fp8Quantization::Rows)
        readers[reader.inputs(g.x.input)].insert(
            exec::KernelEmulation::of(reader).ue8m0);
    }
  int64_t codeBytes = 0, scaleBytes = 0;
  for (int32_t k = 0; k < plan.kernels_size(); ++k) {
    const Kernel &kernel = plan.kernels(k);
    if (codes[size_t(k)] != Code::Generated || kernel.outputs_size() == 0)
      continue;
    const std::string &name =
        plan.cuda().launches(kernel.cuda_launch() - 1).quantizing_function();
    auto read = readers.find(kernel.outputs(0));
    if (name.empty() || read == readers.end() || read->second.size() != 1)
      continue;
    io::Expected<CUfunction> f = driver->function(module, name);
    if (!f)
      return f.error();
    const Buffer &out = plan.buffers(kernel.outputs(0));
    int64_t cols = out.shape(out.shape_size() - 1);
    Fp8Operand operand{0, Fp8Quantization::Rows,
                       cols ? numElements(out) / cols : 0, cols};
    fusedQuantization[k] = {*f, *read->second.begin() ? 1 : 0,
                            operand.codeBytes(),
                            operand.paddedDepth() != operand.depth()};
    codeBytes = std::max(codeBytes, operand.codeBytes());
    scaleBytes = std::max(scaleBytes, operand.scaleCount() * 4);
  }
  if (fusedQuantization.empty())
    return std::nullopt;
  // A layer's normalized input feeds two projections (q_a, kv_a) with other
  // operands quantized in between: a few slots keep them.
  constexpr int kSlots = 4;
  io::Expected<CUdeviceptr> memory = driver->allocate(
      size_t(Fp8OperandCache::bytes(kSlots, codeBytes, scaleBytes)));
  if (!memory)
    return io::makeError("cuda",
                         "the FP8 operand slots: " + memory.error().message);
  fp8OperandMemory = *memory;
  fp8Operands =
      std::make_unique<Fp8OperandCache>(*memory, kSlots, codeBytes, scaleBytes);
#endif
  return std::nullopt;
}

io::Expected<std::optional<CudaDevice::Fp8OperandBytes>>
CudaDevice::fp8Operand(int32_t buffer) {
#ifdef DSFLOW_WITH_CUBLASLT
  std::optional<Fp8OperandCache::Slot> slot =
      fp8Operands ? fp8Operands->find(buffer) : std::nullopt;
  auto writer = std::find_if(
      fusedQuantization.begin(), fusedQuantization.end(), [&](const auto &f) {
        return plan.kernels(f.first).outputs(0) == buffer;
      });
  if (!slot || writer == fusedQuantization.end())
    return std::optional<Fp8OperandBytes>();
  const Buffer &b = plan.buffers(buffer);
  int64_t cols = b.shape(b.shape_size() - 1);
  Fp8Operand operand{0, Fp8Quantization::Rows, numElements(b) / cols, cols};
  Fp8OperandBytes bytes;
  bytes.codes.resize(size_t(operand.codeBytes()));
  bytes.scales.resize(size_t(operand.scaleCount()));
  bytes.ue8m0 = writer->second.ue8m0;
  if (io::Status e = driver->synchronize(compute))
    return *e;
  if (io::Status e =
          driver->download(bytes.codes.data(), slot->codes, bytes.codes.size()))
    return *e;
  if (io::Status e = driver->download(bytes.scales.data(), slot->scales,
                                      bytes.scales.size() * 4))
    return *e;
  return std::optional<Fp8OperandBytes>(std::move(bytes));
#else
  (void)buffer;
  return std::optional<Fp8OperandBytes>();
#endif
}

CudaDevice::Code CudaDevice::codeOf(const Kernel &k) const {
  if (k.cuda_launch() > 0)
    return Code::Generated;
#ifdef DSFLOW_WITH_CUBLASLT
  if (fp8TensorCores && fp8TensorCoreGemm(plan, k))
    return Code::Fp8Gemms;
  if (hasDeviceGemms(plan, k))
    return Code::Gemms;
  if (hasDeviceFfn(plan, k))
    return Code::Ffn;
#endif
  return Code::None;
}

int64_t CudaDevice::fp8TensorCoreGemms() const {
#ifdef DSFLOW_WITH_CUBLASLT
  return fp8Gemms + ffn->fp8Gemms;
#else
  return fp8Gemms;
#endif
}

int64_t CudaDevice::fp8GemmsEmulated() const {
#ifdef DSFLOW_WITH_CUBLASLT
  return fp8Emulated + ffn->fp8GemmsEmulated;
#else
  return fp8Emulated;
#endif
}

bool CudaDevice::runs(int32_t kernel) const {
  return codes[size_t(kernel)] != Code::None;
}

bool CudaDevice::waitsBeforeLaunch(int32_t kernel) const {
#ifdef DSFLOW_WITH_CUBLASLT
  if (codes[size_t(kernel)] != Code::Ffn)
    return false;
  int32_t counts = routedRowCounts(plan.kernels(kernel));
  return counts >= 0 && !ffn->counts.count(counts);
#else
  (void)kernel;
  return false;
#endif
}

CUdeviceptr CudaDevice::address(int32_t buffer) const {
  const Buffer &b = plan.buffers(buffer);
  int64_t region = b.kind() == PARAMETER  ? layout.parameters
                   : b.kind() == GRADIENT ? layout.gradients
                   : b.kind() == INPUT    ? layout.inputs
                                          : layout.activations;
  return arena + static_cast<CUdeviceptr>(region + b.offset());
}

io::Status CudaDevice::order(CUstream earlier, CUstream later) {
  CUevent done = earlier == compute ? computeDone : copiesDone;
  if (io::Status e = driver->record(done, earlier))
    return e;
  return driver->wait(later, done);
}

// A copy may touch bytes a queued kernel still uses (the arena reuses
// them), so it waits for the kernels queued so far; the kernels after it
// wait for the copy.
void CudaDevice::forgetWritten(int32_t written) {
#ifdef DSFLOW_WITH_CUBLASLT
  ffn->counts.erase(written);
  if (fp8Operands)
    fp8Operands->forget(written);
#else
  (void)written;
#endif
}

io::Status CudaDevice::upload(int32_t buffer, const std::byte *from) {
  forgetWritten(buffer);
  if (io::Status e = order(compute, copies))
    return e;
  if (io::Status e = driver->uploadAsync(
          address(buffer), from,
          static_cast<size_t>(plan.buffers(buffer).bytes()), copies))
    return e;
  return order(copies, compute);
}

io::Status CudaDevice::download(int32_t buffer, std::byte *to) {
  if (io::Status e = order(compute, copies))
    return e;
  if (io::Status e = driver->downloadAsync(
          to, address(buffer),
          static_cast<size_t>(plan.buffers(buffer).bytes()), copies))
    return e;
  return driver->synchronize(copies);
}

io::Status CudaDevice::startDownload(int32_t buffer, std::byte *to) {
  size_t bytes = static_cast<size_t>(plan.buffers(buffer).bytes());
  if (landingUsed + bytes > landingBytes) {
    // Grows only with no copy in flight into it.
    if (io::Status e = finishDownloads())
      return e;
    if (bytes > landingBytes) {
      driver->releaseHost(landing);
      landing = nullptr;
      landingBytes = std::max(bytes, 2 * landingBytes);
      io::Expected<void *> memory = driver->allocateHost(landingBytes);
      if (!memory) {
        landingBytes = 0;
        return memory.error();
      }
      landing = static_cast<std::byte *>(*memory);
    }
  }
  if (io::Status e = order(compute, copies))
    return e;
  if (io::Status e = driver->downloadAsync(landing + landingUsed,
                                           address(buffer), bytes, copies))
    return e;
  started.push_back({to, landingUsed, bytes});
  landingUsed += bytes;
  return order(copies, compute);
}

io::Status CudaDevice::finishDownloads() {
  if (started.empty())
    return std::nullopt;
  if (io::Status e = driver->synchronize(copies))
    return e;
  for (const StartedDownload &d : started)
    std::memcpy(d.to, landing + d.offset, d.bytes);
  started.clear();
  landingUsed = 0;
  return std::nullopt;
}

io::Status CudaDevice::zero(int32_t buffer) {
  forgetWritten(buffer);
  return driver->zeroAsync(address(buffer),
                           static_cast<size_t>(plan.buffers(buffer).bytes()),
                           compute);
}

io::Status
CudaDevice::launchGenerated(int32_t kernel,
                            const std::function<CUdeviceptr(int32_t)> &read) {
  const Kernel &k = plan.kernels(kernel);
  std::vector<CUdeviceptr> pointers;
  for (int32_t b : k.inputs())
    pointers.push_back(read(b));
  for (int32_t b : k.outputs())
    pointers.push_back(address(b));
  std::vector<void *> arguments;
  for (CUdeviceptr &p : pointers)
    arguments.push_back(&p);
#ifdef DSFLOW_WITH_CUBLASLT
  // RMSNorm with the FP8 quantization of its output fused (one launch).
  auto fused = fusedQuantization.find(kernel);
  if (fused != fusedQuantization.end()) {
    Fp8OperandCache::Slot slot = fp8Operands->fill(k.outputs(0));
    CUdeviceptr codes = slot.codes, scales = slot.scales;
    int ue8m0 = fused->second.ue8m0;
    if (fused->second.padded)
      if (io::Status e = driver->zeroAsync(
              codes, size_t(fused->second.codeBytes), compute))
        return e;
    arguments.insert(arguments.end(), {&codes, &scales, &ue8m0});
    const CudaLaunch &launch = plan.cuda().launches(k.cuda_launch() - 1);
    return driver->launch(fused->second.function, launch.grid(), launch.block(),
                          launch.shared_bytes(), arguments.data(), compute);
  }
#endif
  for (int32_t l = k.cuda_launch(); l > 0;
       l = plan.cuda().launches(l - 1).then()) {
    const CudaLaunch &launch = plan.cuda().launches(l - 1);
    if (io::Status e =
            driver->launch(functions[l - 1], launch.grid(), launch.block(),
                           launch.shared_bytes(), arguments.data(), compute))
      return e;
  }
  return std::nullopt;
}

io::Status CudaDevice::launch(int32_t kernel) {
  // DSFLOW_CUDA_SYNC=1: wait for every kernel, so that a fault is reported
  // at the kernel that made it (launches are asynchronous otherwise).
  static const bool synchronous = [] {
    const char *v = std::getenv("DSFLOW_CUDA_SYNC");
    return v && *v && std::string(v) != "0";
  }();
  io::Status e = timing ? timedRun(kernel) : runKernel(kernel);
  if (!synchronous)
    return e;
  if (!e)
    e = driver->synchronize(compute);
  if (e)
    return io::makeError("kernel " + std::to_string(kernel) + " (" +
                             plan.kernels(kernel).op() + ")",
                         e->message);
  return std::nullopt;
}

io::Status CudaDevice::timedRun(int32_t kernel) {
  io::Expected<CUevent> start = timingEvent(), end = timingEvent();
  if (!start || !end)
    return start ? end.error() : start.error();
  if (io::Status e = driver->record(*start, compute))
    return e;
  if (io::Status e = runKernel(kernel))
    return e;
  timed.push_back({kernel, *start, *end});
  return driver->record(*end, compute);
}

io::Status
CudaDevice::copyGemmOperandsToBf16(int32_t kernel,
                                   std::map<int32_t, DeviceArray> &operands) {
  if (gemmMode != Fp32Gemms::Bf16)
    return std::nullopt;
  const Kernel &k = plan.kernels(kernel);
  for (int32_t b : k.inputs()) {
    if (!readsBf16Copy(plan, k, b) || operands.count(b))
      continue;
    int64_t n = numElements(plan.buffers(b));
    io::Expected<CUdeviceptr> copy = scratch.take(n * 2);
    if (!copy)
      return copy.error();
    if (io::Status e = kit->elementwise(support.toBf16, n, {address(b), *copy}))
      return e;
    operands[b] = {*copy, 2};
  }
  return std::nullopt;
}

io::Status CudaDevice::runKernel(int32_t kernel) {
  const Kernel &k = plan.kernels(kernel);
  for (int32_t b : k.outputs())
    forgetWritten(b);
  auto fail = [&](const io::IoError &e) {
    return io::makeError(
        "kernel " + std::to_string(kernel) + " (" + k.op() + ")", e.message);
  };
  scratch.used = 0;
  auto at = [this](int32_t b) { return address(b); };
#ifdef DSFLOW_WITH_CUBLASLT
  if (codes[size_t(kernel)] == Code::Fp8Gemms) {
    Fp8Gemm g = *fp8TensorCoreGemm(plan, k);
    std::optional<Fp8OperandCache::Slot> quantizedX;
    if (fp8Operands && g.x.how == Fp8Quantization::Rows)
      quantizedX = fp8Operands->find(k.inputs(g.x.input));
    io::Expected<bool> ran =
        runFp8Gemm(*kit, *gemms, plan, kernel, g, at, quantizedX);
    if (!ran)
      return fail(ran.error());
    if (*ran) {
      ++fp8Gemms;
      fp8FusedReads += quantizedX.has_value();
      return std::nullopt;
    }
    // No FP8 algorithm for these sizes: emulated, from now on.
    codes[size_t(kernel)] = Code::Gemms;
    scratch.used = 0;
  }
#endif
  bool fp8 = exec::KernelEmulation::of(k).fp8;
  if (fp8 && codes[size_t(kernel)] == Code::Gemms)
    fp8Emulated += k.op().rfind("mtp_project", 0) == 0 ? 2 : 1;
  // The FFNs on the FP8 tensor cores quantize their weights themselves.
  bool quantizesItself =
      fp8 && fp8TensorCores && codes[size_t(kernel)] == Code::Ffn;
  // The FP8 recipe's quantized (or BF16-rounded) copies of its inputs.
  io::Expected<std::map<int32_t, CUdeviceptr>> copies =
      quantizesItself ? std::map<int32_t, CUdeviceptr>()
                      : emulateInputs(*kit, plan, kernel, at);
  if (!copies)
    return fail(copies.error());
  auto read = [&](int32_t b) {
    auto it = copies->find(b);
    return it == copies->end() ? address(b) : it->second;
  };
  // The composed kernels' operands: buffers, the copies above, and with
  // BF16 GEMMs BF16 copies of what their GEMMs read.
  std::map<int32_t, DeviceArray> operands;
  for (const auto &[b, at] : *copies)
    operands[b] = {at, 4};
  if (io::Status e = copyGemmOperandsToBf16(kernel, operands))
    return fail(*e);
  auto operand = [&](int32_t b) {
    auto it = operands.find(b);
    return it != operands.end()
               ? it->second
               : DeviceArray{address(b),
                             plan.buffers(b).dtype() == DTYPE_BF16 ? 2 : 4};
  };
  io::Status status;
  switch (codes[size_t(kernel)]) {
  case Code::Generated:
    status = launchGenerated(kernel, read);
    break;
#ifdef DSFLOW_WITH_CUBLASLT
  case Code::Gemms:
    status = runDeviceGemms(*gemms, plan, kernel, operand, compute,
                            gemmMode == Fp32Gemms::Tf32);
    break;
  case Code::Ffn:
    status = runDeviceFfn(*ffn, plan, kernel, operand);
    break;
#endif
  default:
    return io::makeError("kernel " + std::to_string(kernel) + " (" + k.op() +
                             ")",
                         "has no device code");
  }
  if (status)
    return fail(*status);
  // A generated dispatch may have quantized its rows itself.
  bool quantized = false;
  for (int32_t l = k.cuda_launch(); l > 0;
       l = plan.cuda().launches(l - 1).then())
    quantized |= plan.cuda().launches(l - 1).quantizes_output();
  if (!quantized)
    if (io::Status e = emulateOutputs(*kit, plan, kernel, at))
      return fail(*e);
  return std::nullopt;
}

} // namespace dsflow::cuda
