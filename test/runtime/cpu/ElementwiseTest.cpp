//===- ElementwiseTest.cpp - swiglu, add, scale, reshape, split, window ---===//
#include "test/runtime/cpu/TestUtil.h"

namespace dsflow::cpu::test {
namespace {

//===----------------------------------------------------------------------===//
// swiglu
//===----------------------------------------------------------------------===//

struct SwigluCase {
  int64_t n = 12;
  Vec g, u;

  SwigluCase() {
    std::mt19937 rng(50);
    g = randomVec(n, rng, -3.0, 3.0);
    u = randomVec(n, rng);
  }
  template <typename T> Vec forward() const {
    std::vector<T> gt = cast<T>(g), ut = cast<T>(u), y(n);
    swigluForward(gt.data(), ut.data(), y.data(), n);
    return toVec(y);
  }
};

TEST(Swiglu, ForwardMatchesNaive) {
  SwigluCase c;
  Vec expected(c.n);
  for (int64_t i = 0; i < c.n; ++i)
    expected[i] = c.g[i] / (1 + std::exp(-c.g[i])) * c.u[i];
  EXPECT_TRUE(closeRel(c.forward<double>(), expected, 1e-12));
}

TEST(Swiglu, BackwardMatchesFiniteDifferences) {
  SwigluCase c;
  std::mt19937 rng(51);
  Vec dy = randomVec(c.n, rng);
  Vec numericG = numericGrad(c.g, dy, [&] { return c.forward<double>(); });
  Vec numericU = numericGrad(c.u, dy, [&] { return c.forward<double>(); });
  Vec dg(c.n, 0.0), du(c.n, 0.0);
  swigluBackward(dy.data(), c.g.data(), c.u.data(), dg.data(), du.data(), c.n);
  EXPECT_TRUE(gradsMatch(dg, numericG));
  EXPECT_TRUE(gradsMatch(du, numericU));
}

TEST(Swiglu, BackwardAccumulates) {
  SwigluCase c;
  std::mt19937 rng(52);
  Vec dy = randomVec(c.n, rng), other(c.n, 0.0);
  EXPECT_TRUE(accumulates(c.n, [&](double *dg) {
    swigluBackward(dy.data(), c.g.data(), c.u.data(), dg, other.data(), c.n);
  }));
  EXPECT_TRUE(accumulates(c.n, [&](double *du) {
    swigluBackward(dy.data(), c.g.data(), c.u.data(), other.data(), du, c.n);
  }));
}

TEST(Swiglu, FloatMatchesDouble) {
  SwigluCase c;
  EXPECT_TRUE(floatMatchesDouble(
      [&](auto zero) { return c.forward<decltype(zero)>(); }));
}

//===----------------------------------------------------------------------===//
// add and scale
//===----------------------------------------------------------------------===//

TEST(Add, ForwardMatchesNaive) {
  std::mt19937 rng(60);
  Vec a = randomVec(9, rng), b = randomVec(9, rng), y(9), expected(9);
  addForward(a.data(), b.data(), y.data(), 9);
  for (int i = 0; i < 9; ++i)
    expected[i] = a[i] + b[i];
  EXPECT_EQ(y, expected);
}

TEST(Add, BackwardMatchesFiniteDifferences) {
  std::mt19937 rng(61);
  Vec a = randomVec(9, rng), b = randomVec(9, rng), dy = randomVec(9, rng);
  auto forward = [&] {
    Vec y(9);
    addForward(a.data(), b.data(), y.data(), 9);
    return y;
  };
  Vec numericA = numericGrad(a, dy, forward);
  Vec numericB = numericGrad(b, dy, forward);
  Vec da(9, 0.0), db(9, 0.0);
  addBackward(dy.data(), da.data(), db.data(), 9);
  EXPECT_TRUE(gradsMatch(da, numericA));
  EXPECT_TRUE(gradsMatch(db, numericB));
}

TEST(Add, BackwardOfXPlusXIsTwiceTheGradient) {
  std::mt19937 rng(62);
  Vec x = randomVec(9, rng), dy = randomVec(9, rng);
  Vec numeric = numericGrad(x, dy, [&] {
    Vec y(9);
    addForward(x.data(), x.data(), y.data(), 9);
    return y;
  });
  Vec dx(9, 0.0);
  addBackward(dy.data(), dx.data(), dx.data(), 9);
  EXPECT_TRUE(gradsMatch(dx, numeric));
}

TEST(Add, BackwardAccumulatesAndFloatMatchesDouble) {
  std::mt19937 rng(63);
  Vec a = randomVec(9, rng), b = randomVec(9, rng), dy = randomVec(9, rng);
  Vec other(9, 0.0);
  EXPECT_TRUE(accumulates(
      9, [&](double *da) { addBackward(dy.data(), da, other.data(), 9); }));
  EXPECT_TRUE(floatMatchesDouble([&](auto zero) {
    using T = decltype(zero);
    std::vector<T> at = cast<T>(a), bt = cast<T>(b), y(9);
    addForward(at.data(), bt.data(), y.data(), 9);
    return toVec(y);
  }));
}

TEST(Scale, ForwardMatchesNaive) {
  std::mt19937 rng(64);
  Vec x = randomVec(7, rng), y(7), expected(7);
  scaleForward(x.data(), 0.3, y.data(), 7);
  for (int i = 0; i < 7; ++i)
    expected[i] = 0.3 * x[i];
  EXPECT_EQ(y, expected);
}

TEST(Scale, BackwardMatchesFiniteDifferencesAndAccumulates) {
  std::mt19937 rng(65);
  Vec x = randomVec(7, rng), dy = randomVec(7, rng);
  Vec numeric = numericGrad(x, dy, [&] {
    Vec y(7);
    scaleForward(x.data(), -1.7, y.data(), 7);
    return y;
  });
  Vec dx(7, 0.0);
  scaleBackward(dy.data(), -1.7, dx.data(), 7);
  EXPECT_TRUE(gradsMatch(dx, numeric));
  EXPECT_TRUE(
      accumulates(7, [&](double *g) { scaleBackward(dy.data(), -1.7, g, 7); }));
}

TEST(Scale, FloatMatchesDouble) {
  std::mt19937 rng(66);
  Vec x = randomVec(7, rng);
  EXPECT_TRUE(floatMatchesDouble([&](auto zero) {
    using T = decltype(zero);
    std::vector<T> xt = cast<T>(x), y(7);
    scaleForward(xt.data(), 0.3, y.data(), 7);
    return toVec(y);
  }));
}

//===----------------------------------------------------------------------===//
// reshape
//===----------------------------------------------------------------------===//

TEST(Reshape, ForwardCopiesInOrderAndAllowsInPlace) {
  std::mt19937 rng(70);
  Vec x = randomVec(8, rng), y(8, 0.0);
  reshapeForward(x.data(), y.data(), 8);
  EXPECT_EQ(y, x);
  Vec same = x;
  reshapeForward(same.data(), same.data(), 8);
  EXPECT_EQ(same, x);
  std::vector<float> xf = cast<float>(x), yf(8);
  reshapeForward(xf.data(), yf.data(), 8);
  EXPECT_EQ(yf, xf);
}

TEST(Reshape, BackwardMatchesFiniteDifferencesAndAccumulates) {
  std::mt19937 rng(71);
  Vec x = randomVec(8, rng), dy = randomVec(8, rng);
  Vec numeric = numericGrad(x, dy, [&] {
    Vec y(8);
    reshapeForward(x.data(), y.data(), 8);
    return y;
  });
  Vec dx(8, 0.0);
  reshapeBackward(dy.data(), dx.data(), 8);
  EXPECT_TRUE(gradsMatch(dx, numeric));
  EXPECT_TRUE(
      accumulates(8, [&](double *g) { reshapeBackward(dy.data(), g, 8); }));
}

//===----------------------------------------------------------------------===//
// split
//===----------------------------------------------------------------------===//

struct SplitCase {
  int64_t rows = 3;
  std::vector<int64_t> widths = {2, 3, 1};
  int64_t width = 6;
  Vec x;

