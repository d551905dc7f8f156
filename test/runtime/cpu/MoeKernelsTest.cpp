//===- MoeKernelsTest.cpp - dispatch, combine, expert and shared FFNs -----===//
#include "test/runtime/cpu/TestUtil.h"

namespace dsflow::cpu::test {
namespace {

//===----------------------------------------------------------------------===//
// dispatch and combine
//===----------------------------------------------------------------------===//

struct DispatchCase {
  int64_t tokens = 5, topK = 2, experts = 4, hidden = 3;
  // Expert 3 receives nothing; expert 1 is chosen by four tokens.
  std::vector<int32_t> indices = {1, 0, 2, 1, 1, 0, 0, 2, 2, 1};
  Vec x;

  DispatchCase() {
    std::mt19937 rng(120);
    x = randomVec(tokens * hidden, rng);
  }
  struct Out {
    Vec rows;
    std::vector<int32_t> counts, rowSource;
  };
  template <typename T> Out run() const {
    std::vector<T> xt = cast<T>(x), rows(tokens * topK * hidden);
    std::vector<int32_t> counts(experts, -1), rowSource(tokens * topK, -1);
    EXPECT_OK(dispatchForward(xt.data(), indices.data(), rows.data(),
                              counts.data(), rowSource.data(), tokens, topK,
                              experts, hidden));
    return {toVec(rows), counts, rowSource};
  }
  template <typename T> Vec forward() const { return run<T>().rows; }
};

TEST(Dispatch, ForwardMatchesNaiveExpertMajorOrder) {
  DispatchCase c;
  DispatchCase::Out expected;
  for (int32_t e = 0; e < c.experts; ++e) {
    int32_t count = 0;
    for (int64_t t = 0; t < c.tokens; ++t)
      for (int64_t j = 0; j < c.topK; ++j)
        if (c.indices[t * c.topK + j] == e) {
          ++count;
          expected.rowSource.push_back(static_cast<int32_t>(t * c.topK + j));
          for (int64_t i = 0; i < c.hidden; ++i)
            expected.rows.push_back(c.x[t * c.hidden + i]);
        }
    expected.counts.push_back(count);
  }
  DispatchCase::Out got = c.run<double>();
  EXPECT_EQ(got.counts, (std::vector<int32_t>{3, 4, 3, 0}));
  EXPECT_EQ(got.counts, expected.counts);
  EXPECT_EQ(got.rowSource, expected.rowSource);
  EXPECT_EQ(got.rows, expected.rows);
}

TEST(Dispatch, BackwardMatchesFiniteDifferences) {
  DispatchCase c;
  std::mt19937 rng(121);
  Vec dRows = randomVec(c.tokens * c.topK * c.hidden, rng);
  Vec numeric = numericGrad(c.x, dRows, [&] { return c.forward<double>(); });
  std::vector<int32_t> rowSource = c.run<double>().rowSource;
  Vec dx(c.x.size(), 0.0);
  ASSERT_OK(dispatchBackward(dRows.data(), rowSource.data(), dx.data(),
                             c.tokens, c.topK, c.hidden));
  EXPECT_TRUE(gradsMatch(dx, numeric));
}

TEST(Dispatch, BackwardAccumulatesAndFloatMatchesDouble) {
  DispatchCase c;
  std::mt19937 rng(122);
  Vec dRows = randomVec(c.tokens * c.topK * c.hidden, rng);
  std::vector<int32_t> rowSource = c.run<double>().rowSource;
  EXPECT_TRUE(accumulates(c.x.size(), [&](double *dx) {
    EXPECT_OK(dispatchBackward(dRows.data(), rowSource.data(), dx, c.tokens,
                               c.topK, c.hidden));
  }));
  EXPECT_TRUE(floatMatchesDouble(
      [&](auto zero) { return c.forward<decltype(zero)>(); }));
}

TEST(Dispatch, RejectsOutOfRangeExpertsWithoutWriting) {
  DispatchCase c;
  for (int32_t bad : {-1, 4}) {
    std::vector<int32_t> indices = c.indices;
    indices[7] = bad;
    Vec rows(c.tokens * c.topK * c.hidden, 42.0);
    std::vector<int32_t> counts(c.experts, 42),
        rowSource(c.tokens * c.topK, 42);
    EXPECT_EQ(dispatchForward(c.x.data(), indices.data(), rows.data(),
                              counts.data(), rowSource.data(), c.tokens, c.topK,
                              c.experts, c.hidden),
              Status::ExpertIndexOutOfRange);
    EXPECT_EQ(rows, Vec(rows.size(), 42.0));
    EXPECT_EQ(counts, std::vector<int32_t>(c.experts, 42));
  }
}

struct CombineCase {
  DispatchCase d;
  std::vector<int32_t> rowSource;
  Vec rows, weights;

