//===- Communicator.h - Collectives between the ranks of a job --*- C++ -*-===//
//
// The runtime's one interface to other processes: expert parallelism
// (all-to-all of tokens) and ZeRO-1 data parallelism (reduce-scatter of
// gradients, all-gather of parameters) are written against it. Three transports
// implement it: SelfCommunicator (one process), MpiCommunicator and
// TcpCommunicator.
//
// Contract, the same for every transport:
// - Every rank of the communicator calls the same collectives in the same
//   order with matching sizes; ranks that disagree get an error (at worst
//   the timeout), not a wrong result.
// - Sums are deterministic: element i of a sum is
//     ((x_0[i] + x_1[i]) + x_2[i]) + ... + x_{n-1}[i]
//   in rank order, so every rank gets bitwise the same result on every run,
//   whatever the transport, the chunking or the message arrival order.
// - Nothing waits forever: a collective that makes no progress for the
//   communicator's timeout (DSFLOW_COMM_TIMEOUT, 300 s by default) fails with
//   "rank R: <op> timed out after T s waiting for ...". A peer that died is
//   reported as soon as the transport notices.
// - Any error is fatal to the job: after a transport error the communicator
//   refuses further calls (messages may still be in flight), and an argument
//   error is found before anything is sent, so the other ranks are left
//   waiting. Print the error and call abortJob() (Launch.h).
// - One thread at a time: call a communicator (and, under MPI, any of them)
//   from the thread that called initCommunicator (MPI_THREAD_FUNNELED).
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_DIST_COMMUNICATOR_H
#define DSFLOW_DIST_COMMUNICATOR_H

#include "io/Status.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace dsflow::dist {

/// The element types reductions understand.
enum class ElemType { F32, F64, I64 };

/// Bytes of one element of `type`.
int64_t elemBytes(ElemType type);

class Communicator {
public:
  virtual ~Communicator() = default;

  /// This process's rank in [0, size()).
  virtual int rank() const = 0;
  virtual int size() const = 0;
  /// The world rank of rank `r` of this communicator (errors name world ranks).
  virtual int worldRank(int r) const = 0;
  /// "self", "mpi" or "tcp".
  virtual const char *transport() const = 0;

  /// Ranks with the same color (>= 0) form a sub-communicator, ordered by key,
  /// ties broken by rank (MPI_Comm_split). Collective over this communicator.
  io::Expected<std::unique_ptr<Communicator>> split(int color, int key);

  /// In-place sum over ranks of `count` elements.
  io::Status allReduceSum(float *data, int64_t count);
  io::Status allReduceSum(double *data, int64_t count);
  io::Status allReduceSum(int64_t *data, int64_t count);

  /// Sums `in` (sum of counts elements) over ranks; rank r receives elements
  /// [counts[0] + ... + counts[r-1], + counts[r]) of the sum in `out`. `out`
  /// may be exactly `in` + that offset (in place); otherwise they must not
  /// overlap.
  io::Status reduceScatterSum(const float *in, float *out,
                              const std::vector<int64_t> &counts);
  io::Status reduceScatterSum(const double *in, double *out,
                              const std::vector<int64_t> &counts);
  io::Status reduceScatterSum(const int64_t *in, int64_t *out,
                              const std::vector<int64_t> &counts);

  /// Rank r contributes counts[r] elements; `out` receives every rank's, in
  /// rank order. `in` may be exactly `out` + this rank's offset (in place).
  io::Status allGather(const float *in, float *out,
                       const std::vector<int64_t> &counts);
  io::Status allGather(const double *in, double *out,
                       const std::vector<int64_t> &counts);
  io::Status allGatherBytes(const void *in, void *out,
                            const std::vector<int64_t> &bytes);

  /// Variable-size all-to-all of bytes. The block for rank r starts in `send`
  /// at sendBytes[0] + ... + sendBytes[r-1]; the block from rank r lands in
  /// `recv` at recvBytes[0] + ... + recvBytes[r-1]. sendBytes[r] here must
  /// equal recvBytes[this rank] on rank r. Zero sizes are fine.
  io::Status allToAllV(const void *send, const std::vector<int64_t> &sendBytes,
                       void *recv, const std::vector<int64_t> &recvBytes);

  /// Copies `bytes` bytes of `data` on rank `root` to every rank.
  io::Status broadcast(void *data, int64_t bytes, int root);

  io::Status barrier();

  /// Point-to-point messages (pipeline stages), each with a tag in
  /// [0, kMaxTag). send() copies the bytes and returns at once; receive()
  /// waits (up to the timeout) for the next message from `peer` with `tag` and
  /// checks its size; messages of one sender and tag arrive in the order they
  /// were sent. flushSends() waits until every sent message has left. MPI
  /// communicators and the TCP world carry them (pointToPoint()); the others
  /// return an error and stay usable.
  static constexpr int kMaxTag = 16384;
  bool pointToPoint() const { return supportsPointToPoint(); }
  io::Status send(int peer, int tag, const void *data, int64_t bytes);
  io::Status receive(int peer, int tag, void *data, int64_t bytes);
  io::Status flushSends();

protected:
  // The transports implement these; the public functions above have already
  // checked the arguments (sizes, counts, root) and record any error.
  virtual io::Expected<std::unique_ptr<Communicator>> doSplit(int color,
                                                              int key) = 0;
  virtual io::Status doReduceScatterSum(const void *in, void *out,
                                        const std::vector<int64_t> &counts,
                                        ElemType type) = 0;
  virtual io::Status doAllReduceSum(void *data, int64_t count,
                                    ElemType type) = 0;
  virtual io::Status doAllGather(const void *in, void *out,
                                 const std::vector<int64_t> &bytes) = 0;
  virtual io::Status doAllToAllV(const void *send,
                                 const std::vector<int64_t> &sendBytes,
                                 void *recv,
                                 const std::vector<int64_t> &recvBytes) = 0;
  virtual io::Status doBroadcast(void *data, int64_t bytes, int root) = 0;
  virtual io::Status doBarrier() = 0;
  /// Transports with point-to-point messages override these four.
  virtual bool supportsPointToPoint() const { return false; }
  virtual io::Status doSend(int, int, const void *, int64_t) {
    return std::nullopt;
  }
  virtual io::Status doReceive(int, int, void *, int64_t) {
    return std::nullopt;
  }
  virtual io::Status doFlushSends() { return std::nullopt; }

  /// "rank W: what", W this process's world rank.
  io::IoError error(const std::string &what) const;

private:
  io::Status checkUsable(const char *op) const;
  io::Status checkCounts(const char *op, const std::vector<int64_t> &counts,
                         const char *name) const;
  io::Status record(io::Status status);
  io::Status allReduce(void *data, int64_t count, ElemType type);
  io::Status reduceScatter(const void *in, void *out,
                           const std::vector<int64_t> &counts, ElemType type);

  /// The first transport error; later calls fail with it.
  std::optional<io::IoError> failure;
};

/// Splits `total` elements into `parts` near-equal counts (the first ones one
/// larger), e.g. the shards of a ZeRO-1 partition.
std::vector<int64_t> evenCounts(int64_t total, int parts);

/// Prefix sums of `counts`: offsets[r] = counts[0] + ... + counts[r-1].
std::vector<int64_t> offsetsOf(const std::vector<int64_t> &counts);

} // namespace dsflow::dist

#endif // DSFLOW_DIST_COMMUNICATOR_H
