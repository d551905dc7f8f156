//===- SelfCommunicator.cpp - The communicator of a one-process run -------===//
#include "dist/SelfCommunicator.h"

#include <cstring>

namespace dsflow::dist {

static void copyBytes(void *out, const void *in, int64_t bytes) {
  // memmove: the in-place forms pass the same pointer.
  if (bytes > 0 && out != in)
    std::memmove(out, in, static_cast<size_t>(bytes));
}

io::Expected<std::unique_ptr<Communicator>> SelfCommunicator::doSplit(int,
                                                                      int) {
  return std::unique_ptr<Communicator>(new SelfCommunicator(world));
}

io::Status
SelfCommunicator::doReduceScatterSum(const void *in, void *out,
                                     const std::vector<int64_t> &counts,
                                     ElemType type) {
  copyBytes(out, in, counts[0] * elemBytes(type));
  return std::nullopt;
}

io::Status SelfCommunicator::doAllGather(const void *in, void *out,
                                         const std::vector<int64_t> &bytes) {
  copyBytes(out, in, bytes[0]);
  return std::nullopt;
}

io::Status SelfCommunicator::doAllToAllV(const void *send,
                                         const std::vector<int64_t> &sendBytes,
                                         void *recv,
                                         const std::vector<int64_t> &) {
  copyBytes(recv, send, sendBytes[0]);
  return std::nullopt;
}

} // namespace dsflow::dist
