//===- OneFOneB.cpp - 1F1B and ZB-H1 streams ------------------------------===//
//
// Rank r holds stage r. 1F1B: pp - 1 - r warm-up forwards, then a forward and
// a backward per step, then the remaining backwards. ZB-H1 (Qi et al., "Zero
// Bubble Pipeline Parallelism", handcrafted ZB-H1) keeps that order with the
// backward split: the input-gradient part B runs where 1F1B's backward runs,
// and rank r keeps up to r weight-gradient parts W pending, which fill the
// rank's waits; the pending W run at the end.
//
//===----------------------------------------------------------------------===//
#include "Schedule/ScheduleGenerators.h"
#include "Schedule/StreamBuilder.h"

#include <algorithm>
#include <deque>

namespace dsflow::schedule {

PipelineSchedule detail::buildOneFOneB(ScheduleKind kind, int pp, int m) {
  PipelineSchedule s = makeSchedule(kind, pp, pp, m);
  bool split = kind == ScheduleKind::ZeroBubble1P;
  for (int r = 0; r < pp; ++r) {
    StreamBuilder b(s, r);
    std::deque<int> deferred; // micro-batches whose W is pending
    auto weights = [&](size_t keep) {
      for (; deferred.size() > keep; deferred.pop_front())
        b.compute(Op::BackwardWeight, {deferred.front(), r});
    };
    auto backward = [&](int mb) {
      if (!split)
        return b.backward(Op::FullBackward, {mb, r});
      b.backward(Op::BackwardInput, {mb, r});
      deferred.push_back(mb);
      weights(r);
    };
    int warm = std::min(pp - 1 - r, m);
    for (int i = 0; i < warm; ++i)
      b.forward({i, r});
    for (int i = 0; i + warm < m; ++i) {
      b.forward({warm + i, r});
      backward(i);
    }
    for (int i = m - warm; i < m; ++i)
      backward(i);
    weights(0);
  }
  return s;
}

} // namespace dsflow::schedule
