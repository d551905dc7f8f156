//===- LrSchedule.h - Warmup then cosine decay ------------------*- C++ -*-===//
#ifndef DSFLOW_RUNTIME_TRAIN_LRSCHEDULE_H
#define DSFLOW_RUNTIME_TRAIN_LRSCHEDULE_H

#include "schemas/plan.pb.h"

#include <algorithm>
#include <cmath>

namespace dsflow::train {

/// The learning rate of step `step` (0-based): linear warmup from lr/warmup to
/// lr over warmup_steps, then cosine decay to min_lr at total_steps, then min_lr.
inline double learningRate(const TrainingConfig &t, int64_t step) {
  if (step < t.warmup_steps())
    return t.learning_rate() * double(step + 1) / double(t.warmup_steps());
  int64_t decaySteps = std::max<int64_t>(1, t.total_steps() - t.warmup_steps());
  double progress =
      std::min(1.0, double(step - t.warmup_steps()) / double(decaySteps));
  double cosine = 0.5 * (1.0 + std::cos(M_PI * progress));
  return t.min_learning_rate() +
         (t.learning_rate() - t.min_learning_rate()) * cosine;
}

} // namespace dsflow::train

#endif // DSFLOW_RUNTIME_TRAIN_LRSCHEDULE_H
