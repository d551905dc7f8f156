//===- MpiCommunicator.cpp - Collectives over MPI -------------------------===//
//
// Why point-to-point instead of MPI_Allreduce and friends:
// - MPI does not promise bitwise-identical sums: the standard only recommends
//   that a reduction give the same result for the same arguments in the same
//   order, and Open MPI picks its algorithm (and so the summation order) by
//   message size and communicator size. Here each rank receives every rank's
//   contribution to its shard and sums them itself, in rank order
//   (Reduction.h).
// - Blocking MPI calls wait forever for a dead peer. Every transfer here is an
//   MPI_Isend/MPI_Irecv (MPI_Ibcast, MPI_Ibarrier for the rest) polled with
//   MPI_Testsome against a ProgressDeadline, so a silent peer becomes an error
//   that names it.
// - MPI counts are ints: transfers go in pieces of at most 1 GiB, addressed by
//   pointer, so no count or displacement overflows.
//
//===----------------------------------------------------------------------===//
#include "dist/MpiCommunicator.h"

#include "dist/Deadline.h"
#include "dist/Reduction.h"

// The C API only: no deprecated C++ bindings.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <thread>

namespace dsflow::dist::mpi {

static constexpr int64_t kMaxPiece = int64_t(1) << 30;
// Tests set DSFLOW_MPI_PIECE_BYTES small to exercise the splitting.
static constexpr const char *kPieceVariable = "DSFLOW_MPI_PIECE_BYTES";
// Collectives number their messages with tags below this (the MPI standard
// guarantees MPI_TAG_UB >= 32767).
static constexpr int kTagModulus = 16384;
// Point-to-point messages use the tags above the collectives' (MPI guarantees
// tags up to 32767), and MPI keeps messages of one sender and tag in order.
static constexpr int kPointToPointTags = kTagModulus;

static std::string mpiErrorText(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS)
    return "MPI error " + std::to_string(code);
  return std::string(text, static_cast<size_t>(length));
}

namespace {
/// One message this rank sends or receives, or a request with no single peer
/// (an MPI_Ibcast piece: peer -1).
struct Pending {
  int peer;
  bool receive;
  int64_t bytes;
};

class MpiCommunicator final : public Communicator {
public:
  MpiCommunicator(MPI_Comm comm, std::vector<int> worldRanks, double timeout,
                  int64_t pieceBytes)
      : comm(comm), world(std::move(worldRanks)), timeout(timeout),
        pieceBytes(pieceBytes) {
    MPI_Comm_rank(comm, &me);
    MPI_Comm_size(comm, &n);
  }
  ~MpiCommunicator() override {
    int finalized = 1;
    MPI_Finalized(&finalized);
    if (!finalized)
      MPI_Comm_free(&comm);
  }

  int rank() const override { return me; }
  int size() const override { return n; }
  int worldRank(int r) const override { return world[r]; }
  const char *transport() const override { return "mpi"; }

protected:
  io::Expected<std::unique_ptr<Communicator>> doSplit(int color,
                                                      int key) override;
  io::Status doReduceScatterSum(const void *in, void *out,
                                const std::vector<int64_t> &counts,
                                ElemType type) override {
    return reduceScatter("reduce-scatter", in, out, counts, type);
  }
  io::Status doAllReduceSum(void *data, int64_t count, ElemType type) override;
  io::Status doAllGather(const void *in, void *out,
                         const std::vector<int64_t> &bytes) override {
    return allGather("all-gather", in, out, bytes);
  }
  io::Status doAllToAllV(const void *send,
                         const std::vector<int64_t> &sendBytes, void *recv,
                         const std::vector<int64_t> &recvBytes) override;
  io::Status doBroadcast(void *data, int64_t bytes, int root) override;
  io::Status doBarrier() override;
  bool supportsPointToPoint() const override { return true; }
  io::Status doSend(int peer, int tag, const void *data,
                    int64_t bytes) override;
  io::Status doReceive(int peer, int tag, void *data, int64_t bytes) override;
  io::Status doFlushSends() override;

private:
  /// A buffer exchanged with one peer.
  struct Transfer {
    int peer;
    char *data;
    int64_t bytes;
    bool receive;
  };
  io::Status exchange(const char *op, const std::vector<Transfer> &transfers);
  // `op` names the collective the user called, for errors.
  io::Status reduceScatter(const char *op, const void *in, void *out,
                           const std::vector<int64_t> &counts, ElemType type);
  io::Status allGather(const char *op, const void *in, void *out,
                       const std::vector<int64_t> &bytes);
  io::Status wait(const char *op, std::vector<MPI_Request> &requests,
                  const std::vector<Pending> &pending);
  io::IoError callFailed(const char *op, const char *call, int code) const {
    return error(std::string(op) + ": " + call +
                 " failed: " + mpiErrorText(code));
  }

