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
      r->crossingBytes.push_back(p.buffers(c.buffer).bytes());
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

exec::OffloadCounts PipelineRunner::offloadCounts() const {
  std::set<const exec::Executor *> executors;
  for (const auto &[slot, executor] : slots)
    executors.insert(executor);
  exec::OffloadCounts sum;
  for (const exec::Executor *e : executors)
    if (e->offloading())
      sum += e->offloading()->counts();
  return sum;
}

int PipelineRunner::worldRankOf(int microBatch, int stage) const {
  return plan.holder[plan.direction[microBatch]][stage] * inner +
         world.rank() % inner;
}

int PipelineRunner::tagOf(int microBatch, size_t crossing) const {
  return int((size_t(microBatch) * crossings.size() + crossing) %
             dist::Communicator::kMaxTag);
}

bool PipelineRunner::incoming(const schedule::Chunk &c, bool backward,
                              size_t crossing) const {
  const stages::StageCrossing &x = crossings[crossing];
  return x.backward == backward && x.to == c.stage;
}

io::Status PipelineRunner::receive(const schedule::Chunk &c, size_t i) {
  exec::Executor &e = *slots.at({c.microBatch, c.stage});
  const stages::StageCrossing &x = crossings[i];
  std::byte *to = e.memory().data(x.buffer);
  e.bufferWrittenOnHost(x.buffer); // a device reads it from the host
  auto here = arrived.find({c.microBatch, i});
  if (here != arrived.end()) {
    std::copy(here->second.begin(), here->second.end(), to);
    arrived.erase(here);
    return std::nullopt;
  }
  int from = worldRankOf(c.microBatch, x.from);
  if (from != world.rank())
    return world.receive(from, tagOf(c.microBatch, i), to, bytesOf(i));
  return io::makeError("pipeline", "stage " + std::to_string(x.from) +
                                       " left no tensor for stage " +
                                       std::to_string(x.to) +
                                       " (internal error)");
}

io::Status PipelineRunner::receiveAhead(const schedule::Chunk &c,
                                        bool backward) {
  for (size_t i = 0; i < crossings.size(); ++i) {
    int from = worldRankOf(c.microBatch, crossings[i].from);
    if (!incoming(c, backward, i) || from == world.rank())
      continue;
    std::vector<std::byte> &bytes = arrived[{c.microBatch, i}];
    bytes.resize(size_t(bytesOf(i)));
    if (io::Status s = world.receive(from, tagOf(c.microBatch, i), bytes.data(),
                                     bytesOf(i)))
      return s;
  }
  return std::nullopt;
}

io::Status PipelineRunner::deliver(int microBatch, size_t i,
                                   const std::byte *from) {
  int to = worldRankOf(microBatch, crossings[i].to);
  if (to != world.rank())
    return world.send(to, tagOf(microBatch, i), from, bytesOf(i));
  arrived[{microBatch, i}].assign(from, from + bytesOf(i));
  return std::nullopt;
}

/// One chunk's kernels with its stage's messages around them: the inputs
/// received before their first reader, the outputs sent after their
/// producer (with `later`: copied out into it as the producer left them, to
/// be sent after the pair).
class PipelineRunner::ChunkRun {
public:
  ChunkRun(PipelineRunner &runner, const schedule::Chunk &c, bool backward,
           std::vector<Outgoing> *later)
      : runner(runner), c(c), backward(backward), later(later),
        executor(*runner.slots.at({c.microBatch, c.stage})),
        received(runner.crossings.size(), 0) {}

  exec::Executor::KernelHook hook() {
    return [this](int32_t k, bool after) { return around(k, after); };
  }
  /// Receives the tensors only a later chunk of this micro-batch reads.
  io::Status receiveRest() {
    for (size_t i = 0; i < runner.crossings.size(); ++i)
      if (runner.incoming(c, backward, i) && !received[i])
        if (io::Status s = runner.receive(c, i))
          return s;
    return std::nullopt;
  }