  CombineCase() : rowSource(d.run<double>().rowSource) {
    std::mt19937 rng(130);
    rows = randomVec(d.tokens * d.topK * d.hidden, rng);
    weights = randomVec(d.tokens * d.topK, rng, 0.1, 1.0);
  }
  template <typename T> Vec forward() const {
    std::vector<T> rt = cast<T>(rows), wt = cast<T>(weights),
                   y(d.tokens * d.hidden);
    EXPECT_OK(combineForward(rt.data(), wt.data(), rowSource.data(), y.data(),
                             d.tokens, d.topK, d.hidden));
    return toVec(y);
  }
};

TEST(Combine, ForwardMatchesNaiveWeightedSum) {
  CombineCase c;
  const int64_t H = c.d.hidden, k = c.d.topK;
  Vec expected(c.d.tokens * H, 0.0);
  for (size_t r = 0; r < c.rowSource.size(); ++r) {
    int64_t t = c.rowSource[r] / k;
    for (int64_t i = 0; i < H; ++i)
      expected[t * H + i] += c.weights[c.rowSource[r]] * c.rows[r * H + i];
  }
  EXPECT_TRUE(closeRel(c.forward<double>(), expected, 1e-12));
}

TEST(Combine, DispatchThenCombineWithUnitWeightsIsKTimesTheInput) {
  CombineCase c;
  Vec rows = c.d.run<double>().rows, ones(c.d.tokens * c.d.topK, 1.0);
  Vec y(c.d.x.size());
  ASSERT_OK(combineForward(rows.data(), ones.data(), c.rowSource.data(),
                           y.data(), c.d.tokens, c.d.topK, c.d.hidden));
  for (size_t i = 0; i < y.size(); ++i)
    EXPECT_DOUBLE_EQ(y[i], 2 * c.d.x[i]);
}

TEST(Combine, BackwardMatchesFiniteDifferences) {
  CombineCase c;
  std::mt19937 rng(131);
  Vec dy = randomVec(c.d.tokens * c.d.hidden, rng);
  Vec numericRows =
      numericGrad(c.rows, dy, [&] { return c.forward<double>(); });
  Vec numericWeights =
      numericGrad(c.weights, dy, [&] { return c.forward<double>(); });
  Vec dRows(c.rows.size(), 0.0), dWeights(c.weights.size(), 0.0);
  ASSERT_OK(combineBackward(dy.data(), c.weights.data(), c.rowSource.data(),
                            dRows.data(), c.d.tokens, c.d.topK, c.d.hidden));
  EXPECT_TRUE(gradsMatch(dRows, numericRows));
  // The weights' gradient from the row dots w <dy[t], rows[r]> (written out
  // here; expert_ffn_grad makes them from the SwiGLU output).
  const int64_t H = c.d.hidden;
  Vec rowDots(c.rowSource.size(), 0.0);
  for (size_t r = 0; r < c.rowSource.size(); ++r) {
    int64_t t = c.rowSource[r] / c.d.topK;
    for (int64_t i = 0; i < H; ++i)
      rowDots[r] += dy[t * H + i] * c.rows[r * H + i];
    rowDots[r] *= c.weights[c.rowSource[r]];
  }
  ASSERT_OK(combineWeightsBackward(rowDots.data(), c.weights.data(),
                                   c.rowSource.data(), dWeights.data(),
                                   c.d.tokens, c.d.topK));
  EXPECT_TRUE(gradsMatch(dWeights, numericWeights));
}

TEST(Combine, AZeroWeightGetsAZeroGradient) {
  CombineCase c;
  Vec weights = c.weights, rowDots(c.rowSource.size(), 1.0),
      dWeights(weights.size(), 0.0);
  weights[3] = 0.0;
  ASSERT_OK(combineWeightsBackward(rowDots.data(), weights.data(),
                                   c.rowSource.data(), dWeights.data(),
                                   c.d.tokens, c.d.topK));
  EXPECT_EQ(dWeights[3], 0.0);
  EXPECT_DOUBLE_EQ(dWeights[2], 1.0 / weights[2]);
}

TEST(Combine, BackwardAccumulatesAndFloatMatchesDouble) {
  CombineCase c;
  std::mt19937 rng(132);
  Vec dy = randomVec(c.d.tokens * c.d.hidden, rng);
  Vec rowDots = randomVec(c.rowSource.size(), rng);
  EXPECT_TRUE(accumulates(c.rows.size(), [&](double *dRows) {
    EXPECT_OK(combineBackward(dy.data(), c.weights.data(), c.rowSource.data(),
                              dRows, c.d.tokens, c.d.topK, c.d.hidden));
  }));
  EXPECT_TRUE(accumulates(c.weights.size(), [&](double *dWeights) {
    EXPECT_OK(combineWeightsBackward(rowDots.data(), c.weights.data(),
                                     c.rowSource.data(), dWeights, c.d.tokens,
                                     c.d.topK));
  }));
  EXPECT_TRUE(floatMatchesDouble(
      [&](auto zero) { return c.forward<decltype(zero)>(); }));
}

TEST(Combine, RejectsABrokenPermutation) {
  CombineCase c;
  Vec y(c.d.tokens * c.d.hidden, 42.0), dx(c.d.x.size(), 0.0);
  for (int which : {0, 1, 2}) {
    std::vector<int32_t> bad = c.rowSource;
    if (which == 0)
      bad[3] = bad[4]; // a duplicate
    else if (which == 1)
      bad[3] = -1;
    else
      bad[3] = static_cast<int32_t>(bad.size());
    EXPECT_EQ(combineForward(c.rows.data(), c.weights.data(), bad.data(),
                             y.data(), c.d.tokens, c.d.topK, c.d.hidden),
              Status::BadPermutation);
    EXPECT_EQ(dispatchBackward(c.rows.data(), bad.data(), dx.data(), c.d.tokens,
                               c.d.topK, c.d.hidden),
              Status::BadPermutation);
    EXPECT_EQ(combineBackward(y.data(), c.weights.data(), bad.data(), dx.data(),
                              c.d.tokens, c.d.topK, c.d.hidden),
              Status::BadPermutation);
    EXPECT_EQ(combineWeightsBackward(y.data(), c.weights.data(), bad.data(),
                                     dx.data(), c.d.tokens, c.d.topK),
              Status::BadPermutation);
  }
  EXPECT_EQ(y, Vec(y.size(), 42.0));
  EXPECT_EQ(dx, Vec(dx.size(), 0.0));
}

//===----------------------------------------------------------------------===//
// expert_ffn and shared_experts
//===----------------------------------------------------------------------===//

/// down(silu(gate x) * up x) of one row, written out.
Vec naiveFfnRow(const double *x, const double *gate, const double *up,
                const double *down, int64_t hidden, int64_t inter) {
  Vec act(inter), y(hidden, 0.0);
  for (int64_t i = 0; i < inter; ++i) {
    double g = 0, u = 0;
    for (int64_t h = 0; h < hidden; ++h) {
      g += gate[i * hidden + h] * x[h];
      u += up[i * hidden + h] * x[h];
    }
    act[i] = g / (1 + std::exp(-g)) * u;
  }
  for (int64_t h = 0; h < hidden; ++h)
    for (int64_t i = 0; i < inter; ++i)
      y[h] += down[h * inter + i] * act[i];
  return y;
}

struct ExpertFfnCase {
  int64_t experts = 3, hidden = 4, inter = 3;
  std::vector<int32_t> counts = {2, 0, 3};
  int64_t numRows = 5;
  // Every expert's weights, back to back: gate/up [E, I, H], down [E, H, I].
  Vec rows, gate, up, down;

