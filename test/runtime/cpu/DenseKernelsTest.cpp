//===- DenseKernelsTest.cpp - embedding, rms_norm, linear, mtp, loss ------===//
#include "test/runtime/cpu/TestUtil.h"

namespace dsflow::cpu::test {
namespace {

//===----------------------------------------------------------------------===//
// embedding
//===----------------------------------------------------------------------===//

struct EmbeddingCase {
  int64_t vocab = 7, hidden = 5, tokens = 6;
  // Token 3 appears three times: its table row gets the sum of three rows.
  std::vector<int32_t> ids = {3, 0, 6, 3, 2, 3};
  Vec table;

  EmbeddingCase() {
    std::mt19937 rng(1);
    table = randomVec(vocab * hidden, rng);
  }
  template <typename T> Vec forward() const {
    std::vector<T> t = cast<T>(table), y(tokens * hidden);
    EXPECT_OK(embeddingForward(t.data(), ids.data(), y.data(), tokens, vocab,
                               hidden));
    return toVec(y);
  }
};

TEST(Embedding, ForwardMatchesNaive) {
  EmbeddingCase c;
  Vec expected;
  for (int64_t n = 0; n < c.tokens; ++n)
    for (int64_t i = 0; i < c.hidden; ++i)
      expected.push_back(c.table[c.ids[n] * c.hidden + i]);
  EXPECT_EQ(c.forward<double>(), expected);
}

TEST(Embedding, BackwardWMatchesFiniteDifferences) {
  EmbeddingCase c;
  std::mt19937 rng(2);
  Vec dy = randomVec(c.tokens * c.hidden, rng);
  Vec numeric = numericGrad(c.table, dy, [&] { return c.forward<double>(); });
  Vec dtable(c.table.size(), 0.0);
  ASSERT_OK(embeddingBackwardW(dy.data(), c.ids.data(), dtable.data(), c.tokens,
                               c.vocab, c.hidden));
  EXPECT_TRUE(gradsMatch(dtable, numeric));
}

TEST(Embedding, BackwardWAccumulates) {
  EmbeddingCase c;
  std::mt19937 rng(3);
  Vec dy = randomVec(c.tokens * c.hidden, rng);
  EXPECT_TRUE(accumulates(c.table.size(), [&](double *dtable) {
    EXPECT_OK(embeddingBackwardW(dy.data(), c.ids.data(), dtable, c.tokens,
                                 c.vocab, c.hidden));
  }));
}

TEST(Embedding, FloatMatchesDouble) {
  EmbeddingCase c;
  EXPECT_TRUE(floatMatchesDouble(
      [&](auto zero) { return c.forward<decltype(zero)>(); }));
}

TEST(Embedding, RejectsOutOfRangeIdsWithoutWriting) {
  EmbeddingCase c;
  for (int32_t bad : {-1, 7}) {
    std::vector<int32_t> ids = c.ids;
    ids[4] = bad;
    Vec y(c.tokens * c.hidden, 42.0), dtable(c.table.size(), 42.0);
    EXPECT_EQ(embeddingForward(c.table.data(), ids.data(), y.data(), c.tokens,
                               c.vocab, c.hidden),
              Status::TokenIdOutOfRange);
    EXPECT_EQ(embeddingBackwardW(y.data(), ids.data(), dtable.data(), c.tokens,
                                 c.vocab, c.hidden),
              Status::TokenIdOutOfRange);
    EXPECT_EQ(y, Vec(y.size(), 42.0));
    EXPECT_EQ(dtable, Vec(dtable.size(), 42.0));
  }
}

//===----------------------------------------------------------------------===//
// rms_norm
//===----------------------------------------------------------------------===//

struct RmsNormCase {
  int64_t rows = 4, dim = 6;
  double eps = 1e-6;
  Vec x, w;