  SplitCase() {
    std::mt19937 rng(80);
    x = randomVec(rows * width, rng);
  }
  /// The pieces, concatenated.
  template <typename T> Vec forward() const {
    std::vector<T> xt = cast<T>(x);
    std::vector<std::vector<T>> pieces;
    std::vector<T *> ptrs;
    for (int64_t w : widths)
      pieces.emplace_back(rows * w);
    for (auto &p : pieces)
      ptrs.push_back(p.data());
    splitForward(xt.data(), ptrs.data(), widths.data(), 3, rows);
    return concat({toVec(pieces[0]), toVec(pieces[1]), toVec(pieces[2])});
  }
};

TEST(Split, ForwardMatchesNaive) {
  SplitCase c;
  Vec expected;
  int64_t offset = 0;
  for (int64_t w : c.widths) {
    for (int64_t r = 0; r < c.rows; ++r)
      for (int64_t i = 0; i < w; ++i)
        expected.push_back(c.x[r * c.width + offset + i]);
    offset += w;
  }
  EXPECT_EQ(c.forward<double>(), expected);
}

TEST(Split, BackwardIsConcatOfGradientsAndSkipsNullPieces) {
  SplitCase c;
  std::mt19937 rng(81);
  Vec d0 = randomVec(c.rows * 2, rng), d2 = randomVec(c.rows * 1, rng);
  // The middle piece is unused: its gradient is zero and passed as null.
  Vec dy = concat({d0, Vec(c.rows * 3, 0.0), d2});
  Vec numeric = numericGrad(c.x, dy, [&] { return c.forward<double>(); });
  const double *dys[3] = {d0.data(), nullptr, d2.data()};
  Vec dx(c.x.size(), 0.0);
  splitBackward(dys, dx.data(), c.widths.data(), 3, c.rows);
  EXPECT_TRUE(gradsMatch(dx, numeric));
}

TEST(Split, BackwardAccumulatesAndFloatMatchesDouble) {
  SplitCase c;
  std::mt19937 rng(82);
  Vec d0 = randomVec(c.rows * 2, rng), d1 = randomVec(c.rows * 3, rng),
      d2 = randomVec(c.rows * 1, rng);
  const double *dys[3] = {d0.data(), d1.data(), d2.data()};
  EXPECT_TRUE(accumulates(c.x.size(), [&](double *dx) {
    splitBackward(dys, dx, c.widths.data(), 3, c.rows);
  }));
  EXPECT_TRUE(floatMatchesDouble(
      [&](auto zero) { return c.forward<decltype(zero)>(); }));
}

//===----------------------------------------------------------------------===//
// token_window
//===----------------------------------------------------------------------===//

TEST(TokenWindow, SelectsTheWindowOfEveryBatchRow) {
  const int64_t batch = 2, inSeq = 6, outSeq = 4;
  std::vector<int32_t> ids(batch * inSeq);
  for (int64_t i = 0; i < batch * inSeq; ++i)
    ids[i] = static_cast<int32_t>(100 + i);
  for (int64_t offset : {0, 1, 2}) {
    std::vector<int32_t> y(batch * outSeq, -1), expected;
    tokenWindow(ids.data(), y.data(), batch, inSeq, offset, outSeq);
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t s = 0; s < outSeq; ++s)
        expected.push_back(ids[b * inSeq + offset + s]);
    EXPECT_EQ(y, expected) << "offset " << offset;
  }
}

} // namespace
} // namespace dsflow::cpu::test
