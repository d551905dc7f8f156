//===- CudaDriver.cpp - The CUDA driver API, loaded at run time -----------===//
#include "runtime/backends/cuda/CudaDriver.h"

#include "runtime/backends/cuda/DynamicSymbols.h"

namespace dsflow::cuda {

// The driver's entry points by their exported (versioned) names; the types
// come from cuda.h, whose macros map e.g. cuMemAlloc to cuMemAlloc_v2.
struct CudaDriver::Api {
  decltype(&::cuInit) init;
  decltype(&::cuDeviceGet) deviceGet;
  decltype(&::cuDeviceGetCount) deviceGetCount;
  decltype(&::cuDeviceGetName) deviceGetName;
  decltype(&::cuDevicePrimaryCtxRetain) primaryCtxRetain;
  decltype(&::cuDevicePrimaryCtxRelease) primaryCtxRelease;
  decltype(&::cuCtxSetCurrent) ctxSetCurrent;
  decltype(&::cuCtxSynchronize) ctxSynchronize;
  decltype(&::cuMemAlloc) memAlloc;
  decltype(&::cuMemFree) memFree;
  decltype(&::cuMemAllocHost) memAllocHost;
  decltype(&::cuMemFreeHost) memFreeHost;
  decltype(&::cuMemcpyHtoD) memcpyHtoD;
  decltype(&::cuMemcpyDtoH) memcpyDtoH;
  decltype(&::cuMemsetD8) memsetD8;
  decltype(&::cuModuleLoadData) moduleLoadData;
  decltype(&::cuModuleGetFunction) moduleGetFunction;
  decltype(&::cuLaunchKernel) launchKernel;
  decltype(&::cuGetErrorString) getErrorString;
  decltype(&::cuStreamCreate) streamCreate;
  decltype(&::cuStreamDestroy) streamDestroy;
  decltype(&::cuStreamSynchronize) streamSynchronize;
  decltype(&::cuStreamWaitEvent) streamWaitEvent;
  decltype(&::cuEventCreate) eventCreate;
  decltype(&::cuEventDestroy) eventDestroy;
  decltype(&::cuEventRecord) eventRecord;
  decltype(&::cuEventElapsedTime) eventElapsedTime;
  decltype(&::cuMemcpyHtoDAsync) memcpyHtoDAsync;
  decltype(&::cuMemcpyDtoHAsync) memcpyDtoHAsync;
  decltype(&::cuMemsetD8Async) memsetD8Async;
};

namespace {} // namespace

io::Expected<std::unique_ptr<CudaDriver>> CudaDriver::open(int ordinal,
                                                           bool shared) {
  void *library = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!library)
    return io::makeError("cuda",
                         std::string("no CUDA driver (") + dlerror() + ")");
  std::unique_ptr<CudaDriver> d(new CudaDriver());
  d->library = library;
  d->api = std::make_unique<Api>();
  Api &a = *d->api;
  struct Entry {
    const char *symbol;
    bool bound;
  } entries[] = {
      {"cuInit", bindSymbol(library, "cuInit", a.init)},
      {"cuDeviceGet", bindSymbol(library, "cuDeviceGet", a.deviceGet)},
      {"cuDeviceGetCount",
       bindSymbol(library, "cuDeviceGetCount", a.deviceGetCount)},
      {"cuDeviceGetName",
       bindSymbol(library, "cuDeviceGetName", a.deviceGetName)},
      {"cuDevicePrimaryCtxRetain",
       bindSymbol(library, "cuDevicePrimaryCtxRetain", a.primaryCtxRetain)},
      {"cuDevicePrimaryCtxRelease_v2",
       bindSymbol(library, "cuDevicePrimaryCtxRelease_v2",
                  a.primaryCtxRelease)},
      {"cuCtxSetCurrent",
       bindSymbol(library, "cuCtxSetCurrent", a.ctxSetCurrent)},
      {"cuCtxSynchronize",
       bindSymbol(library, "cuCtxSynchronize", a.ctxSynchronize)},
      {"cuMemAlloc_v2", bindSymbol(library, "cuMemAlloc_v2", a.memAlloc)},
      {"cuMemFree_v2", bindSymbol(library, "cuMemFree_v2", a.memFree)},
      {"cuMemAllocHost_v2",
       bindSymbol(library, "cuMemAllocHost_v2", a.memAllocHost)},
      {"cuMemFreeHost", bindSymbol(library, "cuMemFreeHost", a.memFreeHost)},
      {"cuMemcpyHtoD_v2", bindSymbol(library, "cuMemcpyHtoD_v2", a.memcpyHtoD)},
      {"cuMemcpyDtoH_v2", bindSymbol(library, "cuMemcpyDtoH_v2", a.memcpyDtoH)},
      {"cuMemsetD8_v2", bindSymbol(library, "cuMemsetD8_v2", a.memsetD8)},
      {"cuModuleLoadData",
       bindSymbol(library, "cuModuleLoadData", a.moduleLoadData)},
      {"cuModuleGetFunction",
       bindSymbol(library, "cuModuleGetFunction", a.moduleGetFunction)},
      {"cuLaunchKernel", bindSymbol(library, "cuLaunchKernel", a.launchKernel)},
      {"cuGetErrorString",
       bindSymbol(library, "cuGetErrorString", a.getErrorString)},
      {"cuStreamCreate", bindSymbol(library, "cuStreamCreate", a.streamCreate)},
      {"cuStreamDestroy_v2",
       bindSymbol(library, "cuStreamDestroy_v2", a.streamDestroy)},
      {"cuStreamSynchronize",
       bindSymbol(library, "cuStreamSynchronize", a.streamSynchronize)},
      {"cuStreamWaitEvent",
       bindSymbol(library, "cuStreamWaitEvent", a.streamWaitEvent)},
      {"cuEventCreate", bindSymbol(library, "cuEventCreate", a.eventCreate)},
      {"cuEventDestroy_v2",
       bindSymbol(library, "cuEventDestroy_v2", a.eventDestroy)},
      {"cuEventRecord", bindSymbol(library, "cuEventRecord", a.eventRecord)},
      {"cuEventElapsedTime_v2",
       bindSymbol(library, "cuEventElapsedTime_v2", a.eventElapsedTime)},
      {"cuMemcpyHtoDAsync_v2",
       bindSymbol(library, "cuMemcpyHtoDAsync_v2", a.memcpyHtoDAsync)},
      {"cuMemcpyDtoHAsync_v2",
       bindSymbol(library, "cuMemcpyDtoHAsync_v2", a.memcpyDtoHAsync)},
      {"cuMemsetD8Async",
       bindSymbol(library, "cuMemsetD8Async", a.memsetD8Async)},
  };
  for (const Entry &e : entries)
    if (!e.bound)
      return io::makeError("cuda",
                           std::string("the CUDA driver lacks ") + e.symbol);
  if (io::Status e = d->check(a.init(0), "cuInit"))
    return *e;
  int count = 0;
  if (io::Status e = d->check(a.deviceGetCount(&count), "cuDeviceGetCount"))
    return *e;
  if (shared && count > 0)
    ordinal %= count;
  d->index = ordinal;
  if (io::Status e = d->check(a.deviceGet(&d->device, ordinal),
                              "device " + std::to_string(ordinal)))
    return *e;
  char name[256] = {};
  if (io::Status e = d->check(a.deviceGetName(name, sizeof(name), d->device),
                              "cuDeviceGetName"))
    return *e;
  d->name = name;
  if (io::Status e = d->check(a.primaryCtxRetain(&d->context, d->device),
                              "the device's primary context"))
    return *e;
  if (io::Status e = d->check(a.ctxSetCurrent(d->context), "cuCtxSetCurrent"))
    return *e;
  return d;
}