  RmsNormCase() {
    std::mt19937 rng(10);
    x = randomVec(rows * dim, rng);
    w = randomVec(dim, rng, 0.5, 1.5);
  }
  /// y followed by invRms.
  template <typename T> Vec forward() const {
    std::vector<T> xt = cast<T>(x), wt = cast<T>(w), y(rows * dim), inv(rows);
    rmsNormForward(xt.data(), wt.data(), y.data(), inv.data(), rows, dim, eps);
    return concat({toVec(y), toVec(inv)});
  }
  Vec y() const {
    Vec all = forward<double>();
    return Vec(all.begin(), all.begin() + rows * dim);
  }
  Vec invRms() const {
    Vec all = forward<double>();
    return Vec(all.begin() + rows * dim, all.end());
  }
};

TEST(RmsNorm, ForwardMatchesNaive) {
  RmsNormCase c;
  Vec expected(c.rows * c.dim), expectedInv(c.rows);
  for (int64_t r = 0; r < c.rows; ++r) {
    double meanSq = 0;
    for (int64_t i = 0; i < c.dim; ++i)
      meanSq += c.x[r * c.dim + i] * c.x[r * c.dim + i] / c.dim;
    expectedInv[r] = 1 / std::sqrt(meanSq + c.eps);
    for (int64_t i = 0; i < c.dim; ++i)
      expected[r * c.dim + i] =
          c.x[r * c.dim + i] / std::sqrt(meanSq + c.eps) * c.w[i];
  }
  EXPECT_TRUE(closeRel(c.y(), expected, 1e-12));
  EXPECT_TRUE(closeRel(c.invRms(), expectedInv, 1e-12));
}

TEST(RmsNorm, BackwardBMatchesFiniteDifferences) {
  RmsNormCase c;
  std::mt19937 rng(11);
  Vec dy = randomVec(c.rows * c.dim, rng);
  Vec numeric = numericGrad(c.x, dy, [&] { return c.y(); });
  Vec inv = c.invRms(), dx(c.x.size(), 0.0);
  rmsNormBackwardB(dy.data(), c.x.data(), c.w.data(), inv.data(), dx.data(),
                   c.rows, c.dim);
  EXPECT_TRUE(gradsMatch(dx, numeric));
}

TEST(RmsNorm, BackwardWMatchesFiniteDifferences) {
  RmsNormCase c;
  std::mt19937 rng(12);
  Vec dy = randomVec(c.rows * c.dim, rng);
  Vec numeric = numericGrad(c.w, dy, [&] { return c.y(); });
  Vec inv = c.invRms(), dw(c.w.size(), 0.0);
  rmsNormBackwardW(dy.data(), c.x.data(), inv.data(), dw.data(), c.rows, c.dim);
  EXPECT_TRUE(gradsMatch(dw, numeric));
}

TEST(RmsNorm, BackwardsAccumulate) {
  RmsNormCase c;
  std::mt19937 rng(13);
  Vec dy = randomVec(c.rows * c.dim, rng), inv = c.invRms();
  EXPECT_TRUE(accumulates(c.x.size(), [&](double *dx) {
    rmsNormBackwardB(dy.data(), c.x.data(), c.w.data(), inv.data(), dx, c.rows,
                     c.dim);
  }));
  EXPECT_TRUE(accumulates(c.w.size(), [&](double *dw) {
    rmsNormBackwardW(dy.data(), c.x.data(), inv.data(), dw, c.rows, c.dim);
  }));
}

TEST(RmsNorm, FloatMatchesDouble) {
  RmsNormCase c;
  EXPECT_TRUE(floatMatchesDouble(
      [&](auto zero) { return c.forward<decltype(zero)>(); }));
}

//===----------------------------------------------------------------------===//
// linear
//===----------------------------------------------------------------------===//

struct LinearCase {
  int64_t m = 5, n = 4, k = 3;
  Vec x, w;