  MPI_Comm comm;
  std::vector<int> world;
  double timeout;
  int64_t pieceBytes; // the largest single message
  int me = 0, n = 1;
  // Counts collectives, so each one's messages carry their own tag.
  int sequence = 0;
  // Point-to-point sends in flight: their copies and requests.
  std::deque<std::vector<char>> sendCopies;
  std::vector<MPI_Request> sendRequests;
  std::vector<Pending> sendPending;
};
} // namespace

io::Status MpiCommunicator::wait(const char *op,
                                 std::vector<MPI_Request> &requests,
                                 const std::vector<Pending> &pending) {
  ProgressDeadline deadline(timeout);
  std::vector<int> indices(requests.size());
  std::vector<MPI_Status> statuses(requests.size());
  size_t left = requests.size();
  int idlePolls = 0;
  while (left > 0) {
    int done = 0;
    int rc = MPI_Testsome(static_cast<int>(requests.size()), requests.data(),
                          &done, indices.data(), statuses.data());
    if (rc != MPI_SUCCESS && rc != MPI_ERR_IN_STATUS)
      return callFailed(op, "MPI_Testsome", rc);
    if (done == MPI_UNDEFINED)
      break;
    for (int k = 0; k < done; ++k) {
      const Pending &p = pending[indices[k]];
      std::string who =
          p.peer < 0 ? "peers" : "rank " + std::to_string(world[p.peer]);
      if (rc == MPI_ERR_IN_STATUS && statuses[k].MPI_ERROR != MPI_SUCCESS)
        return error(std::string(op) + ": " +
                     (p.peer < 0  ? "exchange with "
                      : p.receive ? "receiving from "
                                  : "sending to ") +
                     who + " failed: " + mpiErrorText(statuses[k].MPI_ERROR));
      if (!p.receive || p.peer < 0)
        continue;
      int got = 0;
      MPI_Get_count(&statuses[k], MPI_BYTE, &got);
      if (got != p.bytes)
        return error(std::string(op) + ": " + who + " sent " +
                     std::to_string(got) + " bytes where this rank expected " +
                     std::to_string(p.bytes) +
                     " (the ranks passed different sizes)");
    }
    left -= static_cast<size_t>(done);
    if (done > 0) {
      deadline.progress();
      idlePolls = 0;
      continue;
    }
    if (deadline.expired()) {
      std::vector<int> waitingFor;
      for (size_t i = 0; i < requests.size(); ++i)
        if (requests[i] != MPI_REQUEST_NULL && pending[i].peer >= 0)
          waitingFor.push_back(world[pending[i].peer]);
      std::sort(waitingFor.begin(), waitingFor.end());
      waitingFor.erase(std::unique(waitingFor.begin(), waitingFor.end()),
                       waitingFor.end());
      return error(timedOutText(op, timeout, ranksText(waitingFor)));
    }
    // Spin briefly for latency, then back off so oversubscribed ranks (more
    // processes than cores) leave the core to the peer being waited for.
    if (++idlePolls > 100)
      std::this_thread::sleep_for(
          std::chrono::microseconds(std::min(1000, 10 * (idlePolls - 100))));
  }
  return std::nullopt;
}

