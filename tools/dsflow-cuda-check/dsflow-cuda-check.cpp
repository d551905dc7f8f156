//===- dsflow-cuda-check.cpp - The GPU's kernels against the CPU backend --===//
//
// dsflow-cuda-check STEP.plan [--seed N] [--tolerance T] [--export DIR]
//                   [--export-bench DIR]
// For an FP32 plan compiled with --cuda: runs every plan kernel the CUDA
// runtime runs on the GPU (runtime/backends/cuda/CudaDevice: the generated
// functions, and the GEMMs and FFNs it composes from cuBLASLt and its own
// kernels) there and on the CPU backend, from the same random non-zero inputs
// (and, for kernels that add into their outputs, the same random outputs;
// valid expert indices, row sources and row counts), and compares the
// outputs: max |gpu - cpu| over max |cpu| per output must stay within the
// tolerance (FP8-emulated FFNs: 5e-2, see checkOnGpu), int32 ids must be
// equal. Prints the worst error per op and
// "N of M device kernels match the CPU backend"; exits 1 when one does not,
// or when there is no GPU (the error says which).
//
// --export DIR writes the generated kernels' cases for check_on_device.py
// instead (no GPU needed). --export-bench DIR writes, for a plan of any
// precision, one launch per generated function with its buffers' sizes and
// the fewest bytes it must move, for check_on_device.py --bench (bandwidth
// against the device's copy bandwidth); no data and no CPU run.
//
//===----------------------------------------------------------------------===//
#include "exec/Executor.h"
#include "exec/FfnKernels.h"
#include "exec/Fp8Emulation.h"
#include "io/AtomicFile.h"
#include "plan/PlanFile.h"
#include "runtime/backends/cpu/Fp8.h"
#include "runtime/backends/cuda/CudaDevice.h"
#ifdef DSFLOW_WITH_CUBLASLT
#include "runtime/backends/cuda/DeviceFp8Gemm.h"
#endif

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <sys/stat.h>

using namespace dsflow;