  PipelineRunner &runner;
  const schedule::Chunk c;
  const bool backward;
  std::vector<Outgoing> *const later;
  exec::Executor &executor;

private:
  io::Status around(int32_t k, bool after) {
    for (size_t i = 0; i < runner.crossings.size(); ++i) {
      const stages::StageCrossing &x = runner.crossings[i];
      if (!after && runner.incoming(c, backward, i) && !received[i] &&
          runner.position[runner.producer[i]] < runner.position[k]) {
        received[i] = 1;
        if (io::Status s = runner.receive(c, i))
          return s;
      } else if (after && runner.producer[i] == k && x.from == c.stage) {
        if (io::Status s = send(i))
          return s;
      }
    }
    return std::nullopt;
  }
  io::Status send(size_t i) {
    int32_t buffer = runner.crossings[i].buffer;
    if (later) { // a copy as the producer left it, sent after the pair
      later->push_back({c.microBatch, i, &executor,
                        std::vector<std::byte>(size_t(runner.bytesOf(i)))});
      return executor.startCopyOut(buffer, later->back().bytes.data());
    }
    if (io::Status s = executor.bufferToHost(buffer)) // made on a device
      return s;
    return runner.deliver(c.microBatch, i, executor.memory().data(buffer));
  }
  std::vector<char> received;
};

io::Status
PipelineRunner::chunk(const schedule::Chunk &c, bool backward,
                      const std::vector<std::vector<char>> &kernels) {
  ChunkRun run(*this, c, backward, nullptr);
  if (io::Status s = run.executor.runKernels(kernels[c.stage], run.hook()))
    return s;
  return run.receiveRest();
}

io::Status PipelineRunner::pair(const schedule::Chunk &f,
                                const schedule::Chunk &b) {
  exec::Executor &forward = *slots.at({f.microBatch, f.stage});
  exec::Executor &backward = *slots.at({b.microBatch, b.stage});
  if (!forward.offloading()) { // the CPU: one after the other
    if (io::Status s = chunk(f, false, forwardKernels))
      return s;
    return chunk(b, true, backwardKernels);
  }
  auto waits = [&] {
    return forward.offloading()->counts().waitedDownloads +
           backward.offloading()->counts().waitedDownloads;
  };
  if (io::Status s = receiveAhead(f, false))
    return s;
  if (io::Status s = receiveAhead(b, true))
    return s;
  int64_t waitsBefore = waits();
  std::vector<Outgoing> fromForward, fromBackward;
  ChunkRun runs[2] = {{*this, f, false, &fromForward},
                      {*this, b, true, &fromBackward}};
  exec::Executor::KernelHook hooks[2] = {runs[0].hook(), runs[1].hook()};
  const std::vector<char> *kernels[2] = {&forwardKernels[f.stage],
                                         &backwardKernels[b.stage]};
  for (int i = 0; i < 2; ++i)
    if (io::Status s = runs[i].executor.startKernels(*kernels[i], hooks[i]))
      return s;
  // Each chunk launches until the host would wait for the device, then the
  // other's turn: the device has the other's kernels to run meanwhile.
  bool launchedAll[2] = {false, false};
  int64_t switches = 0;
  while (!launchedAll[0] || !launchedAll[1])
    for (int i = 0; i < 2; ++i) {
      if (launchedAll[i])
        continue;
      io::Expected<bool> all = runs[i].executor.launchKernels();
      if (!all)
        return all.error();
      launchedAll[i] = *all;
      switches += !*all;
    }
  for (ChunkRun &run : runs)
    if (io::Status s = run.receiveRest())
      return s;
  ++pairs.overlapped;
  pairs.withoutWaits += switches == 0 && waits() == waitsBefore;
  pairs.interleavedWaits += switches;
  // The forward's messages leave as soon as it is done, while the
  // backward may still run.
  for (std::vector<Outgoing> *out : {&fromForward, &fromBackward}) {
    if (!out->empty())
      if (io::Status s = out->front().executor->finishCopiesOut())
        return s;
    for (const Outgoing &o : *out)
      if (io::Status s = deliver(o.microBatch, o.crossing, o.bytes.data()))
        return s;
  }
  if (io::Status s = forward.finishKernels())
    return s;
  return backward.finishKernels();
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
      s = pair(i.chunk, i.backward);
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
