//===- PipelineSchedule.cpp - Instruction model, placement, listing -------===//
#include "Schedule/PipelineSchedule.h"

#include <algorithm>
#include <set>

namespace dsflow::schedule {

namespace {
struct KindName {
  ScheduleKind kind;
  const char *name;
};
constexpr KindName kKindNames[] = {{ScheduleKind::OneFOneB, "1f1b"},
                                   {ScheduleKind::ZeroBubble1P, "zb1p"},
                                   {ScheduleKind::DualPipe, "dualpipe"},
                                   {ScheduleKind::DualPipeV, "dualpipev"}};
} // namespace

const char *scheduleName(ScheduleKind kind) {
  for (const KindName &k : kKindNames)
    if (k.kind == kind)
      return k.name;
  return "?";
}

std::optional<ScheduleKind> parseScheduleKind(const std::string &name) {
  for (const KindName &k : kKindNames)
    if (name == k.name)
      return k.kind;
  return std::nullopt;
}

bool isCompute(Op op) { return op <= Op::ForwardBackward; }
bool isSend(Op op) {
  return op == Op::SendActivation || op == Op::SendGradient;
}
bool isRecv(Op op) {
  return op == Op::RecvActivation || op == Op::RecvGradient;
}

const std::array<OverlapSlot, 4> &forwardBackwardOverlap() {
  static const std::array<OverlapSlot, 4> slots = {{
      {SubChunk::Attention, Half::Forward, SubChunk::Combine, Half::Backward},
      {SubChunk::Mlp, Half::Backward, SubChunk::Dispatch, Half::Forward},
      {SubChunk::Mlp, Half::Forward, SubChunk::Dispatch, Half::Backward},
      {SubChunk::Attention, Half::Backward, SubChunk::Combine, Half::Forward},
  }};
  return slots;
}

const char *subChunkName(SubChunk sub) {
  switch (sub) {
  case SubChunk::Attention:
    return "attn";
  case SubChunk::Dispatch:
    return "dispatch";
  case SubChunk::Mlp:
    return "mlp";
  case SubChunk::Combine:
    return "combine";
  }
  return "?";
}

int PipelineSchedule::indexInDirection(int microBatch) const {
  // Direction 1 holds the second half of the micro-batches.
  return direction[microBatch] == 0 ? microBatch
                                    : microBatch - microBatches / 2;
}

std::vector<int> PipelineSchedule::stagesHeld(int rank) const {
  std::set<int> held;
  for (const std::vector<int> &byStage : holder)
    for (int s = 0; s < stages; ++s)
      if (byStage[s] == rank)
        held.insert(s);
  return {held.begin(), held.end()};
}

PipelineSchedule makeSchedule(ScheduleKind kind, int stages, int ranks,
                              int microBatches) {
  PipelineSchedule s;
  s.kind = kind;
  s.stages = stages;
  s.ranks = ranks;
  s.microBatches = microBatches;
  bool dual = kind == ScheduleKind::DualPipe;
  s.direction.assign(microBatches, 0);
  if (dual)
    std::fill(s.direction.begin() + microBatches / 2, s.direction.end(), 1);
  s.holder.assign(dual ? 2 : 1, std::vector<int>(stages));
  for (int st = 0; st < stages; ++st) {
    s.holder[0][st] =
        kind == ScheduleKind::DualPipeV && st >= ranks ? stages - 1 - st : st;
    if (dual)
      s.holder[1][st] = stages - 1 - st;
  }
  s.streams.assign(ranks, {});
  return s;
}

const char *opName(Op op) {
  switch (op) {
  case Op::Forward:
    return "F";
  case Op::BackwardInput:
    return "Bi";
  case Op::BackwardWeight:
    return "W";
  case Op::FullBackward:
    return "B";
  case Op::ForwardBackward:
    return "F&B";
  case Op::SendActivation:
    return "send-act";
  case Op::RecvActivation:
    return "recv-act";
  case Op::SendGradient:
    return "send-grad";
  case Op::RecvGradient:
    return "recv-grad";
  }
  return "?";
}

std::string describe(const Chunk &c) {
  return "mb" + std::to_string(c.microBatch) + " s" + std::to_string(c.stage);
}

std::string describe(const Instruction &in) {
  std::string text = opName(in.op);
  if (in.op == Op::ForwardBackward) {
    text += " F " + describe(in.chunk) + " + B " + describe(in.backward) + " [";
    const char *half[] = {"F", "B"};
    bool first = true;
    for (const OverlapSlot &slot : forwardBackwardOverlap()) {
      text += first ? "" : " ";
      first = false;
      text += std::string(subChunkName(slot.compute)) + "." +
              half[int(slot.computeHalf)] + "|" +
              subChunkName(slot.communication) + "." +
              half[int(slot.communicationHalf)];
    }
    return text + "]";
  }
  text += " " + describe(in.chunk);
  if (isSend(in.op))
    text += " to r" + std::to_string(in.peer);
  else if (isRecv(in.op))
    text += " from r" + std::to_string(in.peer);
  return text;
}

} // namespace dsflow::schedule
