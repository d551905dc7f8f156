//===- DeepSeekFigures.h - The published bubble and memory figures -*- C++
//-*-===//
//
// DeepSeek's comparison of pipeline schedules (DeepSeek-V3 report table 2 and
// the DualPipe README), written as functions of pp and the chunk costs, so the
// simulated streams can be checked against them:
//   1F1B       (PP-1)(F+B)           1x parameters  PP activations    PP ranks
//   ZB1P       (PP-1)(F+B-2W)        1x             PP                PP
//   DualPipe   (PP/2-1)(F&B+B-3W)    2x             PP+1              PP
//   DualPipeV  (PP/2-1)(F&B+B-3W)    2x             PP+1              PP/2
// PP is the number of pipeline stages; parameters are per rank in units of
// one stage of the PP-stage split; activations in chunks.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_COMPILER_SCHEDULE_DEEPSEEKFIGURES_H
#define DSFLOW_COMPILER_SCHEDULE_DEEPSEEKFIGURES_H

#include "Schedule/PipelineSchedule.h"
#include "Schedule/ScheduleSimulation.h"

#include <string>

namespace dsflow::schedule {

struct ScheduleFigures {
  double bubble = 0;
  int parameterCopies = 0;
  int activations = 0;
  int ranks = 0;
};

ScheduleFigures deepSeekFigures(ScheduleKind kind, int pp,
                                const ChunkCosts &costs);

/// The bubble formula as text, e.g. "(PP/2-1)(F&B+B-3W)".
const char *bubbleFormula(ScheduleKind kind);

/// "" when the simulated bubble of the largest rank equals the formula for
/// these sizes and costs, else the condition the formula assumes (measured:
/// docs/pipeline.md): 1F1B none; ZB1P micro-batches >= PP, W <= F and
/// W <= B - W; DualPipe and DualPipeV F = B - W, W <= F and
/// max(F, B) <= F&B <= F + B.
std::string figureCondition(ScheduleKind kind, int pp, int microBatches,
                            const ChunkCosts &costs);

} // namespace dsflow::schedule

#endif // DSFLOW_COMPILER_SCHEDULE_DEEPSEEKFIGURES_H
