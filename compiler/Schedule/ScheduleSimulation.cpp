//===- ScheduleSimulation.cpp - Stream checks and timed execution ---------===//
#include "Schedule/ScheduleSimulation.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <tuple>

namespace dsflow::schedule {

static io::IoError fail(const std::string &message) {
  return io::IoError{message};
}

static std::string at(int rank, size_t index, const Instruction &in) {
  return "rank " + std::to_string(rank) + " instruction " +
         std::to_string(index) + " (" + describe(in) + ")";
}

io::Status validateCosts(const ChunkCosts &c) {
  const std::pair<const char *, double> costs[] = {{"F", c.forward},
                                                   {"B", c.backward},
                                                   {"W", c.weight},
                                                   {"F&B", c.forwardBackward}};
  for (const auto &[name, value] : costs)
    if (!std::isfinite(value) || value < 0)
      return fail(std::string("cost ") + name +
                  " must be finite and >= 0, got " + std::to_string(value));
  for (double scale : c.stageScale)
    if (!std::isfinite(scale) || scale < 0)
      return fail("stage cost scale " + std::to_string(scale) +
                  " must be finite and >= 0");
  if (c.weight > c.backward)
    return fail("cost W (" + std::to_string(c.weight) +
                ") must not exceed B (" + std::to_string(c.backward) +
                "): W is part of the backward chunk");
  return std::nullopt;
}

double instructionCost(const Instruction &in, const ChunkCosts &c) {
  auto scale = [&](const Chunk &chunk) {
    return chunk.stage >= 0 && chunk.stage < int(c.stageScale.size())
               ? c.stageScale[chunk.stage]
               : 1.0;
  };
  double s = scale(in.chunk);
  switch (in.op) {
  case Op::Forward:
    return c.forward * s;
  case Op::BackwardInput:
    return (c.backward - c.weight) * s;
  case Op::BackwardWeight:
    return c.weight * s;
  case Op::FullBackward:
    return c.backward * s;
  case Op::ForwardBackward: {
    double pair = c.forward + c.backward;
    if (pair <= 0)
      return c.forwardBackward * s;
    return c.forwardBackward *
           (c.forward * s + c.backward * scale(in.backward)) / pair;
  }
  default:
    return 0;
  }
}

namespace {

/// What a rank knows about one (micro-batch, stage).
enum Fact : unsigned {
  kForwardDone = 1,       // this rank ran its forward
  kInputGradDone = 2,     // this rank ran its backward (or B part)
  kWeightPending = 4,     // B part done, W not yet
  kActivationPresent = 8, // its output activation is on this rank
  kGradientPresent = 16,  // the gradient it sends back is on this rank
};

struct Message {
  Chunk payload;
  double time;
};

class Simulator {
public:
  Simulator(const PipelineSchedule &s, const ChunkCosts &c)
      : s(s), costs(c), facts(s.ranks), pc(s.ranks, 0), clock(s.ranks, 0) {
    result.times.resize(s.ranks);
    for (int r = 0; r < s.ranks; ++r) {
      result.times[r].resize(s.streams[r].size());
      facts[r].assign(size_t(s.microBatches) * s.stages, 0);
    }
  }

  io::Status run();
  SimulationResult take() { return std::move(result); }

private:
  enum class Step { Done, Blocked };
  io::Expected<Step> step(int r);
  io::Status computeInputs(int r, const Instruction &in, size_t i);
  void computeEffects(int r, const Instruction &in);
  unsigned &fact(int r, Chunk c) {
    return facts[r][size_t(c.microBatch) * s.stages + c.stage];
  }
  bool has(int r, Chunk c, unsigned f) { return (fact(r, c) & f) == f; }
  /// The channel of messages from `src` to `dst` of the kind of `op`.
  std::vector<Message> &channel(int src, int dst, Op op) {
    bool gradient = op == Op::SendGradient || op == Op::RecvGradient;
    return channels[{src, dst, gradient}];
  }
  io::Status finish();