namespace {

struct Options {
  std::string path;
  /// Write the cases here instead of running them (no GPU needed).
  std::string exportDir;
  /// Write one launch per function here, for timing on a GPU.
  std::string benchDir;
  uint64_t seed = 1;
  double tolerance = 1e-4;
};

int fail(const std::string &message) {
  std::fprintf(stderr, "dsflow-cuda-check: error: %s\n", message.c_str());
  return 1;
}

/// A kernel's launches, in order (CudaLaunch.then).
std::vector<const CudaLaunch *> launchesOf(const Plan &plan,
                                           const Kernel &kernel) {
  std::vector<const CudaLaunch *> chain;
  for (int32_t l = kernel.cuda_launch(); l > 0;
       l = plan.cuda().launches(l - 1).then())
    chain.push_back(&plan.cuda().launches(l - 1));
  return chain;
}

/// `"launches": [{"function": .., "grid": .., "block": .., "shared": ..}]`.
std::string launchesJson(const Plan &plan, const Kernel &kernel) {
  std::string json = "\"launches\": [";
  for (const CudaLaunch *l : launchesOf(plan, kernel))
    json += std::string(json.back() == '[' ? "" : ", ") + "{\"function\": \"" +
            l->function() + "\", \"grid\": " + std::to_string(l->grid()) +
            ", \"block\": " + std::to_string(l->block()) +
            ", \"shared\": " + std::to_string(l->shared_bytes()) + "}";
  return json + "]";
}

/// Runs kernel k on the device from the host buffers' current contents
/// (outputs zeroed unless the kernel accumulates), as the runtime would, and
/// returns its outputs. They come back as a pipeline's messages do (started
/// downloads), with the outputs zeroed on the device before the downloads
/// finish: the copies must be what the kernel left.
io::Expected<std::vector<std::vector<float>>>
runOnDevice(cuda::CudaDevice &device, const Plan &plan, exec::Memory &memory,
            int32_t k) {
  const Kernel &kernel = plan.kernels(k);
  for (int32_t b : kernel.inputs())
    if (io::Status e = device.upload(b, memory.data(b)))
      return *e;
  for (int32_t b : kernel.outputs())
    if (io::Status e = kernel.accumulates() ? device.upload(b, memory.data(b))
                                            : device.zero(b))
      return *e;
  if (io::Status e = device.launch(k))
    return *e;
  std::vector<std::vector<float>> outputs;
  for (int32_t b : kernel.outputs()) {
    std::vector<float> &out =
        outputs.emplace_back(plan.buffers(b).bytes() / sizeof(float));
    if (io::Status e =
            device.startDownload(b, reinterpret_cast<std::byte *>(out.data())))
      return *e;
  }
  // (Not an output whose fused FP8 operand is checked next: zeroing it
  // drops the operand.)
  for (int32_t b : kernel.outputs()) {
    io::Expected<std::optional<cuda::CudaDevice::Fp8OperandBytes>> operand =
        device.fp8Operand(b);
    if (!operand)
      return operand.error();
    if (!*operand)
      if (io::Status e = device.zero(b))
        return *e;
  }
  if (io::Status e = device.finishDownloads())
    return *e;
  return outputs;
}

/// Where a kernel that reads dispatch's routing has the indices [T, k] (the
/// row sources follow them); -1 for other kernels.
int routingAt(const Kernel &k) {
  if (k.op() == "dispatch_grad")
    return 1;
  return k.op().rfind("combine", 0) == 0 ? 2 : -1;
}

/// The experts of the dispatch that wrote row sources `b` (its counts'
/// size); 0 when no dispatch did.
int64_t dispatchExperts(const Plan &plan, int32_t b) {
  for (const Kernel &k : plan.kernels())
    if (k.op() == "dispatch" && k.outputs_size() == 3 && k.outputs(2) == b)
      return numElements(plan.buffers(k.outputs(1)));
  return 0;
}

/// The exclusive bound of the ids kernel k reads (token ids, labels): its
/// vocabulary; or its experts.
int64_t idBound(const Plan &plan, const Kernel &k) {
  auto last = [&](int32_t b) {
    const Buffer &buffer = plan.buffers(b);
    return buffer.shape_size() ? buffer.shape(buffer.shape_size() - 1) : 1;
  };
  if (int at = routingAt(k); at >= 0) // experts, at least k of them
    return std::max(dispatchExperts(plan, k.inputs(at + 1)),
                    last(k.inputs(at)));
  if (k.op() == "dispatch")
    return numElements(plan.buffers(k.outputs(1)));
  if (k.op() == "embedding")
    return plan.buffers(k.inputs(0)).shape(0);
  if (k.op() == "embedding_wgrad")
    return plan.buffers(k.outputs(0)).bytes() / 4 / last(k.inputs(0));
  if (k.op() == "token_window") // token ids of any vocabulary
    return 1 << 20;
  if (k.op() == "moe_gate_grad" || k.op() == "balance_loss_grad") // experts
    return last(k.inputs(1));
  if (k.op() == "balance_loss")
    return last(k.inputs(0));
  if (k.op() == "cross_entropy")
    return last(k.inputs(0));
  if (k.op() == "cross_entropy_grad")
    return last(k.inputs(1));
  return 1;
}

/// max |a - b| / max |b| (b the CPU's; 0 when both are zero) for values;
/// ids (int32: expert indices, row sources) must be equal, or the error is 1.
double outputError(const Buffer &buffer, const std::vector<float> &a,
                   const float *b) {
  if (buffer.dtype() == DTYPE_I32)
    return std::memcmp(a.data(), b, size_t(buffer.bytes())) ? 1.0 : 0.0;
  double diff = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, std::fabs(double(a[i]) - double(b[i])));
    scale = std::max(scale, std::fabs(double(b[i])));
  }
  return scale > 0 ? diff / scale : diff;
}

/// Runs the plan's kernels `chosen` picks on the CPU backend, each from
/// random non-zero inputs (and starting outputs, for kernels that add into
/// them): `before(k)` once kernel k's buffers hold them, `after(k)` once the
/// CPU has run it.
class CpuCases {
public:
  CpuCases(const Plan &plan, exec::Executor &cpu, uint64_t seed)
      : plan(plan), cpu(cpu), rng(seed) {}

