//===- GradientBuckets.cpp - Gradient sums that overlap the backward ------===//
#include "plan/GradientBuckets.h"

#include <algorithm>
#include <map>

namespace dsflow {

std::vector<GradientBucket> gradientBuckets(const Plan &plan, int program,
                                            int64_t targetBytes) {
  // Each gradient buffer's last user in the program, by program position.
  std::map<int32_t, int> lastUser; // buffer -> position
  const google::protobuf::RepeatedField<int32_t> &kernels =
      plan.programs(program).kernels();
  for (int position = 0; position < kernels.size(); ++position) {
    const Kernel &kernel = plan.kernels(kernels[position]);
    for (const auto *operands : {&kernel.inputs(), &kernel.outputs()})
      for (int32_t b : *operands)
        if (plan.buffers(b).kind() == GRADIENT)
          lastUser[b] = position;
  }
  std::vector<int32_t> gradients;
  for (int32_t b = 0; b < plan.buffers_size(); ++b)
    if (plan.buffers(b).kind() == GRADIENT)
      gradients.push_back(b);
  std::sort(gradients.begin(), gradients.end(), [&](int32_t a, int32_t b) {
    return plan.buffers(a).offset() < plan.buffers(b).offset();
  });
  std::vector<GradientBucket> buckets;
  int64_t regionBytes = plan.memory().gradient_bytes();
  int latest = -1; // the open bucket's last user, by position
  auto close = [&](int64_t end) {
    buckets.push_back({buckets.empty() ? 0 : buckets.back().end, end,
                       latest < 0 ? -1 : kernels[latest]});
    latest = -1;
  };
  for (int32_t b : gradients) {
    int64_t start = plan.buffers(b).offset();
    int64_t begin = buckets.empty() ? 0 : buckets.back().end;
    if (start - begin >= targetBytes && start > begin)
      close(start);
    auto user = lastUser.find(b);
    if (user != lastUser.end())
      latest = std::max(latest, user->second);
  }
  if (regionBytes > (buckets.empty() ? 0 : buckets.back().end))
    close(regionBytes);
  return buckets;
}

} // namespace dsflow
