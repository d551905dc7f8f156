//===- AdamWTest.cpp - The host optimizer against its scalar formula ------===//
//
// train/AdamW.cpp is compiled so that its element loop vectorizes
// (-fno-math-errno). Vector square roots and divisions round like scalar
// ones, so the updates must equal, bit for bit, the formula of
// train/AdamW.h evaluated element by element here (where the loop stays
// scalar), with float and BF16 moments, over sizes with vector tails.
//
//===----------------------------------------------------------------------===//
#include "train/AdamW.h"
#include "exec/Memory.h"
#include "io/BFloat16.h"
#include "plan/PlanFile.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

namespace dsflow {
namespace {

/// Parameters of shapes [7, 9] (decayed) and [13] (not), with gradients.
Plan optimizerPlan() {
  Plan plan;
  TrainingConfig &t = *plan.mutable_training();
  t.set_beta1(0.9);
  t.set_beta2(0.95);
  t.set_epsilon(1e-8);
  t.set_weight_decay(0.1);
  int64_t offset = 0;
  auto add = [&](const char *name, std::vector<int64_t> shape) {
    for (BufferKind kind : {PARAMETER, GRADIENT}) {
      Buffer *b = plan.add_buffers();
      b->set_name(name);
      b->set_dtype(DTYPE_F32);
      for (int64_t d : shape)
        b->add_shape(d);
      b->set_kind(kind);
      b->set_offset(offset);
      b->set_bytes(numElements(*b) * 4);
      if (kind == GRADIENT)
        b->set_gradient_of(plan.buffers_size() - 2);
    }
    offset += plan.buffers(plan.buffers_size() - 1).bytes();
  };
  add("w", {7, 9});
  add("norm", {13});
  plan.mutable_memory()->set_parameter_bytes(offset);
  plan.mutable_memory()->set_gradient_bytes(offset);
  return plan;
}

float *floats(exec::Memory &memory, int32_t b) {
  return reinterpret_cast<float *>(memory.data(b));
}

template <typename Moment> float read(Moment m) { return float(m); }
template <> float read(io::BF16 m) { return io::bf16ToFloat(m); }
template <typename Moment> Moment stored(float x) { return x; }
template <> io::BF16 stored(float x) { return io::floatToBf16(x); }

template <typename Moment> void expectScalarFormula(bool bf16Moments) {
  Plan plan = optimizerPlan();
  exec::Memory memory(plan);
  train::AdamW optimizer(plan, bf16Moments);
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  // The reference: parameters, moments, per buffer pair (param, grad).
  std::vector<std::vector<float>> p(2);
  std::vector<std::vector<Moment>> m(2), v(2);
  for (int k = 0; k < 2; ++k) {
    int64_t n = numElements(plan.buffers(2 * k));
    // Parameters no larger than the updates, so that a differently
    // rounded update shows in them.
    for (int64_t i = 0; i < n; ++i)
      floats(memory, 2 * k)[i] = normal(rng) * 1e-3f;
    p[k].assign(floats(memory, 2 * k), floats(memory, 2 * k) + n);
    m[k].assign(n, stored<Moment>(0.0f));
    v[k].assign(n, stored<Moment>(0.0f));
  }
  const double lr = 3e-3, gradScale = 0.37;
  for (int step = 1; step <= 3; ++step) {
    for (int k = 0; k < 2; ++k)
      for (int64_t i = 0; i < int64_t(p[k].size()); ++i)
        floats(memory, 2 * k + 1)[i] = normal(rng) * 1e-3f;
    optimizer.step(memory, lr, gradScale);
    const float beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f;
    const float stepSize = float(lr / (1.0 - std::pow(0.9, step)));
    const float sqrtCorrection2 = float(std::sqrt(1.0 - std::pow(0.95, step)));
    for (int k = 0; k < 2; ++k) {
      const float decay = k == 0 ? float(1.0 - lr * 0.1) : 1.0f;
      for (int64_t i = 0; i < int64_t(p[k].size()); ++i) {
        float grad = float(floats(memory, 2 * k + 1)[i] * gradScale);
        float mi = beta1 * read(m[k][i]) + (1.0f - beta1) * grad;
        float vi = beta2 * read(v[k][i]) + (1.0f - beta2) * grad * grad;
        m[k][i] = stored<Moment>(mi);
        v[k][i] = stored<Moment>(vi);
        p[k][i] = p[k][i] * decay -
                  stepSize * mi / (std::sqrt(vi) / sqrtCorrection2 + eps);
        ASSERT_EQ(std::memcmp(&p[k][i], &floats(memory, 2 * k)[i], 4), 0)
            << "step " << step << ", tensor " << k << ", element " << i << ": "
            << p[k][i] << " against " << floats(memory, 2 * k)[i];
      }
    }
  }
}

TEST(AdamW, StepsEqualTheScalarFormulaBitForBit) {
  expectScalarFormula<float>(false);
}

TEST(AdamW, Bf16MomentsEqualTheScalarFormulaBitForBit) {
  expectScalarFormula<io::BF16>(true);
}

} // namespace
} // namespace dsflow
