//===- PipelineSchedule.h - Per-rank pipeline instruction streams -*- C++
//-*-===//
//
// A pipeline schedule is, per rank, an ordered stream of instructions: compute
// (a forward chunk, a backward chunk whole or split into its input- and
// weight-gradient parts, or a forward and a backward chunk run as one
// overlapped pair) and point-to-point communication (activations travel to the
// next stage, gradients to the previous one).
//
// The model is split into `stages` pipeline stages. A micro-batch travels in
// one of two directions: direction 0 enters at stage 0 on rank 0; direction 1
// (DualPipe only) enters at stage 0 on the last rank. `holder[d][s]` is the
// rank that computes stage s for micro-batches of direction d:
//   1F1B, ZB1P   PP ranks, holder[0][s] = s
//   DualPipe     PP ranks, holder[0][s] = s, holder[1][s] = PP-1-s: rank r
//                holds stages r and PP-1-r (two copies of every stage)
//   DualPipeV    PP/2 ranks, holder[0][s] = s for s < PP/2 and PP-1-s after:
//                micro-batches go down the ranks and back up (a V)
//
// Chunks are further split into attention, dispatch, MLP and combine: an
// overlapped forward-backward pair runs them interleaved (DeepSeek-V3 report,
// figure 4) so each half's all-to-all hides behind the other half's compute.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_COMPILER_SCHEDULE_PIPELINESCHEDULE_H
#define DSFLOW_COMPILER_SCHEDULE_PIPELINESCHEDULE_H

#include <array>
#include <optional>
#include <string>
#include <vector>

namespace dsflow::schedule {

enum class ScheduleKind { OneFOneB, ZeroBubble1P, DualPipe, DualPipeV };

/// "1f1b", "zb1p", "dualpipe", "dualpipev" (the tool's spelling).
const char *scheduleName(ScheduleKind kind);
std::optional<ScheduleKind> parseScheduleKind(const std::string &name);

enum class Op {
  // Compute.
  Forward,
  BackwardInput,   // the input-gradient part of a backward chunk (B - W)
  BackwardWeight,  // the weight-gradient part (W), after its BackwardInput
  FullBackward,    // both parts at once (B)
  ForwardBackward, // a forward and a full backward chunk, overlapped (F&B)
  // Communication: the message carries the output of `chunk`'s compute.
  SendActivation, // to the holder of chunk.stage + 1
  RecvActivation, // from the holder of chunk.stage
  SendGradient,   // to the holder of chunk.stage - 1
  RecvGradient,   // from the holder of chunk.stage
};

bool isCompute(Op op);
bool isSend(Op op);
bool isRecv(Op op);

/// One micro-batch at one stage.
struct Chunk {
  int microBatch = 0;
  int stage = 0;
  bool operator==(const Chunk &o) const {
    return microBatch == o.microBatch && stage == o.stage;
  }
};

struct Instruction {
  Op op = Op::Forward;
  /// Compute: the chunk (the forward half of a ForwardBackward).
  /// Communication: the chunk whose output travels; an activation goes from
  /// chunk.stage to chunk.stage + 1, a gradient to chunk.stage - 1.
  Chunk chunk;
  /// ForwardBackward: the backward half.
  Chunk backward;
  /// Communication: the other rank.
  int peer = -1;
};

/// The four sub-chunks of a chunk (a MoE layer group): attention and MLP are
/// compute, dispatch and combine are all-to-all communication.
enum class SubChunk { Attention, Dispatch, Mlp, Combine };
enum class Half { Forward, Backward };

/// One step of an overlapped pair: a compute sub-chunk of one half runs while
/// a communication sub-chunk of the other half is in flight.
struct OverlapSlot {
  SubChunk compute;
  Half computeHalf;
  SubChunk communication;
  Half communicationHalf;
};

/// The interleaved order of a ForwardBackward pair (DeepSeek-V3 figure 4):
/// the backward runs combine, MLP, dispatch, attention while the forward runs
/// attention, dispatch, MLP, combine, each compute hiding the other's
/// all-to-all.
const std::array<OverlapSlot, 4> &forwardBackwardOverlap();

const char *subChunkName(SubChunk sub);

struct PipelineSchedule {
  ScheduleKind kind = ScheduleKind::OneFOneB;
  /// Pipeline stages the model is split into (PP).
  int stages = 0;
  int ranks = 0;
  int microBatches = 0;
  /// Per micro-batch: 0 or 1.
  std::vector<int> direction;
  /// [direction][stage] -> rank.
  std::vector<std::vector<int>> holder;
  /// Per rank, in execution order.
  std::vector<std::vector<Instruction>> streams;

  int rankOf(int microBatch, int stage) const {
    return holder[direction[microBatch]][stage];
  }
  /// The micro-batch's number within its direction (figure labels).
  int indexInDirection(int microBatch) const;
  /// Distinct stages rank `rank` holds.
  std::vector<int> stagesHeld(int rank) const;
};

/// An empty schedule (no instructions yet) with its placement as above; for
/// DualPipe the first half of the micro-batches go in direction 0.
PipelineSchedule makeSchedule(ScheduleKind kind, int stages, int ranks,
                              int microBatches);

/// "F", "Bi", "W", "B", "F&B", "send-act", ... (the stream listing's names).
const char *opName(Op op);

/// "mb3 s2".
std::string describe(const Chunk &chunk);

/// One instruction as text, e.g. "F mb3 s2", "recv-act mb3 s1 from r1",
/// "F&B F mb12 s0 + B mb3 s7 [attn.F|combine.B mlp.B|dispatch.F ...]".
std::string describe(const Instruction &instruction);

} // namespace dsflow::schedule

#endif // DSFLOW_COMPILER_SCHEDULE_PIPELINESCHEDULE_H