io::Status MpiCommunicator::exchange(const char *op,
                                     const std::vector<Transfer> &transfers) {
  int tag = sequence++ % kTagModulus;
  std::vector<MPI_Request> requests;
  std::vector<Pending> pending;
  // Receives first, so eager messages land in posted buffers; every transfer
  // is at least one message, even of zero bytes, so sizes can be checked.
  for (bool receive : {true, false}) {
    for (const Transfer &t : transfers) {
      if (t.receive != receive)
        continue;
      int64_t offset = 0;
      do {
        int64_t piece = std::min(pieceBytes, t.bytes - offset);
        MPI_Request request;
        int rc = receive ? MPI_Irecv(t.data + offset, static_cast<int>(piece),
                                     MPI_BYTE, t.peer, tag, comm, &request)
                         : MPI_Isend(t.data + offset, static_cast<int>(piece),
                                     MPI_BYTE, t.peer, tag, comm, &request);
        if (rc != MPI_SUCCESS)
          return callFailed(op, receive ? "MPI_Irecv" : "MPI_Isend", rc);
        requests.push_back(request);
        pending.push_back({t.peer, receive, piece});
        offset += piece;
      } while (offset < t.bytes);
    }
  }
  return wait(op, requests, pending);
}

io::Status MpiCommunicator::doSend(int peer, int tag, const void *data,
                                   int64_t bytes) {
  const char *from = static_cast<const char *>(data);
  std::vector<char> &copy = sendCopies.emplace_back(from, from + bytes);
  int64_t offset = 0;
  do {
    int64_t piece = std::min(pieceBytes, bytes - offset);
    MPI_Request request;
    int rc = MPI_Isend(copy.data() + offset, static_cast<int>(piece), MPI_BYTE,
                       peer, kPointToPointTags + tag, comm, &request);
    if (rc != MPI_SUCCESS)
      return callFailed("send", "MPI_Isend", rc);
    sendRequests.push_back(request);
    sendPending.push_back({peer, false, piece});
    offset += piece;
  } while (offset < bytes);
  return std::nullopt;
}

io::Status MpiCommunicator::doReceive(int peer, int tag, void *data,
                                      int64_t bytes) {
  std::vector<MPI_Request> requests;
  std::vector<Pending> pending;
  char *to = static_cast<char *>(data);
  int64_t offset = 0;
  do {
    int64_t piece = std::min(pieceBytes, bytes - offset);
    MPI_Request request;
    int rc = MPI_Irecv(to + offset, static_cast<int>(piece), MPI_BYTE, peer,
                       kPointToPointTags + tag, comm, &request);
    if (rc != MPI_SUCCESS)
      return callFailed("receive", "MPI_Irecv", rc);
    requests.push_back(request);
    pending.push_back({peer, true, piece});
    offset += piece;
  } while (offset < bytes);
  return wait("receive", requests, pending);
}

io::Status MpiCommunicator::doFlushSends() {
  io::Status status = wait("send", sendRequests, sendPending);
  sendRequests.clear();
  sendPending.clear();
  sendCopies.clear();
  return status;
}

io::Status MpiCommunicator::reduceScatter(const char *op, const void *in,
                                          void *out,
                                          const std::vector<int64_t> &counts,
                                          ElemType type) {
  int64_t size = elemBytes(type);
  std::vector<int64_t> offsets = offsetsOf(counts);
  int64_t mine = counts[me] * size;
  // Every rank's contribution to this rank's shard, in rank order.
  std::vector<char> blocks(static_cast<size_t>(n * mine));
  const char *input = static_cast<const char *>(in);
  if (mine > 0)
    std::memcpy(blocks.data() + me * mine, input + offsets[me] * size,
                static_cast<size_t>(mine));
  std::vector<Transfer> transfers;
  for (int p = 0; p < n; ++p) {
    if (p == me)
      continue;
    transfers.push_back({p, const_cast<char *>(input) + offsets[p] * size,
                         counts[p] * size, false});
    transfers.push_back({p, blocks.data() + p * mine, mine, true});
  }
  if (io::Status s = exchange(op, transfers))
    return s;
  sumBlocksInOrder(type, blocks.data(), n, counts[me], out);
  return std::nullopt;
}

