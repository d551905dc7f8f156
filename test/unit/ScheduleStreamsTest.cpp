//===- ScheduleStreamsTest.cpp - Generated streams, checks, pictures ------===//
//
// Every generator's streams pass the checks (each chunk computed once on its
// holder, no deadlock, every message received); broken streams are caught
// with a message naming the rank and instruction; DualPipe's two halves
// mirror each other and pair forward and backward chunks in the steady state;
// the pictures are deterministic.
//
//===----------------------------------------------------------------------===//
#include "Schedule/ChromeTrace.h"
#include "Schedule/ScheduleGenerators.h"
#include "Schedule/TimelineSvg.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>

namespace dsflow::schedule {
namespace {

const ChunkCosts kCosts{3, 5, 2, 7};

PipelineSchedule generate(ScheduleKind kind, int pp, int m) {
  io::Expected<PipelineSchedule> s = generateSchedule(kind, pp, m);
  EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
  return s.ok() ? *s : PipelineSchedule{};
}

std::string simulationError(const PipelineSchedule &s) {
  io::Expected<SimulationResult> r = simulate(s, kCosts);
  return r.ok() ? "" : r.error().message;
}

size_t find(const std::vector<Instruction> &stream, Op op, size_t from = 0) {
  for (size_t i = from; i < stream.size(); ++i)
    if (stream[i].op == op)
      return i;
  return stream.size();
}

TEST(ScheduleStreams, EveryGeneratorPassesTheChecks) {
  int schedules = 0;
  for (ScheduleKind kind : {ScheduleKind::OneFOneB, ScheduleKind::ZeroBubble1P,
                            ScheduleKind::DualPipe, ScheduleKind::DualPipeV})
    for (int pp : {1, 2, 4, 6, 8, 16})
      for (int m = 1; m <= 3 * pp + 3; ++m) {
        if (checkScheduleSizes(kind, pp, m))
          continue;
        PipelineSchedule s = generate(kind, pp, m);
        EXPECT_EQ(checkStreams(s), std::nullopt);
        EXPECT_EQ(simulationError(s), "")
            << scheduleName(kind) << " pp " << pp << " m " << m;
        ++schedules;
      }
  EXPECT_GT(schedules, 300);
}

// Counted here directly rather than through checkStreams.
TEST(ScheduleStreams, EveryChunkComputedOnceOnItsHolder) {
  for (ScheduleKind kind : {ScheduleKind::DualPipe, ScheduleKind::DualPipeV}) {
    PipelineSchedule s = generate(kind, 8, 20);
    std::map<std::pair<int, int>, std::pair<int, int>> done; // F, B or Bi+W
    for (int rank = 0; rank < s.ranks; ++rank)
      for (const Instruction &in : s.streams[rank]) {
        auto count = [&](Chunk c, bool forward, int n) {
          EXPECT_EQ(s.rankOf(c.microBatch, c.stage), rank);
          auto &d = done[{c.microBatch, c.stage}];
          (forward ? d.first : d.second) += n;
        };
        if (in.op == Op::Forward)
          count(in.chunk, true, 1);
        if (in.op == Op::FullBackward)
          count(in.chunk, false, 2);
        if (in.op == Op::BackwardInput || in.op == Op::BackwardWeight)
          count(in.chunk, false, 1);
        if (in.op == Op::ForwardBackward) {
          count(in.chunk, true, 1);
          count(in.backward, false, 2);
        }
      }
    ASSERT_EQ(done.size(), size_t(20 * 8));
    for (const auto &[chunk, n] : done)
      EXPECT_EQ(n, std::make_pair(1, 2))
          << "mb" << chunk.first << " s" << chunk.second;
  }
}

TEST(ScheduleStreams, SwappedReceivesAreCaught) {
  PipelineSchedule s = generate(ScheduleKind::OneFOneB, 4, 8);
  std::vector<Instruction> &stream = s.streams[1];
  size_t first = find(stream, Op::RecvActivation);
  size_t second = find(stream, Op::RecvActivation, first + 1);
  std::swap(stream[first], stream[second]);
  EXPECT_EQ(checkStreams(s), std::nullopt); // statically fine
  EXPECT_EQ(simulationError(s),
            "rank 1 instruction 0 (recv-act mb1 s0 from r0): message 0 from "
            "rank 0 carries mb0 s0");
}

TEST(ScheduleStreams, DeadlockNamesTheWaitingRanks) {
  // Rank 0 waits for mb0's gradient before sending mb0's activation.
  PipelineSchedule s = generate(ScheduleKind::OneFOneB, 2, 1);
  std::vector<Instruction> &stream = s.streams[0];
  size_t send = find(stream, Op::SendActivation);
  size_t recv = find(stream, Op::RecvGradient);
  ASSERT_LT(send, recv);
  std::rotate(stream.begin() + send, stream.begin() + recv,
              stream.begin() + recv + 1);
  EXPECT_EQ(simulationError(s),
            "deadlock: 2 ranks wait: rank 0 instruction 1 (recv-grad mb0 s1 "
            "from r1); rank 1 instruction 0 (recv-act mb0 s0 from r0)");
}

TEST(ScheduleStreams, MissingAndExtraMessagesAreCaught) {
  PipelineSchedule s = generate(ScheduleKind::DualPipe, 4, 8);
  // A send dropped: an earlier one is a mismatch (messages match in order),
  // the last one a receiver waiting forever.
  PipelineSchedule dropped = s;
  std::vector<Instruction> &stream = dropped.streams[0];
  stream.erase(stream.begin() + find(stream, Op::SendActivation));
  EXPECT_EQ(simulationError(dropped),
            "rank 1 instruction 0 (recv-act mb0 s0 from r0): message 0 from "
            "rank 0 carries mb1 s0");
  PipelineSchedule last = s;
  std::vector<Instruction> &tail = last.streams[0];
  size_t send = tail.size();
  for (size_t i = 0; i < tail.size(); ++i)
    if (tail[i].op == Op::SendActivation)
      send = i;
  tail.erase(tail.begin() + send);
  EXPECT_EQ(simulationError(last).rfind("deadlock: ", 0), 0u);
  // A send repeated: never received.
  PipelineSchedule extra = s;
  std::vector<Instruction> &more = extra.streams[0];
  more.insert(more.end(), more[find(more, Op::SendActivation)]);
  EXPECT_EQ(simulationError(extra),
            "rank 0 sends 1 activations to rank 1 that are never received "
            "(first: mb0 s0)");
  // A message to the wrong rank.
  PipelineSchedule wrong = s;
  wrong.streams[0][find(wrong.streams[0], Op::SendActivation)].peer = 2;
  EXPECT_NE(checkStreams(wrong)->message.find("peer is not the holder"),
            std::string::npos);
}

TEST(ScheduleStreams, ComputeOrderMistakesAreCaught) {
  PipelineSchedule s = generate(ScheduleKind::ZeroBubble1P, 4, 8);
  // A forward twice.
  PipelineSchedule twice = s;
  std::vector<Instruction> &stream = twice.streams[0];
  stream.insert(stream.begin(), stream[find(stream, Op::Forward)]);
  EXPECT_EQ(checkStreams(twice)->message,
            "mb0 s0 has 2 forwards, 0 full backwards, 1 B parts and 1 W "
            "parts; wanted one F and one B or one Bi and one W");
  // A forward before its input arrives.
  PipelineSchedule early = s;
  std::vector<Instruction> &r1 = early.streams[1];
  std::swap(r1[0], r1[1]); // recv-act mb0, F mb0 -> F mb0, recv-act mb0
  EXPECT_EQ(simulationError(early),
            "rank 1 instruction 0 (F mb0 s1): its input activation is not "
            "here (no earlier receive or forward of stage 0)");
  // W before its B part.
  PipelineSchedule weight = s;
  std::vector<Instruction> &r0 = weight.streams[0];
  size_t w = find(r0, Op::BackwardWeight);
  r0.insert(r0.begin() + find(r0, Op::BackwardInput), r0[w]);
  r0.erase(r0.begin() + w + 1);
  EXPECT_NE(simulationError(weight).find("weight gradient without an earlier "
                                         "input-gradient part"),
            std::string::npos);
}

/// Rank r's stream, mirrored to rank pp-1-r: same stages, the other
/// direction's micro-batch, mirrored peers.
Instruction mirror(const PipelineSchedule &s, Instruction in) {
  int half = s.microBatches / 2;
  auto flip = [&](Chunk &c) {
    c.microBatch = (c.microBatch + half) % (2 * half);
  };
  flip(in.chunk);
  if (in.op == Op::ForwardBackward)
    flip(in.backward);
  if (in.peer >= 0)
    in.peer = s.ranks - 1 - in.peer;
  return in;
}

bool same(const Instruction &a, const Instruction &b) {
  return a.op == b.op && a.chunk == b.chunk && a.peer == b.peer &&
         (a.op != Op::ForwardBackward || a.backward == b.backward);
}

TEST(ScheduleStreams, DualPipeHalvesMirrorEachOther) {
  for (int pp : {4, 8, 16}) {
    PipelineSchedule s = generate(ScheduleKind::DualPipe, pp, 2 * pp + 4);
    io::Expected<SimulationResult> r = simulate(s, kCosts);
    ASSERT_TRUE(r.ok());
    for (int rank = 0; rank < pp / 2; ++rank) {
      const auto &a = s.streams[rank];
      const auto &b = s.streams[pp - 1 - rank];
      ASSERT_EQ(a.size(), b.size());
      for (size_t i = 0; i < a.size(); ++i) {
        EXPECT_TRUE(same(mirror(s, a[i]), b[i]))
            << "pp " << pp << " rank " << rank << " #" << i << ": "
            << describe(a[i]) << " vs " << describe(b[i]);
        EXPECT_EQ(r->times[rank][i].start, r->times[pp - 1 - rank][i].start);
      }
    }
  }
}

// In the steady state every rank overlaps a forward of one direction with a
// backward of the other; the middle ranks run their first pair apart.
TEST(ScheduleStreams, DualPipePairsOppositeDirections) {
  int pp = 8, m = 20, n = pp / 2, c = m / 2;
  PipelineSchedule s = generate(ScheduleKind::DualPipe, pp, m);
  for (int rank = 0; rank < pp; ++rank) {
    int h = std::min(rank, pp - 1 - rank), pairs = 0;
    for (const Instruction &in : s.streams[rank]) {
      if (in.op != Op::ForwardBackward)
        continue;
      ++pairs;
      EXPECT_NE(s.direction[in.chunk.microBatch],
                s.direction[in.backward.microBatch]);
    }
    // Step 4 has 2 pairs per iteration, step 5 one.
    int step4 = c - 2 * n + h + 1;
    EXPECT_EQ(pairs, 2 * step4 + (n - h - 1) - (h == n - 1 ? 1 : 0))
        << "rank " << rank;
  }
  // DualPipeV pairs a chunk's way down with another's way up.
  PipelineSchedule v = generate(ScheduleKind::DualPipeV, 8, 20);
  for (int rank = 0; rank < v.ranks; ++rank)
    for (const Instruction &in : v.streams[rank])
      if (in.op == Op::ForwardBackward)
        EXPECT_EQ(in.chunk.stage + in.backward.stage, 7);
}

TEST(ScheduleStreams, PeakLiveActivationsWeighsChunksByStage) {
  // F s0, F s1, F&B (F s0 of mb 2 with B s1 of mb 1), B s0, then mb 2's
  // backward split into B and W.
  auto at = [](Op op, int mb, int stage) {
    Instruction in;
    in.op = op;
    in.chunk = {mb, stage};
    return in;
  };
  Instruction pair = at(Op::ForwardBackward, 2, 0);
  pair.backward = {1, 1};
  std::vector<Instruction> stream = {
      at(Op::Forward, 0, 0),
      at(Op::Forward, 1, 1),
      pair,
      at(Op::FullBackward, 0, 0),
      at(Op::BackwardInput, 2, 0),
      at(Op::BackwardWeight, 2, 0),
  };
  // Live: 1, 11, 12 while the pair runs, then 2, 1, 1, 0.
  EXPECT_DOUBLE_EQ(peakLiveActivations(stream, {{1, 1, 0}, {10, 10, 0}}), 12);
  // One unit per stage counts chunks.
  EXPECT_DOUBLE_EQ(peakLiveActivations(stream, {{1, 1, 0}, {1, 1, 0}}), 3);
  // Stage 0 keeps 4, of which W reads 1, and B writes 6 for W: after the
  // F&B pair 4 + 4 live, mb 0's backward leaves 4, B of mb 2 holds
  // 4 + 6 = 10 at its peak and then frees the 3 W does not read.
  EXPECT_DOUBLE_EQ(peakLiveActivations(stream, {{4, 1, 6}, {0, 0, 0}}), 10);
  std::vector<Instruction> split = {
      at(Op::Forward, 0, 0),        at(Op::Forward, 1, 0),
      at(Op::BackwardInput, 0, 0),  at(Op::BackwardInput, 1, 0),
      at(Op::BackwardWeight, 0, 0), at(Op::BackwardWeight, 1, 0)};
  // 4 + 4, then B of mb 0: 8 + 6 = 14, freed to 11; B of mb 1: 17.
  EXPECT_DOUBLE_EQ(peakLiveActivations(split, {{4, 1, 6}}), 17);
  // The generators' counts are this function's.
  PipelineSchedule s = generate(ScheduleKind::DualPipe, 4, 8);
  io::Expected<SimulationResult> r = simulate(s, kCosts);
  ASSERT_TRUE(r.ok());
  for (int rank = 0; rank < s.ranks; ++rank)
    EXPECT_EQ(r->ranks[rank].peakActivations,
              peakLiveActivations(s.streams[rank],
                                  std::vector<ChunkActivations>(4, {1, 1, 0})));
}

TEST(ScheduleStreams, StageScalesWeighTheChunks) {
  // 1F1B on 2 stages, 2 micro-batches; stage 1 twice as costly.
  PipelineSchedule s = generate(ScheduleKind::OneFOneB, 2, 2);
  ChunkCosts costs{1, 2, 1, 3, {1, 2}};
  io::Expected<SimulationResult> r = simulate(s, costs);
  ASSERT_TRUE(r.ok());
  EXPECT_DOUBLE_EQ(r->ranks[0].busy, 2 * (1 + 2));
  EXPECT_DOUBLE_EQ(r->ranks[1].busy, 2 * (1 + 2) * 2);
  // All scales 1: the uniform simulation.
  PipelineSchedule d = generate(ScheduleKind::DualPipe, 4, 8);
  io::Expected<SimulationResult> even = simulate(d, kCosts);
  ChunkCosts ones = kCosts;
  ones.stageScale.assign(4, 1.0);
  io::Expected<SimulationResult> same = simulate(d, ones);
  ASSERT_TRUE(even.ok() && same.ok());
  EXPECT_DOUBLE_EQ(same->makespan, even->makespan);
  // An F&B pair of stages f and b costs F&B (F f + B b) / (F + B).
  Instruction pair;
  pair.op = Op::ForwardBackward;
  pair.chunk = {0, 0};
  pair.backward = {1, 1};
  EXPECT_DOUBLE_EQ(instructionCost(pair, costs), 3.0 * (1 * 1 + 2 * 2) / 3);
  costs.stageScale = {1, -1};
  EXPECT_FALSE(simulate(s, costs).ok());
}

TEST(ScheduleStreams, SizeErrors) {
  auto error = [](ScheduleKind kind, int pp, int m) {
    io::Expected<PipelineSchedule> s = generateSchedule(kind, pp, m);
    return s.ok() ? std::string() : s.error().message;
  };
  EXPECT_EQ(error(ScheduleKind::DualPipe, 6, 10),
            "dualpipe needs an even number of micro-batches >= 2 pp (12; half "
            "enter from each end), got 10");
  EXPECT_EQ(error(ScheduleKind::DualPipe, 8, 17),
            "dualpipe needs an even number of micro-batches >= 2 pp (16; half "
            "enter from each end), got 17");
  EXPECT_EQ(error(ScheduleKind::DualPipeV, 5, 10),
            "dualpipev needs an even pp (each rank holds stages r and pp-1-r), "
            "got 5");
  EXPECT_EQ(error(ScheduleKind::DualPipeV, 8, 7),
            "dualpipev needs micro-batches >= pp (8), got 7");
  EXPECT_EQ(error(ScheduleKind::OneFOneB, 0, 4),
            "1f1b: pp must be in [1, 4096], got 0");
  EXPECT_EQ(error(ScheduleKind::ZeroBubble1P, 4, 0),
            "zb1p: micro-batches must be in [1, 1048576], got 0");
  EXPECT_EQ(error(ScheduleKind::OneFOneB, 4096, 4096),
            "1f1b: pp x micro-batches exceeds 4194304");
  EXPECT_EQ(validateCosts({1, 2, 3, 3})->message,
            "cost W (3.000000) must not exceed B (2.000000): W is part of the "
            "backward chunk");
}

TEST(SchedulePictures, TimelineAndTraceAreDeterministic) {
  PipelineSchedule s = generate(ScheduleKind::DualPipe, 4, 8);
  io::Expected<SimulationResult> r = simulate(s, kCosts);
  ASSERT_TRUE(r.ok());
  std::string svg = timelineSvg(s, *r, kCosts, "t & u");
  EXPECT_EQ(svg, timelineSvg(s, *r, kCosts, "t & u"));
  EXPECT_NE(svg.find("t &amp; u"), std::string::npos);
  EXPECT_NE(svg.find(">Device 3<"), std::string::npos);
  EXPECT_EQ(svg.find(">Device 4<"), std::string::npos);
  std::string trace = chromeTraceJson(s, *r);
  EXPECT_EQ(trace, chromeTraceJson(s, *r));
  nlohmann::json events = nlohmann::json::parse(trace)["traceEvents"];
  size_t instructions = 0, pairs = 0;
  for (const auto &stream : s.streams) {
    instructions += stream.size();
    for (const Instruction &in : stream)
      pairs += in.op == Op::ForwardBackward;
  }
  // 3 metadata events per rank, one per instruction, 8 per pair's steps.
  EXPECT_EQ(events.size(), 3 * s.ranks + instructions + 8 * pairs);
  for (const auto &e : events)
    if (e["ph"] == "X")
      EXPECT_GE(e["dur"].get<double>(), 0);
}

} // namespace
} // namespace dsflow::schedule