CudaDriver::~CudaDriver() {
  if (context)
    api->primaryCtxRelease(device);
  if (library)
    dlclose(library);
}

io::Status CudaDriver::check(CUresult result, const std::string &what) const {
  if (result == CUDA_SUCCESS)
    return std::nullopt;
  const char *text = nullptr;
  if (api && api->getErrorString)
    api->getErrorString(result, &text);
  return io::makeError(
      "cuda", what + ": " + (text ? text : "error " + std::to_string(result)));
}

io::Expected<CUdeviceptr> CudaDriver::allocate(size_t bytes) {
  CUdeviceptr address = 0;
  if (io::Status e = check(api->memAlloc(&address, std::max<size_t>(bytes, 1)),
                           "allocating " + std::to_string(bytes) + " bytes"))
    return *e;
  return address;
}

void CudaDriver::release(CUdeviceptr address) {
  if (address)
    api->memFree(address);
}

io::Expected<void *> CudaDriver::allocateHost(size_t bytes) {
  void *address = nullptr;
  if (io::Status e =
          check(api->memAllocHost(&address, std::max<size_t>(bytes, 1)),
                "allocating " + std::to_string(bytes) +
                    " bytes of page-locked host memory"))
    return *e;
  return address;
}

void CudaDriver::releaseHost(void *address) {
  if (address)
    api->memFreeHost(address);
}