io::Status MpiCommunicator::allGather(const char *op, const void *in, void *out,
                                      const std::vector<int64_t> &bytes) {
  std::vector<int64_t> offsets = offsetsOf(bytes);
  char *output = static_cast<char *>(out);
  if (bytes[me] > 0 && output + offsets[me] != in)
    std::memcpy(output + offsets[me], in, static_cast<size_t>(bytes[me]));
  std::vector<Transfer> transfers;
  for (int p = 0; p < n; ++p) {
    if (p == me)
      continue;
    transfers.push_back({p, const_cast<char *>(static_cast<const char *>(in)),
                         bytes[me], false});
    transfers.push_back({p, output + offsets[p], bytes[p], true});
  }
  return exchange(op, transfers);
}

io::Status MpiCommunicator::doAllReduceSum(void *data, int64_t count,
                                           ElemType type) {
  // Each rank sums one shard in rank order, then the shards are gathered:
  // every element is summed once, in the fixed order, and copied to all.
  std::vector<int64_t> counts = evenCounts(count, n);
  std::vector<int64_t> bytes = counts;
  for (int64_t &b : bytes)
    b *= elemBytes(type);
  char *shard = static_cast<char *>(data) + offsetsOf(bytes)[me];
  if (io::Status s = reduceScatter("all-reduce", data, shard, counts, type))
    return s;
  return allGather("all-reduce", shard, data, bytes);
}

io::Status MpiCommunicator::doAllToAllV(const void *send,
                                        const std::vector<int64_t> &sendBytes,
                                        void *recv,
                                        const std::vector<int64_t> &recvBytes) {
  std::vector<int64_t> sendOffsets = offsetsOf(sendBytes);
  std::vector<int64_t> recvOffsets = offsetsOf(recvBytes);
  char *input = const_cast<char *>(static_cast<const char *>(send));
  char *output = static_cast<char *>(recv);
  if (sendBytes[me] > 0)
    std::memcpy(output + recvOffsets[me], input + sendOffsets[me],
                static_cast<size_t>(sendBytes[me]));
  std::vector<Transfer> transfers;
  for (int p = 0; p < n; ++p) {
    if (p == me)
      continue;
    transfers.push_back({p, input + sendOffsets[p], sendBytes[p], false});
    transfers.push_back({p, output + recvOffsets[p], recvBytes[p], true});
  }
  return exchange("all-to-all", transfers);
}

io::Status MpiCommunicator::doBroadcast(void *data, int64_t bytes, int root) {
  // MPI_Ibcast keeps MPI's tree algorithms; pieces keep counts in range.
  std::vector<MPI_Request> requests;
  std::vector<Pending> pending;
  int64_t offset = 0;
  do {
    int64_t piece = std::min(pieceBytes, bytes - offset);
    MPI_Request request;
    int rc =
        MPI_Ibcast(static_cast<char *>(data) + offset, static_cast<int>(piece),
                   MPI_BYTE, root, comm, &request);
    if (rc != MPI_SUCCESS)
      return callFailed("broadcast", "MPI_Ibcast", rc);
    requests.push_back(request);
    pending.push_back({-1, true, piece});
    offset += piece;
  } while (offset < bytes);
  return wait("broadcast", requests, pending);
}

io::Status MpiCommunicator::doBarrier() {
  std::vector<MPI_Request> requests(1);
  int rc = MPI_Ibarrier(comm, &requests[0]);
  if (rc != MPI_SUCCESS)
    return callFailed("barrier", "MPI_Ibarrier", rc);
  return wait("barrier", requests, {{-1, false, 0}});
}

