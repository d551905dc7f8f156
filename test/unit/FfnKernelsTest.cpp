//===- FfnKernelsTest.cpp - FFN kernels through the shared steps ----------===//
//
// exec::runFfnKernel (the operand reading the CUDA backend's FFNs use) with a
// host engine must give exactly the CPU backend's results for every FFN
// kernel of tiny-v3 (routed and shared experts, forward and both gradients),
// on the operands the real program gives them: a wrong operand index, expert
// offset or row split shows as a difference.
//
//===----------------------------------------------------------------------===//
#include "exec/FfnKernels.h"
#include "CompileForTest.h"
#include "HostFfnBasics.h"
#include "exec/Executor.h"
#include "runtime/backends/cpu/Blas.h"
#include "runtime/backends/cpu/Kernels.h"

#include <cstring>
#include <deque>
#include <random>
#include <set>

namespace dsflow {
namespace {

/// FfnSteps.h's engine on host float arrays, as the CPU backend's own.
class HostEngine : public HostFfnBasics,
                   public cpu::EmulatedFfnGemms<HostEngine, float *, float *> {
public:
  float *readCopy(float *x, int64_t, int64_t, bool) { return x; }
};

TEST(FfnKernels, SharedStepsMatchTheCpuBackendOnEveryFfnKernel) {
  std::optional<Plan> plan = compileForTest("tiny-v3.pbtxt", false);
  ASSERT_TRUE(plan);
  auto made = exec::Executor::create(*plan, "tiny-v3");
  ASSERT_TRUE(made.ok()) << made.error().message;
  exec::Executor &cpu = **made;
  std::mt19937_64 rng(5);
  std::normal_distribution<float> normal(0.0f, 0.2f);
  for (int32_t i = 0; i < plan->buffers_size(); ++i)
    if (plan->buffers(i).kind() == PARAMETER) {
      auto *p = reinterpret_cast<float *>(cpu.memory().data(i));
      for (int64_t j = 0; j < numElements(plan->buffers(i)); ++j)
        p[j] =
            plan->buffers(i).shape_size() == 1 ? 1 + normal(rng) : normal(rng);
    }
  std::uniform_int_distribution<int32_t> token(0, 255);
  for (int64_t j = 0; j < cpu.tokenCount(); ++j)
    cpu.tokens()[j] = token(rng);

  exec::Memory &memory = cpu.memory();
  auto bytes = [&](int32_t b) { return size_t(plan->buffers(b).bytes()); };
  std::vector<std::vector<std::byte>> before;
  std::set<std::string> checked;
  exec::Executor::KernelHook hook = [&](int32_t k, bool after) -> io::Status {
    const Kernel &kernel = plan->kernels(k);
    if (!isFfnOp(kernel.op()))
      return std::nullopt;
    if (!after) { // The outputs the kernel starts from (it may accumulate).
      before.clear();
      for (int32_t b : kernel.outputs())
        before.emplace_back(memory.data(b), memory.data(b) + bytes(b));
      return std::nullopt;
    }
    std::vector<std::vector<std::byte>> cpuResult;
    for (size_t o = 0; o < before.size(); ++o) {
      int32_t b = kernel.outputs(int(o));
      cpuResult.emplace_back(memory.data(b), memory.data(b) + bytes(b));
      // The executor zeroes non-accumulating outputs before a kernel runs.
      if (kernel.accumulates())
        std::memcpy(memory.data(b), before[o].data(), bytes(b));
      else
        std::memset(memory.data(b), 0, bytes(b));
    }
    io::Status status = exec::runFfnKernel<float *>(
        *plan, kernel, [] { return HostEngine(); },
        [&](int32_t b) { return reinterpret_cast<float *>(memory.data(b)); },
        [&](int32_t b, int64_t) -> io::Expected<std::vector<int32_t>> {
          const auto *c = reinterpret_cast<const int32_t *>(memory.data(b));
          return std::vector<int32_t>(c, c + numElements(plan->buffers(b)));
        });
    EXPECT_FALSE(status) << status->message;
    for (size_t o = 0; o < before.size(); ++o) {
      int32_t b = kernel.outputs(int(o));
      EXPECT_EQ(0, std::memcmp(memory.data(b), cpuResult[o].data(), bytes(b)))
          << "kernel " << k << " (" << kernel.op() << ") output " << o;
    }
    checked.insert(kernel.op());
    return std::nullopt;
  };
  std::vector<char> all(plan->kernels_size(), 1);
  ASSERT_FALSE(cpu.runKernels(all, hook));
  EXPECT_EQ(checked, (std::set<std::string>{
                         "expert_ffn", "expert_ffn_grad", "expert_ffn_wgrad",
                         "shared_experts", "shared_experts_grad",
                         "shared_experts_wgrad"}));
}

} // namespace
} // namespace dsflow
