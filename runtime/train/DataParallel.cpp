//===- DataParallel.cpp - Gradients and parameters across ranks -----------===//
#include "train/DataParallel.h"

#include "plan/PlanFile.h"

#include <algorithm>
#include <cstring>

namespace dsflow::train {

DataParallel::DataParallel(const Plan &plan, dist::Communicator &group,
                           bool zero1,
                           const std::function<bool(int32_t)> &member)
    : group(group), zero1(zero1) {
  for (int32_t g = 0; g < plan.buffers_size(); ++g)
    if (plan.buffers(g).kind() == GRADIENT && member(g))
      tensors.push_back(
          {plan.buffers(g).gradient_of(), g, numElements(plan.buffers(g))});
  partition();
}

void DataParallel::partition() {
  int ranks = group.size();
  int64_t total = 0;
  for (const Tensor &t : tensors)
    total += t.elements;
  // Greedy in order: rank r's run ends once the running total reaches
  // (r + 1) / ranks of all elements, so no tensor is split.
  runStart.assign(1, 0);
  runElements.assign(ranks, 0);
  int64_t done = 0;
  size_t next = 0;
  for (int r = 0; r < ranks; ++r) {
    int64_t target = total * (r + 1) / ranks;
    while (next < tensors.size() &&
           (r == ranks - 1 || done + tensors[next].elements / 2 < target)) {
      done += tensors[next].elements;
      runElements[r] += tensors[next].elements;
      ++next;
    }
    runStart.push_back(next);
  }
}

bool DataParallel::owns(int32_t grad) const {
  int me = group.rank();
  for (size_t i = runStart[me]; i < runStart[me + 1]; ++i)
    if (tensors[i].grad == grad)
      return true;
  return false;
}

int64_t DataParallel::totalElements() const {
  int64_t total = 0;
  for (int64_t n : runElements)
    total += n;
  return total;
}

void DataParallel::pack(exec::Memory &memory, bool gradients, size_t first,
                        size_t end, float *to) const {
  for (size_t i = first; i < end; ++i) {
    const Tensor &t = tensors[i];
    // A tensor this rank left out (exec/Memory.h) adds zeros.
    if (const std::byte *from = memory.data(gradients ? t.grad : t.param))
      std::memcpy(to, from, size_t(t.elements) * sizeof(float));
    else
      std::fill(to, to + t.elements, 0.0f);
    to += t.elements;
  }
}

void DataParallel::unpack(exec::Memory &memory, bool gradients, size_t first,
                          size_t end, const float *from) const {
  for (size_t i = first; i < end; ++i) {
    const Tensor &t = tensors[i];
    if (std::byte *to = memory.data(gradients ? t.grad : t.param))
      std::memcpy(to, from, size_t(t.elements) * sizeof(float));
    from += t.elements;
  }
}

io::Status DataParallel::reduceGradients(exec::Memory &memory) {
  if (group.size() == 1)
    return std::nullopt;
  int64_t total = totalElements();
  staging.resize(size_t(total));
  pack(memory, true, 0, tensors.size(), staging.data());
  if (!sharded()) {
    if (io::Status e = group.allReduceSum(staging.data(), total))
      return e;
    unpack(memory, true, 0, tensors.size(), staging.data());
    return std::nullopt;
  }
  int me = group.rank();
  float *own = staging.data() + dist::offsetsOf(runElements)[me];
  if (io::Status e = group.reduceScatterSum(staging.data(), own, runElements))
    return e;
  unpack(memory, true, runStart[me], runStart[me + 1], own);
  return std::nullopt;
}

io::Status DataParallel::gatherParameters(exec::Memory &memory) {
  if (!sharded())
    return std::nullopt;
  int me = group.rank();
  staging.resize(size_t(totalElements()));
  float *own = staging.data() + dist::offsetsOf(runElements)[me];
  pack(memory, false, runStart[me], runStart[me + 1], own);
  if (io::Status e = group.allGather(own, staging.data(), runElements))
    return e;
  unpack(memory, false, 0, tensors.size(), staging.data());
  return std::nullopt;
}

} // namespace dsflow::train