  io::Status run(const std::function<bool(int32_t)> &chosen,
                 const std::function<io::Status(int32_t)> &before,
                 const std::function<io::Status(int32_t)> &after) {
    std::vector<char> selected(plan.kernels_size(), 0);
    for (int k = 0; k < plan.kernels_size(); ++k)
      selected[k] = chosen(k);
    exec::Executor::KernelHook hook = [&](int32_t k, bool done) {
      if (done)
        return after(k);
      randomize(plan.kernels(k));
      return before(k);
    };
    return cpu.runKernels(selected, hook);
  }
  exec::Memory &memory() { return cpu.memory(); }

private:
  /// Random non-zero values in every buffer the kernel touches; ids below
  /// its vocabulary or experts; dispatch's routing as the plan makes it.
  void randomize(const Kernel &kernel) {
    std::uniform_real_distribution<float> magnitude(0.1f, 1.0f);
    int64_t bound = idBound(plan, kernel);
    auto fill = [&](int32_t b) {
      int64_t n = plan.buffers(b).bytes() / 4;
      if (plan.buffers(b).dtype() == DTYPE_I32) {
        int32_t *ids = ints(b);
        for (int64_t i = 0; i < n; ++i)
          ids[i] = static_cast<int32_t>(rng() % bound);
        return;
      }
      float *p = reinterpret_cast<float *>(memory().data(b));
      for (int64_t i = 0; i < n; ++i)
        p[i] = magnitude(rng) * (rng() & 1 ? 1.f : -1.f);
    };
    std::for_each(kernel.inputs().begin(), kernel.inputs().end(), fill);
    std::for_each(kernel.outputs().begin(), kernel.outputs().end(), fill);
    if (int at = routingAt(kernel); at >= 0)
      route(kernel.inputs(at), kernel.inputs(at + 1), bound);
    if (kernel.op().rfind("expert_ffn", 0) == 0)
      splitRows(kernel);
    if (kernel.op() == "moe_gate")
      scaleGateInputs(kernel);
  }

  int32_t *ints(int32_t b) {
    return reinterpret_cast<int32_t *>(memory().data(b));
  }

  /// Routing as moe_gate and dispatch make it: each token's k distinct
  /// experts of `experts` in `indices` [T, k], and in `sources` the slots
  /// sorted stably by expert (the generated kernels rely on that order).
  void route(int32_t indices, int32_t sources, int64_t experts) {
    const Buffer &b = plan.buffers(indices);
    int64_t n = numElements(b),
            k = b.shape_size() ? b.shape(b.shape_size() - 1) : 1;
    int32_t *idx = ints(indices), *src = ints(sources);
    std::vector<int32_t> all(size_t(std::max(experts, k)));
    std::iota(all.begin(), all.end(), 0);
    for (int64_t t = 0; t < n / k; ++t) {
      std::shuffle(all.begin(), all.end(), rng);
      std::copy(all.begin(), all.begin() + k, idx + t * k);
    }
    std::iota(src, src + n, 0);
    std::stable_sort(src, src + n,
                     [&](int32_t a, int32_t c) { return idx[a] < idx[c]; });
  }

  /// A routed-expert FFN's row counts as dispatch makes them: the rows split
  /// at random over the experts (some get none).
  void splitRows(const Kernel &kernel) {
    bool forward = kernel.op() == "expert_ffn";
    const Buffer &rows = plan.buffers(kernel.inputs(forward ? 0 : 1));
    int32_t counts = kernel.inputs(forward ? 1 : 2);
    int64_t hidden = rows.shape(rows.shape_size() - 1);
    int64_t left = hidden ? numElements(rows) / hidden : 0;
    int64_t experts = numElements(plan.buffers(counts));
    int32_t *c = ints(counts);
    std::fill(c, c + experts, 0);
    for (; left > 0; --left)
      ++c[rng() % (experts > 1 ? experts - 1 : 1)]; // the last gets none
  }

  /// The router's inputs at the scale of a trained model's: the gate
  /// weight [E, H] over sqrt(H), so that the logits are of order 1 (sigmoid
  /// scores that do not saturate and hide the GEMM), and the bias [E] a
  /// tenth, so that the scores as well as the bias decide the choice.
  void scaleGateInputs(const Kernel &kernel) {
    const Buffer &w = plan.buffers(kernel.inputs(1));
    int64_t hidden = w.shape_size() ? w.shape(w.shape_size() - 1) : 1;
    scale(kernel.inputs(1),
          1.f / std::sqrt(float(std::max<int64_t>(hidden, 1))));
    scale(kernel.inputs(2), 0.1f);
  }

  void scale(int32_t b, float factor) {
    float *p = reinterpret_cast<float *>(memory().data(b));
    std::for_each(p, p + numElements(plan.buffers(b)),
                  [&](float &v) { v *= factor; });
  }

