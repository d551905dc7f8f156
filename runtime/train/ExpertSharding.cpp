//===- ExpertSharding.cpp - Which ranks own each routed expert ------------===//
#include "train/ExpertSharding.h"

#include "exec/ExpertSlots.h"
#include "plan/PlanFile.h"

#include <algorithm>

namespace dsflow::train {

io::Expected<ExpertSharding> ExpertSharding::create(const Plan &plan,
                                                    int worldRank) {
  ExpertSharding s;
  s.rank = worldRank;
  s.ep = plan.has_cluster() ? std::max(1, plan.cluster().ep()) : 1;
  if (s.ep == 1)
    return s;
  io::Expected<std::vector<exec::ExpertTensorHolders>> tensors =
      exec::expertTensorHolders(plan, s.ep);
  if (!tensors)
    return tensors.error();
  for (exec::ExpertTensorHolders &t : *tensors)
    s.holders[t.grad] = std::move(t.ranks);
  return s;
}

ExpertSharding::Kind ExpertSharding::kindOf(int32_t grad) const {
  auto it = holders.find(grad);
  if (it == holders.end())
    return Kind::Dense;
  return it->second.size() == 1 ? Kind::Sharded : Kind::Replicated;
}

bool ExpertSharding::holds(int32_t grad) const {
  auto it = holders.find(grad);
  return it == holders.end() ||
         std::count(it->second.begin(), it->second.end(), epRank()) != 0;
}

bool ExpertSharding::countsReplicated(int32_t grad) const {
  auto it = holders.find(grad);
  return it != holders.end() && dpIndex() == 0 &&
         it->second.front() == epRank();
}

io::Status
ExpertSharding::gatherToRankZero(exec::Memory &memory,
                                 dist::Communicator &world,
                                 std::vector<std::vector<float>> &storage,
                                 std::vector<io::TensorRef> &tensors) const {
  const Plan &plan = memory.plan();
  for (const auto &[grad, ranks] : holders) {
    if (ranks.front() == 0)
      continue; // World rank 0 (EP rank 0 of group 0) holds it.
    int32_t param = plan.buffers(grad).gradient_of();
    const Buffer &b = plan.buffers(param);
    // EP group 0's first holder is world rank ranks.front().
    std::vector<float> values(size_t(numElements(b)));
    if (world.rank() == ranks.front())
      std::copy_n(reinterpret_cast<const float *>(memory.data(param)),
                  values.size(), values.data());
    if (io::Status e = world.broadcast(values.data(),
                                       int64_t(values.size() * sizeof(float)),
                                       ranks.front()))
      return e;
    if (world.rank() != 0)
      continue;
    storage.push_back(std::move(values));
    io::TensorRef ref;
    ref.name = b.name();
    ref.dtype = io::DType::F32;
    ref.shape.assign(b.shape().begin(), b.shape().end());
    ref.data = storage.back().data();
    ref.byteSize = storage.back().size() * sizeof(float);
    tensors.push_back(std::move(ref));
  }
  return std::nullopt;
}

} // namespace dsflow::train
