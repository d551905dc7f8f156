//===- MoeGateTest.cpp - The router: scores, group-limited top-k, grads ---===//
#include "test/runtime/cpu/TestUtil.h"

#include <numeric>

namespace dsflow::cpu::test {
namespace {

MoeGateParams sigmoidGrouped() {
  // DeepSeek-V3's recipe in small: sigmoid, 4 groups of 2, 2 groups a token.
  return {/*tokens=*/5,          /*hidden=*/4,
          /*experts=*/8,         /*topK=*/3,
          /*groups=*/4,          /*groupsPerToken=*/2,
          /*routeScale=*/2.5,    ScoreFunction::Sigmoid,
          /*normalizeTopK=*/true};
}
MoeGateParams softmaxFlat() {
  return {5, 4, 6, 2, 1, 1, 1.0, ScoreFunction::Softmax, false};
}
MoeGateParams softmaxGrouped() {
  return {5, 4, 8, 2, 4, 3, 1.5, ScoreFunction::Softmax, true};
}
const MoeGateParams allConfigs[] = {sigmoidGrouped(), softmaxFlat(),
                                    softmaxGrouped()};

struct GateOut {
  Vec weights;
  std::vector<int32_t> indices;
  Vec scores;
};

struct GateCase {
  MoeGateParams p;
  Vec x, w, bias;

  explicit GateCase(const MoeGateParams &params, unsigned seed = 110)
      : p(params) {
    std::mt19937 rng(seed);
    x = randomVec(p.tokens * p.hidden, rng);
    w = randomVec(p.experts * p.hidden, rng, -1.5, 1.5);
    bias = randomVec(p.experts, rng, -0.2, 0.2);
  }
  template <typename T> GateOut run() const {
    std::vector<T> xt = cast<T>(x), wt = cast<T>(w), bt = cast<T>(bias);
    std::vector<T> weights(p.tokens * p.topK), scores(p.tokens * p.experts);
    std::vector<int32_t> indices(p.tokens * p.topK, -1);
    EXPECT_OK(moeGateForward(xt.data(), wt.data(), bt.data(), weights.data(),
                             indices.data(), scores.data(), p));
    return {toVec(weights), indices, toVec(scores)};
  }
  /// The differentiable outputs: weights, then scores.
  template <typename T> Vec forward() const {
    GateOut o = run<T>();
    return concat({o.weights, o.scores});
  }

  /// The router written out with sorts (stable: ties keep the lower index).
  GateOut naive() const {
    const int64_t E = p.experts, G = p.groups, size = E / G;
    GateOut o;
    for (int64_t t = 0; t < p.tokens; ++t) {
      Vec logits(E, 0.0), scores(E), biased(E);
      for (int64_t e = 0; e < E; ++e)
        for (int64_t h = 0; h < p.hidden; ++h)
          logits[e] += x[t * p.hidden + h] * w[e * p.hidden + h];
      double sum = 0;
      for (int64_t e = 0; e < E; ++e)
        sum += std::exp(logits[e]);
      for (int64_t e = 0; e < E; ++e) {
        scores[e] = p.scoreFunction == ScoreFunction::Sigmoid
                        ? 1 / (1 + std::exp(-logits[e]))
                        : std::exp(logits[e]) / sum;
        biased[e] = scores[e] + bias[e];
      }
      Vec groupScore(G);
      for (int64_t g = 0; g < G; ++g) {
        Vec members(biased.begin() + g * size, biased.begin() + (g + 1) * size);
        std::sort(members.begin(), members.end(), std::greater<double>());
        groupScore[g] = p.scoreFunction == ScoreFunction::Sigmoid && size > 1
                            ? members[0] + members[1]
                            : members[0];
      }
      std::vector<int64_t> groups(G);
      std::iota(groups.begin(), groups.end(), 0);
      std::stable_sort(groups.begin(), groups.end(), [&](int64_t a, int64_t b) {
        return groupScore[a] > groupScore[b];
      });
      std::vector<int64_t> candidates;
      for (int64_t e = 0; e < E; ++e)
        for (int64_t m = 0; m < p.groupsPerToken; ++m)
          if (e / size == groups[m])
            candidates.push_back(e);
      std::stable_sort(
          candidates.begin(), candidates.end(),
          [&](int64_t a, int64_t b) { return biased[a] > biased[b]; });
      double chosenSum = 0;
      for (int64_t j = 0; j < p.topK; ++j)
        chosenSum += scores[candidates[j]];
      for (int64_t j = 0; j < p.topK; ++j) {
        o.indices.push_back(static_cast<int32_t>(candidates[j]));
        double weight = scores[candidates[j]];
        if (p.normalizeTopK)
          weight /= chosenSum + 1e-20;
        o.weights.push_back(weight * p.routeScale);
      }
      o.scores.insert(o.scores.end(), scores.begin(), scores.end());
    }
    return o;
  }

