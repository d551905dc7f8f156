//===- NcclGroupTest.cpp - A one-rank NCCL group on a GPU -----------------===//
//
// Where a GPU is: a group of one rank forms, and its all-reduce leaves the
// data as it was (the sum over one rank). Skipped without a GPU: NCCL's own
// start-up there is not dsflow's to test (dsflow-run opens the driver first
// and stops with "no CUDA driver").
//
//===----------------------------------------------------------------------===//
#include "runtime/backends/cuda/NcclGroup.h"
#include "dist/SelfCommunicator.h"

#include <gtest/gtest.h>

#include <vector>

namespace dsflow::cuda {
namespace {

TEST(NcclGroup, OneRankAllReduceKeepsTheData) {
  io::Expected<std::unique_ptr<CudaDriver>> driver = CudaDriver::open();
  if (!driver)
    GTEST_SKIP() << driver.error().message;
  dist::SelfCommunicator world;
  io::Expected<std::unique_ptr<NcclGroup>> group = NcclGroup::create(world);
  ASSERT_TRUE(group.ok()) << group.error().message;
  std::vector<float> data(1000), back(1000);
  for (size_t i = 0; i < data.size(); ++i)
    data[i] = float(i) * 0.5f - 7.0f;
  io::Expected<CUdeviceptr> at = (*driver)->allocate(data.size() * 4);
  ASSERT_TRUE(at.ok());
  ASSERT_FALSE((*driver)->upload(*at, data.data(), data.size() * 4));
  ASSERT_FALSE((*group)->allReduceSum(*at, int64_t(data.size()), nullptr));
  ASSERT_FALSE((*driver)->synchronize());
  ASSERT_FALSE((*driver)->download(back.data(), *at, back.size() * 4));
  EXPECT_EQ(back, data);
  (*driver)->release(*at);
}

} // namespace
} // namespace dsflow::cuda
