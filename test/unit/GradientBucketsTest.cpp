//===- GradientBucketsTest.cpp - Gradient sums overlapping the backward ---===//
//
// The buckets (plan/GradientBuckets.h) cover the gradient region once, in
// whole buffers, each ready after the last kernel using one of its buffers;
// and Offload starts each bucket's sum right after that kernel in the step's
// last micro-batch, on the device's final bytes of the bucket, most of them
// before the backward ends, with the gradients bitwise the CPU backend's.
//
//===----------------------------------------------------------------------===//
#include "plan/GradientBuckets.h"
#include "CompileForTest.h"
#include "StandInDevice.h"

#include <algorithm>
#include <set>

namespace dsflow {
namespace {

/// The last position in program 0 of a kernel using a gradient in [begin,
/// end), as a kernel index (-1: none), found from the end of the program.
int32_t lastUserOf(const Plan &plan, int64_t begin, int64_t end) {
  const auto &kernels = plan.programs(0).kernels();
  for (int i = kernels.size() - 1; i >= 0; --i) {
    const Kernel &kernel = plan.kernels(kernels[i]);
    for (const auto *operands : {&kernel.inputs(), &kernel.outputs()})
      for (int32_t b : *operands) {
        const Buffer &buffer = plan.buffers(b);
        if (buffer.kind() == GRADIENT && buffer.offset() >= begin &&
            buffer.offset() < end)
          return kernels[i];
      }
  }
  return -1;
}

void expectValidBuckets(const Plan &plan, int64_t target) {
  std::vector<GradientBucket> buckets = gradientBuckets(plan, 0, target);
  ASSERT_FALSE(buckets.empty());
  std::set<int64_t> starts; // the gradient buffers' offsets
  for (const Buffer &buffer : plan.buffers())
    if (buffer.kind() == GRADIENT)
      starts.insert(buffer.offset());
  EXPECT_EQ(buckets.front().begin, 0);
  EXPECT_EQ(buckets.back().end, plan.memory().gradient_bytes());
  for (size_t i = 0; i < buckets.size(); ++i) {
    const GradientBucket &bucket = buckets[i];
    EXPECT_LT(bucket.begin, bucket.end);
    EXPECT_TRUE(starts.count(bucket.begin)) << "bucket " << i;
    if (i + 1 < buckets.size()) {
      EXPECT_EQ(bucket.end, buckets[i + 1].begin);
      EXPECT_GE(bucket.end - bucket.begin, target) << "bucket " << i;
    }
    // Minimal: without its last buffer it would be under the target.
    auto last = std::prev(starts.lower_bound(bucket.end));
    if (*last > bucket.begin)
      EXPECT_LT(*last - bucket.begin, target) << "bucket " << i;
    EXPECT_EQ(bucket.readyAfter, lastUserOf(plan, bucket.begin, bucket.end))
        << "bucket " << i;
  }
}

TEST(GradientBuckets, CoverTheRegionInWholeBuffers) {
  std::optional<Plan> plan = compileForTest("tiny-v3.pbtxt", false);
  ASSERT_TRUE(plan);
  for (int64_t target : {1, 4096, 65536})
    expectValidBuckets(*plan, target);
  // One byte: a bucket per buffer.
  int64_t gradients = 0;
  for (const Buffer &buffer : plan->buffers())
    gradients += buffer.kind() == GRADIENT;
  EXPECT_EQ(int64_t(gradientBuckets(*plan, 0, 1).size()), gradients);
  // More than the region: one bucket, ready after the last gradient kernel.
  std::vector<GradientBucket> one =
      gradientBuckets(*plan, 0, plan->memory().gradient_bytes() + 1);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].readyAfter,
            lastUserOf(*plan, 0, plan->memory().gradient_bytes()));
}

/// Two micro-batches of tiny-v3 with the state resident on a stand-in device
/// that "sums over ranks" (the identity), the second overlapping the sums
/// with the backward in buckets of `bucketBytes`; kernels `onDevice` there.
void expectOverlappedSums(const std::function<bool(int32_t)> &onDevice,
                          int64_t bucketBytes) {
  std::optional<test::TinyV3Executors> tiny = test::tinyV3Executors();
  ASSERT_TRUE(tiny);
  const Plan *plan = &tiny->plan;
  auto *cpu = &tiny->cpu, *split = &tiny->split;
  auto device =
      std::make_unique<test::StandInDevice>(std::move(tiny->side), onDevice);
  test::StandInOptimizer &sums = device->standInOptimizer();
  sums.pretendRanks(true);
  ASSERT_FALSE((*split)->offloadTo(std::move(device), /*resident=*/true));
  test::randomize(**cpu, **split, 11);
  (*split)->parametersWrittenOnHost();
  ASSERT_FALSE((*cpu)->zeroGradients());
  ASSERT_FALSE((*split)->zeroGradients());
  // Micro-batch 0 sums nothing; 1 and 2 each end a "step" (the second
  // reuses the buckets planned for the first).
  for (int microBatch = 0; microBatch < 3; ++microBatch) {
    if (microBatch > 0)
      (*split)->overlapGradientReduction(bucketBytes);
    sums.started.clear();
    ASSERT_FALSE((*cpu)->runMicroBatch());
    ASSERT_FALSE((*split)->runMicroBatch());
    if (microBatch == 0) {
      EXPECT_TRUE(sums.started.empty()) << "summed before the last";
      continue;
    }
    // Every bucket once, in whole, on the bytes the backward left there.
    std::vector<test::StandInOptimizer::StartedSum> started = sums.started;
    ASSERT_EQ(int64_t(started.size()),
              (*split)->offloading()->bucketsLastSummed());
    ASSERT_GT(started.size(), 1u);
    std::sort(started.begin(), started.end(),
              [](const auto &a, const auto &b) { return a.begin < b.begin; });
    EXPECT_EQ(started.front().begin, 0);
    EXPECT_EQ(started.back().end, plan->memory().gradient_bytes());
    int overlapped = 0;
    for (size_t i = 0; i < started.size(); ++i) {
      if (i + 1 < started.size())
        EXPECT_EQ(started[i].end, started[i + 1].begin);
      for (const auto &[b, bytes] : started[i].gradients)
        EXPECT_EQ(0,
                  std::memcmp(bytes.data(), sums.deviceBytes(b), bytes.size()))
            << plan->buffers(b).name() << " changed after its sum started";
      overlapped += started[i].launchesBefore < sums.launches;
    }
    EXPECT_GT(2 * overlapped, int(started.size()))
        << overlapped << " of " << started.size()
        << " sums started before the backward ended";
  }
  exec::DeviceOptimizer *optimizer = (*split)->deviceOptimizer();
  ASSERT_FALSE(optimizer->reduceGradients());
  ASSERT_FALSE((*split)->parametersToHost());
  for (int32_t b = 0; b < plan->buffers_size(); ++b)
    if (plan->buffers(b).kind() == GRADIENT)
      EXPECT_EQ(0, std::memcmp((*cpu)->memory().data(b),
                               (*split)->memory().data(b),
                               size_t(plan->buffers(b).bytes())))
          << plan->buffers(b).name();
}

TEST(GradientBuckets, SumsOverlapTheBackwardEveryKernelOnTheDevice) {
  expectOverlappedSums([](int32_t) { return true; }, 4096);
}

TEST(GradientBuckets, SumsOverlapTheBackwardEveryOtherKernelOnTheDevice) {
  expectOverlappedSums([](int32_t k) { return k % 2 == 0; }, 16384);
}

} // namespace
} // namespace dsflow
