//===- SelfCommunicator.h - The communicator of a one-process run -*- C++
//-*-===//
#ifndef DSFLOW_DIST_SELFCOMMUNICATOR_H
#define DSFLOW_DIST_SELFCOMMUNICATOR_H

#include "dist/Communicator.h"

namespace dsflow::dist {

/// Size 1: every collective is a copy or nothing. `worldRank` names this
/// process in errors (a group of one split off a larger job keeps its rank).
class SelfCommunicator final : public Communicator {
public:
  explicit SelfCommunicator(int worldRank = 0) : world(worldRank) {}

  int rank() const override { return 0; }
  int size() const override { return 1; }
  int worldRank(int) const override { return world; }
  const char *transport() const override { return "self"; }

protected:
  io::Expected<std::unique_ptr<Communicator>> doSplit(int color,
                                                      int key) override;
  io::Status doReduceScatterSum(const void *in, void *out,
                                const std::vector<int64_t> &counts,
                                ElemType type) override;
  io::Status doAllReduceSum(void *, int64_t, ElemType) override {
    return std::nullopt;
  }
  io::Status doAllGather(const void *in, void *out,
                         const std::vector<int64_t> &bytes) override;
  io::Status doAllToAllV(const void *send,
                         const std::vector<int64_t> &sendBytes, void *recv,
                         const std::vector<int64_t> &recvBytes) override;
  io::Status doBroadcast(void *, int64_t, int) override { return std::nullopt; }
  io::Status doBarrier() override { return std::nullopt; }

private:
  int world;
};

} // namespace dsflow::dist

#endif // DSFLOW_DIST_SELFCOMMUNICATOR_H
