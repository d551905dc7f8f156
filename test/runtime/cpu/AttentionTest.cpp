//===- AttentionTest.cpp - Causal MLA attention core ----------------------===//
#include "test/runtime/cpu/TestUtil.h"

#include <limits>

namespace dsflow::cpu::test {
namespace {

struct AttentionCase {
  MlaShape s{/*batch=*/2,   /*seq=*/4,     /*heads=*/3, /*nopeDim=*/3,
             /*ropeDim=*/2, /*valueDim=*/2};
  double scale = 0.45;
  Vec qNope, qPe, kNope, kPe, v;

  AttentionCase() {
    std::mt19937 rng(100);
    int64_t rows = s.batch * s.seq * s.heads;
    qNope = randomVec(rows * s.nopeDim, rng, -1.5, 1.5);
    qPe = randomVec(rows * s.ropeDim, rng, -1.5, 1.5);
    kNope = randomVec(rows * s.nopeDim, rng, -1.5, 1.5);
    kPe = randomVec(s.batch * s.seq * s.ropeDim, rng, -1.5, 1.5);
    v = randomVec(rows * s.valueDim, rng);
  }
  int64_t outSize() const { return s.batch * s.seq * s.heads * s.valueDim; }
  /// out followed by lse.
  template <typename T> Vec forward() const {
    std::vector<T> qn = cast<T>(qNope), qp = cast<T>(qPe), kn = cast<T>(kNope),
                   kp = cast<T>(kPe), vt = cast<T>(v);
    std::vector<T> out(outSize()), lse(s.batch * s.seq * s.heads);
    mlaAttentionForward(qn.data(), qp.data(), kn.data(), kp.data(), vt.data(),
                        out.data(), lse.data(), s, scale);
    return concat({toVec(out), toVec(lse)});
  }
  Vec out() const {
    Vec all = forward<double>();
    return Vec(all.begin(), all.begin() + outSize());
  }
  Vec lse() const {
    Vec all = forward<double>();
    return Vec(all.begin() + outSize(), all.end());
  }

  /// The textbook computation: concatenated q and k (kPe copied to every
  /// head), a full score matrix with -inf above the diagonal, softmax, P V.
  Vec naive(Vec *lseOut) const {
    const int64_t S = s.seq, H = s.heads, N = s.nopeDim, R = s.ropeDim,
                  V = s.valueDim, D = N + R;
    Vec out(outSize(), 0.0);
    lseOut->assign(s.batch * S * H, 0.0);
    for (int64_t b = 0; b < s.batch; ++b)
      for (int64_t h = 0; h < H; ++h) {
        auto q = [&](int64_t i, int64_t d) {
          int64_t row = (b * S + i) * H + h;
          return d < N ? qNope[row * N + d] : qPe[row * R + d - N];
        };
        auto k = [&](int64_t j, int64_t d) {
          int64_t row = (b * S + j) * H + h;
          return d < N ? kNope[row * N + d] : kPe[(b * S + j) * R + d - N];
        };
        for (int64_t i = 0; i < S; ++i) {
          Vec scores(S);
          for (int64_t j = 0; j < S; ++j) {
            double dot = 0;
            for (int64_t d = 0; d < D; ++d)
              dot += q(i, d) * k(j, d);
            scores[j] =
                j <= i ? dot * scale : -std::numeric_limits<double>::infinity();
          }
          double sum = 0;
          for (int64_t j = 0; j < S; ++j)
            sum += std::exp(scores[j]);
          int64_t row = (b * S + i) * H + h;
          (*lseOut)[row] = std::log(sum);
          for (int64_t j = 0; j < S; ++j)
            for (int64_t d = 0; d < V; ++d)
              out[row * V + d] +=
                  std::exp(scores[j]) / sum * v[((b * S + j) * H + h) * V + d];
        }
      }
    return out;
  }

