//===- TcpCommunicator.h - Collectives relayed over TCP ---------*- C++ -*-===//
//
// The transport for jobs launched without MPI (torchrun-style RANK,
// WORLD_SIZE, MASTER_ADDR, MASTER_PORT). A star: rank 0 of the communicator
// (the relay) holds one connection per other rank. Every collective is one
// round or two: each rank sends its frame to the relay, which reads all of
// them at once, checks that every rank called the same collective with
// matching sizes, sums in rank order, and replies. Simple and deterministic,
// not fast: the relay moves and buffers all the data (n x the message), so
// it suits tests, small jobs and machines without MPI.
//
// A split opens a new star per group: the group's first rank listens on a
// free port, and the relay of the parent tells the members where.
//
// The world communicator also carries point-to-point messages (pipeline
// stages) over a mesh of direct connections made at start-up
// (TcpMesh.cpp): a sender thread writes each queued message to its peer, and
// receive() reads the peer's connection, keeping messages of other tags for
// later.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_DIST_TCPCOMMUNICATOR_H
#define DSFLOW_DIST_TCPCOMMUNICATOR_H

#include "dist/Communicator.h"
#include "dist/Socket.h"
#include "dist/TcpFrame.h"

namespace dsflow::dist {

struct TcpWorldOptions {
  int rank = 0;
  int size = 1;
  std::string masterAddr;
  int masterPort = 0;
  double timeoutSeconds = kDefaultCommTimeoutSeconds;
};

/// Rank 0 listens on every address at masterPort; the others connect to
/// masterAddr:masterPort (retrying until rank 0 is up, within the timeout).
/// Returns once all `size` ranks are connected.
io::Expected<std::unique_ptr<Communicator>>
connectTcpWorld(const TcpWorldOptions &options);

namespace tcp {

/// The connections of one rank: on the relay, peers[r] and hosts[r] for every
/// other rank r; elsewhere only peers[0] and hosts[0], the relay's.
struct Links {
  std::vector<Socket> peers;
  std::vector<std::string> hosts;
};

/// One piece of a frame's payload.
struct Part {
  const char *data;
  int64_t bytes;
};

class TcpCommunicator final : public Communicator {
public:
  TcpCommunicator(int rank, std::vector<int> worldRanks, Links links,
                  double timeoutSeconds);

  ~TcpCommunicator() override;

  /// Connects every pair of ranks directly (a collective, at start-up), so
  /// that this communicator carries point-to-point messages.
  io::Status connectMesh();

  int rank() const override { return me; }
  int size() const override { return static_cast<int>(world.size()); }
  int worldRank(int r) const override { return world[r]; }
  const char *transport() const override { return "tcp"; }

protected:
  io::Expected<std::unique_ptr<Communicator>> doSplit(int color,
                                                      int key) override;
  io::Status doReduceScatterSum(const void *in, void *out,
                                const std::vector<int64_t> &counts,
                                ElemType type) override;
  io::Status doAllReduceSum(void *data, int64_t count, ElemType type) override;
  io::Status doAllGather(const void *in, void *out,
                         const std::vector<int64_t> &bytes) override;
  io::Status doAllToAllV(const void *send,
                         const std::vector<int64_t> &sendBytes, void *recv,
                         const std::vector<int64_t> &recvBytes) override;
  io::Status doBroadcast(void *data, int64_t bytes, int root) override;
  io::Status doBarrier() override;
  bool supportsPointToPoint() const override { return mesh != nullptr; }
  io::Status doSend(int peer, int tag, const void *data,
                    int64_t bytes) override;
  io::Status doReceive(int peer, int tag, void *data, int64_t bytes) override;
  io::Status doFlushSends() override;

private:
  struct Mesh;
  /// The sender thread's loop.
  void sendQueued();
  // The relay's side of a round (TcpRelay.cpp). gather() receives one frame
  // of `op` from every other rank; expected[r] is the payload size rank r
  // must send, or -1 for any size. reply() sends each rank its payload.
  io::Status gather(Op op, const std::vector<int64_t> &expected,
                    std::vector<std::vector<char>> &payloads);
  io::Status reply(Op op, const std::vector<std::vector<Part>> &parts);
  /// Tells every other rank about `failure` (without waiting), returns it.
  io::IoError fail(Op op, const io::IoError &failure);

  // The other ranks' side of a round.
  io::Status sendToRelay(Op op, const std::vector<Part> &parts);
  /// Receives exactly `bytes` (or any size when `bytes` is -1, into `any`).
  io::Status receiveFromRelay(Op op, void *out, int64_t bytes,
                              std::vector<char> *any = nullptr);

  /// Starts a round: a new sequence number.
  void beginRound() { ++sequence; }
  std::string who(int r) const { return "rank " + std::to_string(world[r]); }
  /// How long a rank waits for the relay: longer than the relay waits for
  /// the others, so the relay's precise error arrives first.
  double relayWaitSeconds() const { return timeout * 1.1 + 1; }

  int me;
  std::vector<int> world;
  Links links;
  double timeout;
  uint32_t sequence = 0;
  std::unique_ptr<Mesh> mesh;
};

/// The relay of a new star: accepts size - 1 members on `listener`, each
/// introducing itself with `token`, and welcomes them all. Errors name `op`
/// ("start-up", "split").
io::Expected<Links> acceptMembers(const Socket &listener, int size,
                                  uint64_t token,
                                  const std::vector<int> &worldRanks,
                                  double timeoutSeconds, const std::string &op);

/// A member of a new star: connects to the relay at host:port as `rank` of
/// `size` and waits to be welcomed.
io::Expected<Links> joinRelay(const std::string &host, int port, int rank,
                              int size, uint64_t token,
                              const std::vector<int> &worldRanks,
                              double timeoutSeconds, const std::string &op);

} // namespace tcp
} // namespace dsflow::dist

#endif // DSFLOW_DIST_TCPCOMMUNICATOR_H
