//===- DeepSeekFigures.cpp - The published figures as functions -----------===//
#include "Schedule/DeepSeekFigures.h"

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

} // namespace dsflow::schedule