  struct Grads {
    Vec qNope, qPe, kNope, kPe, v;
  };
  Grads backward(const Vec &dOut) const {
    Grads g{Vec(qNope.size(), 0.0), Vec(qPe.size(), 0.0),
            Vec(kNope.size(), 0.0), Vec(kPe.size(), 0.0), Vec(v.size(), 0.0)};
    Vec l = lse();
    mlaAttentionBackward(dOut.data(), qNope.data(), qPe.data(), kNope.data(),
                         kPe.data(), v.data(), l.data(), g.qNope.data(),
                         g.qPe.data(), g.kNope.data(), g.kPe.data(), g.v.data(),
                         s, scale);
    return g;
  }
};

TEST(MlaAttention, ForwardMatchesNaiveMaskedSoftmax) {
  AttentionCase c;
  Vec expectedLse;
  Vec expected = c.naive(&expectedLse);
  EXPECT_TRUE(closeRel(c.out(), expected, 1e-12));
  EXPECT_TRUE(closeRel(c.lse(), expectedLse, 1e-12));
}

TEST(MlaAttention, FirstPositionSeesOnlyItself) {
  AttentionCase c;
  Vec out = c.out();
  const int64_t H = c.s.heads, V = c.s.valueDim;
  for (int64_t b = 0; b < c.s.batch; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t d = 0; d < V; ++d) {
        int64_t at = ((b * c.s.seq) * H + h) * V + d;
        EXPECT_NEAR(out[at], c.v[at], 1e-15);
      }
}

TEST(MlaAttention, BackwardMatchesFiniteDifferencesForEveryInput) {
  AttentionCase c;
  std::mt19937 rng(101);
  Vec dOut = randomVec(c.outSize(), rng);
  auto forward = [&] { return c.out(); };
  AttentionCase::Grads g = c.backward(dOut);
  EXPECT_TRUE(gradsMatch(g.qNope, numericGrad(c.qNope, dOut, forward)));
  EXPECT_TRUE(gradsMatch(g.qPe, numericGrad(c.qPe, dOut, forward)));
  EXPECT_TRUE(gradsMatch(g.kNope, numericGrad(c.kNope, dOut, forward)));
  EXPECT_TRUE(gradsMatch(g.kPe, numericGrad(c.kPe, dOut, forward)));
  EXPECT_TRUE(gradsMatch(g.v, numericGrad(c.v, dOut, forward)));
}

TEST(MlaAttention, BackwardAccumulatesIntoEveryGradient) {
  AttentionCase c;
  std::mt19937 rng(102);
  Vec dOut = randomVec(c.outSize(), rng), l = c.lse();
  // Runs the backward with one gradient under test and scratch for the rest.
  auto run = [&](int which, double *grad) {
    AttentionCase::Grads scratch{Vec(c.qNope.size()), Vec(c.qPe.size()),
                                 Vec(c.kNope.size()), Vec(c.kPe.size()),
                                 Vec(c.v.size())};
    double *ptrs[5] = {scratch.qNope.data(), scratch.qPe.data(),
                       scratch.kNope.data(), scratch.kPe.data(),
                       scratch.v.data()};
    ptrs[which] = grad;
    mlaAttentionBackward(dOut.data(), c.qNope.data(), c.qPe.data(),
                         c.kNope.data(), c.kPe.data(), c.v.data(), l.data(),
                         ptrs[0], ptrs[1], ptrs[2], ptrs[3], ptrs[4], c.s,
                         c.scale);
  };
  size_t sizes[5] = {c.qNope.size(), c.qPe.size(), c.kNope.size(), c.kPe.size(),
                     c.v.size()};
  for (int which = 0; which < 5; ++which)
    EXPECT_TRUE(
        accumulates(sizes[which], [&](double *grad) { run(which, grad); }))
        << "gradient " << which;
}

TEST(MlaAttention, FloatMatchesDouble) {
  AttentionCase c;
  EXPECT_TRUE(floatMatchesDouble(
      [&](auto zero) { return c.forward<decltype(zero)>(); }));
}

} // namespace
} // namespace dsflow::cpu::test

namespace dsflow::cpu::test {
namespace {

/// Sequences run on separate workers; the bits must not depend on how many.
TEST(MlaAttention, ResultsDoNotDependOnTheThreadCount) {
  AttentionCase c; // Rebuilt below for 5 sequences.
  std::mt19937 rng(7);
  c.s = MlaShape{/*batch=*/5, /*seq=*/6, /*heads=*/3, 3, 2, 2};
  int64_t rows = c.s.batch * c.s.seq * c.s.heads;
  c.qNope = randomVec(rows * c.s.nopeDim, rng);
  c.qPe = randomVec(rows * c.s.ropeDim, rng);
  c.kNope = randomVec(rows * c.s.nopeDim, rng);
  c.kPe = randomVec(c.s.batch * c.s.seq * c.s.ropeDim, rng);
  c.v = randomVec(rows * c.s.valueDim, rng);
  Vec dOut = randomVec(c.outSize(), rng);
  auto run = [&](const char *threads) {
    setenv("DSFLOW_NUM_THREADS", threads, 1);
    Vec forward = c.forward<float>();
    AttentionCase::Grads g = c.backward(dOut);
    unsetenv("DSFLOW_NUM_THREADS");
    return concat({forward, g.qNope, g.qPe, g.kNope, g.kPe, g.v});
  };
  Vec serial = run("1"), parallel = run("4");
  ASSERT_EQ(serial.size(), parallel.size());
  for (size_t i = 0; i < serial.size(); ++i)
    ASSERT_EQ(serial[i], parallel[i]) << "element " << i;
}

} // namespace
} // namespace dsflow::cpu::test