  ExpertFfnCase() {
    std::mt19937 rng(140);
    rows = randomVec(numRows * hidden, rng);
    gate = randomVec(experts * inter * hidden, rng);
    up = randomVec(experts * inter * hidden, rng);
    down = randomVec(experts * hidden * inter, rng);
  }
  template <typename T>
  static std::vector<T *> perExpert(std::vector<T> &all, int64_t experts) {
    std::vector<T *> ptrs;
    for (int64_t e = 0; e < experts; ++e)
      ptrs.push_back(all.data() + e * (all.size() / experts));
    return ptrs;
  }
  std::vector<const double *> perExpert(const Vec &all) const {
    std::vector<const double *> ptrs;
    for (int64_t e = 0; e < experts; ++e)
      ptrs.push_back(all.data() + e * (all.size() / experts));
    return ptrs;
  }
  /// y, then the saved gate and up pre-activations.
  template <typename T> Vec run() const {
    std::vector<T> rt = cast<T>(rows), gt = cast<T>(gate), ut = cast<T>(up),
                   dt = cast<T>(down);
    std::vector<T *> g = perExpert(gt, experts), u = perExpert(ut, experts),
                     d = perExpert(dt, experts);
    std::vector<T> y(numRows * hidden), savedG(numRows * inter),
        savedU(numRows * inter);
    EXPECT_OK(expertFfnForward(rt.data(), counts.data(), g.data(), u.data(),
                               d.data(), y.data(), savedG.data(), savedU.data(),
                               numRows, experts, hidden, inter));
    return concat({toVec(y), toVec(savedG), toVec(savedU)});
  }
  template <typename T> Vec forward() const {
    Vec all = run<T>();
    return Vec(all.begin(), all.begin() + numRows * hidden);
  }
  Vec saved(bool upPart) const {
    Vec all = run<double>();
    auto begin =
        all.begin() + numRows * hidden + (upPart ? numRows * inter : 0);
    return Vec(begin, begin + numRows * inter);
  }
};

TEST(ExpertFfn, ForwardMatchesNaivePerRowExpert) {
  ExpertFfnCase c;
  const int64_t H = c.hidden, I = c.inter;
  Vec expected;
  int64_t row = 0;
  for (int64_t e = 0; e < c.experts; ++e)
    for (int32_t n = 0; n < c.counts[e]; ++n, ++row) {
      Vec y =
          naiveFfnRow(c.rows.data() + row * H, c.gate.data() + e * I * H,
                      c.up.data() + e * I * H, c.down.data() + e * H * I, H, I);
      expected.insert(expected.end(), y.begin(), y.end());
    }
  EXPECT_TRUE(closeRel(c.forward<double>(), expected, 1e-12));
}

TEST(ExpertFfn, BackwardBMatchesFiniteDifferences) {
  ExpertFfnCase c;
  std::mt19937 rng(141);
  Vec dy = randomVec(c.numRows * c.hidden, rng);
  Vec numeric = numericGrad(c.rows, dy, [&] { return c.forward<double>(); });
  Vec savedG = c.saved(false), savedU = c.saved(true);
  auto g = c.perExpert(c.gate), u = c.perExpert(c.up), d = c.perExpert(c.down);
  Vec dRows(c.rows.size(), 0.0), rowDots(c.numRows, 0.0);
  ASSERT_OK(expertFfnBackwardB(dy.data(), c.counts.data(), g.data(), u.data(),
                               d.data(), savedG.data(), savedU.data(),
                               dRows.data(), rowDots.data(), c.numRows,
                               c.experts, c.hidden, c.inter));
  EXPECT_TRUE(gradsMatch(dRows, numeric));
  // rowDots[r] = <dy_r, y_r>: the derivative of the loss along y_r scaled.
  Vec y = c.forward<double>(), expected(c.numRows, 0.0);
  for (int64_t r = 0; r < c.numRows; ++r)
    for (int64_t i = 0; i < c.hidden; ++i)
      expected[r] += dy[r * c.hidden + i] * y[r * c.hidden + i];
  EXPECT_TRUE(closeRel(rowDots, expected, 1e-12));
}

TEST(ExpertFfn, BackwardWMatchesFiniteDifferencesForEveryExpert) {
  ExpertFfnCase c;
  std::mt19937 rng(142);
  Vec dy = randomVec(c.numRows * c.hidden, rng);
  auto forward = [&] { return c.forward<double>(); };
  Vec numericGate = numericGrad(c.gate, dy, forward);
  Vec numericUp = numericGrad(c.up, dy, forward);
  Vec numericDown = numericGrad(c.down, dy, forward);
  Vec savedG = c.saved(false), savedU = c.saved(true);
  Vec dGate(c.gate.size(), 0.0), dUp(c.up.size(), 0.0),
      dDown(c.down.size(), 0.0);
  auto d = c.perExpert(c.down);
  auto dg = ExpertFfnCase::perExpert(dGate, c.experts),
       du = ExpertFfnCase::perExpert(dUp, c.experts),
       dd = ExpertFfnCase::perExpert(dDown, c.experts);
  ASSERT_OK(expertFfnBackwardW(dy.data(), c.rows.data(), c.counts.data(),
                               d.data(), savedG.data(), savedU.data(),
                               dg.data(), du.data(), dd.data(), c.numRows,
                               c.experts, c.hidden, c.inter));
  EXPECT_TRUE(gradsMatch(dGate, numericGate));
  EXPECT_TRUE(gradsMatch(dUp, numericUp));
  EXPECT_TRUE(gradsMatch(dDown, numericDown));
  // Expert 1 receives no rows: its gradients stay zero.
  int64_t block = c.inter * c.hidden;
  EXPECT_EQ(Vec(dGate.begin() + block, dGate.begin() + 2 * block),
            Vec(block, 0.0));
}

TEST(ExpertFfn, BackwardsAccumulate) {
  ExpertFfnCase c;
  std::mt19937 rng(143);
  Vec dy = randomVec(c.numRows * c.hidden, rng);
  Vec savedG = c.saved(false), savedU = c.saved(true);
  auto g = c.perExpert(c.gate), u = c.perExpert(c.up), d = c.perExpert(c.down);
  Vec rowDots(c.numRows);
  EXPECT_TRUE(accumulates(c.rows.size(), [&](double *dRows) {
    EXPECT_OK(expertFfnBackwardB(dy.data(), c.counts.data(), g.data(), u.data(),
                                 d.data(), savedG.data(), savedU.data(), dRows,
                                 rowDots.data(), c.numRows, c.experts, c.hidden,
                                 c.inter));
  }));
  // The three weight gradients, as one buffer.
  size_t total = c.gate.size() + c.up.size() + c.down.size();
  EXPECT_TRUE(accumulates(total, [&](double *grads) {
    std::vector<double *> dg, du, dd;
    for (int64_t e = 0; e < c.experts; ++e) {
      dg.push_back(grads + e * c.inter * c.hidden);
      du.push_back(grads + c.gate.size() + e * c.inter * c.hidden);
      dd.push_back(grads + c.gate.size() + c.up.size() +
                   e * c.hidden * c.inter);
    }
    EXPECT_OK(expertFfnBackwardW(dy.data(), c.rows.data(), c.counts.data(),
                                 d.data(), savedG.data(), savedU.data(),
                                 dg.data(), du.data(), dd.data(), c.numRows,
                                 c.experts, c.hidden, c.inter));
  }));
}

TEST(ExpertFfn, RowDotsGiveTheCombineWeightsGradient) {
  // combine(expert_ffn(rows), w): the weights' gradient through the chain the
  // autodiff emits (combine_grad, expert_ffn_grad's row dots,
  // combine_weights_grad) against finite differences. 5 tokens, k = 1.
  ExpertFfnCase c;
  const int64_t tokens = c.numRows, topK = 1;
  std::vector<int32_t> rowSource = {3, 0, 4, 1, 2};
  std::mt19937 rng(144);
  Vec weights = randomVec(tokens * topK, rng, 0.1, 1.0);
  Vec dy = randomVec(tokens * c.hidden, rng);
  auto forward = [&] {
    Vec expertY = c.forward<double>(), y(tokens * c.hidden);
    EXPECT_OK(combineForward(expertY.data(), weights.data(), rowSource.data(),
                             y.data(), tokens, topK, c.hidden));
    return y;
  };
  Vec numeric = numericGrad(weights, dy, forward);
  Vec dRows(c.numRows * c.hidden, 0.0), dExpertRows(dRows.size(), 0.0),
      rowDots(c.numRows, 0.0), dWeights(weights.size(), 0.0);
  ASSERT_OK(combineBackward(dy.data(), weights.data(), rowSource.data(),
                            dRows.data(), tokens, topK, c.hidden));
  Vec savedG = c.saved(false), savedU = c.saved(true);
  auto g = c.perExpert(c.gate), u = c.perExpert(c.up), d = c.perExpert(c.down);
  ASSERT_OK(expertFfnBackwardB(dRows.data(), c.counts.data(), g.data(),
                               u.data(), d.data(), savedG.data(), savedU.data(),
                               dExpertRows.data(), rowDots.data(), c.numRows,
                               c.experts, c.hidden, c.inter));
  ASSERT_OK(combineWeightsBackward(rowDots.data(), weights.data(),
                                   rowSource.data(), dWeights.data(), tokens,
                                   topK));
  EXPECT_TRUE(gradsMatch(dWeights, numeric));
}

TEST(ExpertFfn, FloatMatchesDouble) {
  ExpertFfnCase c;
  EXPECT_TRUE(
      floatMatchesDouble([&](auto zero) { return c.run<decltype(zero)>(); }));
}

TEST(ExpertFfn, RejectsCountsThatDoNotAddUp) {
  ExpertFfnCase c;
  auto g = c.perExpert(c.gate), u = c.perExpert(c.up), d = c.perExpert(c.down);
  Vec y(c.rows.size(), 42.0), savedG(c.numRows * c.inter),
      savedU(c.numRows * c.inter);
  for (std::vector<int32_t> counts :
       {std::vector<int32_t>{2, 0, 4}, std::vector<int32_t>{3, -1, 3}}) {
    EXPECT_EQ(expertFfnForward(c.rows.data(), counts.data(), g.data(), u.data(),
                               d.data(), y.data(), savedG.data(), savedU.data(),
                               c.numRows, c.experts, c.hidden, c.inter),
              Status::BadExpertCounts);
  }
  EXPECT_EQ(y, Vec(y.size(), 42.0));
}

struct SharedCase {
  int64_t tokens = 4, hidden = 4, inter = 5;
  Vec x, gate, up, down;

