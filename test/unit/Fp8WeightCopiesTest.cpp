//===- Fp8WeightCopiesTest.cpp - FP8 weight copies shared within a run ----===//
//
// The FP8 kernels of an executor share one E4M3 copy of each weight
// (exec/QuantizedParameters.h). On tiny-v3 compiled with FP8 (linear layers,
// routed and shared experts): one copy per weight however many kernels read
// it, and a copy never outlives the run it was made in, so weights written
// between runs give the results a fresh executor gives.
//
//===----------------------------------------------------------------------===//
#include "CompileForTest.h"
#include "exec/Executor.h"

#include <cstring>
#include <random>
#include <set>

namespace dsflow {
namespace {

void fillRandomly(exec::Executor &executor, unsigned seed) {
  const Plan &plan = executor.plan();
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.3f);
  for (int32_t b = 0; b < plan.buffers_size(); ++b)
    if (plan.buffers(b).kind() == PARAMETER) {
      auto *p = reinterpret_cast<float *>(executor.memory().data(b));
      for (int64_t j = 0; j < numElements(plan.buffers(b)); ++j)
        p[j] = normal(rng);
    }
}

void copyParametersAndTokens(exec::Executor &from, exec::Executor &to) {
  const Plan &plan = from.plan();
  for (int32_t b = 0; b < plan.buffers_size(); ++b)
    if (plan.buffers(b).kind() == PARAMETER)
      std::memcpy(to.memory().data(b), from.memory().data(b),
                  size_t(plan.buffers(b).bytes()));
  std::memcpy(to.tokens(), from.tokens(),
              size_t(from.tokenCount()) * sizeof(int32_t));
}

/// Every gradient buffer's bytes, in buffer order.
std::vector<char> gradientBytes(exec::Executor &executor) {
  const Plan &plan = executor.plan();
  std::vector<char> bytes;
  for (int32_t b = 0; b < plan.buffers_size(); ++b)
    if (plan.buffers(b).kind() == GRADIENT) {
      const char *p = reinterpret_cast<const char *>(executor.memory().data(b));
      bytes.insert(bytes.end(), p, p + plan.buffers(b).bytes());
    }
  return bytes;
}

TEST(Fp8WeightCopies, OneCopyPerWeightFreshEveryRun) {
  TrainingPipelineOptions passes;
  passes.fp8 = true;
  std::optional<Plan> plan = compileForTest("tiny-v3.pbtxt", false, passes);
  ASSERT_TRUE(plan);
  auto first = exec::Executor::create(*plan, "tiny-v3");
  ASSERT_TRUE(first.ok()) << first.error().message;
  exec::Executor &e = **first;

  // The weights FP8 kernels read per 128x128 block, and how many reads.
  std::set<int32_t> weights;
  int reads = 0;
  for (const Kernel &kernel : plan->kernels()) {
    exec::KernelEmulation emulation = exec::KernelEmulation::of(kernel);
    for (int i = 0; i < kernel.inputs_size(); ++i)
      if (emulation.inputRole(kernel, i) == exec::Fp8Role::Blocks &&
          plan->buffers(kernel.inputs(i)).kind() == PARAMETER) {
        weights.insert(kernel.inputs(i));
        ++reads;
      }
  }
  int64_t weightBytes = 0;
  for (int32_t b : weights)
    weightBytes += plan->buffers(b).bytes();
  ASSERT_GT(weightBytes, 0);
  // Forward, gradient and weight gradient read each weight.
  EXPECT_GE(reads, 2 * int(weights.size()));
  EXPECT_EQ(e.fp8WeightCopyBytes(), weightBytes);

  fillRandomly(e, 1);
  for (int64_t j = 0; j < e.tokenCount(); ++j)
    e.tokens()[j] = int32_t(j * 37 % plan->model().vocab_size());
  ASSERT_FALSE(e.runMicroBatch());
  std::vector<char> before = gradientBytes(e);
  // New weights from the host, then a second run of the same executor.
  fillRandomly(e, 2);
  ASSERT_FALSE(e.zeroGradients());
  ASSERT_FALSE(e.runMicroBatch());
  std::vector<char> after = gradientBytes(e);
  EXPECT_NE(before, after);

  auto second = exec::Executor::create(*plan, "tiny-v3");
  ASSERT_TRUE(second.ok()) << second.error().message;
  copyParametersAndTokens(e, **second);
  ASSERT_FALSE((*second)->runMicroBatch());
  EXPECT_EQ((*second)->loss(0), e.loss(0));
  EXPECT_TRUE(gradientBytes(**second) == after)
      << "the second run read weight copies of the first";
}

} // namespace
} // namespace dsflow