  const Plan &plan;
  exec::Executor &cpu;
  std::mt19937_64 rng;
};

#ifdef DSFLOW_WITH_CUBLASLT
/// Whether a fused RMSNorm's FP8 operand is output y [rows, cols] quantized
/// per 1x128 tile as the CPU backend quantizes (the padding of the codes'
/// rows zero).
bool fusedOperandMatches(const Buffer &out, const std::vector<float> &y,
                         const cuda::CudaDevice::Fp8OperandBytes &got) {
  int64_t cols = out.shape(out.shape_size() - 1);
  int64_t rows = int64_t(y.size()) / cols, ld = (cols + 15) / 16 * 16;
  std::vector<uint8_t> codes(y.size());
  std::vector<float> scales(size_t(rows * cpu::fp8Tiles(cols)));
  cpu::Fp8ScaleOptions options;
  options.ue8m0Scales = got.ue8m0;
  cpu::quantizeFp8Tiles1x128(y.data(), codes.data(), scales.data(), rows, cols,
                             options);
  if (cuda::cublasTileScales(scales.data(), rows, cols) != got.scales)
    return false;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < ld; ++c)
      if (got.codes[size_t(r * ld + c)] !=
          (c < cols ? codes[size_t(r * cols + c)] : 0))
        return false;
  return true;
}
#endif

int checkOnGpu(const Options &o, const Plan &plan, CpuCases &cases) {
  io::Expected<std::unique_ptr<cuda::CudaDriver>> driver =
      cuda::CudaDriver::open();
  if (!driver)
    return fail(driver.error().message + " (--export DIR writes the cases "
                                         "for a machine with a GPU)");
  std::printf("device: %s\n", (*driver)->deviceName().c_str());
  io::Expected<std::unique_ptr<cuda::CudaDevice>> device =
      cuda::CudaDevice::create(plan, o.path, std::move(*driver), {});
  if (!device)
    return fail(device.error().message);
  std::vector<std::vector<float>> gpuOutputs;
  std::map<std::string, std::pair<int, double>> worstByOp;
  int checked = 0, matched = 0, generated = 0, fusedChecked = 0,
      fusedMatched = 0;
  auto before = [&](int32_t k) -> io::Status {
    io::Expected<std::vector<std::vector<float>>> out =
        runOnDevice(**device, plan, cases.memory(), k);
    if (!out)
      return out.error();
    gpuOutputs = std::move(*out);
    return std::nullopt;
  };
  // FP8-emulated FFNs quantize their inner GEMMs' results again, which
  // differ between the GPU and OpenBLAS in the last FP32 bits: where that
  // flips an E4M3 rounding an element moves by one E4M3 step (1/8 to 1/16
  // of its magnitude), so they are held to their own, looser bound.
  auto toleranceOf = [&](const Kernel &kernel) {
    bool requantizes =
        exec::KernelEmulation::of(kernel).fp8 && isFfnOp(kernel.op());
    return requantizes ? std::max(o.tolerance, 5e-2) : o.tolerance;
  };
  std::map<std::string, double> toleranceByOp;
  auto after = [&](int32_t k) -> io::Status {
    const Kernel &kernel = plan.kernels(k);
    double worst = 0;
    for (int i = 0; i < kernel.outputs_size(); ++i)
      worst = std::max(
          worst, outputError(plan.buffers(kernel.outputs(i)), gpuOutputs[i],
                             reinterpret_cast<const float *>(
                                 cases.memory().data(kernel.outputs(i)))));
    double tolerance = toleranceOf(kernel);
    std::string row = kernel.op() + (tolerance > o.tolerance ? " (FP8)" : "");
#ifdef DSFLOW_WITH_CUBLASLT
    if (cuda::fp8TensorCoreGemm(plan, kernel))
      row = kernel.op() + " (FP8 tensor cores)";
#endif
    auto &[count, opWorst] = worstByOp[row];
    ++count;
    opWorst = std::max(opWorst, worst);
    toleranceByOp[row] = tolerance;
    ++checked;
    generated += kernel.cuda_launch() > 0;
    matched += worst <= tolerance;
#ifdef DSFLOW_WITH_CUBLASLT
    // An RMSNorm with its FP8 quantization fused: its operand must be the
    // quantization of the output it wrote, bit for bit.
    if (kernel.outputs_size() > 0) {
      auto operand = (*device)->fp8Operand(kernel.outputs(0));
      if (!operand)
        return operand.error();
      if (*operand) {
        ++fusedChecked;
        fusedMatched += fusedOperandMatches(plan.buffers(kernel.outputs(0)),
                                            gpuOutputs[0], **operand);
      }
    }
#endif
    return std::nullopt;
  };
  // Every kernel the runtime runs on the device: the generated ones and
  // those it composes (cuBLASLt GEMMs, the FFNs).
  auto onDevice = [&](int32_t k) { return (*device)->runs(k); };
  if (io::Status e = cases.run(onDevice, before, after))
    return fail(e->message);
  std::printf("%-22s %8s %14s\n", "op", "kernels", "worst error");
  for (const auto &[op, stats] : worstByOp)
    std::printf("%-22s %8d %14.3g%s\n", op.c_str(), stats.first, stats.second,
                stats.second <= toleranceByOp[op] ? "" : "  FAILED");
  std::printf("%d of %d device kernels match the CPU backend (%d generated, "
              "%d through cuBLASLt and the runtime's kernels; tolerance %g)\n",
              matched, checked, generated, checked - generated, o.tolerance);
  if (fusedChecked)
    std::printf("%d of %d FP8 operands written by RMSNorm (quantization fused) "
                "equal the quantization of its output%s\n",
                fusedMatched, fusedChecked,
                fusedMatched == fusedChecked ? "" : "  FAILED");
  if ((*device)->fp8TensorCoreGemms() || (*device)->fp8GemmsEmulated())
    std::printf("FP8 recipe: %lld GEMMs on the FP8 tensor cores, %lld "
                "emulated\n",
                (long long)(*device)->fp8TensorCoreGemms(),
                (long long)(*device)->fp8GemmsEmulated());
  return matched == checked && fusedMatched == fusedChecked ? 0 : 1;
}