  /// The smallest distance between two biased scores of one token, or two
  /// group scores: finite differences must not flip the selection.
  double minGap() const {
    GateOut o = run<double>();
    double gap = 1e9;
    const int64_t E = p.experts, size = E / p.groups;
    for (int64_t t = 0; t < p.tokens; ++t) {
      Vec biased(E), groupScore;
      for (int64_t e = 0; e < E; ++e)
        biased[e] = o.scores[t * E + e] + bias[e];
      for (int64_t g = 0; g < p.groups; ++g) {
        Vec m(biased.begin() + g * size, biased.begin() + (g + 1) * size);
        std::sort(m.begin(), m.end(), std::greater<double>());
        groupScore.push_back(m[0] + (size > 1 ? m[1] : 0));
        groupScore.push_back(m[0]);
      }
      for (Vec *values : {&biased, &groupScore}) {
        std::sort(values->begin(), values->end());
        for (size_t i = 1; i < values->size(); ++i)
          gap = std::min(gap, (*values)[i] - (*values)[i - 1]);
      }
    }
    return gap;
  }
};

std::string describe(const MoeGateParams &p) {
  return std::string(p.scoreFunction == ScoreFunction::Sigmoid ? "sigmoid"
                                                               : "softmax") +
         " groups " + std::to_string(p.groups) + " keep " +
         std::to_string(p.groupsPerToken) + " k " + std::to_string(p.topK);
}

TEST(MoeGate, ForwardMatchesNaiveSortedRouter) {
  for (const MoeGateParams &p : allConfigs) {
    SCOPED_TRACE(describe(p));
    GateCase c(p);
    GateOut got = c.run<double>(), expected = c.naive();
    EXPECT_EQ(got.indices, expected.indices);
    EXPECT_TRUE(closeRel(got.weights, expected.weights, 1e-12));
    EXPECT_TRUE(closeRel(got.scores, expected.scores, 1e-12));
  }
}

TEST(MoeGate, NormalizedSigmoidWeightsSumToRouteScale) {
  GateCase c(sigmoidGrouped());
  GateOut o = c.run<double>();
  for (int64_t t = 0; t < c.p.tokens; ++t) {
    double sum = 0;
    for (int64_t j = 0; j < c.p.topK; ++j)
      sum += o.weights[t * c.p.topK + j];
    EXPECT_NEAR(sum, 2.5, 1e-12);
  }
}

/// One token, a zero gate weight (every score equal), the bias deciding.
/// Groups of two: {0,1} {2,3} {4,5} {6,7}; expert 4 is the best alone but its
/// partner is poor.
GateOut handMadeRoute(ScoreFunction fn) {
  MoeGateParams p{1, 2, 8, 2, 4, 2, 1.0, fn, true};
  Vec x = {0.3, -0.7}, w(16, 0.0);
  Vec bias = {0.3, 0.3, 0.35, 0.35, 0.9, -0.5, 0.0, 0.0};
  Vec weights(2), scores(8);
  std::vector<int32_t> indices(2, -1);
  EXPECT_OK(moeGateForward(x.data(), w.data(), bias.data(), weights.data(),
                           indices.data(), scores.data(), p));
  return {weights, indices, scores};
}

TEST(MoeGate, GroupLimitedRoutingSkipsTheBestExpertInADisallowedGroup) {
  // Sigmoid: every score is 0.5; group scores (sum of the top two biased)
  // are 1.6, 1.7, 1.4, 1.0: groups 1 and 0 are kept, group 2 (holding the
  // best biased expert, 4) is not. Experts 2 and 3 tie: the lower index first.
  GateOut o = handMadeRoute(ScoreFunction::Sigmoid);
  EXPECT_EQ(o.indices, (std::vector<int32_t>{2, 3}));
  EXPECT_TRUE(closeRel(o.weights, {0.5, 0.5}, 1e-15));
}

TEST(MoeGate, SoftmaxGroupScoreIsTheGroupMax) {
  // Softmax: every score is 1/8; group maxima 0.425, 0.475, 1.025, 0.125
  // keep groups 2 and 1: expert 4, then expert 2 (tied with 3).
  GateOut o = handMadeRoute(ScoreFunction::Softmax);
  EXPECT_EQ(o.indices, (std::vector<int32_t>{4, 2}));
  EXPECT_TRUE(closeRel(o.weights, {0.5, 0.5}, 1e-15));
}

TEST(MoeGate, TiesGoToTheLowerIndex) {
  for (int64_t groups : {1, 4}) {
    MoeGateParams p{
        1,    2, 8, 3, groups, groups == 1 ? 1 : 2, 1.0, ScoreFunction::Sigmoid,
        false};
    Vec x = {0.3, -0.7}, w(16, 0.0), bias(8, 0.0), weights(3), scores(8);
    std::vector<int32_t> indices(3, -1);
    ASSERT_OK(moeGateForward(x.data(), w.data(), bias.data(), weights.data(),
                             indices.data(), scores.data(), p));
    EXPECT_EQ(indices, (std::vector<int32_t>{0, 1, 2})) << groups;
    EXPECT_EQ(weights, Vec(3, 0.5));
  }
}

/// <dWeights, weights> + <dScores, scores>, either part optional.
struct GateGrads {
  Vec dWeights, dScores;
  const double *weightsGrad() const {
    return dWeights.empty() ? nullptr : dWeights.data();
  }
  const double *scoresGrad() const {
    return dScores.empty() ? nullptr : dScores.data();
  }
  /// The dy that finite differences dot with forward() (zeros when absent).
  Vec dy(const MoeGateParams &p) const {
    return concat({dWeights.empty() ? Vec(p.tokens * p.topK, 0.0) : dWeights,
                   dScores.empty() ? Vec(p.tokens * p.experts, 0.0) : dScores});
  }
};

std::vector<GateGrads> gradCombinations(const MoeGateParams &p) {
  std::mt19937 rng(111);
  Vec dw = randomVec(p.tokens * p.topK, rng);
  Vec ds = randomVec(p.tokens * p.experts, rng);
  return {{dw, ds}, {dw, {}}, {{}, ds}};
}

TEST(MoeGate, BackwardBMatchesFiniteDifferences) {
  for (const MoeGateParams &p : allConfigs) {
    SCOPED_TRACE(describe(p));
    GateCase c(p);
    ASSERT_GT(c.minGap(), 1e-4) << "inputs too close to a routing tie";
    GateOut o = c.run<double>();
    for (const GateGrads &g : gradCombinations(p)) {
      Vec numeric =
          numericGrad(c.x, g.dy(p), [&] { return c.forward<double>(); });
      Vec dx(c.x.size(), 0.0);
      ASSERT_OK(moeGateBackwardB(g.weightsGrad(), g.scoresGrad(),
                                 o.scores.data(), o.indices.data(), c.w.data(),
                                 dx.data(), p));
      EXPECT_TRUE(gradsMatch(dx, numeric)) << "dWeights " << !g.dWeights.empty()
                                           << " dScores " << !g.dScores.empty();
    }
  }
}

TEST(MoeGate, BackwardWMatchesFiniteDifferences) {
  for (const MoeGateParams &p : allConfigs) {
    SCOPED_TRACE(describe(p));
    GateCase c(p);
    ASSERT_GT(c.minGap(), 1e-4) << "inputs too close to a routing tie";
    GateOut o = c.run<double>();
    for (const GateGrads &g : gradCombinations(p)) {
      Vec numeric =
          numericGrad(c.w, g.dy(p), [&] { return c.forward<double>(); });
      Vec dw(c.w.size(), 0.0);
      ASSERT_OK(moeGateBackwardW(g.weightsGrad(), g.scoresGrad(),
                                 o.scores.data(), o.indices.data(), c.x.data(),
                                 dw.data(), p));
      EXPECT_TRUE(gradsMatch(dw, numeric)) << "dWeights " << !g.dWeights.empty()
                                           << " dScores " << !g.dScores.empty();
    }
  }
}

TEST(MoeGate, BackwardsAccumulate) {
  for (const MoeGateParams &p : allConfigs) {
    SCOPED_TRACE(describe(p));
    GateCase c(p);
    GateOut o = c.run<double>();
    GateGrads g = gradCombinations(p)[0];
    EXPECT_TRUE(accumulates(c.x.size(), [&](double *dx) {
      EXPECT_OK(moeGateBackwardB(g.weightsGrad(), g.scoresGrad(),
                                 o.scores.data(), o.indices.data(), c.w.data(),
                                 dx, p));
    }));
    EXPECT_TRUE(accumulates(c.w.size(), [&](double *dw) {
      EXPECT_OK(moeGateBackwardW(g.weightsGrad(), g.scoresGrad(),
                                 o.scores.data(), o.indices.data(), c.x.data(),
                                 dw, p));
    }));
  }
}

TEST(MoeGate, FloatMatchesDouble) {
  for (const MoeGateParams &p : allConfigs) {
    SCOPED_TRACE(describe(p));
    GateCase c(p);
    EXPECT_EQ(c.run<float>().indices, c.run<double>().indices);
    EXPECT_TRUE(floatMatchesDouble(
        [&](auto zero) { return c.forward<decltype(zero)>(); }));
  }
}

TEST(MoeGate, RejectsBadConfigAndBadIndices) {
  GateCase c(sigmoidGrouped());
  Vec weights(c.p.tokens * c.p.topK), scores(c.p.tokens * c.p.experts);
  std::vector<int32_t> indices(c.p.tokens * c.p.topK);
  auto forward = [&](MoeGateParams p) {
    return moeGateForward(c.x.data(), c.w.data(), c.bias.data(), weights.data(),
                          indices.data(), scores.data(), p);
  };
  MoeGateParams p = c.p;
  p.groups = 3; // does not divide 8 experts
  EXPECT_EQ(forward(p), Status::BadGateConfig);
  p = c.p;
  p.groupsPerToken = 5; // more than the 4 groups
  EXPECT_EQ(forward(p), Status::BadGateConfig);
  p = c.p;
  p.topK = 5; // 2 groups of 2 experts allow 4
  EXPECT_EQ(forward(p), Status::BadGateConfig);

  GateOut o = c.run<double>();
  Vec dw(c.p.tokens * c.p.topK, 1.0), dx(c.x.size(), 0.0);
  for (int32_t bad : {-1, 8}) {
    std::vector<int32_t> badIndices = o.indices;
    badIndices[3] = bad;
    EXPECT_EQ(moeGateBackwardB<double>(dw.data(), nullptr, o.scores.data(),
                                       badIndices.data(), c.w.data(), dx.data(),
                                       c.p),
              Status::ExpertIndexOutOfRange);
  }
  EXPECT_EQ(dx, Vec(dx.size(), 0.0));
}

} // namespace
} // namespace dsflow::cpu::test
