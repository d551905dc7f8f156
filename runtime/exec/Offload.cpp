//===- Offload.cpp - Host and device copies of the buffers in step --------===//
#include "exec/Offload.h"

#include <algorithm>
#include <cstring>
#include <map>

namespace dsflow::exec {

namespace {
/// Disjoint byte ranges [start, end), merged as they are added.
class ByteRanges {
public:
  bool overlaps(int64_t start, int64_t end) const {
    auto next = ranges.lower_bound(start);
    if (next != ranges.end() && next->first < end)
      return true;
    return next != ranges.begin() && std::prev(next)->second > start;
  }
  void add(int64_t start, int64_t end) {
    auto at = ranges.lower_bound(start);
    if (at != ranges.begin() && std::prev(at)->second >= start)
      --at;
    while (at != ranges.end() && at->first <= end) {
      start = std::min(start, at->first);
      end = std::max(end, at->second);
      at = ranges.erase(at);
    }
    ranges[start] = end;
  }

private:
  std::map<int64_t, int64_t> ranges;
};
} // namespace

Offload::Offload(const Plan &plan, Memory &host, std::unique_ptr<Device> device)
    : plan(plan), host(host), dev(std::move(device)),
      newer(plan.buffers_size(), Newer::Neither),
      hostOnly(size_t(plan.kernels_size()), 0),
      lastWrite(plan.buffers_size(), -1) {}

/// The device's optimizer as the trainer sees it: gradients and parameters
/// the host holds newer go to the device before it reads them; what it
/// updates is newer there.
class Offload::TrackedOptimizer : public DeviceOptimizer {
public:
  explicit TrackedOptimizer(Offload &o) : o(o), inner(*o.dev->optimizer()) {}
  io::Status prepareMoments(bool bf16Moments) override {
    return inner.prepareMoments(bf16Moments);
  }
  io::Status zeroGradients() override {
    if (io::Status e = inner.zeroGradients())
      return e;
    markGradients(Newer::Device);
    return std::nullopt;
  }
  io::Status reduceGradients() override {
    if (io::Status e = gradientsToDevice())
      return e;
    if (io::Status e = inner.reduceGradients())
      return e;
    markGradients(Newer::Device); // summed there
    return std::nullopt;
  }
  io::Expected<double> squaredGradientSum() override {
    if (io::Status e = gradientsToDevice())
      return *e;
    return inner.squaredGradientSum();
  }
  io::Status adamw(int32_t param, int32_t grad, bool matrix,
                   const AdamWScalars &scalars) override {
    for (int32_t b : {param, grad})
      if (io::Status e = o.toDevice(b))
        return e;
    if (io::Status e = inner.adamw(param, grad, matrix, scalars))
      return e;
    o.newer[param] = Newer::Device;
    return std::nullopt;
  }
  io::Status downloadMoments(int32_t grad, void *m, void *v) override {
    return inner.downloadMoments(grad, m, v);
  }
  io::Status uploadMoments(int32_t grad, const void *m,
                           const void *v) override {
    return inner.uploadMoments(grad, m, v);
  }

private:
  io::Status gradientsToDevice() {
    for (int32_t b = 0; b < o.plan.buffers_size(); ++b)
      if (o.plan.buffers(b).kind() == GRADIENT)
        if (io::Status e = o.toDevice(b))
          return e;
    return std::nullopt;
  }
  void markGradients(Newer side) {
    for (int32_t b = 0; b < o.plan.buffers_size(); ++b)
      if (o.plan.buffers(b).kind() == GRADIENT)
        o.newer[b] = side;
  }