/// Writes DIR/module.cubin, each case's buffers (kK.inI, kK.startI: the
/// outputs before the kernel, kK.outI: the CPU's) and DIR/cases.json, for
/// check_on_device.py on a machine with a GPU and no dsflow.
int exportCases(const Options &o, const Plan &plan, CpuCases &cases) {
  if (::mkdir(o.exportDir.c_str(), 0755) && errno != EEXIST)
    return fail(o.exportDir + ": " + std::strerror(errno));
  auto write = [&](const std::string &name, const void *data,
                   int64_t bytes) -> io::Status {
    std::string bytesText(static_cast<const char *>(data),
                          static_cast<size_t>(bytes));
    return io::writeFileAtomically(o.exportDir + "/" + name, bytesText);
  };
  if (io::Status e = write("module.cubin", plan.cuda().cubin().data(),
                           int64_t(plan.cuda().cubin().size())))
    return fail(e->message);
  std::string manifest =
      "{\"tolerance\": " + std::to_string(o.tolerance) + ", \"cases\": [";
  int written = 0;
  auto before = [&](int32_t k) -> io::Status {
    const Kernel &kernel = plan.kernels(k);
    std::string base = "k" + std::to_string(k);
    manifest += std::string(written++ ? ", " : "") +
                "{\"kernel\": " + std::to_string(k) + ", \"op\": \"" +
                kernel.op() + "\", " + launchesJson(plan, kernel) +
                ", \"params\": [";
    int params = 0;
    auto param = [&](int32_t b, const std::string &file, const char *role) {
      manifest += std::string(params++ ? ", " : "") + "{\"file\": \"" + file +
                  "\", \"dtype\": \"" +
                  (plan.buffers(b).dtype() == DTYPE_I32 ? "i32" : "f32") +
                  "\", \"role\": \"" + role + "\"}";
    };
    for (int i = 0; i < kernel.inputs_size(); ++i) {
      int32_t b = kernel.inputs(i);
      std::string file = base + ".in" + std::to_string(i);
      if (io::Status e =
              write(file, cases.memory().data(b), plan.buffers(b).bytes()))
        return e;
      param(b, file, "in");
    }
    for (int i = 0; i < kernel.outputs_size(); ++i) {
      int32_t b = kernel.outputs(i);
      std::string file = base + ".start" + std::to_string(i);
      // The runtime zeroes the outputs of a kernel that does not add.
      std::vector<char> start(size_t(plan.buffers(b).bytes()), 0);
      const void *from = kernel.accumulates()
                             ? (const void *)cases.memory().data(b)
                             : (const void *)start.data();
      if (io::Status e = write(file, from, plan.buffers(b).bytes()))
        return e;
      param(b, file, "out");
    }
    manifest += "]}";
    return std::nullopt;
  };
  auto after = [&](int32_t k) -> io::Status {
    const Kernel &kernel = plan.kernels(k);
    for (int i = 0; i < kernel.outputs_size(); ++i) {
      int32_t b = kernel.outputs(i);
      if (io::Status e =
              write("k" + std::to_string(k) + ".out" + std::to_string(i),
                    cases.memory().data(b), plan.buffers(b).bytes()))
        return e;
    }
    return std::nullopt;
  };
  // The bare functions: kernels the runtime emulates FP8 or BF16 around
  // are checked through the runtime only (without --export).
  int emulated = 0;
  auto generated = [&](int32_t k) {
    const Kernel &kernel = plan.kernels(k);
    exec::KernelEmulation e = exec::KernelEmulation::of(kernel);
    bool around = e.fp8 || e.bf16Input;
    emulated += kernel.cuda_launch() > 0 && around;
    return kernel.cuda_launch() > 0 && !around;
  };
  if (io::Status e = cases.run(generated, before, after))
    return fail(e->message);
  if (emulated)
    std::printf("left out %d kernels the runtime emulates FP8 or BF16 "
                "around (checked without --export)\n",
                emulated);
  manifest += "]}\n";
  if (io::Status e =
          write("cases.json", manifest.data(), int64_t(manifest.size())))
    return fail(e->message);
  std::printf("wrote %d cases to %s (run tools/dsflow-cuda-check/"
              "check_on_device.py %s where there is a GPU)\n",
              written, o.exportDir.c_str(), o.exportDir.c_str());
  return 0;
}