  const PipelineSchedule &s;
  ChunkCosts costs;
  std::vector<std::vector<unsigned>> facts;
  std::vector<size_t> pc;
  std::vector<double> clock;
  std::map<std::tuple<int, int, bool>, std::vector<Message>> channels;
  std::map<std::tuple<int, int, bool>, size_t> received;
  SimulationResult result;
};

io::Status Simulator::computeInputs(int r, const Instruction &in, size_t i) {
  auto missing = [&](const std::string &what) {
    return fail(at(r, i, in) + ": " + what);
  };
  int last = s.stages - 1;
  if (in.op == Op::Forward || in.op == Op::ForwardBackward) {
    Chunk c = in.chunk;
    if (c.stage > 0 && !has(r, {c.microBatch, c.stage - 1}, kActivationPresent))
      return missing("its input activation is not here (no earlier receive "
                     "or forward of stage " +
                     std::to_string(c.stage - 1) + ")");
  }
  if (in.op == Op::FullBackward || in.op == Op::BackwardInput ||
      in.op == Op::ForwardBackward) {
    Chunk c = in.op == Op::ForwardBackward ? in.backward : in.chunk;
    if (!has(r, c, kForwardDone))
      return missing("backward of mb" + std::to_string(c.microBatch) + " s" +
                     std::to_string(c.stage) + " before its forward");
    if (c.stage < last &&
        !has(r, {c.microBatch, c.stage + 1}, kGradientPresent))
      return missing("its output gradient is not here (no earlier receive "
                     "or backward of stage " +
                     std::to_string(c.stage + 1) + ")");
  }
  if (in.op == Op::BackwardWeight && !has(r, in.chunk, kWeightPending))
    return missing("weight gradient without an earlier input-gradient part");
  return std::nullopt;
}

void Simulator::computeEffects(int r, const Instruction &in) {
  if (in.op == Op::Forward || in.op == Op::ForwardBackward)
    fact(r, in.chunk) |= kForwardDone | kActivationPresent;
  if (in.op == Op::FullBackward || in.op == Op::BackwardInput ||
      in.op == Op::ForwardBackward) {
    Chunk c = in.op == Op::ForwardBackward ? in.backward : in.chunk;
    fact(r, c) |= kInputGradDone | kGradientPresent;
    if (in.op == Op::BackwardInput)
      fact(r, c) |= kWeightPending;
  }
  if (in.op == Op::BackwardWeight)
    fact(r, in.chunk) &= ~unsigned(kWeightPending);
}

io::Expected<Simulator::Step> Simulator::step(int r) {
  size_t i = pc[r];
  const Instruction &in = s.streams[r][i];
  InstructionTime &t = result.times[r][i];
  t.start = clock[r];
  if (isCompute(in.op)) {
    if (io::Status error = computeInputs(r, in, i))
      return *error;
    computeEffects(r, in);
    t.end = t.start + instructionCost(in, costs);
  } else if (isSend(in.op)) {
    unsigned needed =
        in.op == Op::SendActivation ? kForwardDone : kInputGradDone;
    if (!has(r, in.chunk, needed))
      return fail(at(r, i, in) + ": sends what this rank has not computed");
    channel(r, in.peer, in.op).push_back({in.chunk, clock[r]});
    t.end = t.start;
  } else {
    std::vector<Message> &sent = channel(in.peer, r, in.op);
    size_t &k = received[{in.peer, r, in.op == Op::RecvGradient}];
    if (k >= sent.size())
      return Step::Blocked;
    const Message &m = sent[k];
    if (!(m.payload == in.chunk))
      return fail(at(r, i, in) + ": message " + std::to_string(k) +
                  " from rank " + std::to_string(in.peer) + " carries mb" +
                  std::to_string(m.payload.microBatch) + " s" +
                  std::to_string(m.payload.stage));
    ++k;
    fact(r, in.chunk) |=
        in.op == Op::RecvActivation ? kActivationPresent : kGradientPresent;
    t.end = std::max(clock[r], m.time);
  }
  clock[r] = t.end;
  ++pc[r];
  return Step::Done;
}

io::Status Simulator::finish() {
  // A deadlock: no rank can move on, some are not finished.
  std::string stuck;
  int count = 0;
  for (int r = 0; r < s.ranks; ++r) {
    if (pc[r] == s.streams[r].size())
      continue;
    if (++count <= 4)
      stuck += (stuck.empty() ? "" : "; ") + at(r, pc[r], s.streams[r][pc[r]]);
  }
  if (count > 0)
    return fail("deadlock: " + std::to_string(count) + " ranks wait: " + stuck +
                (count > 4 ? "; ..." : ""));
  for (const auto &[key, sent] : channels) {
    size_t got = received[key];
    if (got < sent.size())
      return fail("rank " + std::to_string(std::get<0>(key)) + " sends " +
                  std::to_string(sent.size() - got) + " " +
                  (std::get<2>(key) ? "gradients" : "activations") +
                  " to rank " + std::to_string(std::get<1>(key)) +
                  " that are never received (first: mb" +
                  std::to_string(sent[got].payload.microBatch) + " s" +
                  std::to_string(sent[got].payload.stage) + ")");
  }
  return std::nullopt;
}

io::Status Simulator::run() {
  for (bool progress = true; progress;) {
    progress = false;
    for (int r = 0; r < s.ranks; ++r) {
      while (pc[r] < s.streams[r].size()) {
        io::Expected<Step> next = step(r);
        if (!next)
          return next.error();
        if (*next == Step::Blocked)
          break;
        progress = true;
      }
    }
  }
  if (io::Status error = finish())
    return error;
  result.ranks.resize(s.ranks);
  for (int r = 0; r < s.ranks; ++r) {
    result.makespan = std::max(result.makespan, clock[r]);
    RankReport &report = result.ranks[r];
    for (const Instruction &in : s.streams[r])
      report.busy += instructionCost(in, costs);
    report.peakActivations = static_cast<int>(peakLiveActivations(
        s.streams[r], std::vector<ChunkActivations>(s.stages, {1, 1, 0})));
    report.parameterCopies = static_cast<int>(s.stagesHeld(r).size());
  }
  for (RankReport &report : result.ranks)
    report.bubble = result.makespan - report.busy;
  return std::nullopt;
}

} // namespace

double peakLiveActivations(const std::vector<Instruction> &stream,
                           const std::vector<ChunkActivations> &perStage) {
  auto of = [&](const Chunk &chunk) {
    return chunk.stage >= 0 && chunk.stage < int(perStage.size())
               ? perStage[chunk.stage]
               : ChunkActivations{};
  };
  double live = 0, peak = 0;
  for (const Instruction &in : stream) {
    ChunkActivations c = of(in.chunk);
    if (in.op == Op::Forward || in.op == Op::ForwardBackward)
      live += c.kept;
    if (in.op == Op::BackwardInput)
      live += c.waitingForWeights;
    peak = std::max(peak, live);
    if (in.op == Op::FullBackward)
      live -= c.kept;
    else if (in.op == Op::BackwardInput)
      live -= c.kept - c.keptForWeights;
    else if (in.op == Op::BackwardWeight)
      live -= c.keptForWeights + c.waitingForWeights;
    else if (in.op == Op::ForwardBackward)
      live -= of(in.backward).kept;
  }
  return peak;
}

io::Status checkStreams(const PipelineSchedule &s) {
  if (static_cast<int>(s.streams.size()) != s.ranks ||
      static_cast<int>(s.direction.size()) != s.microBatches)
    return fail("malformed schedule: " + std::to_string(s.streams.size()) +
                " streams for " + std::to_string(s.ranks) + " ranks");
  // Per (micro-batch, stage): forwards, full backwards, B parts, W parts.
  std::vector<std::array<int, 4>> counts(size_t(s.microBatches) * s.stages);
  auto valid = [&](Chunk c) {
    return c.microBatch >= 0 && c.microBatch < s.microBatches && c.stage >= 0 &&
           c.stage < s.stages;
  };
  for (int r = 0; r < s.ranks; ++r) {
    for (size_t i = 0; i < s.streams[r].size(); ++i) {
      const Instruction &in = s.streams[r][i];
      bool pair = in.op == Op::ForwardBackward;
      if (!valid(in.chunk) || (pair && !valid(in.backward)))
        return fail(at(r, i, in) + ": no such micro-batch or stage");
      if (isCompute(in.op)) {
        for (Chunk c : pair ? std::vector<Chunk>{in.chunk, in.backward}
                            : std::vector<Chunk>{in.chunk})
          if (s.rankOf(c.microBatch, c.stage) != r)
            return fail(at(r, i, in) + ": stage " + std::to_string(c.stage) +
                        " of mb" + std::to_string(c.microBatch) +
                        " is held by rank " +
                        std::to_string(s.rankOf(c.microBatch, c.stage)));
        auto &forward =
            counts[size_t(in.chunk.microBatch) * s.stages + in.chunk.stage];
        if (pair) {
          ++forward[0];
          ++counts[size_t(in.backward.microBatch) * s.stages +
                   in.backward.stage][1];
        } else {
          int slot[] = {0, 2, 3, 1}; // F, Bi, W, B
          ++forward[slot[int(in.op)]];
        }
        continue;
      }
      // The peer of a message is the holder of the stage at its other end.
      bool activation =
          in.op == Op::SendActivation || in.op == Op::RecvActivation;
      int other = isSend(in.op) ? in.chunk.stage + (activation ? 1 : -1)
                                : in.chunk.stage;
      int self = isSend(in.op) ? in.chunk.stage
                               : in.chunk.stage + (activation ? 1 : -1);
      if (other < 0 || other >= s.stages || self < 0 || self >= s.stages ||
          s.rankOf(in.chunk.microBatch, self) != r ||
          s.rankOf(in.chunk.microBatch, other) != in.peer || in.peer == r)
        return fail(at(r, i, in) + ": the message's peer is not the holder "
                                   "of the stage at its other end");
    }
  }
  for (int mb = 0; mb < s.microBatches; ++mb) {
    for (int st = 0; st < s.stages; ++st) {
      const auto &n = counts[size_t(mb) * s.stages + st];
      bool once = n[0] == 1 && ((n[1] == 1 && n[2] == 0 && n[3] == 0) ||
                                (n[1] == 0 && n[2] == 1 && n[3] == 1));
      if (!once)
        return fail("mb" + std::to_string(mb) + " s" + std::to_string(st) +
                    " has " + std::to_string(n[0]) + " forwards, " +
                    std::to_string(n[1]) + " full backwards, " +
                    std::to_string(n[2]) + " B parts and " +
                    std::to_string(n[3]) +
                    " W parts; wanted one F and one B or one Bi and one W");
    }
  }
  return std::nullopt;
}

io::Expected<SimulationResult> simulate(const PipelineSchedule &schedule,
                                        const ChunkCosts &costs) {
  if (io::Status error = validateCosts(costs))
    return *error;
  if (io::Status error = checkStreams(schedule))
    return *error;
  Simulator simulator(schedule, costs);
  if (io::Status error = simulator.run())
    return *error;
  return simulator.take();
}

} // namespace dsflow::schedule
