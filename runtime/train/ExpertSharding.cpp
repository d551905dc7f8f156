//===- ExpertSharding.cpp - Which ranks own each routed expert ------------===//
#include "train/ExpertSharding.h"

#include "exec/ExpertSlots.h"

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

int ExpertSharding::firstHolder(int32_t grad) const {
  auto it = holders.find(grad);
  return it == holders.end() ? 0 : it->second.front();
}

} // namespace dsflow::train
