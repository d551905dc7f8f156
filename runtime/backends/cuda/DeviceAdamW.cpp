//===- DeviceAdamW.cpp - The optimizer where the GPU keeps the state ------===//
#include "runtime/backends/cuda/DeviceAdamW.h"
#include "plan/PlanFile.h"

#include <algorithm>
#include <vector>

namespace dsflow::cuda {

namespace {
/// Blocks of the gradient-norm launch: a fixed count, so that the partial
/// sums (and their total) do not depend on anything but the gradients.
constexpr int kNormBlocks = 1024;
} // namespace

DeviceAdamW::~DeviceAdamW() { kit.driver.release(storage); }

int64_t DeviceAdamW::momentBytes(int32_t grad) const {
  return numElements(plan.buffers(grad)) * (bf16 ? 2 : 4);
}

CUdeviceptr DeviceAdamW::moments(int32_t grad) const {
  return storage + static_cast<CUdeviceptr>(offsets.at(grad));
}

io::Status DeviceAdamW::prepareMoments(bool bf16Moments) {
  bf16 = bf16Moments;
  int64_t total = 0;
  for (int32_t b = 0; b < plan.buffers_size(); ++b)
    if (plan.buffers(b).kind() == GRADIENT) {
      offsets[b] = total;
      total += (2 * momentBytes(b) + 255) / 256 * 256;
    }
  partialsAt = total; // the gradient norm's partial sums
  total += kNormBlocks * 8;
  kit.driver.release(storage);
  io::Expected<CUdeviceptr> at = kit.driver.allocate(size_t(total));
  if (!at)
    return io::makeError("cuda", "the optimizer's moments (" +
                                     std::to_string(total) +
                                     " bytes): " + at.error().message);
  storage = *at;
  return kit.driver.zeroAsync(storage, size_t(total), kit.stream);
}

io::Status DeviceAdamW::zeroGradients() {
  return kit.driver.zeroAsync(gradients, size_t(gradientBytes), kit.stream);
}

#ifdef DSFLOW_WITH_NCCL
void DeviceAdamW::attach(std::unique_ptr<NcclGroup> group, CUstream stream,
                         CUevent before, CUevent after) {
  nccl = std::move(group);
  communication = stream;
  computed = before;
  reduced = after;
}

io::Status DeviceAdamW::startReduction(int64_t begin, int64_t end) {
  if (!nccl)
    return std::nullopt;
  // The kernels launched so far, then this all-reduce on its own stream
  // while the compute stream goes on.
  if (io::Status e = kit.driver.record(computed, kit.stream))
    return e;
  if (io::Status e = kit.driver.wait(communication, computed))
    return e;
  bucketsStarted = true;
  return nccl->allReduceSum(gradients + static_cast<CUdeviceptr>(begin),
                            (end - begin) / 4, communication);
}

io::Status DeviceAdamW::reduceGradients() {
  if (!nccl)
    return std::nullopt;
  if (!bucketsStarted) // all at once
    if (io::Status e = startReduction(0, gradientBytes))
      return e;
  bucketsStarted = false;
  // What follows (the norm, the updates) waits for every sum.
  if (io::Status e = kit.driver.record(reduced, communication))
    return e;
  return kit.driver.wait(kit.stream, reduced);
}
#endif

io::Expected<double> DeviceAdamW::squaredGradientSum() {
  CUdeviceptr x = gradients;
  CUdeviceptr out = storage + static_cast<CUdeviceptr>(partialsAt);
  long long n = gradientBytes / 4;
  void *arguments[] = {&x, &out, &n};
  if (io::Status e = kit.driver.launch(kit.support.sumSquares, kNormBlocks, 256,
                                       0, arguments, kit.stream))
    return *e;
  if (io::Status e = kit.driver.synchronize(kit.stream))
    return *e;
  std::vector<double> sums(kNormBlocks);
  if (io::Status e = kit.driver.download(sums.data(), out, sums.size() * 8))
    return *e;
  double total = 0;
  for (double s : sums)
    total += s;
  return total;
}

io::Status DeviceAdamW::adamw(int32_t param, int32_t grad, bool matrix,
                              const exec::AdamWScalars &a) {
  long long n = numElements(plan.buffers(grad));
  if (n == 0)
    return std::nullopt;
  CUdeviceptr p = address(param), g = address(grad), m = moments(grad);
  CUdeviceptr v = m + static_cast<CUdeviceptr>(momentBytes(grad));
  float beta1 = a.beta1, beta2 = a.beta2, eps = a.eps, step = a.stepSize,
        correction = a.sqrtCorrection2, decay = matrix ? a.matrixDecay : 1.0f;
  double scale = a.gradScale;
  void *arguments[] = {&p,     &g,   &m,    &v,          &n,     &beta1,
                       &beta2, &eps, &step, &correction, &decay, &scale};
  int64_t grid = std::min<int64_t>((n + 255) / 256, 4096);
  return kit.driver.launch(bf16 ? kit.support.adamwBf16Moments
                                : kit.support.adamw,
                           grid, 256, 0, arguments, kit.stream);
}

io::Status DeviceAdamW::downloadMoments(int32_t grad, void *m, void *v) {
  if (io::Status e = kit.driver.synchronize(kit.stream))
    return e;
  size_t bytes = size_t(momentBytes(grad));
  if (io::Status e = kit.driver.download(m, moments(grad), bytes))
    return e;
  return kit.driver.download(v, moments(grad) + bytes, bytes);
}

io::Status DeviceAdamW::uploadMoments(int32_t grad, const void *m,
                                      const void *v) {
  if (io::Status e = kit.driver.synchronize(kit.stream))
    return e;
  size_t bytes = size_t(momentBytes(grad));
  if (io::Status e = kit.driver.upload(moments(grad), m, bytes))
    return e;
  return kit.driver.upload(moments(grad) + bytes, v, bytes);
}

} // namespace dsflow::cuda
