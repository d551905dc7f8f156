//===- GradientCheckTest.cpp - End-to-end float64 gradient check ----------===//
//
// Compiles tiny-v3 (dense and MoE layers, 4 expert groups, MLA with compressed
// queries, MTP) in float64 through the whole path (frontend, dsflow-autodiff,
// plan lowering, kernel binding, CPU kernels) and checks the gradient of the
// total loss w.r.t. every trainable parameter tensor against central finite
// differences of the forward program. Parameters are random (not the training
// init) so that no gradient is trivially zero and routing margins are wide.
//
//===----------------------------------------------------------------------===//
#include "CompileForTest.h"
#include "exec/Executor.h"

#include <cmath>
#include <random>
#include <set>

namespace dsflow {
namespace {

void randomize(exec::Executor &executor, std::mt19937_64 &rng) {
  const Plan &plan = executor.plan();
  std::normal_distribution<double> normal(0.0, 1.0);
  for (int32_t i = 0; i < plan.buffers_size(); ++i) {
    const Buffer &b = plan.buffers(i);
    if (b.kind() != PARAMETER)
      continue;
    auto *p = reinterpret_cast<double *>(executor.memory().data(i));
    for (int64_t j = 0; j < numElements(b); ++j)
      p[j] = b.shape_size() == 1 && !b.no_grad() ? 1.0 + 0.2 * normal(rng)
                                                 : 0.2 * normal(rng);
  }
  std::uniform_int_distribution<int32_t> token(0, int32_t(plan.model().vocab_size()) - 1);
  for (int64_t j = 0; j < executor.tokenCount(); ++j)
    executor.tokens()[j] = token(rng);
}

TEST(GradientCheck, TinyV3EveryParameterFloat64) {
  std::optional<Plan> plan = compileForTest("tiny-v3.pbtxt", /*float64=*/true);
  ASSERT_TRUE(plan);
  auto executor = exec::Executor::create(*plan, "tiny-v3");
  ASSERT_TRUE(executor.ok()) << executor.error().message;
  exec::Executor &e = **executor;
  ASSERT_TRUE(e.isDouble());
  std::mt19937_64 rng(42);
  randomize(e, rng);
  ASSERT_FALSE(e.runMicroBatch());
  double loss = e.loss(0);
  ASSERT_TRUE(std::isfinite(loss));

  int checkedTensors = 0, checkedElements = 0;
  double worst = 0;
  std::string worstName;
  for (int32_t g = 0; g < plan->buffers_size(); ++g) {
    const Buffer &grad = plan->buffers(g);
    if (grad.kind() != GRADIENT)
      continue;
    const Buffer &param = plan->buffers(grad.gradient_of());
    auto *p = reinterpret_cast<double *>(e.memory().data(grad.gradient_of()));
    const auto *dp = reinterpret_cast<const double *>(e.memory().data(g));
    int64_t n = numElements(param);
    // The largest-gradient element and two spread ones.
    int64_t largest = 0;
    for (int64_t j = 1; j < n; ++j)
      if (std::abs(dp[j]) > std::abs(dp[largest]))
        largest = j;
    for (int64_t j : {largest, n / 3, (2 * n) / 3}) {
      const double h = 1e-6, saved = p[j];
      p[j] = saved + h;
      ASSERT_FALSE(e.runForward());
      double up = e.loss(0);
      p[j] = saved - h;
      ASSERT_FALSE(e.runForward());
      double down = e.loss(0);
      p[j] = saved;
      double fd = (up - down) / (2 * h);
      // Central differences in float64 carry rounding noise of about
      // eps * |loss| / h ~ 1e-9, hence the absolute term.
      double difference = std::abs(fd - dp[j]);
      double scale = std::max(std::abs(fd), std::abs(dp[j]));
      double relative = difference / std::max(scale, 1e-300);
      if (scale > 1e-3 && relative > worst) {
        worst = relative;
        worstName = param.name() + "[" + std::to_string(j) + "]";
      }
      EXPECT_LE(difference, 1e-5 * scale + 1e-8)
          << param.name() << "[" << j << "]: analytic " << dp[j]
          << ", finite difference " << fd;
      ++checkedElements;
    }
    ++checkedTensors;
  }
  // Every trainable tensor of tiny-v3: 145 parameters minus 3 router biases.
  EXPECT_EQ(checkedTensors, 142);
  std::printf("checked %d elements of %d tensors; worst relative error where "
              "|gradient| > 1e-3: %.2e (%s)\n",
              checkedElements, checkedTensors, worst, worstName.c_str());
}

} // namespace
} // namespace dsflow

namespace dsflow {
namespace {

/// A plan is untrusted: for every kernel of a real plan (every op the CPU
/// backend binds, forward and backward), a missing input or output must be
/// refused with a message naming the kernel, never crash.
TEST(KernelBinding, EveryOpRefusesAMissingOperand) {
  std::optional<Plan> plan = compileForTest("tiny-v3.pbtxt", /*float64=*/true);
  ASSERT_TRUE(plan);
  std::set<std::string> ops;
  for (int32_t k = 0; k < plan->kernels_size(); ++k) {
    // One kernel of each op is enough.
    if (!ops.insert(plan->kernels(k).op()).second)
      continue;
    for (bool input : {true, false}) {
      Plan broken = *plan;
      Kernel &kernel = *broken.mutable_kernels(k);
      auto &list = input ? *kernel.mutable_inputs() : *kernel.mutable_outputs();
      if (list.empty())
        continue;
      // moe_gate_grad's last input, the scores' gradient, is optional.
      if (input && kernel.op() == "moe_gate_grad" && list.size() == 4)
        list.RemoveLast();
      list.RemoveLast();
      auto executor = exec::Executor::create(broken, "tiny-v3");
      ASSERT_FALSE(executor.ok()) << kernel.op();
      EXPECT_NE(executor.error().message.find("kernel " + std::to_string(k) +
                                              " (" + kernel.op() + ")"),
                std::string::npos)
          << executor.error().message;
    }
  }
  EXPECT_GE(ops.size(), 40u);
}

} // namespace
} // namespace dsflow
