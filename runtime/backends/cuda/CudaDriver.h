//===- CudaDriver.h - The CUDA driver API, loaded at run time ---*- C++ -*-===//
//
// The runtime opens libcuda.so.1 with dlopen, so a dsflow built with CUDA
// support starts (and runs the CPU backend) on a machine without a GPU driver;
// opening the driver there is an error that says so. Only what the CUDA
// backend uses is bound: the primary context of one device, device memory,
// modules from the plan's machine code, kernel launches.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_RUNTIME_BACKENDS_CUDA_CUDADRIVER_H
#define DSFLOW_RUNTIME_BACKENDS_CUDA_CUDADRIVER_H

#include "io/Status.h"

#include <cuda.h>

#include <memory>
#include <string>

namespace dsflow::cuda {

class CudaDriver {
public:
  /// Loads the driver and makes device `device`'s primary context current.
  /// `shared`: a `device` past the machine's GPUs wraps around (ranks
  /// sharing GPUs: pipeline stages, which need no NCCL).
  static io::Expected<std::unique_ptr<CudaDriver>> open(int device = 0,
                                                        bool shared = false);
  /// The device open() took.
  int ordinal() const { return index; }
  ~CudaDriver();
  CudaDriver(const CudaDriver &) = delete;
  CudaDriver &operator=(const CudaDriver &) = delete;

  const std::string &deviceName() const { return name; }

  io::Expected<CUdeviceptr> allocate(size_t bytes);
  void release(CUdeviceptr address);
  /// Page-locked host memory (a download into it need not wait).
  io::Expected<void *> allocateHost(size_t bytes);
  void releaseHost(void *address);
  io::Status upload(CUdeviceptr to, const void *from, size_t bytes);
  io::Status download(void *to, CUdeviceptr from, size_t bytes);
  io::Status zero(CUdeviceptr address, size_t bytes);
  /// A module from machine code (the plan's cubin) or PTX.
  io::Expected<CUmodule> loadModule(const std::string &image);
  io::Expected<CUfunction> function(CUmodule module, const std::string &name);
  /// Launches on `stream` (the default one: null); `arguments` as
  /// cuLaunchKernel takes them.
  io::Status launch(CUfunction f, int64_t grid, int block, int sharedBytes,
                    void **arguments, CUstream stream = nullptr);
  io::Status synchronize();

  // Streams and events: the device runs each stream in order; an event
  // recorded on one stream orders another after it.
  io::Expected<CUstream> createStream();
  void destroy(CUstream stream);
  /// An event for ordering (`timing`: one that also records time).
  io::Expected<CUevent> createEvent(bool timing = false);
  /// Milliseconds between two completed timing events.
  io::Expected<float> elapsed(CUevent start, CUevent end);
  void destroy(CUevent event);
  io::Status record(CUevent event, CUstream stream);
  /// Work queued on `stream` from now on waits for `event`.
  io::Status wait(CUstream stream, CUevent event);
  io::Status synchronize(CUstream stream);
  /// Copies queued on `stream`. From pageable host memory an upload returns
  /// once the bytes are staged (the host may reuse them); a download's bytes
  /// are there after synchronize(stream).
  io::Status uploadAsync(CUdeviceptr to, const void *from, size_t bytes,
                         CUstream stream);
  io::Status downloadAsync(void *to, CUdeviceptr from, size_t bytes,
                           CUstream stream);
  io::Status zeroAsync(CUdeviceptr address, size_t bytes, CUstream stream);

private:
  CudaDriver() = default;
  /// An error naming `what` and the driver's description of `result`.
  io::Status check(CUresult result, const std::string &what) const;

  void *library = nullptr;
  CUdevice device = 0;
  int index = 0;
  CUcontext context = nullptr;
  std::string name;
  struct Api;
  std::unique_ptr<Api> api;
};

} // namespace dsflow::cuda

#endif // DSFLOW_RUNTIME_BACKENDS_CUDA_CUDADRIVER_H
