//===- NcclGroupTest.cpp - NCCL where there is no GPU ---------------------===//
//
// On a machine without a GPU (CI), joining an NCCL group must fail with a
// one-line error naming NCCL (or the missing library), not crash or hang.
// Where a GPU is current the single-rank group forms and its all-reduce is
// checked by the training run on the GPU (test/Tools/run-cuda.test), not here.
//
//===----------------------------------------------------------------------===//
#include "runtime/backends/cuda/NcclGroup.h"
#include "dist/SelfCommunicator.h"

#include <gtest/gtest.h>

#include <cstdio>

namespace dsflow::cuda {
namespace {

TEST(NcclGroup, WithoutAGpuItFailsWithAMessage) {
  if (CudaDriver::open().ok())
    GTEST_SKIP() << "a GPU is here";
  dist::SelfCommunicator world;
  io::Expected<std::unique_ptr<NcclGroup>> group = NcclGroup::create(world);
  ASSERT_FALSE(group.ok());
  EXPECT_EQ(group.error().message.rfind("nccl: ", 0), 0u)
      << group.error().message;
  std::printf("%s\n", group.error().message.c_str());
  EXPECT_EQ(group.error().message.find('\n'), std::string::npos);
}

} // namespace
} // namespace dsflow::cuda
