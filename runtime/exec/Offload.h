//===- Offload.h - Host and device copies of buffers in step ----*- C++ -*-===//
//
// With a device (exec/Device.h), the executor runs each kernel where there is
// code for it: on the device when it has some, else on the host. Offload
// tracks, per buffer, which side holds its newest bytes and copies a buffer
// only when the other side is about to read it. Between programs the host
// memory is the state the trainer reads and changes (losses, gradients,
// expert counts; parameters after the optimizer, tokens), exactly as with the
// CPU backend alone:
// - beginProgram: parameters, gradients and inputs are taken to be newer on
//   the host (the optimizer, the data loader or gradient zeroing may have
//   changed them); activations start empty on both sides;
// - endProgram: gradients the device wrote come back, and so does every
//   activation whose bytes no later kernel overwrote (the arena reuses
//   bytes: copying back a dead buffer could clobber a live one).
// A pipeline stage runs a program in parts (its chunks): between parts the
// activations stay where they are; parameters and gradients as between
// programs.
// In resident mode (a device with an optimizer, exec/Device.h) parameters and
// gradients stay on the device between programs and the optimizer runs
// there: a program takes only the inputs and the parameters without
// gradients (the router biases, which the host's bias rule moves) to be newer
// on the host; whoever else changes or reads parameters on the host says so
// (hostWrote, toHost).
// Data parallelism with the state resident: in a step's last micro-batch the
// gradient sums over the ranks start bucket by bucket as the backward
// finishes with each (overlapReductionWithNextProgram), as DDP does.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_RUNTIME_EXEC_OFFLOAD_H
#define DSFLOW_RUNTIME_EXEC_OFFLOAD_H

#include "exec/Device.h"
#include "exec/Memory.h"
#include "plan/GradientBuckets.h"

#include <memory>
#include <utility>
#include <vector>

namespace dsflow::exec {

/// What crossed between host and device, for the run's report.
struct OffloadCounts {
  int64_t deviceKernels = 0, hostKernels = 0;
  int64_t uploadedBytes = 0, downloadedBytes = 0;
  /// Copies back the host waited for (started copies not counted).
  int64_t waitedDownloads = 0;

  OffloadCounts &operator+=(const OffloadCounts &o) {
    deviceKernels += o.deviceKernels, hostKernels += o.hostKernels;
    uploadedBytes += o.uploadedBytes, downloadedBytes += o.downloadedBytes;
    waitedDownloads += o.waitedDownloads;
    return *this;
  }
};

class Offload {
public:
  Offload(const Plan &plan, Memory &host, std::unique_ptr<Device> device);
  ~Offload();

  const Device &device() const { return *dev; }
  bool onDevice(int32_t kernel) const {
    return !hostOnly[size_t(kernel)] && dev->runs(kernel);
  }
  /// Runs `kernel` on the host even where the device has code for it (under
  /// expert parallelism: the routed experts' kernels, which exchange rows
  /// with the other ranks).
  void keepOnHost(int32_t kernel) { hostOnly[size_t(kernel)] = 1; }
  /// The device's own timing of its kernels (Device::setTiming).
  Device &timer() { return *dev; }
  const OffloadCounts &counts() const { return totals; }

  /// Resident mode (the device must have an optimizer): from now on the
  /// host's parameters and gradients are copied to the device once, then
  /// live there.
  void setResident();
  bool resident() const { return residentMode; }
  /// The device's optimizer in resident mode (through Offload, which keeps
  /// track: what it reads is brought to the device first, what it updates is
  /// newer there), else null.
  DeviceOptimizer *optimizer() const { return tracked.get(); }
  /// The host changed `buffer` (initial parameters, a resumed checkpoint).
  void hostWrote(int32_t buffer);
  /// Copies every buffer of `kind` the device holds newer to the host.
  io::Status bringToHost(BufferKind kind);
  /// Copies buffer `b` to the host if the device holds it newer.
  io::Status bringToHost(int32_t b) { return toHost(b); }
  /// Starts copying buffer `b`'s newest bytes, as the kernels run so far
  /// leave them, to `to` (not the host's copy of `b`, which stays as it
  /// is); `to` holds them after finishCopiesOut.
  io::Status startCopyOut(int32_t b, std::byte *to);
  io::Status finishCopiesOut() { return dev->finishDownloads(); }
  /// Zeroes the gradients where they live (resident: on the device).
  io::Status zeroGradients();

  /// Resident mode with a device optimizer that sums over ranks: the next
  /// program (a step's last micro-batch) starts each gradient bucket's sum
  /// (plan/GradientBuckets.h, about `bucketBytes` each) right after the last
  /// kernel using it. Off again after that program.
  void overlapReductionWithNextProgram(int64_t bucketBytes);
  /// The buckets the last such program summed (0: none).
  int64_t bucketsLastSummed() const { return int64_t(buckets.size()); }

  /// Before program `program` runs (0 when not given: the train program).
  /// `part`: only some of its kernels run now, after the parts that ran
  /// before (a pipeline stage's chunk): the activations keep their state.
  io::Status beginProgram(int program = 0, bool part = false);
  /// Runs `kernel` on the device, first uploading what it reads that the
  /// host holds newer; its outputs start from zeros unless it accumulates.
  io::Status runOnDevice(int32_t kernel);
  /// Whether running `kernel` now makes the host wait for the device's
  /// kernels so far: on the host, it reads (or accumulates into) what the
  /// device holds newer; on the device, it reads back
  /// (Device::waitsBeforeLaunch).
  bool hostWaitsBefore(int32_t kernel) const;
  /// Before the host runs `kernel`: downloads what it reads (its outputs too
  /// when it accumulates) that the device holds newer.
  io::Status beforeHost(int32_t kernel);
  /// After the host ran `kernel`: its outputs are newer on the host.
  void afterHost(int32_t kernel);
  /// After `kernel` ran on either side: starts the gradient sums it made
  /// ready, if overlapping.
  io::Status afterKernel(int32_t kernel);
  io::Status endProgram();

private:
  class TrackedOptimizer;
  enum class Newer : uint8_t { Neither, Host, Device };
  io::Status toDevice(int32_t buffer);
  io::Status toHost(int32_t buffer);
  void wrote(int32_t buffer, Newer side);
  /// Starts bucket `i`'s sum on the device, its gradients brought there.
  io::Status startBucket(size_t i);

  const Plan &plan;
  Memory &host;
  std::unique_ptr<Device> dev;
  std::vector<Newer> newer;
  std::vector<char> hostOnly;
  /// Per buffer the sequence number of its last write (-1: none yet in this
  /// program).
  std::vector<int64_t> lastWrite;
  int64_t writes = 0;
  OffloadCounts totals;
  bool residentMode = false;
  std::unique_ptr<DeviceOptimizer> tracked;
  /// Overlapped gradient sums: the target size for the next program (0:
  /// not overlapping), the buckets in use, which have started.
  int64_t overlapBucketBytes = 0;
  bool overlapping = false;
  std::vector<GradientBucket> buckets;
  std::pair<int, int64_t> bucketsMadeFor{-1, 0}; // (program, target bytes)
  std::vector<char> bucketStarted;
};

} // namespace dsflow::exec

#endif // DSFLOW_RUNTIME_EXEC_OFFLOAD_H