io::Expected<std::unique_ptr<Communicator>> MpiCommunicator::doSplit(int color,
                                                                     int key) {
  // Exchange (color, key) first with a timed collective: MPI_Comm_split
  // blocks, so it is only entered once every rank is known to be alive and
  // splitting. The gathered table also gives the new group's world ranks.
  int32_t mine[2] = {color, key};
  std::vector<int32_t> table(static_cast<size_t>(2 * n));
  if (io::Status s =
          allGather("split", mine, table.data(), std::vector<int64_t>(n, 8)))
    return *s;
  std::vector<int> members;
  for (int r = 0; r < n; ++r)
    if (table[2 * r] == color)
      members.push_back(r);
  std::stable_sort(members.begin(), members.end(), [&](int a, int b) {
    return table[2 * a + 1] < table[2 * b + 1];
  });
  std::vector<int> worldRanks;
  for (int r : members)
    worldRanks.push_back(world[r]);

  MPI_Comm sub;
  int rc = MPI_Comm_split(comm, color, key, &sub);
  if (rc != MPI_SUCCESS)
    return callFailed("split", "MPI_Comm_split", rc);
  MPI_Comm_set_errhandler(sub, MPI_ERRORS_RETURN);
  auto result = std::make_unique<MpiCommunicator>(sub, std::move(worldRanks),
                                                  timeout, pieceBytes);
  if (result->size() != static_cast<int>(members.size()) ||
      members[result->rank()] != me)
    return error("split: MPI_Comm_split disagrees with the exchanged colors "
                 "and keys");
  return std::unique_ptr<Communicator>(std::move(result));
}

bool running() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  return initialized && !finalized;
}

io::Expected<std::unique_ptr<Communicator>> initWorld(int *argc, char ***argv,
                                                      double timeoutSeconds) {
  int64_t pieceBytes = kMaxPiece;
  if (const char *text = std::getenv(kPieceVariable)) {
    char *end = nullptr;
    long long value = std::strtoll(text, &end, 10);
    if (!*text || *end || value < 1 || value > kMaxPiece)
      return io::makeError(kPieceVariable, std::string("'") + text +
                                               "' is not a byte count in 1.." +
                                               std::to_string(kMaxPiece));
    pieceBytes = value;
  }
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    // Communication stays on the thread that calls the collectives.
    int provided = 0;
    int rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS)
      return io::makeError("MPI_Init_thread", mpiErrorText(rc));
  }
  int worldRank = 0, worldSize = 1;
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &worldRank);
  MPI_Comm_size(MPI_COMM_WORLD, &worldSize);
  std::string where = "rank " + std::to_string(worldRank);

  // MPI_Comm_idup rather than MPI_Comm_dup: even this first collective must
  // not wait forever for a rank that died during start-up.
  MPI_Comm comm;
  MPI_Request request;
  int rc = MPI_Comm_idup(MPI_COMM_WORLD, &comm, &request);
  if (rc != MPI_SUCCESS)
    return io::makeError(where,
                         "start-up: MPI_Comm_idup failed: " + mpiErrorText(rc));
  ProgressDeadline deadline(timeoutSeconds);
  for (int done = 0; !done;) {
    rc = MPI_Test(&request, &done, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS)
      return io::makeError(where, "start-up: MPI_Comm_idup failed: " +
                                      mpiErrorText(rc));
    if (!done && deadline.expired())
      return io::makeError(where,
                           timedOutText("start-up", timeoutSeconds, "peers"));
    if (!done)
      std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN);
  std::vector<int> worldRanks(static_cast<size_t>(worldSize));
  for (int r = 0; r < worldSize; ++r)
    worldRanks[r] = r;
  return std::unique_ptr<Communicator>(new MpiCommunicator(
      comm, std::move(worldRanks), timeoutSeconds, pieceBytes));
}

io::Status finalize() {
  if (!running())
    return std::nullopt;
  int rc = MPI_Finalize();
  if (rc != MPI_SUCCESS)
    return io::makeError("MPI_Finalize", mpiErrorText(rc));
  return std::nullopt;
}

void abortWorld(int code) {
  MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code); // MPI_Abort should not return; be sure.
}

} // namespace dsflow::dist::mpi
