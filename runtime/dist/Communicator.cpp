//===- Communicator.cpp - Argument checks shared by every transport -------===//
#include "dist/Communicator.h"

namespace dsflow::dist {

int64_t elemBytes(ElemType type) {
  switch (type) {
  case ElemType::F32:
    return 4;
  case ElemType::F64:
  case ElemType::I64:
    return 8;
  }
  return 0;
}

std::vector<int64_t> evenCounts(int64_t total, int parts) {
  std::vector<int64_t> counts(static_cast<size_t>(parts), total / parts);
  for (int64_t r = 0; r < total % parts; ++r)
    ++counts[static_cast<size_t>(r)];
  return counts;
}

std::vector<int64_t> offsetsOf(const std::vector<int64_t> &counts) {
  std::vector<int64_t> offsets(counts.size(), 0);
  for (size_t r = 1; r < counts.size(); ++r)
    offsets[r] = offsets[r - 1] + counts[r - 1];
  return offsets;
}

io::IoError Communicator::error(const std::string &what) const {
  return io::makeError("rank " + std::to_string(worldRank(rank())), what);
}

io::Status Communicator::checkUsable(const char *op) const {
  if (failure)
    return error(std::string(op) +
                 " refused: this communicator failed earlier (" +
                 failure->message + ")");
  return std::nullopt;
}

io::Status Communicator::checkCounts(const char *op,
                                     const std::vector<int64_t> &counts,
                                     const char *name) const {
  if (counts.size() != static_cast<size_t>(size()))
    return error(std::string(op) + ": " + std::to_string(counts.size()) + " " +
                 name + " for " + std::to_string(size()) + " ranks");
  for (size_t r = 0; r < counts.size(); ++r)
    if (counts[r] < 0)
      return error(std::string(op) + ": negative " + name + " (" +
                   std::to_string(counts[r]) + ") for rank " +
                   std::to_string(r));
  return std::nullopt;
}

io::Status Communicator::record(io::Status status) {
  if (status && !failure)
    failure = status;
  return status;
}

static int64_t sumOf(const std::vector<int64_t> &counts) {
  int64_t total = 0;
  for (int64_t c : counts)
    total += c;
  return total;
}

/// True if [a, a+aBytes) and [b, b+bBytes) share a byte.
static bool overlaps(const void *a, int64_t aBytes, const void *b,
                     int64_t bBytes) {
  auto x = reinterpret_cast<uintptr_t>(a), y = reinterpret_cast<uintptr_t>(b);
  return aBytes > 0 && bBytes > 0 && x < y + static_cast<uintptr_t>(bBytes) &&
         y < x + static_cast<uintptr_t>(aBytes);
}

io::Expected<std::unique_ptr<Communicator>> Communicator::split(int color,
                                                                int key) {
  if (io::Status s = checkUsable("split"))
    return *s;
  if (color < 0)
    return error("split: color " + std::to_string(color) +
                 " is negative (every rank must join a group)");
  auto result = doSplit(color, key);
  if (!result.ok())
    record(result.error());
  return result;
}

io::Status Communicator::allReduce(void *data, int64_t count, ElemType type) {
  if (io::Status s = checkUsable("all-reduce"))
    return s;
  if (count < 0 || (count > 0 && !data))
    return error("all-reduce: invalid buffer (" + std::to_string(count) +
                 " elements)");
  return record(doAllReduceSum(data, count, type));
}

io::Status Communicator::allReduceSum(float *data, int64_t count) {
  return allReduce(data, count, ElemType::F32);
}
io::Status Communicator::allReduceSum(double *data, int64_t count) {
  return allReduce(data, count, ElemType::F64);
}
io::Status Communicator::allReduceSum(int64_t *data, int64_t count) {
  return allReduce(data, count, ElemType::I64);
}

io::Status Communicator::reduceScatter(const void *in, void *out,
                                       const std::vector<int64_t> &counts,
                                       ElemType type) {
  const char *op = "reduce-scatter";
  if (io::Status s = checkUsable(op))
    return s;
  if (io::Status s = checkCounts(op, counts, "counts"))
    return s;
  int64_t size = elemBytes(type);
  int64_t total = sumOf(counts) * size, mine = counts[rank()] * size;
  if ((total > 0 && !in) || (mine > 0 && !out))
    return error("reduce-scatter: null buffer");
  const char *inPlace =
      static_cast<const char *>(in) + offsetsOf(counts)[rank()] * size;
  if (out != inPlace && overlaps(in, total, out, mine))
    return error("reduce-scatter: the output overlaps the input without "
                 "being this rank's shard of it");
  return record(doReduceScatterSum(in, out, counts, type));
}

io::Status Communicator::reduceScatterSum(const float *in, float *out,
                                          const std::vector<int64_t> &counts) {
  return reduceScatter(in, out, counts, ElemType::F32);
}
io::Status Communicator::reduceScatterSum(const double *in, double *out,
                                          const std::vector<int64_t> &counts) {
  return reduceScatter(in, out, counts, ElemType::F64);
}
io::Status Communicator::reduceScatterSum(const int64_t *in, int64_t *out,
                                          const std::vector<int64_t> &counts) {
  return reduceScatter(in, out, counts, ElemType::I64);
}

io::Status Communicator::allGatherBytes(const void *in, void *out,
                                        const std::vector<int64_t> &bytes) {
  const char *op = "all-gather";
  if (io::Status s = checkUsable(op))
    return s;
  if (io::Status s = checkCounts(op, bytes, "sizes"))
    return s;
  int64_t total = sumOf(bytes), mine = bytes[rank()];
  if ((mine > 0 && !in) || (total > 0 && !out))
    return error("all-gather: null buffer");
  const char *inPlace =
      static_cast<const char *>(out) + offsetsOf(bytes)[rank()];
  if (in != inPlace && overlaps(in, mine, out, total))
    return error("all-gather: the input overlaps the output without being "
                 "this rank's block of it");
  return record(doAllGather(in, out, bytes));
}

template <typename T>
static std::vector<int64_t> inBytes(const std::vector<int64_t> &counts) {
  std::vector<int64_t> bytes = counts;
  for (int64_t &b : bytes)
    b *= static_cast<int64_t>(sizeof(T));
  return bytes;
}

io::Status Communicator::allGather(const float *in, float *out,
                                   const std::vector<int64_t> &counts) {
  return allGatherBytes(in, out, inBytes<float>(counts));
}
io::Status Communicator::allGather(const double *in, double *out,
                                   const std::vector<int64_t> &counts) {
  return allGatherBytes(in, out, inBytes<double>(counts));
}

io::Status Communicator::allToAllV(const void *send,
                                   const std::vector<int64_t> &sendBytes,
                                   void *recv,
                                   const std::vector<int64_t> &recvBytes) {
  const char *op = "all-to-all";
  if (io::Status s = checkUsable(op))
    return s;
  if (io::Status s = checkCounts(op, sendBytes, "send sizes"))
    return s;
  if (io::Status s = checkCounts(op, recvBytes, "receive sizes"))
    return s;
  int64_t sendTotal = sumOf(sendBytes), recvTotal = sumOf(recvBytes);
  if ((sendTotal > 0 && !send) || (recvTotal > 0 && !recv))
    return error("all-to-all: null buffer");
  if (overlaps(send, sendTotal, recv, recvTotal))
    return error("all-to-all: the send and receive buffers overlap");
  if (sendBytes[rank()] != recvBytes[rank()])
    return error("all-to-all: this rank sends itself " +
                 std::to_string(sendBytes[rank()]) + " bytes but expects " +
                 std::to_string(recvBytes[rank()]));
  return record(doAllToAllV(send, sendBytes, recv, recvBytes));
}

io::Status Communicator::broadcast(void *data, int64_t bytes, int root) {
  if (io::Status s = checkUsable("broadcast"))
    return s;
  if (root < 0 || root >= size())
    return error("broadcast: root " + std::to_string(root) +
                 " is not a rank of this communicator (size " +
                 std::to_string(size()) + ")");
  if (bytes < 0 || (bytes > 0 && !data))
    return error("broadcast: invalid buffer (" + std::to_string(bytes) +
                 " bytes)");
  return record(doBroadcast(data, bytes, root));
}

/// Checks a point-to-point call's peer, tag and buffer.
static std::string peerProblem(int peer, int tag, int me, int size,
                               const void *data, int64_t bytes) {
  if (peer < 0 || peer >= size || peer == me)
    return "peer " + std::to_string(peer) +
           " is not another rank of this communicator (size " +
           std::to_string(size) + ")";
  if (tag < 0 || tag >= Communicator::kMaxTag)
    return "tag " + std::to_string(tag) + " is outside [0, " +
           std::to_string(Communicator::kMaxTag) + ")";
  if (bytes < 0 || (bytes > 0 && !data))
    return "invalid buffer (" + std::to_string(bytes) + " bytes)";
  return "";
}

/// The error of a transport without point-to-point messages (not recorded:
/// the communicator stays usable).
static std::string noPointToPoint(const char *op, const char *transport) {
  return std::string(op) +
         ": point-to-point messages need the MPI transport "
         "or the TCP world, not a " +
         transport + " sub-communicator";
}

io::Status Communicator::send(int peer, int tag, const void *data,
                              int64_t bytes) {
  if (io::Status s = checkUsable("send"))
    return s;
  if (!supportsPointToPoint())
    return error(noPointToPoint("send", transport()));
  if (std::string p = peerProblem(peer, tag, rank(), size(), data, bytes);
      !p.empty())
    return error("send: " + p);
  return record(doSend(peer, tag, data, bytes));
}

io::Status Communicator::receive(int peer, int tag, void *data, int64_t bytes) {
  if (io::Status s = checkUsable("receive"))
    return s;
  if (!supportsPointToPoint())
    return error(noPointToPoint("receive", transport()));
  if (std::string p = peerProblem(peer, tag, rank(), size(), data, bytes);
      !p.empty())
    return error("receive: " + p);
  return record(doReceive(peer, tag, data, bytes));
}

io::Status Communicator::flushSends() {
  if (io::Status s = checkUsable("send"))
    return s;
  return record(doFlushSends());
}

io::Status Communicator::barrier() {
  if (io::Status s = checkUsable("barrier"))
    return s;
  return record(doBarrier());
}

} // namespace dsflow::dist