io::Status CudaDriver::upload(CUdeviceptr to, const void *from, size_t bytes) {
  return check(api->memcpyHtoD(to, from, bytes), "copy to the device");
}

io::Status CudaDriver::download(void *to, CUdeviceptr from, size_t bytes) {
  return check(api->memcpyDtoH(to, from, bytes), "copy from the device");
}

io::Status CudaDriver::zero(CUdeviceptr address, size_t bytes) {
  return check(api->memsetD8(address, 0, bytes), "zeroing device memory");
}

io::Expected<CUmodule> CudaDriver::loadModule(const std::string &image) {
  CUmodule module = nullptr;
  if (io::Status e = check(api->moduleLoadData(&module, image.data()),
                           "loading the module"))
    return *e;
  return module;
}

io::Expected<CUfunction> CudaDriver::function(CUmodule module,
                                              const std::string &name) {
  CUfunction f = nullptr;
  if (io::Status e = check(api->moduleGetFunction(&f, module, name.c_str()),
                           "function " + name))
    return *e;
  return f;
}

io::Status CudaDriver::launch(CUfunction f, int64_t grid, int block,
                              int sharedBytes, void **arguments,
                              CUstream stream) {
  return check(api->launchKernel(f, static_cast<unsigned>(grid), 1, 1,
                                 static_cast<unsigned>(block), 1, 1,
                                 static_cast<unsigned>(sharedBytes), stream,
                                 arguments, nullptr),
               "launch");
}

io::Status CudaDriver::synchronize() {
  return check(api->ctxSynchronize(), "synchronize");
}

io::Expected<CUstream> CudaDriver::createStream() {
  CUstream stream = nullptr;
  if (io::Status e = check(api->streamCreate(&stream, CU_STREAM_NON_BLOCKING),
                           "creating a stream"))
    return *e;
  return stream;
}

void CudaDriver::destroy(CUstream stream) {
  if (stream)
    api->streamDestroy(stream);
}

io::Expected<CUevent> CudaDriver::createEvent(bool timing) {
  CUevent event = nullptr;
  // Without timing an event is the cheap kind, for ordering.
  if (io::Status e =
          check(api->eventCreate(&event, timing ? CU_EVENT_DEFAULT
                                                : CU_EVENT_DISABLE_TIMING),
                "creating an event"))
    return *e;
  return event;
}

io::Expected<float> CudaDriver::elapsed(CUevent start, CUevent end) {
  float ms = 0;
  if (io::Status e =
          check(api->eventElapsedTime(&ms, start, end), "timing a kernel"))
    return *e;
  return ms;
}

void CudaDriver::destroy(CUevent event) {
  if (event)
    api->eventDestroy(event);
}

io::Status CudaDriver::record(CUevent event, CUstream stream) {
  return check(api->eventRecord(event, stream), "recording an event");
}

io::Status CudaDriver::wait(CUstream stream, CUevent event) {
  return check(api->streamWaitEvent(stream, event, 0), "waiting for an event");
}

io::Status CudaDriver::synchronize(CUstream stream) {
  return check(api->streamSynchronize(stream), "synchronize a stream");
}

io::Status CudaDriver::uploadAsync(CUdeviceptr to, const void *from,
                                   size_t bytes, CUstream stream) {
  return check(api->memcpyHtoDAsync(to, from, bytes, stream),
               "copy to the device");
}

io::Status CudaDriver::downloadAsync(void *to, CUdeviceptr from, size_t bytes,
                                     CUstream stream) {
  return check(api->memcpyDtoHAsync(to, from, bytes, stream),
               "copy from the device");
}

io::Status CudaDriver::zeroAsync(CUdeviceptr address, size_t bytes,
                                 CUstream stream) {
  return check(api->memsetD8Async(address, 0, bytes, stream),
               "zeroing device memory");
}

} // namespace dsflow::cuda