const char *benchType(DType dtype) {
  switch (dtype) {
  case DTYPE_F32:
    return "f32";
  case DTYPE_BF16:
    return "bf16";
  case DTYPE_I32:
    return "i32";
  default:
    return nullptr;
  }
}

/// The fewest bytes kernel k must move through device memory: each input
/// read once, each output written once (read too when the kernel adds into
/// it); a gather reads, and a scatter updates, only the rows its ids name.
int64_t minimumTraffic(const Plan &plan, const Kernel &k) {
  auto bytes = [&](int32_t b) { return plan.buffers(b).bytes(); };
  if (k.op() == "embedding")
    return bytes(k.inputs(1)) + 2 * bytes(k.outputs(0));
  if (k.op() == "embedding_wgrad") {
    const Buffer &dy = plan.buffers(k.inputs(0));
    int64_t touched =
        numElements(dy) * dtypeBytes(plan.buffers(k.outputs(0)).dtype());
    return dy.bytes() + bytes(k.inputs(1)) +
           2 * std::min(touched, bytes(k.outputs(0)));
  }
  int64_t total = 0;
  for (int32_t b : k.inputs())
    total += bytes(b);
  for (int32_t b : k.outputs())
    total += bytes(b) * (k.accumulates() ? 2 : 1);
  return total;
}

