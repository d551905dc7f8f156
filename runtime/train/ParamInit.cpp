//===- ParamInit.cpp - Deterministic parameter initialization -------------===//
#include "train/ParamInit.h"

#include "io/Fnv1a.h"
#include "plan/PlanFile.h"

#include <random>

namespace dsflow::train {

void initializeParameters(exec::Memory &memory, uint64_t seed, double std) {
  const Plan &plan = memory.plan();
  for (int32_t i = 0; i < plan.buffers_size(); ++i) {
    const Buffer &b = plan.buffers(i);
    // Each tensor has its own seed: leaving one out (exec/Memory.h) does not
    // change the others.
    if (b.kind() != PARAMETER || b.dtype() != DTYPE_F32 || !memory.present(i))
      continue;
    auto *values = reinterpret_cast<float *>(memory.data(i));
    int64_t n = numElements(b);
    if (b.no_grad()) {
      std::fill(values, values + n, 0.0f);
    } else if (b.shape_size() == 1) {
      std::fill(values, values + n, 1.0f);
    } else {
      std::mt19937_64 engine(seed ^
                             io::fnv1a64(b.name().data(), b.name().size()));
      std::normal_distribution<float> normal(0.0f, static_cast<float>(std));
      for (int64_t j = 0; j < n; ++j)
        values[j] = normal(engine);
    }
  }
}

} // namespace dsflow::train
