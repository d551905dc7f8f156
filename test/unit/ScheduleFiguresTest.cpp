//===- ScheduleFiguresTest.cpp - Simulated streams vs DeepSeek's table ----===//
//
// The bubble, peak activations, parameter copies and rank count measured on
// the generated streams equal DeepSeek's published figures (report table 2,
// DualPipe README) for PP 4, 8, 16 and several micro-batch counts. The costs
// are distinct (F=3 B=5 W=2 F&B=7 and F=4 B=7 W=3 F&B=9), so that a wrong
// schedule cannot match by accident, and satisfy the condition each figure
// assumes: ZB1P W <= F, W <= B - W and micro-batches >= PP; DualPipe(V)
// F = B - W, W <= F and max(F, B) <= F&B <= F + B. Outside it the figures do
// not hold, as the last tests show.
//
//===----------------------------------------------------------------------===//
#include "Schedule/DeepSeekFigures.h"
#include "Schedule/ScheduleGenerators.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace dsflow::schedule {
namespace {

constexpr ScheduleKind kKinds[] = {
    ScheduleKind::OneFOneB, ScheduleKind::ZeroBubble1P, ScheduleKind::DualPipe,
    ScheduleKind::DualPipeV};
const ChunkCosts kCosts[] = {{3, 5, 2, 7}, {4, 7, 3, 9}};

/// PP, 2 PP, 20 and 3 PP, where the schedule allows them.
std::vector<int> microBatchCounts(ScheduleKind kind, int pp) {
  std::vector<int> counts;
  for (int m : {pp, 2 * pp, 20, 3 * pp})
    if (!checkScheduleSizes(kind, pp, m) &&
        std::find(counts.begin(), counts.end(), m) == counts.end())
      counts.push_back(m);
  return counts;
}

SimulationResult run(ScheduleKind kind, int pp, int m, const ChunkCosts &c) {
  io::Expected<PipelineSchedule> s = generateSchedule(kind, pp, m);
  EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
  if (!s)
    return {};
  io::Expected<SimulationResult> r = simulate(*s, c);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : SimulationResult{};
}

double largestBubble(const SimulationResult &r) {
  double most = 0;
  for (const RankReport &rank : r.ranks)
    most = std::max(most, rank.bubble);
  return most;
}

TEST(ScheduleFigures, SimulatedEqualsDeepSeeksTable) {
  int cases = 0;
  for (const ChunkCosts &c : kCosts)
    for (ScheduleKind kind : kKinds)
      for (int pp : {4, 8, 16})
        for (int m : microBatchCounts(kind, pp)) {
          SCOPED_TRACE(std::string(scheduleName(kind)) + " pp " +
                       std::to_string(pp) + " m " + std::to_string(m) + " F " +
                       std::to_string(c.forward));
          ASSERT_EQ(figureCondition(kind, pp, m, c), "");
          ScheduleFigures want = deepSeekFigures(kind, pp, c);
          SimulationResult r = run(kind, pp, m, c);
          ASSERT_EQ(int(r.ranks.size()), want.ranks);
          EXPECT_EQ(largestBubble(r), want.bubble);
          int peak = 0;
          for (const RankReport &rank : r.ranks) {
            EXPECT_EQ(rank.parameterCopies, want.parameterCopies);
            peak = std::max(peak, rank.peakActivations);
          }
          EXPECT_EQ(peak, want.activations);
          ++cases;
        }
  // 1F1B and ZB1P 4 counts x 3 PP, DualPipe 3 + 3 + 2, DualPipeV 4 + 4 + 4;
  // twice (two cost sets).
  EXPECT_EQ(cases, 2 * (12 + 12 + 8 + 12));
}

TEST(ScheduleFigures, OneFOneBAndZeroBubbleIdleEveryRankAlike) {
  for (ScheduleKind kind : {ScheduleKind::OneFOneB, ScheduleKind::ZeroBubble1P})
    for (int pp : {4, 8, 16}) {
      SimulationResult r = run(kind, pp, 2 * pp, kCosts[0]);
      for (const RankReport &rank : r.ranks)
        EXPECT_EQ(rank.bubble, deepSeekFigures(kind, pp, kCosts[0]).bubble);
    }
}

// DualPipe's figure is the bubble of its two middle ranks; ranks nearer the
// ends idle less (16 17 18 18 18 18 17 16 for PP 8), symmetrically.
TEST(ScheduleFigures, DualPipeMiddleRanksCarryTheFigure) {
  for (int pp : {4, 8, 16}) {
    SimulationResult r = run(ScheduleKind::DualPipe, pp, 2 * pp, kCosts[0]);
    double figure =
        deepSeekFigures(ScheduleKind::DualPipe, pp, kCosts[0]).bubble;
    EXPECT_EQ(r.ranks[pp / 2 - 1].bubble, figure);
    EXPECT_EQ(r.ranks[pp / 2].bubble, figure);
    for (int rank = 0; rank < pp; ++rank) {
      EXPECT_LE(r.ranks[rank].bubble, figure);
      EXPECT_EQ(r.ranks[rank].bubble, r.ranks[pp - 1 - rank].bubble);
    }
  }
  SimulationResult r = run(ScheduleKind::DualPipe, 8, 20, kCosts[0]);
  std::vector<double> bubbles;
  for (const RankReport &rank : r.ranks)
    bubbles.push_back(rank.bubble);
  EXPECT_EQ(bubbles, (std::vector<double>{16, 17, 18, 18, 18, 18, 17, 16}));
}

// DualPipeV on PP/2 ranks has DualPipe's per-rank bubbles of its first half.
TEST(ScheduleFigures, DualPipeVMatchesDualPipesFirstHalf) {
  for (int pp : {4, 8, 16}) {
    SimulationResult dual = run(ScheduleKind::DualPipe, pp, 2 * pp, kCosts[1]);
    SimulationResult v = run(ScheduleKind::DualPipeV, pp, 2 * pp, kCosts[1]);
    ASSERT_EQ(int(v.ranks.size()), pp / 2);
    for (int rank = 0; rank < pp / 2; ++rank)
      EXPECT_EQ(v.ranks[rank].bubble, dual.ranks[rank].bubble);
  }
}

// Outside the stated conditions the figures are not what the streams give.
TEST(ScheduleFigures, FiguresAssumeTheirConditions) {
  // ZB1P with fewer micro-batches than stages: the W cannot fill the gaps.
  ChunkCosts c{3, 5, 2, 7};
  EXPECT_EQ(largestBubble(run(ScheduleKind::ZeroBubble1P, 8, 4, c)), 36);
  EXPECT_EQ(deepSeekFigures(ScheduleKind::ZeroBubble1P, 8, c).bubble, 28);
  EXPECT_NE(figureCondition(ScheduleKind::ZeroBubble1P, 8, 4, c), "");
  // ZB1P with W > B - W.
  ChunkCosts heavyW{3, 5, 3, 8};
  EXPECT_GT(largestBubble(run(ScheduleKind::ZeroBubble1P, 8, 16, heavyW)),
            deepSeekFigures(ScheduleKind::ZeroBubble1P, 8, heavyW).bubble);
  // DualPipe with B - W (5) > F (3): less idle than the figure says.
  ChunkCosts slowB{3, 7, 2, 8};
  EXPECT_EQ(largestBubble(run(ScheduleKind::DualPipe, 8, 20, slowB)), 24);
  EXPECT_EQ(deepSeekFigures(ScheduleKind::DualPipe, 8, slowB).bubble, 27);
  EXPECT_EQ(figureCondition(ScheduleKind::DualPipe, 8, 20, slowB),
            "F = B - W, W <= F and max(F, B) <= F&B <= F + B");
  // DualPipe with F (5) > B - W (1): more.
  ChunkCosts slowF{5, 3, 2, 7};
  EXPECT_EQ(largestBubble(run(ScheduleKind::DualPipe, 8, 20, slowF)), 31);
  EXPECT_EQ(deepSeekFigures(ScheduleKind::DualPipe, 8, slowF).bubble, 12);
  // 1F1B holds for any costs and micro-batch count.
  for (int m : {1, 3, 8})
    EXPECT_EQ(largestBubble(run(ScheduleKind::OneFOneB, 8, m, slowF)),
              deepSeekFigures(ScheduleKind::OneFOneB, 8, slowF).bubble);
}

// figureCondition is exact: over a sweep of integer costs (F 1..4, B - W and
// W 0..4, F&B 0..F+B+1) the figure equals the simulated bubble at PP 4, 8
// and 16 with 2 PP and 3 PP micro-batches exactly when the condition holds.
TEST(ScheduleFigures, ConditionsAreExactOverACostSweep) {
  for (ScheduleKind kind : {ScheduleKind::ZeroBubble1P, ScheduleKind::DualPipe,
                            ScheduleKind::DualPipeV}) {
    int holds = 0, sets = 0;
    for (int f = 1; f <= 4; ++f)
      for (int b = 0; b <= 4; ++b)
        for (int w = 0; w <= 4; ++w)
          for (int fb = 0; fb <= f + b + w + 1; ++fb) {
            ChunkCosts c{double(f), double(b + w), double(w), double(fb)};
            bool equal = true;
            for (int pp : {4, 8, 16})
              for (int m : {2 * pp, 3 * pp})
                equal = equal && largestBubble(run(kind, pp, m, c)) ==
                                     deepSeekFigures(kind, pp, c).bubble;
            bool condition = figureCondition(kind, 4, 8, c).empty();
            EXPECT_EQ(equal, condition)
                << scheduleName(kind) << " F " << f << " B " << b + w << " W "
                << w << " F&B " << fb;
            holds += condition;
            ++sets;
          }
    EXPECT_GT(holds, 0);
    EXPECT_EQ(sets, 850);
  }
}

} // namespace
} // namespace dsflow::schedule