/// Writes DIR/module.cubin and DIR/bench.json: the first kernel of each
/// generated function, its launch, how many of the plan's kernels run that
/// function, its buffers (size, type, the bound of the ids it reads) and
/// minimumTraffic.
int exportBench(const Options &o, const Plan &plan) {
  if (::mkdir(o.benchDir.c_str(), 0755) && errno != EEXIST)
    return fail(o.benchDir + ": " + std::strerror(errno));
  if (io::Status e = io::writeFileAtomically(o.benchDir + "/module.cubin",
                                             plan.cuda().cubin()))
    return fail(e->message);
  std::map<std::string, int> uses; // kernels per function
  for (const Kernel &kernel : plan.kernels())
    if (kernel.cuda_launch() > 0)
      ++uses[plan.cuda().launches(kernel.cuda_launch() - 1).function()];
  std::string manifest = "{\"launches\": [";
  std::set<std::string> seen;
  for (int k = 0; k < plan.kernels_size(); ++k) {
    const Kernel &kernel = plan.kernels(k);
    if (kernel.cuda_launch() <= 0)
      continue;
    const CudaLaunch &l = plan.cuda().launches(kernel.cuda_launch() - 1);
    if (!seen.insert(l.function()).second)
      continue;
    manifest +=
        std::string(seen.size() > 1 ? ",\n  " : "\n  ") +
        "{\"kernel\": " + std::to_string(k) + ", \"op\": \"" + kernel.op() +
        "\", \"function\": \"" + l.function() + "\", " +
        launchesJson(plan, kernel) +
        ", \"kernels\": " + std::to_string(uses[l.function()]) +
        ", \"bytes_moved\": " + std::to_string(minimumTraffic(plan, kernel)) +
        ", \"params\": [";
    // Row sources: the slots sorted stably by the indices before them.
    int routing = routingAt(kernel);
    int params = 0;
    for (bool output : {false, true})
      for (int32_t b : output ? kernel.outputs() : kernel.inputs()) {
        const char *type = benchType(plan.buffers(b).dtype());
        if (!type)
          return fail(o.path + ": kernel " + std::to_string(k) + " (" +
                      kernel.op() +
                      ") has a buffer of a type the generated "
                      "code does not take");
        bool sources = routing >= 0 && params == routing + 1;
        manifest +=
            std::string(params++ ? ", " : "") +
            "{\"bytes\": " + std::to_string(plan.buffers(b).bytes()) +
            ", \"dtype\": \"" + type +
            "\", \"bound\": " + std::to_string(idBound(plan, kernel)) +
            ", \"sorted_by\": " + std::to_string(sources ? routing : -1) + "}";
      }
    manifest += "]}";
  }
  manifest += "\n]}\n";
  if (io::Status e =
          io::writeFileAtomically(o.benchDir + "/bench.json", manifest))
    return fail(e->message);
  std::printf("wrote %zu launches to %s (run tools/dsflow-cuda-check/"
              "check_on_device.py --bench %s where there is a GPU)\n",
              seen.size(), o.benchDir.c_str(), o.benchDir.c_str());
  return 0;
}

int check(const Options &o) {
  io::Expected<Plan> plan = readPlanFile(o.path);
  if (!plan)
    return fail(plan.error().message);
  if (!plan->has_cuda())
    return fail(o.path + ": has no CUDA module (compile with --cuda)");
  if (!o.benchDir.empty())
    return exportBench(o, *plan);
  for (const Buffer &b : plan->buffers())
    if (b.dtype() != DTYPE_F32 && b.dtype() != DTYPE_I32)
      return fail(o.path + ": the check compares FP32 plans (compile with "
                           "--precision=fp32 --cuda)");
  io::Expected<std::unique_ptr<exec::Executor>> cpu =
      exec::Executor::create(*plan, o.path);
  if (!cpu)
    return fail(cpu.error().message);
  CpuCases cases(*plan, **cpu, o.seed);
  return o.exportDir.empty() ? checkOnGpu(o, *plan, cases)
                             : exportCases(o, *plan, cases);
}

} // namespace

int main(int argc, char **argv) {
  const char *usage =
      "usage: dsflow-cuda-check STEP.plan [--seed N] [--tolerance T] "
      "[--export DIR] [--export-bench DIR]\n";
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(usage, stdout);
      return 0;
    }
    char *end = nullptr;
    if (arg == "--seed" && i + 1 < argc) {
      o.seed = std::strtoull(argv[++i], &end, 10);
      if (*end)
        return fail(std::string("bad value for --seed '") + argv[i] + "'");
    } else if (arg == "--export" && i + 1 < argc) {
      o.exportDir = argv[++i];
    } else if (arg == "--export-bench" && i + 1 < argc) {
      o.benchDir = argv[++i];
    } else if (arg == "--tolerance" && i + 1 < argc) {
      o.tolerance = std::strtod(argv[++i], &end);
      if (*end || !(o.tolerance > 0))
        return fail(std::string("bad value for --tolerance '") + argv[i] + "'");
    } else if (arg[0] == '-' || !o.path.empty()) {
      std::fprintf(stderr,
                   "dsflow-cuda-check: error: unexpected argument "
                   "'%s'\n%s",
                   argv[i], usage);
      return 2;
    } else {
      o.path = arg;
    }
  }
  if (o.path.empty()) {
    std::fputs(usage, stderr);
    return 2;
  }
  return check(o);
}