  SharedCase() {
    std::mt19937 rng(150);
    x = randomVec(tokens * hidden, rng);
    gate = randomVec(inter * hidden, rng);
    up = randomVec(inter * hidden, rng);
    down = randomVec(hidden * inter, rng);
  }
  /// y, then the saved pre-activations.
  template <typename T> Vec run() const {
    std::vector<T> xt = cast<T>(x), gt = cast<T>(gate), ut = cast<T>(up),
                   dt = cast<T>(down), y(tokens * hidden),
                   savedG(tokens * inter), savedU(tokens * inter);
    sharedExpertsForward(xt.data(), gt.data(), ut.data(), dt.data(), y.data(),
                         savedG.data(), savedU.data(), tokens, hidden, inter);
    return concat({toVec(y), toVec(savedG), toVec(savedU)});
  }
  Vec y() const {
    Vec all = run<double>();
    return Vec(all.begin(), all.begin() + tokens * hidden);
  }
  Vec saved(bool upPart) const {
    Vec all = run<double>();
    auto begin = all.begin() + tokens * hidden + (upPart ? tokens * inter : 0);
    return Vec(begin, begin + tokens * inter);
  }
};

TEST(SharedExperts, ForwardMatchesNaive) {
  SharedCase c;
  Vec expected;
  for (int64_t t = 0; t < c.tokens; ++t) {
    Vec y = naiveFfnRow(c.x.data() + t * c.hidden, c.gate.data(), c.up.data(),
                        c.down.data(), c.hidden, c.inter);
    expected.insert(expected.end(), y.begin(), y.end());
  }
  EXPECT_TRUE(closeRel(c.y(), expected, 1e-12));
}

TEST(SharedExperts, BackwardBMatchesFiniteDifferences) {
  SharedCase c;
  std::mt19937 rng(151);
  Vec dy = randomVec(c.tokens * c.hidden, rng);
  Vec numeric = numericGrad(c.x, dy, [&] { return c.y(); });
  Vec savedG = c.saved(false), savedU = c.saved(true), dx(c.x.size(), 0.0);
  sharedExpertsBackwardB(dy.data(), c.gate.data(), c.up.data(), c.down.data(),
                         savedG.data(), savedU.data(), dx.data(), c.tokens,
                         c.hidden, c.inter);
  EXPECT_TRUE(gradsMatch(dx, numeric));
}

TEST(SharedExperts, BackwardWMatchesFiniteDifferences) {
  SharedCase c;
  std::mt19937 rng(152);
  Vec dy = randomVec(c.tokens * c.hidden, rng);
  auto forward = [&] { return c.y(); };
  Vec numericGate = numericGrad(c.gate, dy, forward);
  Vec numericUp = numericGrad(c.up, dy, forward);
  Vec numericDown = numericGrad(c.down, dy, forward);
  Vec savedG = c.saved(false), savedU = c.saved(true);
  Vec dGate(c.gate.size(), 0.0), dUp(c.up.size(), 0.0),
      dDown(c.down.size(), 0.0);
  sharedExpertsBackwardW(dy.data(), c.x.data(), c.down.data(), savedG.data(),
                         savedU.data(), dGate.data(), dUp.data(), dDown.data(),
                         c.tokens, c.hidden, c.inter);
  EXPECT_TRUE(gradsMatch(dGate, numericGate));
  EXPECT_TRUE(gradsMatch(dUp, numericUp));
  EXPECT_TRUE(gradsMatch(dDown, numericDown));
}

TEST(SharedExperts, BackwardsAccumulate) {
  SharedCase c;
  std::mt19937 rng(153);
  Vec dy = randomVec(c.tokens * c.hidden, rng);
  Vec savedG = c.saved(false), savedU = c.saved(true);
  EXPECT_TRUE(accumulates(c.x.size(), [&](double *dx) {
    sharedExpertsBackwardB(dy.data(), c.gate.data(), c.up.data(), c.down.data(),
                           savedG.data(), savedU.data(), dx, c.tokens, c.hidden,
                           c.inter);
  }));
  size_t total = c.gate.size() + c.up.size() + c.down.size();
  EXPECT_TRUE(accumulates(total, [&](double *grads) {
    sharedExpertsBackwardW(dy.data(), c.x.data(), c.down.data(), savedG.data(),
                           savedU.data(), grads, grads + c.gate.size(),
                           grads + c.gate.size() + c.up.size(), c.tokens,
                           c.hidden, c.inter);
  }));
}

TEST(SharedExperts, FloatMatchesDouble) {
  SharedCase c;
  EXPECT_TRUE(
      floatMatchesDouble([&](auto zero) { return c.run<decltype(zero)>(); }));
}

} // namespace
} // namespace dsflow::cpu::test