  LinearCase() {
    std::mt19937 rng(20);
    x = randomVec(m * k, rng);
    w = randomVec(n * k, rng);
  }
  template <typename T> Vec forward() const {
    std::vector<T> xt = cast<T>(x), wt = cast<T>(w), y(m * n);
    linearForward(xt.data(), wt.data(), y.data(), m, n, k);
    return toVec(y);
  }
};

TEST(Linear, ForwardMatchesNaive) {
  LinearCase c;
  Vec expected(c.m * c.n, 0.0);
  for (int64_t i = 0; i < c.m; ++i)
    for (int64_t j = 0; j < c.n; ++j)
      for (int64_t p = 0; p < c.k; ++p)
        expected[i * c.n + j] += c.x[i * c.k + p] * c.w[j * c.k + p];
  EXPECT_TRUE(closeRel(c.forward<double>(), expected, 1e-12));
}

TEST(Linear, BackwardBMatchesFiniteDifferences) {
  LinearCase c;
  std::mt19937 rng(21);
  Vec dy = randomVec(c.m * c.n, rng);
  Vec numeric = numericGrad(c.x, dy, [&] { return c.forward<double>(); });
  Vec dx(c.x.size(), 0.0);
  linearBackwardB(dy.data(), c.w.data(), dx.data(), c.m, c.n, c.k);
  EXPECT_TRUE(gradsMatch(dx, numeric));
}

TEST(Linear, BackwardWMatchesFiniteDifferences) {
  LinearCase c;
  std::mt19937 rng(22);
  Vec dy = randomVec(c.m * c.n, rng);
  Vec numeric = numericGrad(c.w, dy, [&] { return c.forward<double>(); });
  Vec dw(c.w.size(), 0.0);
  linearBackwardW(dy.data(), c.x.data(), dw.data(), c.m, c.n, c.k);
  EXPECT_TRUE(gradsMatch(dw, numeric));
}

TEST(Linear, BackwardsAccumulate) {
  LinearCase c;
  std::mt19937 rng(23);
  Vec dy = randomVec(c.m * c.n, rng);
  EXPECT_TRUE(accumulates(c.x.size(), [&](double *dx) {
    linearBackwardB(dy.data(), c.w.data(), dx, c.m, c.n, c.k);
  }));
  EXPECT_TRUE(accumulates(c.w.size(), [&](double *dw) {
    linearBackwardW(dy.data(), c.x.data(), dw, c.m, c.n, c.k);
  }));
}

TEST(Linear, FloatMatchesDouble) {
  LinearCase c;
  EXPECT_TRUE(floatMatchesDouble(
      [&](auto zero) { return c.forward<decltype(zero)>(); }));
}

TEST(Linear, EmptyContractionGivesZerosAndEmptyRowsAreNoOps) {
  // k == 0: OpenBLAS rejects it; the kernel must still write y = 0.
  Vec y(6, 7.0);
  linearForward<double>(nullptr, nullptr, y.data(), 2, 3, 0);
  EXPECT_EQ(y, Vec(6, 0.0));
  // m == 0: nothing to write; the gradient of the weight is unchanged.
  Vec dw(6, 7.0);
  linearBackwardW<double>(nullptr, nullptr, dw.data(), 0, 3, 2);
  EXPECT_EQ(dw, Vec(6, 7.0));
}

//===----------------------------------------------------------------------===//
// mtp_project
//===----------------------------------------------------------------------===//

struct MtpCase {
  int64_t m = 3, hidden = 4;
  Vec e, h, proj;

  MtpCase() {
    std::mt19937 rng(30);
    e = randomVec(m * hidden, rng);
    h = randomVec(m * hidden, rng);
    proj = randomVec(hidden * 2 * hidden, rng);
  }
  template <typename T> Vec forward() const {
    std::vector<T> et = cast<T>(e), ht = cast<T>(h), pt = cast<T>(proj),
                   y(m * hidden);
    mtpProjectForward(et.data(), ht.data(), pt.data(), y.data(), m, hidden);
    return toVec(y);
  }
};

TEST(MtpProject, ForwardMatchesNaiveConcatEmbeddingFirst) {
  MtpCase c;
  int64_t H = c.hidden;
  Vec expected(c.m * H, 0.0);
  for (int64_t r = 0; r < c.m; ++r)
    for (int64_t o = 0; o < H; ++o)
      for (int64_t i = 0; i < 2 * H; ++i) {
        double in = i < H ? c.e[r * H + i] : c.h[r * H + i - H];
        expected[r * H + o] += in * c.proj[o * 2 * H + i];
      }
  EXPECT_TRUE(closeRel(c.forward<double>(), expected, 1e-12));
}

TEST(MtpProject, BackwardBMatchesFiniteDifferences) {
  MtpCase c;
  std::mt19937 rng(31);
  Vec dy = randomVec(c.m * c.hidden, rng);
  Vec numericE = numericGrad(c.e, dy, [&] { return c.forward<double>(); });
  Vec numericH = numericGrad(c.h, dy, [&] { return c.forward<double>(); });
  Vec de(c.e.size(), 0.0), dh(c.h.size(), 0.0);
  mtpProjectBackwardB(dy.data(), c.proj.data(), de.data(), dh.data(), c.m,
                      c.hidden);
  EXPECT_TRUE(gradsMatch(de, numericE));
  EXPECT_TRUE(gradsMatch(dh, numericH));
}

TEST(MtpProject, BackwardWMatchesFiniteDifferences) {
  MtpCase c;
  std::mt19937 rng(32);
  Vec dy = randomVec(c.m * c.hidden, rng);
  Vec numeric = numericGrad(c.proj, dy, [&] { return c.forward<double>(); });
  Vec dproj(c.proj.size(), 0.0);
  mtpProjectBackwardW(dy.data(), c.e.data(), c.h.data(), dproj.data(), c.m,
                      c.hidden);
  EXPECT_TRUE(gradsMatch(dproj, numeric));
}

TEST(MtpProject, BackwardsAccumulate) {
  MtpCase c;
  std::mt19937 rng(33);
  Vec dy = randomVec(c.m * c.hidden, rng);
  Vec other(c.h.size(), 0.0);
  EXPECT_TRUE(accumulates(c.e.size(), [&](double *de) {
    mtpProjectBackwardB(dy.data(), c.proj.data(), de, other.data(), c.m,
                        c.hidden);
  }));
  EXPECT_TRUE(accumulates(c.h.size(), [&](double *dh) {
    mtpProjectBackwardB(dy.data(), c.proj.data(), other.data(), dh, c.m,
                        c.hidden);
  }));
  EXPECT_TRUE(accumulates(c.proj.size(), [&](double *dproj) {
    mtpProjectBackwardW(dy.data(), c.e.data(), c.h.data(), dproj, c.m,
                        c.hidden);
  }));
}

TEST(MtpProject, FloatMatchesDouble) {
  MtpCase c;
  EXPECT_TRUE(floatMatchesDouble(
      [&](auto zero) { return c.forward<decltype(zero)>(); }));
}

//===----------------------------------------------------------------------===//
// cross_entropy
//===----------------------------------------------------------------------===//

struct CrossEntropyCase {
  int64_t tokens = 6, vocab = 5;
  std::vector<int32_t> labels = {0, 4, 2, 2, 1, 3};
  Vec logits;

