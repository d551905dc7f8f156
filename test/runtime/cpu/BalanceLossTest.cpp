//===- BalanceLossTest.cpp - The sequence-wise balance loss kernels -------===//
#include "TestUtil.h"

namespace dsflow::cpu::test {
namespace {

/// 2 sequences of 3 tokens, 4 experts, 2 chosen per token.
struct BalanceCase {
  int64_t tokens = 6, experts = 4, topK = 2, sequences = 2;
  double alpha = 0.5;
  Vec scores;
  std::vector<int32_t> indices = {0, 1, 0, 2, 3, 0, /*run 2*/ 1, 2, 1, 3, 1, 0};
  BalanceCase() {
    std::mt19937 rng(5);
    scores = randomVec(tokens * experts, rng, 0.1, 0.9); // sigmoid-like
  }
  template <typename T> T forward(const std::vector<T> &s) const {
    T loss = 0;
    EXPECT_STREQ(toString(balanceLossForward(s.data(), indices.data(), &loss,
                                             tokens, experts, topK, sequences,
                                             alpha)),
                 toString(Status::Ok));
    return loss;
  }
};

/// The definition, written out: per run f_i, P_i, then alpha * sum f_i P_i.
double naiveLoss(const BalanceCase &c) {
  int64_t perRun = c.tokens / c.sequences;
  double total = 0;
  for (int64_t run = 0; run < c.sequences; ++run) {
    for (int64_t i = 0; i < c.experts; ++i) {
      double chosen = 0, p = 0;
      for (int64_t t = run * perRun; t < (run + 1) * perRun; ++t) {
        for (int64_t j = 0; j < c.topK; ++j)
          chosen += c.indices[t * c.topK + j] == i;
        double sum = 0;
        for (int64_t e = 0; e < c.experts; ++e)
          sum += c.scores[t * c.experts + e];
        p += c.scores[t * c.experts + i] / sum / double(perRun);
      }
      double f = double(c.experts) / double(c.topK * perRun) * chosen;
      total += c.alpha * f * p;
    }
  }
  return total / double(c.sequences);
}

TEST(BalanceLoss, ForwardMatchesDefinition) {
  BalanceCase c;
  EXPECT_NEAR(c.forward(c.scores), naiveLoss(c), 1e-12);
  EXPECT_NEAR(c.forward(cast<float>(c.scores)), naiveLoss(c), 1e-6);
}

TEST(BalanceLoss, PerfectBalanceGivesAlpha) {
  // Equal scores and every expert chosen equally often: f_i = 1, P_i = 1/E.
  BalanceCase c;
  std::fill(c.scores.begin(), c.scores.end(), 0.5);
  c.indices = {0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3};
  c.tokens = 6;
  c.sequences = 1;
  EXPECT_NEAR(c.forward(c.scores), c.alpha, 1e-12);
}

TEST(BalanceLoss, BackwardMatchesFiniteDifferences) {
  BalanceCase c;
  Vec numeric = numericGrad(c.scores, Vec{1.0},
                            [&] { return Vec{c.forward(c.scores)}; });
  Vec analytic(c.scores.size(), 0.0);
  ASSERT_OK(balanceLossBackward(1.0, c.scores.data(), c.indices.data(),
                                analytic.data(), c.tokens, c.experts, c.topK,
                                c.sequences, c.alpha));
  EXPECT_TRUE(gradsMatch(analytic, numeric));
}

TEST(BalanceLoss, BackwardAccumulatesAndScalesWithDLoss) {
  BalanceCase c;
  EXPECT_TRUE(accumulates(c.scores.size(), [&](double *d) {
    EXPECT_OK(balanceLossBackward(1.0, c.scores.data(), c.indices.data(), d,
                                  c.tokens, c.experts, c.topK, c.sequences,
                                  c.alpha));
  }));
  Vec once(c.scores.size(), 0.0), thrice(c.scores.size(), 0.0);
  ASSERT_OK(balanceLossBackward(1.0, c.scores.data(), c.indices.data(),
                                once.data(), c.tokens, c.experts, c.topK,
                                c.sequences, c.alpha));
  ASSERT_OK(balanceLossBackward(3.0, c.scores.data(), c.indices.data(),
                                thrice.data(), c.tokens, c.experts, c.topK,
                                c.sequences, c.alpha));
  for (size_t i = 0; i < once.size(); ++i)
    EXPECT_NEAR(thrice[i], 3 * once[i], 1e-15);
}

TEST(BalanceLoss, RejectsBadIndicesAndShapes) {
  BalanceCase c;
  double loss = -1;
  c.indices[3] = 4;
  EXPECT_EQ(balanceLossForward(c.scores.data(), c.indices.data(), &loss,
                               c.tokens, c.experts, c.topK, c.sequences,
                               c.alpha),
            Status::ExpertIndexOutOfRange);
  EXPECT_EQ(loss, -1);
  c.indices[3] = 0;
  EXPECT_EQ(balanceLossForward(c.scores.data(), c.indices.data(), &loss,
                               c.tokens, c.experts, c.topK, /*sequences=*/4,
                               c.alpha),
            Status::BadGateConfig);
}

} // namespace
} // namespace dsflow::cpu::test
