//===- SelfCommunicatorTest.cpp - One-process collectives and arg checks --===//
#include "dist/SelfCommunicator.h"
#include "dist/PlanCheck.h"
#include "dist/Reduction.h"

#include <gtest/gtest.h>

namespace dsflow::dist {
namespace {

TEST(SelfCommunicator, SizeOneAndCopies) {
  SelfCommunicator comm;
  EXPECT_EQ(comm.rank(), 0);
  EXPECT_EQ(comm.size(), 1);
  EXPECT_STREQ(comm.transport(), "self");

  std::vector<float> data = {1.5f, -2.0f};
  EXPECT_FALSE(comm.allReduceSum(data.data(), 2));
  EXPECT_EQ(data, (std::vector<float>{1.5f, -2.0f}));

  std::vector<double> in = {1, 2, 3}, out(3);
  EXPECT_FALSE(comm.reduceScatterSum(in.data(), out.data(), {3}));
  EXPECT_EQ(out, in);
  std::vector<double> gathered(3);
  EXPECT_FALSE(comm.allGather(in.data(), gathered.data(), {3}));
  EXPECT_EQ(gathered, in);
  // In place: the input is this rank's block of the output.
  EXPECT_FALSE(comm.allGather(gathered.data(), gathered.data(), {3}));
  EXPECT_EQ(gathered, in);

  const char send[] = "abc";
  char recv[3] = {};
  EXPECT_FALSE(comm.allToAllV(send, {3}, recv, {3}));
  EXPECT_EQ(std::string(recv, 3), "abc");
  EXPECT_FALSE(comm.broadcast(recv, 3, 0));
  EXPECT_FALSE(comm.barrier());
}

TEST(SelfCommunicator, SplitGivesAnotherSelf) {
  SelfCommunicator comm(5);
  auto sub = comm.split(3, 7);
  ASSERT_TRUE(sub.ok());
  EXPECT_EQ((*sub)->size(), 1);
  EXPECT_EQ((*sub)->worldRank(0), 5);
  auto bad = comm.split(-1, 0);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message,
            "rank 5: split: color -1 is negative (every rank must join a "
            "group)");
}

TEST(SelfCommunicator, ArgumentErrorsAreOneLine) {
  SelfCommunicator comm;
  float x[4] = {};
  auto s = comm.broadcast(x, 16, 1);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->message, "rank 0: broadcast: root 1 is not a rank of this "
                        "communicator (size 1)");
  s = comm.reduceScatterSum(x, x + 2, {2, 2});
  ASSERT_TRUE(s);
  EXPECT_EQ(s->message, "rank 0: reduce-scatter: 2 counts for 1 ranks");
  s = comm.allGather(x, x, {-1});
  ASSERT_TRUE(s);
  EXPECT_EQ(s->message, "rank 0: all-gather: negative sizes (-4) for rank 0");
  s = comm.allReduceSum(x, -1);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->message, "rank 0: all-reduce: invalid buffer (-1 elements)");
  // Overlap that is not the in-place form.
  s = comm.allGather(x + 1, x, {2});
  ASSERT_TRUE(s);
  EXPECT_NE(s->message.find("overlaps"), std::string::npos);
  s = comm.allToAllV(x, {8}, x, {8});
  ASSERT_TRUE(s);
  EXPECT_NE(s->message.find("overlap"), std::string::npos);
  s = comm.allToAllV(x, {8}, x + 2, {4});
  ASSERT_TRUE(s);
  EXPECT_EQ(s->message, "rank 0: all-to-all: this rank sends itself 8 bytes "
                        "but expects 4");
  // Argument errors do not break the communicator.
  EXPECT_FALSE(comm.barrier());
}

TEST(Reduction, SumsInRankOrder) {
  // (1 + 1e8) - 1e8 == 0 in float, but (-1e8 + 1e8) + 1 == 1: the order shows.
  std::vector<float> blocks = {1.0f, 1e8f, -1e8f};
  float out = -5;
  sumBlocksInOrder(ElemType::F32, blocks.data(), 3, 1, &out);
  EXPECT_EQ(out, 0.0f);
  std::vector<float> reversed = {-1e8f, 1e8f, 1.0f};
  sumBlocksInOrder(ElemType::F32, reversed.data(), 3, 1, &out);
  EXPECT_EQ(out, 1.0f);
  std::vector<int64_t> ints = {INT64_MAX, 1, 5};
  int64_t sum = 0;
  sumBlocksInOrder(ElemType::I64, ints.data(), 3, 1, &sum);
  EXPECT_EQ(sum, INT64_MIN + 5); // wraps, no undefined behaviour
}

TEST(Reduction, EvenCountsAndOffsets) {
  EXPECT_EQ(evenCounts(10, 4), (std::vector<int64_t>{3, 3, 2, 2}));
  EXPECT_EQ(evenCounts(2, 4), (std::vector<int64_t>{1, 1, 0, 0}));
  EXPECT_EQ(offsetsOf({3, 0, 2}), (std::vector<int64_t>{0, 3, 3}));
}

TEST(PlanCheck, OneRankAlwaysAgrees) {
  SelfCommunicator comm;
  EXPECT_FALSE(checkSamePlan(comm, 42));
}

} // namespace
} // namespace dsflow::dist
