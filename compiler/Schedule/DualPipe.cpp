//===- DualPipe.cpp - DualPipe and DualPipeV streams ----------------------===//
//
// Both follow the eight steps of DeepSeek's reference implementation
// (deepseek-ai/DualPipe, dualpipe.py), written here from its structure. A rank
// has two phases: phase 0 is its early stage h, phase 1 its late stage
// pp-1-h, where h is the rank's distance from the pipeline's nearest end
// (DualPipe: min(r, pp-1-r) of pp ranks; DualPipeV: r of pp/2 ranks). In
// DualPipe the phases run micro-batches of opposite directions, in DualPipeV
// the same micro-batches on their way down and back up. The "middle" rank
// (h = n-1, n the half-rank count) hands its phase-0 output straight to a
// phase 1: the other middle rank's (DualPipe) or its own (DualPipeV).
//
// Each phase counts the forwards, backwards, sends and receives it has done,
// as the reference does, so a step names "the next forward of phase 0", and a
// send left out in one step (the middle rank's) is made in a later one.
//
//===----------------------------------------------------------------------===//
#include "Schedule/ScheduleGenerators.h"
#include "Schedule/StreamBuilder.h"

#include <algorithm>
#include <deque>

namespace dsflow::schedule {

namespace {

class DualRank {
public:
  DualRank(PipelineSchedule &s, int rank, int h, int perPhase,
           const int (&direction)[2])
      : builder(s, rank), perPhase(perPhase) {
    phases[0] = {direction[0], h};
    phases[1] = {direction[1], s.stages - 1 - h};
  }

  void forwardChunk(int p, bool recv = true, bool send = true) {
    if (recv)
      recvForward(p);
    builder.compute(Op::Forward, next(p, phases[p].forwards++));
    if (send)
      sendForward(p);
  }

  void backwardChunk(int p, bool zeroBubble = false, bool recv = true,
                     bool send = true) {
    if (recv)
      recvBackward(p);
    Chunk c = next(p, phases[p].backwards++);
    builder.compute(zeroBubble ? Op::BackwardInput : Op::FullBackward, c);
    if (zeroBubble)
      deferred.push_back(c);
    if (send)
      sendBackward(p);
  }

  /// An overlapped pair: the next forward of p0 with the next backward of p1.
  void forwardBackwardChunk(int p0, int p1, bool recv0 = true) {
    if (recv0)
      recvForward(p0);
    recvBackward(p1);
    Chunk f = next(p0, phases[p0].forwards++);
    builder.compute(Op::ForwardBackward, f, next(p1, phases[p1].backwards++));
    sendForward(p0);
    sendBackward(p1);
  }

  /// The oldest deferred weight-gradient chunk.
  void weightChunk() {
    builder.compute(Op::BackwardWeight, deferred.front());
    deferred.pop_front();
  }

  void recvForward(int p) {
    builder.recvActivation(next(p, phases[p].recvF++));
  }
  void recvBackward(int p) { builder.recvGradient(next(p, phases[p].recvB++)); }
  void sendForward(int p) {
    builder.sendActivation(next(p, phases[p].sendF++));
  }
  void sendBackward(int p) { builder.sendGradient(next(p, phases[p].sendB++)); }

private:
  struct Phase {
    int direction = 0;
    int stage = 0;
    int forwards = 0, backwards = 0, recvF = 0, recvB = 0, sendF = 0, sendB = 0;
  };

  /// The k-th chunk of phase p: direction 1 numbers its micro-batches after
  /// direction 0's.
  Chunk next(int p, int k) const {
    return {phases[p].direction * perPhase + k, phases[p].stage};
  }

  StreamBuilder builder;
  int perPhase;
  Phase phases[2];
  std::deque<Chunk> deferred;
};

/// The eight steps for one rank; n half ranks, c chunks per phase.
void dualSteps(DualRank &d, int n, int h, int c) {
  bool middle = h == n - 1;
  // Step 1: nF0.
  for (int i = 0; i < (n - h - 1) * 2; ++i)
    d.forwardChunk(0);
  // Step 2: nF0F1. The middle rank sends phase 0's output at once (the other
  // phase 1 waits for it) and keeps its last phase-1 output for step 4.
  int step2 = h + 1;
  d.recvForward(0);
  for (int i = 0; i < step2; ++i) {
    d.forwardChunk(0, /*recv=*/false, /*send=*/middle);
    d.recvForward(0);
    d.forwardChunk(1, /*recv=*/true, /*send=*/!middle || i < step2 - 1);
    if (!middle)
      d.sendForward(0);
  }
  // Step 3: nB1W1F1, zero bubble: W fills the wait for the next forward.
  for (int i = 0; i < n - h - 1; ++i) {
    d.backwardChunk(1, /*zeroBubble=*/true);
    d.recvForward(1);
    d.weightChunk();
    d.forwardChunk(1, /*recv=*/false);
  }
  // Step 4: nF0B1F1B0, the steady state of overlapped pairs. The middle
  // rank's first forward and backward run apart, which shortens the bubble.
  int step4 = c - 2 * n + h + 1;
  for (int i = 0; i < step4; ++i) {
    if (i == 0 && middle) {
      d.forwardChunk(0, /*recv=*/false, /*send=*/false);
      d.sendForward(1);
      d.backwardChunk(1, /*zeroBubble=*/false, /*recv=*/true, /*send=*/false);
      d.sendForward(0);
      d.sendBackward(1);
    } else {
      d.forwardBackwardChunk(0, 1, /*recv0=*/i != 0);
    }
    d.forwardBackwardChunk(1, 0);
  }
  // Step 5: nB1F1B0.
  for (int i = 0; i < n - h - 1; ++i) {
    d.backwardChunk(1);
    d.forwardBackwardChunk(1, 0);
  }
  // Step 6: nB1B0; the second half of these backwards defer their W.
  int step6 = h + 1;
  bool zeroBubble = false;
  for (int i = 0; i < step6; ++i) {
    if (i == step6 / 2 && h % 2 == 1)
      zeroBubble = true;
    d.backwardChunk(1, zeroBubble);
    if (i == step6 / 2 && h % 2 == 0)
      zeroBubble = true;
    d.backwardChunk(0, zeroBubble);
  }
  // Step 7: nWB0.
  for (int i = 0; i < n - h - 1; ++i) {
    d.weightChunk();
    d.backwardChunk(0, /*zeroBubble=*/true);
  }
  // Step 8: nW.
  for (int i = 0; i < h + 1; ++i)
    d.weightChunk();
}

} // namespace

PipelineSchedule detail::buildDualPipe(ScheduleKind kind, int pp, int m) {
  bool v = kind == ScheduleKind::DualPipeV;
  int n = pp / 2;
  PipelineSchedule s = makeSchedule(kind, pp, v ? n : pp, m);
  for (int r = 0; r < s.ranks; ++r) {
    int h = v ? r : std::min(r, pp - 1 - r);
    // DualPipe: phase 0 runs the direction in which this rank comes early.
    int first = v || r < n ? 0 : 1;
    int direction[2] = {first, v ? 0 : 1 - first};
    DualRank d(s, r, h, v ? m : m / 2, direction);
    dualSteps(d, n, h, v ? m : m / 2);
  }
  return s;
}

} // namespace dsflow::schedule
