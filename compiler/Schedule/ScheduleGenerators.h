//===- ScheduleGenerators.h - 1F1B, ZB1P, DualPipe, DualPipeV ---*- C++ -*-===//
//
// Each generator returns every rank's instruction stream for `pp` pipeline
// stages and `microBatches` micro-batches, or a one-line error for sizes the
// schedule does not support:
//   oneFOneB      pp >= 1, microBatches >= 1
//   zeroBubble1P  ZB-H1: 1F1B with backward split into B and W, rank r
//                 deferring up to r weight-gradient chunks; sizes as 1F1B
//   dualPipe      pp even, microBatches even and >= 2 pp (half enter from
//                 each end); pp ranks
//   dualPipeV     pp even, microBatches >= pp; pp/2 ranks
// DualPipe and DualPipeV follow the eight steps of DeepSeek's reference
// implementation (deepseek-ai/DualPipe): nF0, nF0F1, nB1W1F1, nF0B1F1B0,
// nB1F1B0, nB1B0, nWB0, nW.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_COMPILER_SCHEDULE_SCHEDULEGENERATORS_H
#define DSFLOW_COMPILER_SCHEDULE_SCHEDULEGENERATORS_H

#include "Schedule/PipelineSchedule.h"
#include "io/Status.h"

namespace dsflow::schedule {

io::Expected<PipelineSchedule> oneFOneB(int pp, int microBatches);
io::Expected<PipelineSchedule> zeroBubble1P(int pp, int microBatches);
io::Expected<PipelineSchedule> dualPipe(int pp, int microBatches);
io::Expected<PipelineSchedule> dualPipeV(int pp, int microBatches);

/// The generator for `kind`.
io::Expected<PipelineSchedule> generateSchedule(ScheduleKind kind, int pp,
                                                int microBatches);

/// Checks the sizes for `kind` (the generators' errors, without generating).
io::Status checkScheduleSizes(ScheduleKind kind, int pp, int microBatches);

namespace detail {
/// The builders behind the generators, for sizes already checked.
PipelineSchedule buildOneFOneB(ScheduleKind kind, int pp, int microBatches);
PipelineSchedule buildDualPipe(ScheduleKind kind, int pp, int microBatches);
} // namespace detail

} // namespace dsflow::schedule

#endif // DSFLOW_COMPILER_SCHEDULE_SCHEDULEGENERATORS_H
