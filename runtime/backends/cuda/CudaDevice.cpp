//===- CudaDevice.cpp - A plan's buffers and kernels on one GPU -----------===//
#include "runtime/backends/cuda/CudaDevice.h"
#ifdef DSFLOW_WITH_CUBLASLT
#include "runtime/backends/cuda/DeviceGemms.h"
#endif

#ifdef DSFLOW_WITH_DEVICE_FFN
namespace dsflow {
// SupportKernels.cu's machine code (cmake/EmbedFile.cmake).
extern const unsigned char kSupportKernels[];
extern const unsigned long kSupportKernels_size;
} // namespace dsflow
#endif

namespace dsflow::cuda {

namespace {
int64_t alignUp(int64_t bytes) { return (bytes + 255) / 256 * 256; }
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
                   std::unique_ptr<CudaDriver> driver) {
  if (io::Status e = accepts(plan, source))
    return *e;
  std::unique_ptr<CudaDevice> d(new CudaDevice(plan, std::move(driver)));
  CudaDriver &cuda = *d->driver;
  d->layout = arenaLayout(plan.memory());
  io::Expected<CUdeviceptr> arena = cuda.allocate(d->layout.bytes);
  if (!arena)
    return io::makeError(source, "the device arena (" +
                                     std::to_string(d->layout.bytes) +
                                     " bytes): " + arena.error().message);
  d->arena = *arena;
  io::Expected<CUmodule> module = cuda.loadModule(plan.cuda().cubin());
  if (!module)
    return io::makeError(source, module.error().message);
  d->module = *module;
  for (const CudaLaunch &launch : plan.cuda().launches()) {
    io::Expected<CUfunction> f = cuda.function(d->module, launch.function());
    if (!f)
      return io::makeError(source, f.error().message);
    d->functions.push_back(*f);
  }
  for (CUstream *s : {&d->compute, &d->copies}) {
    io::Expected<CUstream> stream = cuda.createStream();
    if (!stream)
      return io::makeError(source, stream.error().message);
    *s = *stream;
  }
  for (CUevent *e : {&d->computeDone, &d->copiesDone}) {
    io::Expected<CUevent> event = cuda.createEvent();
    if (!event)
      return io::makeError(source, event.error().message);
    *e = *event;
  }
#ifdef DSFLOW_WITH_CUBLASLT
  io::Expected<std::unique_ptr<CublasLtGemm>> gemms = CublasLtGemm::create();
  if (!gemms)
    return io::makeError(source, gemms.error().message);
  d->gemms = std::move(*gemms);
#endif
#ifdef DSFLOW_WITH_DEVICE_FFN
  if (io::Status e = d->prepareFfn())
    return io::makeError(source, e->message);
#endif
  return d;
}

#ifdef DSFLOW_WITH_DEVICE_FFN
io::Status CudaDevice::prepareFfn() {
  int64_t scratchBytes = ffnScratchBytes(plan);
  if (scratchBytes == 0)
    return std::nullopt;
  io::Expected<CUmodule> module = driver->loadModule(std::string(
      reinterpret_cast<const char *>(kSupportKernels), kSupportKernels_size));
  if (!module)
    return module.error();
  supportModule = *module;
  std::pair<CUfunction *, const char *> functions[] = {
      {&support.swiglu, "dsflow_swiglu_f32"},
      {&support.swigluGrad, "dsflow_swiglu_grad_f32"},
      {&support.rowDots, "dsflow_row_dots_f32"}};
  for (auto [to, name] : functions) {
    io::Expected<CUfunction> f = driver->function(supportModule, name);
    if (!f)
      return f.error();
    *to = *f;
  }
  io::Expected<CUdeviceptr> scratch = driver->allocate(size_t(scratchBytes));
  if (!scratch)
    return scratch.error();
  ffnScratch = *scratch;
  ffn.reset(new FfnDevice{
      *driver, *gemms, support, compute, ffnScratch, scratchBytes,
      [this](int32_t b) { return address(b); },
      [this](int32_t b, std::byte *to) { return download(b, to); }});
  return std::nullopt;
}
#endif

CudaDevice::~CudaDevice() {
  driver->synchronize();
#ifdef DSFLOW_WITH_DEVICE_FFN
  driver->release(ffnScratch);
#endif
  driver->destroy(computeDone);
  driver->destroy(copiesDone);
  driver->destroy(compute);
  driver->destroy(copies);
  driver->release(arena);
}

bool CudaDevice::runs(int32_t kernel) const {
  const Kernel &k = plan.kernels(kernel);
#ifdef DSFLOW_WITH_CUBLASLT
  if (hasDeviceGemms(plan, k))
    return true;
#endif
#ifdef DSFLOW_WITH_DEVICE_FFN
  if (ffn && hasDeviceFfn(plan, k))
    return true;
#endif
  return k.cuda_launch() > 0;
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
io::Status CudaDevice::upload(int32_t buffer, const std::byte *from) {
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

io::Status CudaDevice::zero(int32_t buffer) {
  return driver->zeroAsync(address(buffer),
                           static_cast<size_t>(plan.buffers(buffer).bytes()),
                           compute);
}

io::Status CudaDevice::launch(int32_t kernel) {
  const Kernel &k = plan.kernels(kernel);
#ifdef DSFLOW_WITH_CUBLASLT
  if (hasDeviceGemms(plan, k))
    return runDeviceGemms(
        *gemms, plan, kernel, [&](int32_t b) { return address(b); }, compute);
#endif
#ifdef DSFLOW_WITH_DEVICE_FFN
  if (ffn && hasDeviceFfn(plan, k))
    return runDeviceFfn(*ffn, plan, kernel);
#endif
  std::vector<CUdeviceptr> pointers;
  for (int32_t b : k.inputs())
    pointers.push_back(address(b));
  for (int32_t b : k.outputs())
    pointers.push_back(address(b));
  std::vector<void *> arguments;
  for (CUdeviceptr &p : pointers)
    arguments.push_back(&p);
  for (int32_t l = k.cuda_launch(); l > 0;
       l = plan.cuda().launches(l - 1).then()) {
    const CudaLaunch &launch = plan.cuda().launches(l - 1);
    if (io::Status e =
            driver->launch(functions[l - 1], launch.grid(), launch.block(),
                           launch.shared_bytes(), arguments.data(), compute))
      return io::makeError(
          "kernel " + std::to_string(kernel) + " (" + k.op() + ")", e->message);
  }
  return std::nullopt;
}

} // namespace dsflow::cuda
