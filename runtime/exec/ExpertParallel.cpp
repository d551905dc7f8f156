//===- ExpertParallel.cpp - Routed experts spread over EP ranks -----------===//
#include "exec/ExpertParallel.h"

#include <algorithm>

namespace dsflow::exec {

/// Bytes per rank of blocks of `rows[rank * slots + s]` rows of `width`.
template <typename T>
static std::vector<int64_t> blockBytes(const std::vector<int64_t> &rows,
                                       int64_t slots, int64_t width) {
  std::vector<int64_t> bytes(rows.size() / slots, 0);
  for (size_t i = 0; i < rows.size(); ++i)
    bytes[i / slots] += rows[i] * width * int64_t(sizeof(T));
  return bytes;
}

template <typename T>
bool ExpertExchange<T>::route(const int32_t *counts, int64_t numRows) {
  const int64_t experts = int64_t(slots.replicas.size());
  const int64_t S = slots.slotsPerRank;
  const int me = ep.group.rank();
  int64_t total = 0;
  for (int64_t e = 0; e < experts; ++e) {
    if (counts[e] < 0)
      return false;
    total += counts[e];
  }
  if (total != numRows)
    return false;
  sendFirst.assign(slots.slotExpert.size(), 0);
  sendCount.assign(slots.slotExpert.size(), 0);
  int64_t first = 0;
  for (int64_t e = 0; e < experts; ++e) {
    const std::vector<int32_t> &to = slots.replicas[e];
    int n = int(to.size());
    // Near-equal parts; which replica gets the larger ones rotates with the
    // rank so that no replica is always favoured.
    std::vector<int64_t> parts = dist::evenCounts(counts[e], n);
    for (int i = 0; i < n; ++i) {
      sendFirst[to[i]] = first;
      sendCount[to[i]] = parts[(i + me) % n];
      first += sendCount[to[i]];
    }
  }
  // Every rank learns how many rows it gets from each rank for each slot.
  recvCount.assign(sendCount.size(), 0);
  std::vector<int64_t> countBytes(slots.ranks, S * int64_t(sizeof(int64_t)));
  if (io::Status e = ep.group.allToAllV(sendCount.data(), countBytes,
                                        recvCount.data(), countBytes)) {
    ep.error = *e;
    return false;
  }
  localCounts.assign(S, 0);
  localRows = 0;
  for (size_t i = 0; i < recvCount.size(); ++i) {
    localCounts[i % S] += static_cast<int32_t>(recvCount[i]);
    localRows += recvCount[i];
  }
  routedRows = numRows;
  return true;
}

template <typename T>
bool ExpertExchange<T>::toSlots(const T *local, int64_t width,
                                std::vector<T> &out) {
  const int64_t S = slots.slotsPerRank;
  sendBuffer.clear();
  for (size_t g = 0; g < sendCount.size(); ++g)
    sendBuffer.insert(sendBuffer.end(), local + sendFirst[g] * width,
                      local + (sendFirst[g] + sendCount[g]) * width);
  recvBuffer.resize(localRows * width);
  if (io::Status e = ep.group.allToAllV(
          sendBuffer.data(), blockBytes<T>(sendCount, S, width),
          recvBuffer.data(), blockBytes<T>(recvCount, S, width))) {
    ep.error = *e;
    return false;
  }
  // From rank-major (source, slot) blocks to slot-major, sources in order.
  out.resize(localRows * width);
  std::vector<int64_t> cursor(S, 0);
  for (int64_t s = 1; s < S; ++s)
    cursor[s] = cursor[s - 1] + localCounts[s - 1];
  const T *from = recvBuffer.data();
  for (size_t i = 0; i < recvCount.size(); ++i) {
    int64_t n = recvCount[i] * width;
    std::copy(from, from + n, out.data() + cursor[i % S] * width);
    cursor[i % S] += recvCount[i];
    from += n;
  }
  return true;
}

template <typename T>
bool ExpertExchange<T>::fromSlots(const std::vector<T> &slotRows, int64_t width,
                                  T *out) {
  const int64_t S = slots.slotsPerRank;
  std::vector<int64_t> cursor(S, 0);
  for (int64_t s = 1; s < S; ++s)
    cursor[s] = cursor[s - 1] + localCounts[s - 1];
  sendBuffer.clear();
  for (size_t i = 0; i < recvCount.size(); ++i) {
    const T *block = slotRows.data() + cursor[i % S] * width;
    sendBuffer.insert(sendBuffer.end(), block, block + recvCount[i] * width);
    cursor[i % S] += recvCount[i];
  }
  recvBuffer.resize(routedRows * width);
  if (io::Status e = ep.group.allToAllV(
          sendBuffer.data(), blockBytes<T>(recvCount, S, width),
          recvBuffer.data(), blockBytes<T>(sendCount, S, width))) {
    ep.error = *e;
    return false;
  }
  const T *from = recvBuffer.data();
  for (size_t g = 0; g < sendCount.size(); ++g) {
    T *to = out + sendFirst[g] * width;
    for (int64_t i = 0; i < sendCount[g] * width; ++i)
      to[i] += from[i];
    from += sendCount[g] * width;
  }
  return true;
}

template <typename T>
bool ExpertExchange<T>::receiveGradient(const T *gradient, int64_t numRows) {
  if (numRows != routedRows)
    return false;
  if (!haveGradient)
    haveGradient = toSlots(gradient, hidden, dy);
  return haveGradient;
}

template <typename T>
void ExpertExchange<T>::localWeights(ExpertWeights<T> w,
                                     std::vector<const T *> &gate,
                                     std::vector<const T *> &up,
                                     std::vector<const T *> &down) const {
  const int me = ep.group.rank();
  for (int64_t s = 0; s < slots.slotsPerRank; ++s) {
    int32_t e = slots.expertOf(me, s);
    gate.push_back(w.gate[e]);
    up.push_back(w.up[e]);
    down.push_back(w.down[e]);
  }
}

template <typename T> cpu::Status ExpertExchange<T>::failed() const {
  // A failed exchange has recorded the communicator's error; anything else
  // is an operand that does not fit this layer's route.
  return ep.error ? cpu::Status::CommunicationFailed
                  : cpu::Status::BadExpertCounts;
}

template <typename T>
cpu::Status ExpertExchange<T>::forward(const T *input, const int32_t *counts,
                                       int64_t numRows, ExpertWeights<T> w,
                                       T *y, const cpu::Fp8ScaleOptions *fp8) {
  haveGradient = false;
  if (!route(counts, numRows) || !toSlots(input, hidden, rows))
    return failed();
  std::vector<const T *> gate, up, down;
  localWeights(w, gate, up, down);
  savedGate.assign(localRows * inter, T(0));
  savedUp.assign(localRows * inter, T(0));
  std::vector<T> local(localRows * hidden, T(0));
  cpu::Status status = cpu::expertFfnForward(
      rows.data(), localCounts.data(), gate.data(), up.data(), down.data(),
      local.data(), savedGate.data(), savedUp.data(), localRows,
      slots.slotsPerRank, hidden, inter, fp8);
  if (status != cpu::Status::Ok)
    return status;
  return fromSlots(local, hidden, y) ? cpu::Status::Ok : failed();
}

template <typename T>
cpu::Status ExpertExchange<T>::backwardData(const T *gradient, int64_t numRows,
                                            ExpertWeights<T> w, T *dRows,
                                            T *rowDots,
                                            const cpu::Fp8ScaleOptions *fp8) {
  if (!receiveGradient(gradient, numRows))
    return failed();
  std::vector<const T *> gate, up, down;
  localWeights(w, gate, up, down);
  std::vector<T> local(localRows * hidden, T(0)), localDots(localRows, T(0));
  cpu::Status status = cpu::expertFfnBackwardB(
      dy.data(), localCounts.data(), gate.data(), up.data(), down.data(),
      savedGate.data(), savedUp.data(), local.data(), localDots.data(),
      localRows, slots.slotsPerRank, hidden, inter, fp8);
  if (status != cpu::Status::Ok)
    return status;
  return fromSlots(local, hidden, dRows) && fromSlots(localDots, 1, rowDots)
             ? cpu::Status::Ok
             : failed();
}

template <typename T>
cpu::Status ExpertExchange<T>::backwardWeights(
    const T *gradient, int64_t numRows, ExpertWeights<T> w, T *const *dGate,
    T *const *dUp, T *const *dDown, const cpu::Fp8ScaleOptions *fp8) {
  if (!receiveGradient(gradient, numRows))
    return failed();
  std::vector<const T *> gate, up, down;
  localWeights(w, gate, up, down);
  std::vector<T *> localGate, localUp, localDown;
  const int me = ep.group.rank();
  for (int64_t s = 0; s < slots.slotsPerRank; ++s) {
    int32_t e = slots.expertOf(me, s);
    localGate.push_back(dGate[e]);
    localUp.push_back(dUp[e]);
    localDown.push_back(dDown[e]);
  }
  return cpu::expertFfnBackwardW(
      dy.data(), rows.data(), localCounts.data(), down.data(), savedGate.data(),
      savedUp.data(), localGate.data(), localUp.data(), localDown.data(),
      localRows, slots.slotsPerRank, hidden, inter, fp8);
}

template <typename T>
io::Expected<std::shared_ptr<ExpertExchange<T>>>
ExpertParallel::exchange(const Plan &plan, const void *memory, int64_t layer,
                         int64_t experts, int64_t hidden, int64_t inter) {
  auto it = exchanges.find({memory, layer});
  if (it != exchanges.end()) {
    if (auto typed = std::dynamic_pointer_cast<ExpertExchange<T>>(it->second))
      return typed;
    return io::makeError("plan", "MoE layer " + std::to_string(layer) +
                                     " mixes element types");
  }
  io::Expected<ExpertSlots> slots =
      expertSlots(plan, layer, experts, group.size());
  if (!slots)
    return slots.error();
  auto made = std::make_shared<ExpertExchange<T>>(*this, std::move(*slots),
                                                  hidden, inter);
  exchanges[{memory, layer}] = made;
  return made;
}

template class ExpertExchange<float>;
template class ExpertExchange<double>;
template io::Expected<std::shared_ptr<ExpertExchange<float>>>
ExpertParallel::exchange<float>(const Plan &, const void *, int64_t, int64_t,
                                int64_t, int64_t);
template io::Expected<std::shared_ptr<ExpertExchange<double>>>
ExpertParallel::exchange<double>(const Plan &, const void *, int64_t, int64_t,
                                 int64_t, int64_t);

} // namespace dsflow::exec