  CrossEntropyCase() {
    std::mt19937 rng(40);
    logits = randomVec(tokens * vocab, rng, -3.0, 3.0);
  }
  /// The loss followed by the saved lse.
  template <typename T> Vec forward() const {
    std::vector<T> lt = cast<T>(logits), lse(tokens);
    T loss = 0;
    EXPECT_OK(crossEntropyForward(lt.data(), labels.data(), &loss, lse.data(),
                                  tokens, vocab));
    return concat({Vec{double(loss)}, toVec(lse)});
  }
  Vec loss() const { return {forward<double>()[0]}; }
  Vec lse() const {
    Vec all = forward<double>();
    return Vec(all.begin() + 1, all.end());
  }
};

TEST(CrossEntropy, ForwardMatchesNaive) {
  CrossEntropyCase c;
  double total = 0;
  Vec expectedLse;
  for (int64_t n = 0; n < c.tokens; ++n) {
    double sum = 0;
    for (int64_t v = 0; v < c.vocab; ++v)
      sum += std::exp(c.logits[n * c.vocab + v]);
    expectedLse.push_back(std::log(sum));
    total += -std::log(std::exp(c.logits[n * c.vocab + c.labels[n]]) / sum);
  }
  EXPECT_TRUE(closeRel(c.loss(), {total / c.tokens}, 1e-12));
  EXPECT_TRUE(closeRel(c.lse(), expectedLse, 1e-12));
}

TEST(CrossEntropy, BackwardMatchesFiniteDifferences) {
  CrossEntropyCase c;
  const double dLoss = 0.7;
  Vec numeric = numericGrad(c.logits, {dLoss}, [&] { return c.loss(); });
  Vec lse = c.lse(), dlogits(c.logits.size(), 0.0);
  ASSERT_OK(crossEntropyBackward(c.logits.data(), c.labels.data(), lse.data(),
                                 dLoss, dlogits.data(), c.tokens, c.vocab));
  EXPECT_TRUE(gradsMatch(dlogits, numeric));
}

TEST(CrossEntropy, BackwardAccumulates) {
  CrossEntropyCase c;
  Vec lse = c.lse();
  EXPECT_TRUE(accumulates(c.logits.size(), [&](double *dlogits) {
    EXPECT_OK(crossEntropyBackward(c.logits.data(), c.labels.data(), lse.data(),
                                   1.3, dlogits, c.tokens, c.vocab));
  }));
}

TEST(CrossEntropy, FloatMatchesDouble) {
  CrossEntropyCase c;
  EXPECT_TRUE(floatMatchesDouble(
      [&](auto zero) { return c.forward<decltype(zero)>(); }));
}

TEST(CrossEntropy, RejectsOutOfRangeLabelsWithoutWriting) {
  CrossEntropyCase c;
  for (int32_t bad : {-1, 5}) {
    std::vector<int32_t> labels = c.labels;
    labels[2] = bad;
    double loss = 42.0;
    Vec lse(c.tokens, 42.0), dlogits(c.logits.size(), 42.0);
    EXPECT_EQ(crossEntropyForward(c.logits.data(), labels.data(), &loss,
                                  lse.data(), c.tokens, c.vocab),
              Status::LabelOutOfRange);
    EXPECT_EQ(crossEntropyBackward(c.logits.data(), labels.data(), lse.data(),
                                   1.0, dlogits.data(), c.tokens, c.vocab),
              Status::LabelOutOfRange);
    EXPECT_EQ(loss, 42.0);
    EXPECT_EQ(lse, Vec(lse.size(), 42.0));
    EXPECT_EQ(dlogits, Vec(dlogits.size(), 42.0));
  }
}

} // namespace
} // namespace dsflow::cpu::test
