//===- PipelineRunner.cpp - A rank's pipeline stages through a step -------===//
#include "train/PipelineRunner.h"

#include "Schedule/ScheduleGenerators.h"

#include <algorithm>
#include <set>
#include <tuple>

namespace dsflow::train {

/// The plan's schedule for its stages and micro-batches.
static io::Expected<schedule::PipelineSchedule> scheduleOf(const Plan &p) {
  std::optional<schedule::ScheduleKind> kind =
      schedule::parseScheduleKind(p.pipeline().schedule());
  if (!kind)
    return io::makeError("plan", "unknown pipeline schedule '" +
                                     p.pipeline().schedule() + "'");
  io::Expected<schedule::PipelineSchedule> s = schedule::generateSchedule(
      *kind, p.pipeline().stages_size(), int(p.training().micro_batches()));
  if (!s)
    return io::makeError("plan", s.error().message);
  return s;
}

io::Expected<PipelineRunner::StageHolders>
PipelineRunner::stageHolders(const Plan &plan) {
  io::Expected<schedule::PipelineSchedule> s = scheduleOf(plan);
  if (!s)
    return s.error();
  StageHolders h;
  h.first.assign(s->stages, s->ranks);
  h.held.resize(s->ranks);
  for (const std::vector<int> &holders : s->holder)
    for (int stage = 0; stage < int(holders.size()); ++stage) {
      h.held[holders[stage]].insert(stage);
      h.first[stage] = std::min(h.first[stage], holders[stage]);
    }
  return h;
}

io::Expected<std::unique_ptr<PipelineRunner>>
PipelineRunner::create(exec::Executor &first, dist::Communicator &world) {
  const Plan &p = first.plan();
  std::unique_ptr<PipelineRunner> r(new PipelineRunner(world));
  int pp = p.cluster().pp();
  io::Expected<schedule::PipelineSchedule> s = scheduleOf(p);
  if (!s)
    return s.error();
  if (s->ranks != pp || world.size() % pp != 0)
    return io::makeError("plan", "the schedule runs on " +
                                     std::to_string(s->ranks) +
                                     " pipeline ranks, the cluster has pp " +
                                     std::to_string(pp));
  r->plan = std::move(*s);
  r->inner = world.size() / pp;
  r->pipelineRank = world.rank() / r->inner;
  io::Expected<stages::KernelStages> split = stages::assignKernelStages(p);
  if (!split)
    return split.error();
  int stageCount = p.pipeline().stages_size();
  r->forwardKernels.assign(stageCount, std::vector<char>(p.kernels_size(), 0));
  r->backwardKernels = r->forwardKernels;
  r->inputGradientKernels = r->forwardKernels;
  r->weightGradientKernels = r->forwardKernels;
  std::vector<char> weightPart = stages::weightGradientPart(p);
  for (int k = 0; k < p.kernels_size(); ++k)
    if (int stage = split->stageOfKernel[k]; stage >= 0) {
      (p.kernels(k).backward() ? r->backwardKernels
                               : r->forwardKernels)[stage][k] = 1;
      if (p.kernels(k).backward())
        (weightPart[k] ? r->weightGradientKernels
                       : r->inputGradientKernels)[stage][k] = 1;
    }
  r->position.assign(p.kernels_size(), -1);
  std::vector<int32_t> writer(p.buffers_size(), -1);
  for (int i = 0; i < p.programs(0).kernels_size(); ++i) {
    int32_t k = p.programs(0).kernels(i);
    r->position[k] = i;
    for (int32_t b : p.kernels(k).outputs())
      if (writer[b] < 0)
        writer[b] = k;
  }
  std::set<std::tuple<int32_t, int, int>> seen;
  for (const stages::StageCrossing &c : split->crossings)
    if (seen.insert({c.buffer, c.from, c.to}).second) {
      r->crossings.push_back(c);
      r->producer.push_back(writer[c.buffer]);
    }
  // W runs on its own only if the arena was planned for it and it sends
  // nothing to another stage.
  r->deferWeights =
      p.memory().weight_gradients_deferred() &&
      std::none_of(r->producer.begin(), r->producer.end(),
                   [&](int32_t k) { return k >= 0 && weightPart[k]; });
  // One executor per micro-batch and stage of this rank, all on `first`'s
  // parameters.
  exec::Executor *next = &first;
  for (int mb = 0; mb < r->plan.microBatches; ++mb)
    for (int stage = 0; stage < stageCount; ++stage) {
      if (r->plan.rankOf(mb, stage) != r->pipelineRank)
        continue;
      if (!next) {
        io::Expected<std::unique_ptr<exec::Executor>> e =
            first.sharingParameters();
        if (!e)
          return e.error();
        next = e->get();
        r->owned.push_back(std::move(*e));
      }
      r->slots[{mb, stage}] = next;
      next = nullptr;
    }
  return r;
}

std::vector<exec::Executor *>
PipelineRunner::executorsOf(int microBatch) const {
  std::vector<exec::Executor *> out;
  for (const auto &[key, e] : slots)
    if (key.first == microBatch)
      out.push_back(e);
  return out;
}

exec::Executor *PipelineRunner::lossExecutor(int microBatch) const {
  auto it = slots.find({microBatch, plan.stages - 1});
  return it == slots.end() ? nullptr : it->second;
}

io::Status PipelineRunner::weights(const schedule::Chunk &c) {
  exec::Executor::KernelHook none = [](int32_t, bool) -> io::Status {
    return std::nullopt;
  };
  return slots.at({c.microBatch, c.stage})
      ->runKernels(weightGradientKernels[c.stage], none);
}

io::Status
PipelineRunner::chunk(const schedule::Chunk &c, bool backward,
                      const std::vector<std::vector<char>> &kernels) {
  exec::Executor &e = *slots.at({c.microBatch, c.stage});
  exec::Memory &memory = e.memory();
  int direction = plan.direction[c.microBatch];
  auto worldRankOf = [&](int stage) {
    return plan.holder[direction][stage] * inner + world.rank() % inner;
  };
  auto tag = [&](size_t crossing) {
    return int((size_t(c.microBatch) * crossings.size() + crossing) %
               dist::Communicator::kMaxTag);
  };
  std::vector<char> received(crossings.size(), 0);
  auto bytes = [&](size_t i) {
    return memory.plan().buffers(crossings[i].buffer).bytes();
  };
  auto receive = [&](size_t i) -> io::Status {
    const stages::StageCrossing &x = crossings[i];
    received[i] = 1;
    std::byte *to = memory.data(x.buffer);
    e.bufferWrittenOnHost(x.buffer); // a device reads it from the host
    if (worldRankOf(x.from) != world.rank())
      return world.receive(worldRankOf(x.from), tag(i), to, bytes(i));
    auto copy = local.find({c.microBatch, i});
    if (copy == local.end())
      return io::makeError("pipeline", "stage " + std::to_string(x.from) +
                                           " left no tensor for stage " +
                                           std::to_string(x.to) +
                                           " (internal error)");
    std::copy(copy->second.begin(), copy->second.end(), to);
    local.erase(copy);
    return std::nullopt;
  };
  auto send = [&](size_t i) -> io::Status {
    const stages::StageCrossing &x = crossings[i];
    if (io::Status s = e.bufferToHost(x.buffer)) // made on a device
      return s;
    const std::byte *from = memory.data(x.buffer);
    if (worldRankOf(x.to) != world.rank())
      return world.send(worldRankOf(x.to), tag(i), from, bytes(i));
    local[{c.microBatch, i}].assign(from, from + bytes(i));
    return std::nullopt;
  };
  auto incoming = [&](size_t i) {
    const stages::StageCrossing &x = crossings[i];
    return x.backward == backward && x.to == c.stage && !received[i];
  };
  exec::Executor::KernelHook hook = [&](int32_t k, bool after) -> io::Status {
    for (size_t i = 0; i < crossings.size(); ++i) {
      const stages::StageCrossing &x = crossings[i];
      if (!after && incoming(i) && position[producer[i]] < position[k]) {
        if (io::Status s = receive(i))
          return s;
      } else if (after && producer[i] == k && x.from == c.stage) {
        if (io::Status s = send(i))
          return s;
      }
    }
    return std::nullopt;
  };
  if (io::Status s = e.runKernels(kernels[c.stage], hook))
    return s;
  // Tensors only a later chunk of this micro-batch reads.
  for (size_t i = 0; i < crossings.size(); ++i)
    if (incoming(i))
      if (io::Status s = receive(i))
        return s;
  return std::nullopt;
}

io::Status PipelineRunner::runForward() {
  // In stage order: each rank runs the stages it holds in micro-batch 0's
  // direction, after the stages before them.
  for (int stage = 0; stage < plan.stages; ++stage)
    if (plan.rankOf(0, stage) == pipelineRank)
      if (io::Status s = chunk({0, stage}, false, forwardKernels))
        return s;
  return world.flushSends();
}

io::Status PipelineRunner::runStep() {
  using schedule::Op;
  for (const schedule::Instruction &i : plan.streams[pipelineRank]) {
    io::Status s;
    switch (i.op) {
    case Op::Forward:
      s = chunk(i.chunk, false, forwardKernels);
      break;
    case Op::BackwardInput:
      s = chunk(i.chunk, true,
                deferWeights ? inputGradientKernels : backwardKernels);
      break;
    case Op::BackwardWeight:
      if (deferWeights)
        s = weights(i.chunk);
      break;
    case Op::FullBackward:
      s = chunk(i.chunk, true, backwardKernels);
      break;
    case Op::ForwardBackward:
      s = chunk(i.chunk, false, forwardKernels);
      if (!s)
        s = chunk(i.backward, true, backwardKernels);
      break;
    default: // The schedule's own messages: chunk() sends and receives.
      break;
    }
    if (s)
      return s;
  }
  return world.flushSends();
}

} // namespace dsflow::train
