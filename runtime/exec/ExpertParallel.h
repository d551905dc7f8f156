//===- ExpertParallel.h - Routed experts spread over EP ranks ---*- C++ -*-===//
//
// Under expert parallelism each rank of an EP group computes only the experts
// in its slots (ExpertSlots.h). The routed-expert kernels keep their plan
// operands (this rank's rows, sorted by expert, with per-expert counts, and
// every expert's weights) and move rows around the local computation:
//
//   forward   rows  -> all-to-all to the slots' ranks -> local experts -> y
//   back B-grad    dy    -> the same route -> local B-grad -> dRows and
//                  row dots back
//   W-grad
//   the received rows and dy -> the local experts' gradient buffers
//
// The rows of an expert with several slots (replicas) are split into
// contiguous near-equal parts, one per slot. A rank's local rows are ordered
// slot by slot and, within a slot, by source rank: with the global batch split
// over the ranks in rank order, each expert sees its rows in the order a single
// process would. The received rows, the saved pre-activations and the received
// dy live here between a layer's three kernels (the plan's saved-activation
// buffers for the experts stay unused).
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_RUNTIME_EXEC_EXPERTPARALLEL_H
#define DSFLOW_RUNTIME_EXEC_EXPERTPARALLEL_H

#include "dist/Communicator.h"
#include "exec/ExpertSlots.h"
#include "runtime/backends/cpu/Fp8.h"
#include "runtime/backends/cpu/Kernels.h"

#include <map>
#include <memory>
#include <optional>

namespace dsflow::exec {

class ExpertParallel;

/// The routed experts' weights as the kernels see them: E pointers each.
template <typename T> struct ExpertWeights {
  const T *const *gate;
  const T *const *up;
  const T *const *down;
};

/// Base of the typed exchanges, so that one registry holds both.
class ExchangeBase {
public:
  virtual ~ExchangeBase() = default;
};

/// One MoE layer's exchange between its forward, B-grad and W-grad kernels.
template <typename T> class ExpertExchange : public ExchangeBase {
public:
  ExpertExchange(ExpertParallel &ep, ExpertSlots slots, int64_t hidden,
                 int64_t inter)
      : ep(ep), slots(std::move(slots)), hidden(hidden), inter(inter) {}

  /// rows [numRows, H] sorted by expert, counts [E] -> y [numRows, H].
  cpu::Status forward(const T *rows, const int32_t *counts, int64_t numRows,
                      ExpertWeights<T> w, T *y,
                      const cpu::Fp8ScaleOptions *fp8);
  /// dy [numRows, H] -> dRows [numRows, H] and rowDots [numRows] (after
  /// forward; see cpu::expertFfnBackwardB).
  cpu::Status backwardData(const T *dy, int64_t numRows, ExpertWeights<T> w,
                           T *dRows, T *rowDots,
                           const cpu::Fp8ScaleOptions *fp8);
  /// Adds the local experts' weight gradients into dGate/dUp/dDown (E
  /// pointers each; the other experts' are left alone).
  cpu::Status backwardWeights(const T *dy, int64_t numRows, ExpertWeights<T> w,
                              T *const *dGate, T *const *dUp, T *const *dDown,
                              const cpu::Fp8ScaleOptions *fp8);

private:
  /// Plans where this rank's rows go from its per-expert counts.
  bool route(const int32_t *counts, int64_t numRows);
  /// Local rows [numRows, width] -> this rank's slot-major rows in `out`.
  bool toSlots(const T *local, int64_t width, std::vector<T> &out);
  /// This rank's slot-major rows [localRows, width] -> local rows `out`.
  bool fromSlots(const std::vector<T> &slotRows, int64_t width, T *out);
  /// dy received for the local experts (once per backward).
  bool receiveGradient(const T *dy, int64_t numRows);
  /// The local slots' weights.
  void localWeights(ExpertWeights<T> w, std::vector<const T *> &gate,
                    std::vector<const T *> &up,
                    std::vector<const T *> &down) const;
  cpu::Status failed() const;

  ExpertParallel &ep;
  ExpertSlots slots;
  int64_t hidden, inter;
  int64_t routedRows = -1;
  /// Per destination slot (all ranks'): the first local row sent to it and
  /// how many.
  std::vector<int64_t> sendFirst, sendCount;
  /// [source rank * slotsPerRank + local slot]: rows received.
  std::vector<int64_t> recvCount;
  /// Rows per local slot, and all of them.
  std::vector<int32_t> localCounts;
  int64_t localRows = 0;
  std::vector<T> rows, savedGate, savedUp, dy;
  bool haveGradient = false;
  std::vector<T> sendBuffer, recvBuffer;
};

/// The EP group of this rank and the exchanges of the plan's MoE layers.
class ExpertParallel {
public:
  explicit ExpertParallel(dist::Communicator &group) : group(group) {}

  dist::Communicator &group;
  /// The exchange of MoE layer `layer` in the executor memory `memory` (a
  /// pipeline stage has one memory per micro-batch; a recomputed dispatch
  /// writes other buffers but belongs to the same layer), made on first use;
  /// an error when its placement does not fit.
  template <typename T>
  io::Expected<std::shared_ptr<ExpertExchange<T>>>
  exchange(const Plan &plan, const void *memory, int64_t layer, int64_t experts,
           int64_t hidden, int64_t inter);

  /// Set by an exchange whose communication failed (its kernel then returns
  /// Status::CommunicationFailed).
  std::optional<io::IoError> error;

private:
  std::map<std::pair<const void *, int64_t>, std::shared_ptr<ExchangeBase>>
      exchanges;
};

} // namespace dsflow::exec

#endif // DSFLOW_RUNTIME_EXEC_EXPERTPARALLEL_H
