//===- DeviceFfn.cpp - The SwiGLU FFNs on a GPU ---------------------------===//
#include "runtime/backends/cuda/DeviceFfn.h"
#include "exec/FfnKernels.h"

#include <algorithm>
#include <vector>

namespace dsflow::cuda {

namespace {

constexpr int64_t kAlign = 256;
constexpr int kBlock = 256;

/// The device's engine for FfnSteps.h (FP32); keeps the first error.
class DeviceFfnEngine {
public:
  explicit DeviceFfnEngine(FfnDevice &d)
      : d(d), gemmEngine{d.gemm, GemmPrecision::Fp32, d.stream, std::nullopt} {}
  io::Status error() const {
    return gemmEngine.error ? gemmEngine.error : failure;
  }

  void gemm(bool transA, bool transB, int64_t m, int64_t n, int64_t k,
            float alpha, DeviceArray a, int64_t lda, DeviceArray b, int64_t ldb,
            float beta, DeviceArray c, int64_t ldc) {
    if (!failure)
      gemmEngine(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  }
  DeviceArray scratch(int64_t elements) {
    int64_t bytes = (elements * 4 + kAlign - 1) / kAlign * kAlign;
    DeviceArray array{d.scratch + static_cast<CUdeviceptr>(used), 4};
    if (used + bytes > d.scratchBytes)
      fail(io::makeError("cuda", "the FFN scratch (" +
                                     std::to_string(d.scratchBytes) +
                                     " bytes) is too small"));
    else
      check(d.driver.zeroAsync(array.address, size_t(elements * 4), d.stream));
    used += bytes;
    return array;
  }
  void swiglu(DeviceArray g, DeviceArray u, DeviceArray act, int64_t count) {
    launch(d.support.swiglu, count, {&g.address, &u.address, &act.address});
  }
  void swigluGrad(DeviceArray dAct, DeviceArray g, DeviceArray u,
                  DeviceArray dG, DeviceArray dU, int64_t count) {
    launch(d.support.swigluGrad, count,
           {&dAct.address, &g.address, &u.address, &dG.address, &dU.address});
  }
  void rowDots(DeviceArray a, DeviceArray b, DeviceArray dots, int64_t rows,
               int64_t cols) {
    if (rows == 0 || failure)
      return;
    long long r = rows, c = cols;
    void *arguments[] = {&a.address, &b.address, &dots.address, &r, &c};
    int64_t warpsPerBlock = kBlock / 32;
    check(d.driver.launch(d.support.rowDots,
                          (rows + warpsPerBlock - 1) / warpsPerBlock, kBlock, 0,
                          arguments, d.stream));
  }
  // The FP8 recipe's kernels are not offloaded: operands are read as they are.
  DeviceArray alongColumns(DeviceArray x, int64_t, int64_t) { return x; }
  DeviceArray alongRows(DeviceArray x, int64_t, int64_t) { return x; }

private:
  /// An elementwise support kernel over `count` elements: its pointers, then
  /// the count.
  void launch(CUfunction f, int64_t count,
              std::vector<CUdeviceptr *> pointers) {
    if (count == 0 || failure)
      return;
    long long n = count;
    std::vector<void *> arguments(pointers.begin(), pointers.end());
    arguments.push_back(&n);
    int64_t grid = std::min<int64_t>((count + kBlock - 1) / kBlock, 4096);
    check(d.driver.launch(f, grid, kBlock, 0, arguments.data(), d.stream));
  }
  void check(io::Status status) {
    if (status && !failure)
      failure = status;
  }
  void fail(io::Status status) { check(std::move(status)); }

  FfnDevice &d;
  GemmEngine gemmEngine;
  io::Status failure;
  int64_t used = 0;
};

/// The routed experts' row counts, checked as the CPU backend checks them.
io::Expected<std::vector<int32_t>> countsOf(FfnDevice &d, const Plan &plan,
                                            int32_t buffer, int64_t rows) {
  std::vector<int32_t> counts(size_t(numElements(plan.buffers(buffer))));
  if (io::Status e =
          d.download(buffer, reinterpret_cast<std::byte *>(counts.data())))
    return *e;
  int64_t total = 0;
  for (int32_t c : counts) {
    if (c < 0)
      return io::makeError("cuda", "a negative expert row count");
    total += c;
  }
  if (total != rows)
    return io::makeError("cuda", "the expert row counts add up to " +
                                     std::to_string(total) + ", not " +
                                     std::to_string(rows));
  return counts;
}

} // namespace

bool hasDeviceFfn(const Plan &plan, const Kernel &kernel) {
  if (!exec::isFfnOp(kernel.op()) || usesFp8(kernel))
    return false;
  for (auto list : {&kernel.inputs(), &kernel.outputs()})
    for (int32_t b : *list)
      if (plan.buffers(b).dtype() != DTYPE_F32 &&
          plan.buffers(b).dtype() != DTYPE_I32)
        return false;
  return true;
}

int64_t ffnScratchBytes(const Plan &plan) {
  int64_t most = 0;
  for (const Kernel &k : plan.kernels())
    if (hasDeviceFfn(plan, k))
      most = std::max(most, numElements(exec::ffnSavedGate(plan, k)));
  // At most four [rows, inter] arrays at once (FfnSteps.h), each aligned.
  return most ? 4 * (most * 4 + kAlign) : 0;
}

io::Status runDeviceFfn(FfnDevice &d, const Plan &plan, int32_t index) {
  const Kernel &k = plan.kernels(index);
  io::Status status = exec::runFfnKernel<DeviceArray>(
      plan, k, [&] { return DeviceFfnEngine(d); },
      [&](int32_t b) {
        return DeviceArray{d.address(b), 4};
      },
      [&](int32_t b, int64_t rows) { return countsOf(d, plan, b, rows); });
  if (status)
    return io::makeError("kernel " + std::to_string(index) + " (" + k.op() +
                             ")",
                         status->message);
  return std::nullopt;
}

} // namespace dsflow::cuda
