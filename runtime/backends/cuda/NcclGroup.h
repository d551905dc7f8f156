//===- NcclGroup.h - NCCL over a job's ranks, one GPU each ------*- C++ -*-===//
//
// The collectives of data parallelism on the GPU: with the training state on
// the device (exec/Offload.h resident mode), each rank's gradients are summed
// over the ranks in place by ncclAllReduce, on a communication stream that
// the compute stream waits for through events. libnccl.so.2 is opened at run
// time, like the driver, so that a dsflow built with CUDA starts without it.
// The NCCL id goes from rank 0 to the others over the job's host
// communicator (MPI or TCP), so NCCL needs no launcher of its own.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_RUNTIME_BACKENDS_CUDA_NCCLGROUP_H
#define DSFLOW_RUNTIME_BACKENDS_CUDA_NCCLGROUP_H

#include "dist/Communicator.h"
#include "runtime/backends/cuda/CudaDriver.h"

#include <memory>

namespace dsflow::cuda {

class NcclGroup {
public:
  /// Collective over `world`, on the device whose context is current.
  static io::Expected<std::unique_ptr<NcclGroup>>
  create(dist::Communicator &world);
  ~NcclGroup();
  NcclGroup(const NcclGroup &) = delete;
  NcclGroup &operator=(const NcclGroup &) = delete;

  /// data[0, count) summed over the ranks, in place, on `stream`.
  io::Status allReduceSum(CUdeviceptr data, int64_t count, CUstream stream);

  /// NCCL's entry points (NcclGroup.cpp).
  struct Api;

private:
  NcclGroup() = default;
  void *library = nullptr;
  std::unique_ptr<Api> api;
  void *comm = nullptr;
};

} // namespace dsflow::cuda

#endif // DSFLOW_RUNTIME_BACKENDS_CUDA_NCCLGROUP_H