  Offload &o;
  DeviceOptimizer &inner;
};

Offload::~Offload() = default;

void Offload::setResident() {
  residentMode = true;
  tracked = std::make_unique<TrackedOptimizer>(*this);
  for (int32_t b = 0; b < plan.buffers_size(); ++b)
    if (plan.buffers(b).kind() != ACTIVATION)
      newer[b] = Newer::Host;
}

void Offload::hostWrote(int32_t buffer) { newer[buffer] = Newer::Host; }

io::Status Offload::bringToHost(BufferKind kind) {
  for (int32_t b = 0; b < plan.buffers_size(); ++b)
    if (plan.buffers(b).kind() == kind)
      if (io::Status e = toHost(b))
        return e;
  return std::nullopt;
}

io::Status Offload::zeroGradients() {
  if (residentMode)
    return tracked->zeroGradients();
  host.zeroGradients();
  return std::nullopt;
}

void Offload::overlapReductionWithNextProgram(int64_t bucketBytes) {
  if (residentMode && dev->optimizer()->sumsOverRanks())
    overlapBucketBytes = bucketBytes;
}

io::Status Offload::beginProgram(int program, bool part) {
  for (int32_t b = 0; b < plan.buffers_size(); ++b) {
    const Buffer &buffer = plan.buffers(b);
    lastWrite[b] = -1;
    if (buffer.kind() == ACTIVATION) {
      if (!part)
        newer[b] = Newer::Neither;
    } else if (!residentMode ||
               (buffer.kind() == PARAMETER && buffer.no_grad()) ||
               buffer.kind() == INPUT)
      newer[b] = Newer::Host;
  }
  overlapping = overlapBucketBytes > 0;
  if (!overlapping)
    return std::nullopt;
  if (bucketsMadeFor != std::make_pair(program, overlapBucketBytes)) {
    buckets = gradientBuckets(plan, program, overlapBucketBytes);
    bucketsMadeFor = {program, overlapBucketBytes};
  }
  overlapBucketBytes = 0;
  bucketStarted.assign(buckets.size(), 0);
  for (size_t i = 0; i < buckets.size(); ++i) // used by no kernel
    if (buckets[i].readyAfter < 0)
      if (io::Status e = startBucket(i))
        return e;
  return std::nullopt;
}

io::Status Offload::startBucket(size_t i) {
  const GradientBucket &bucket = buckets[i];
  std::vector<int32_t> inside;
  for (int32_t b = 0; b < plan.buffers_size(); ++b) {
    const Buffer &buffer = plan.buffers(b);
    if (buffer.kind() == GRADIENT && buffer.offset() >= bucket.begin &&
        buffer.offset() < bucket.end)
      inside.push_back(b);
  }
  for (int32_t b : inside)
    if (io::Status e = toDevice(b))
      return e;
  if (io::Status e = dev->optimizer()->startReduction(bucket.begin, bucket.end))
    return e;
  for (int32_t b : inside) // summed there
    newer[b] = Newer::Device;
  bucketStarted[i] = 1;
  return std::nullopt;
}

io::Status Offload::afterKernel(int32_t k) {
  if (overlapping)
    for (size_t i = 0; i < buckets.size(); ++i)
      if (buckets[i].readyAfter == k && !bucketStarted[i])
        if (io::Status e = startBucket(i))
          return e;
  return std::nullopt;
}

io::Status Offload::toDevice(int32_t b) {
  if (newer[b] != Newer::Host)
    return std::nullopt;
  if (io::Status e = dev->upload(b, host.data(b)))
    return e;
  newer[b] = Newer::Neither;
  totals.uploadedBytes += plan.buffers(b).bytes();
  return std::nullopt;
}

io::Status Offload::toHost(int32_t b) {
  if (newer[b] != Newer::Device)
    return std::nullopt;
  if (io::Status e = dev->download(b, host.data(b)))
    return e;
  newer[b] = Newer::Neither;
  totals.downloadedBytes += plan.buffers(b).bytes();
  ++totals.waitedDownloads;
  return std::nullopt;
}

io::Status Offload::startCopyOut(int32_t b, std::byte *to) {
  if (newer[b] != Newer::Device) {
    std::memcpy(to, host.data(b), size_t(plan.buffers(b).bytes()));
    return std::nullopt;
  }
  totals.downloadedBytes += plan.buffers(b).bytes();
  return dev->startDownload(b, to);
}

void Offload::wrote(int32_t b, Newer side) {
  newer[b] = side;
  lastWrite[b] = writes++;
}

io::Status Offload::runOnDevice(int32_t k) {
  const Kernel &kernel = plan.kernels(k);
  for (int32_t b : kernel.inputs())
    if (io::Status e = toDevice(b))
      return e;
  for (int32_t b : kernel.outputs()) {
    io::Status e = kernel.accumulates() ? toDevice(b) : dev->zero(b);
    if (e)
      return e;
  }
  if (io::Status e = dev->launch(k))
    return e;
  for (int32_t b : kernel.outputs())
    wrote(b, Newer::Device);
  ++totals.deviceKernels;
  return std::nullopt;
}

bool Offload::hostWaitsBefore(int32_t k) const {
  if (onDevice(k))
    return dev->waitsBeforeLaunch(k);
  const Kernel &kernel = plan.kernels(k);
  auto onDevice = [&](int32_t b) { return newer[b] == Newer::Device; };
  return std::any_of(kernel.inputs().begin(), kernel.inputs().end(),
                     onDevice) ||
         (kernel.accumulates() &&
          std::any_of(kernel.outputs().begin(), kernel.outputs().end(),
                      onDevice));
}

io::Status Offload::beforeHost(int32_t k) {
  const Kernel &kernel = plan.kernels(k);
  for (int32_t b : kernel.inputs())
    if (io::Status e = toHost(b))
      return e;
  if (kernel.accumulates())
    for (int32_t b : kernel.outputs())
      if (io::Status e = toHost(b))
        return e;
  return std::nullopt;
}

void Offload::afterHost(int32_t k) {
  for (int32_t b : plan.kernels(k).outputs())
    wrote(b, Newer::Host);
  ++totals.hostKernels;
}

io::Status Offload::endProgram() {
  overlapping = false; // every bucket started after its kernel
  // Activations from the last written back: one comes back only when none
  // written after it shares a byte with it.
  // (Resident: parameters and gradients stay on the device.)
  std::vector<int32_t> written;
  for (int32_t b = 0; b < plan.buffers_size(); ++b) {
    BufferKind kind = plan.buffers(b).kind();
    if (kind != ACTIVATION) {
      if (!residentMode || (kind != PARAMETER && kind != GRADIENT))
        if (io::Status e = toHost(b))
          return e;
    } else if (lastWrite[b] >= 0) {
      written.push_back(b);
    }
  }
  std::sort(written.begin(), written.end(),
            [&](int32_t a, int32_t b) { return lastWrite[a] > lastWrite[b]; });
  ByteRanges later;
  for (int32_t b : written) {
    const Buffer &buffer = plan.buffers(b);
    int64_t start = buffer.offset(), end = buffer.offset() + buffer.bytes();
    if (!later.overlaps(start, end))
      if (io::Status e = toHost(b))
        return e;
    later.add(start, end);
  }
  return std::nullopt;
}

} // namespace dsflow::exec
