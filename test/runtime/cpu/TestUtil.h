//===- TestUtil.h - Finite differences and comparisons for kernel tests ---===//
#ifndef DSFLOW_TEST_RUNTIME_CPU_TESTUTIL_H
#define DSFLOW_TEST_RUNTIME_CPU_TESTUTIL_H

#include "runtime/backends/cpu/Kernels.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <vector>

namespace dsflow::cpu::test {

using Vec = std::vector<double>;

/// Uniform values in [lo, hi), from a generator the caller seeds.
inline Vec randomVec(size_t n, std::mt19937 &rng, double lo = -1.0,
                     double hi = 1.0) {
  std::uniform_real_distribution<double> dist(lo, hi);
  Vec v(n);
  for (double &x : v)
    x = dist(rng);
  return v;
}

template <typename T> std::vector<T> cast(const Vec &v) {
  return std::vector<T>(v.begin(), v.end());
}

template <typename T> Vec toVec(const std::vector<T> &v) {
  return Vec(v.begin(), v.end());
}

/// Concatenates vectors (several outputs checked as one).
inline Vec concat(std::initializer_list<Vec> parts) {
  Vec all;
  for (const Vec &p : parts)
    all.insert(all.end(), p.begin(), p.end());
  return all;
}

inline double dot(const Vec &a, const Vec &b) {
  double sum = 0;
  for (size_t i = 0; i < a.size(); ++i)
    sum += a[i] * b[i];
  return sum;
}

inline double maxAbs(const Vec &v) {
  double m = 0;
  for (double x : v)
    m = std::max(m, std::abs(x));
  return m;
}

/// Central differences of L(x) = <dy, forward()> with respect to each entry
/// of x; x is perturbed in place and restored.
inline Vec numericGrad(Vec &x, const Vec &dy,
                       const std::function<Vec()> &forward, double eps = 1e-6) {
  Vec grad(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    double old = x[i];
    x[i] = old + eps;
    double plus = dot(dy, forward());
    x[i] = old - eps;
    double minus = dot(dy, forward());
    x[i] = old;
    grad[i] = (plus - minus) / (2 * eps);
  }
  return grad;
}

/// max |actual - expected| / max |expected| below `tol`; `expected` must not
/// be (nearly) zero, so that the comparison cannot pass vacuously.
inline ::testing::AssertionResult closeRel(const Vec &actual,
                                           const Vec &expected, double tol) {
  if (actual.size() != expected.size())
    return ::testing::AssertionFailure()
           << "sizes differ: " << actual.size() << " vs " << expected.size();
  double scale = maxAbs(expected);
  if (scale < 1e-3)
    return ::testing::AssertionFailure()
           << "expected values are all (nearly) zero: max " << scale;
  size_t worst = 0;
  double err = -1;
  for (size_t i = 0; i < actual.size(); ++i)
    if (std::abs(actual[i] - expected[i]) > err) {
      err = std::abs(actual[i] - expected[i]);
      worst = i;
    }
  if (err / scale < tol)
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "relative error " << err / scale << " >= " << tol << " at ["
         << worst << "]: actual " << actual[worst] << ", expected "
         << expected[worst];
}

/// An analytic gradient against finite differences (relative error < 1e-6).
inline ::testing::AssertionResult gradsMatch(const Vec &analytic,
                                             const Vec &numeric) {
  return closeRel(analytic, numeric, 1e-6);
}

/// `backward` accumulates into its buffer: on a buffer holding `base`, two
/// calls leave base + 2 * (the gradient of one call on zeros).
inline ::testing::AssertionResult
accumulates(size_t n, const std::function<void(double *)> &backward) {
  Vec once(n, 0.0);
  backward(once.data());
  if (maxAbs(once) == 0)
    return ::testing::AssertionFailure() << "the gradient is all zero";
  std::mt19937 rng(1234);
  Vec base = randomVec(n, rng);
  Vec twice = base;
  backward(twice.data());
  backward(twice.data());
  for (size_t i = 0; i < n; ++i) {
    double expected = base[i] + 2 * once[i];
    if (std::abs(twice[i] - expected) > 1e-12 * (1 + std::abs(expected)))
      return ::testing::AssertionFailure()
             << "at [" << i << "]: " << twice[i] << " after two calls, "
             << "expected base + 2 * gradient = " << expected;
  }
  return ::testing::AssertionSuccess();
}

/// Runs a forward `run(T{})` in float and in double and compares the results
/// (relative to the largest double value) against `tol`.
template <typename Run>
::testing::AssertionResult floatMatchesDouble(Run run, double tol = 1e-5) {
  return closeRel(run(0.0f), run(0.0), tol);
}

/// Expects a status of Ok, printing its description otherwise.
#define EXPECT_OK(expr) EXPECT_STREQ(toString(expr), toString(Status::Ok))
#define ASSERT_OK(expr) ASSERT_STREQ(toString(expr), toString(Status::Ok))

} // namespace dsflow::cpu::test

#endif // DSFLOW_TEST_RUNTIME_CPU_TESTUTIL_H
