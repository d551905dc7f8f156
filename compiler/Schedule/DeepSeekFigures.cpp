//===- DeepSeekFigures.cpp - The published figures as functions -----------===//
#include "Schedule/DeepSeekFigures.h"

#include <algorithm>

namespace dsflow::schedule {

ScheduleFigures deepSeekFigures(ScheduleKind kind, int pp,
                                const ChunkCosts &c) {
  double F = c.forward, B = c.backward, W = c.weight, FB = c.forwardBackward;
  switch (kind) {
  case ScheduleKind::OneFOneB:
    return {(pp - 1) * (F + B), 1, pp, pp};
  case ScheduleKind::ZeroBubble1P:
    return {(pp - 1) * (F + B - 2 * W), 1, pp, pp};
  case ScheduleKind::DualPipe:
    return {(pp / 2 - 1) * (FB + B - 3 * W), 2, pp + 1, pp};
  case ScheduleKind::DualPipeV:
    return {(pp / 2 - 1) * (FB + B - 3 * W), 2, pp + 1, pp / 2};
  }
  return {};
}

const char *bubbleFormula(ScheduleKind kind) {
  switch (kind) {
  case ScheduleKind::OneFOneB:
    return "(PP-1)(F+B)";
  case ScheduleKind::ZeroBubble1P:
    return "(PP-1)(F+B-2W)";
  case ScheduleKind::DualPipe:
  case ScheduleKind::DualPipeV:
    return "(PP/2-1)(F&B+B-3W)";
  }
  return "?";
}

std::string figureCondition(ScheduleKind kind, int pp, int microBatches,
                            const ChunkCosts &c) {
  double F = c.forward, B = c.backward, W = c.weight, FB = c.forwardBackward;
  switch (kind) {
  case ScheduleKind::OneFOneB:
    return "";
  case ScheduleKind::ZeroBubble1P:
    // Each deferred W must fit the gap it fills, and every rank must reach
    // its steady state.
    if (microBatches >= pp && W <= F && W <= B - W)
      return "";
    return "micro-batches >= PP, W <= F and W <= B - W";
  case ScheduleKind::DualPipe:
  case ScheduleKind::DualPipeV:
    // Exact when the input-gradient part costs as much as a forward (as
    // with the common B = 2F, W = F).
    if (F == B - W && W <= F && FB >= std::max(F, B) && FB <= F + B)
      return "";
    return "F = B - W, W <= F and max(F, B) <= F&B <= F + B";
  }
  return "";
}

} // namespace dsflow::schedule
