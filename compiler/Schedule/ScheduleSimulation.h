//===- ScheduleSimulation.h - Executing instruction streams -----*- C++ -*-===//
//
// Runs every rank's stream with given chunk costs and zero-latency messages:
//  - a rank runs its instructions in order, one at a time;
//  - a compute instruction starts when the rank is free; its inputs must be on
//    the rank by then (an earlier receive or an earlier compute of this rank),
//    else the stream is wrong;
//  - a send takes no time and never blocks;
//  - a receive completes when its matching send has been issued. Messages are
//    matched in order per (sender, receiver, activation | gradient), as MPI
//    matches a tag, so a receive that expects another payload than the one
//    sent is an error, and a stream where no rank can move on is a deadlock,
//    reported with what each stuck rank waits on.
// Busy time is the sum of a rank's compute costs; its bubble is the makespan
// minus busy time (every rank starts at 0 and the step ends when the last rank
// finishes). Peak activations: the most chunks of a rank whose forward has
// started and whose backward (the W part, when split) has not finished.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_COMPILER_SCHEDULE_SCHEDULESIMULATION_H
#define DSFLOW_COMPILER_SCHEDULE_SCHEDULESIMULATION_H

#include "Schedule/PipelineSchedule.h"
#include "io/Status.h"

#include <vector>

namespace dsflow::schedule {

/// Time of a forward chunk (F), a full backward chunk (B), its weight-gradient
/// part (W; the input-gradient part costs B - W) and an overlapped forward and
/// backward pair (F&B).
struct ChunkCosts {
  double forward = 1;
  double backward = 2;
  double weight = 1;
  double forwardBackward = 3;
  /// Per stage, what its chunks cost relative to the figures above (empty:
  /// every stage 1). An F&B pair of stages f and b costs forwardBackward x
  /// (forward x f's + backward x b's) / (forward + backward).
  std::vector<double> stageScale;
};

/// Finite, >= 0, and W <= B.
io::Status validateCosts(const ChunkCosts &costs);

/// The cost of one instruction (0 for communication).
double instructionCost(const Instruction &instruction, const ChunkCosts &costs);

struct InstructionTime {
  double start = 0;
  double end = 0;
};

struct RankReport {
  double busy = 0;
  /// makespan - busy.
  double bubble = 0;
  int peakActivations = 0;
  /// Stages this rank holds, in units of one stage of the pp-stage split
  /// (1F1B: 1; DualPipe and DualPipeV: 2).
  int parameterCopies = 0;
};

struct SimulationResult {
  /// [rank][instruction], as in the schedule's streams.
  std::vector<std::vector<InstructionTime>> times;
  double makespan = 0;
  std::vector<RankReport> ranks;
};

/// Static checks: every (micro-batch, stage) has exactly one forward and
/// exactly one full backward or one input-gradient and one weight-gradient
/// part, on the rank that holds it; every message names its right peer.
io::Status checkStreams(const PipelineSchedule &schedule);

/// What a chunk of one stage holds for its backward.
struct ChunkActivations {
  /// From its forward until its backward ends.
  double kept = 0;
  /// When the backward is split (B, then W later): the part of `kept` the W
  /// part reads, held until W ends (the rest is freed after B)...
  double keptForWeights = 0;
  /// ...and what B writes for W, held from B until W ends.
  double waitingForWeights = 0;
};

/// The most activation bytes one rank's stream holds at once, a chunk of
/// stage s holding `perStage[s]`; a pair holds both of its chunks while it
/// runs. With {1, 1, 0} for every stage: the peak in chunks
/// (RankReport::peakActivations).
double peakLiveActivations(const std::vector<Instruction> &stream,
                           const std::vector<ChunkActivations> &perStage);

/// checkStreams, then the execution described above.
io::Expected<SimulationResult> simulate(const PipelineSchedule &schedule,
                                        const ChunkCosts &costs);

} // namespace dsflow::schedule

#endif // DSFLOW_COMPILER_SCHEDULE_SCHEDULESIMULATION_H
