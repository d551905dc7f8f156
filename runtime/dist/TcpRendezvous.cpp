//===- TcpRendezvous.cpp - Forming the TCP communicator's stars -----------===//
//
// A member connects to its relay and says hello (token, rank, size); the relay
// accepts until every rank has arrived, checks that the ranks are distinct and
// agree on the size, then welcomes them all. Any disagreement fails every
// rank with the same one-line error instead of leaving some of them waiting.
//
//===----------------------------------------------------------------------===//
#include "dist/TcpCommunicator.h"

#include "dist/SelfCommunicator.h"
#include "io/FileUtil.h"

#include <algorithm>
#include <cerrno>
#include <poll.h>

namespace dsflow::dist {
namespace tcp {

static constexpr int64_t kHelloBytes = kHeaderBytes + 24;
// Marks the world's star ("dsfworld"); a split's star uses its own token.
static constexpr uint64_t kWorldToken = 0x646c726f77667364ull;

static std::string rankName(const std::vector<int> &worldRanks, int r) {
  return "rank " + std::to_string(worldRanks[r]);
}

/// Sends an error notice without waiting (best effort: the job is failing).
static void notify(const Socket &s, const std::string &text) {
  unsigned char header[kHeaderBytes];
  encodeHeader({Op::Welcome, Kind::Error, 0, text.size()}, header);
  std::string notice(reinterpret_cast<char *>(header), kHeaderBytes);
  notice += text;
  int64_t moved = 0;
  int err = 0;
  sendSome(s, notice.data(), static_cast<int64_t>(notice.size()), moved, err);
}

namespace {
/// A connection whose hello has not fully arrived.
struct Newcomer {
  Socket socket;
  std::string host;
  unsigned char hello[kHelloBytes];
  int64_t got = 0;
};
} // namespace

io::Expected<Links> acceptMembers(const Socket &listener, int size,
                                  uint64_t token,
                                  const std::vector<int> &worldRanks,
                                  double timeoutSeconds,
                                  const std::string &op) {
  Links links;
  links.peers.resize(static_cast<size_t>(size));
  links.hosts.resize(static_cast<size_t>(size));
  std::vector<Newcomer> newcomers;
  std::string self = rankName(worldRanks, 0);
  auto failAll = [&](const std::string &what) {
    io::IoError failure = io::makeError(self, what);
    for (const Socket &s : links.peers)
      if (s.valid())
        notify(s, failure.message);
    for (const Newcomer &c : newcomers)
      notify(c.socket, failure.message);
    return failure;
  };

  ProgressDeadline deadline(timeoutSeconds);
  int joined = 0;
  while (joined < size - 1) {
    int ms = deadline.remainingMs();
    if (ms == 0) {
      std::vector<int> missing;
      for (int r = 1; r < size; ++r)
        if (!links.peers[r].valid())
          missing.push_back(worldRanks[r]);
      return failAll(timedOutText(op, timeoutSeconds, ranksText(missing)));
    }
    std::vector<pollfd> fds = {{listener.fd(), POLLIN, 0}};
    for (const Newcomer &c : newcomers)
      fds.push_back({c.socket.fd(), POLLIN, 0});
    if (::poll(fds.data(), fds.size(), std::min(ms, 1000)) < 0 &&
        errno != EINTR)
      return failAll(op + ": poll failed: " + io::errnoText(errno));

    for (size_t i = 1; i < fds.size(); ++i) {
      Newcomer &c = newcomers[i - 1];
      if (fds[i].revents == 0)
        continue;
      int64_t moved = 0;
      int err = 0;
      IoResult result =
          recvSome(c.socket, c.hello + c.got, kHelloBytes - c.got, moved, err);
      if (result == IoResult::Closed || result == IoResult::Failed) {
        c.socket.close(); // gone before saying who it is: not one of ours
        continue;
      }
      c.got += moved;
      if (c.got < kHelloBytes)
        continue;
      FrameHeader header;
      if (!decodeHeader(c.hello, header) || header.op != Op::Hello ||
          header.bytes != kHelloBytes - kHeaderBytes ||
          getU64(c.hello + kHeaderBytes) != token)
        return failAll(op + ": a process at " + c.host +
                       " is not a rank of this job (another job on the same "
                       "port, or another dsflow version?)");
      auto rank = static_cast<int64_t>(getU64(c.hello + kHeaderBytes + 8));
      auto theirSize =
          static_cast<int64_t>(getU64(c.hello + kHeaderBytes + 16));
      if (theirSize != size)
        return failAll(op + ": the process at " + c.host +
                       " connected as rank " + std::to_string(rank) + " of " +
                       std::to_string(theirSize) + ", but this job has " +
                       std::to_string(size) +
                       " ranks (every rank must have the same WORLD_SIZE)");
      if (rank < 1 || rank >= size)
        return failAll(op + ": the process at " + c.host +
                       " connected as rank " + std::to_string(rank) +
                       ", outside 1.." + std::to_string(size - 1));
      if (links.peers[rank].valid())
        return failAll(op + ": two processes connected as " +
                       rankName(worldRanks, static_cast<int>(rank)) +
                       " (from " + links.hosts[rank] + " and " + c.host +
                       "; every RANK must be unique)");
      links.peers[rank] = std::move(c.socket);
      links.hosts[rank] = c.host;
      ++joined;
    }
    newcomers.erase(
        std::remove_if(newcomers.begin(), newcomers.end(),
                       [](const Newcomer &c) { return !c.socket.valid(); }),
        newcomers.end());

    if (fds[0].revents != 0) {
      while (true) {
        auto accepted = acceptPending(listener);
        if (!accepted.ok())
          return failAll(op + ": " + accepted.error().message);
        if (!accepted->valid())
          break;
        Newcomer c;
        c.host = peerAddress(*accepted);
        c.socket = std::move(*accepted);
        newcomers.push_back(std::move(c));
      }
    }
  }

  unsigned char welcome[kHeaderBytes];
  encodeHeader({Op::Welcome, Kind::Data, 0, 0}, welcome);
  for (int r = 1; r < size; ++r) {
    ProgressDeadline sendDeadline(timeoutSeconds);
    TransferResult sent =
        sendAll(links.peers[r], welcome, kHeaderBytes, sendDeadline);
    if (sent.failed())
      return failAll(transferFailureText(sent, op, timeoutSeconds,
                                         rankName(worldRanks, r)));
  }
  return links;
}

io::Expected<Links> joinRelay(const std::string &host, int port, int rank,
                              int size, uint64_t token,
                              const std::vector<int> &worldRanks,
                              double timeoutSeconds, const std::string &op) {
  std::string self = rankName(worldRanks, rank);
  std::string relay = rankName(worldRanks, 0);
  ProgressDeadline deadline(timeoutSeconds);
  auto connected = connectTo(host, port, deadline);
  if (!connected.ok())
    return io::makeError(self, op + ": " + connected.error().message);
  Socket socket = std::move(*connected);

  unsigned char hello[kHelloBytes];
  encodeHeader({Op::Hello, Kind::Data, 0, kHelloBytes - kHeaderBytes}, hello);
  std::string fields;
  putU64(fields, token);
  putU64(fields, static_cast<uint64_t>(rank));
  putU64(fields, static_cast<uint64_t>(size));
  std::copy(fields.begin(), fields.end(), hello + kHeaderBytes);
  TransferResult sent = sendAll(socket, hello, kHelloBytes, deadline);
  if (sent.failed())
    return io::makeError(self,
                         transferFailureText(sent, op, timeoutSeconds, relay));

  // The relay waits up to the timeout for the others: wait a little longer
  // so its error, naming the missing ranks, arrives first.
  double wait = timeoutSeconds * 1.1 + 1;
  ProgressDeadline welcomeDeadline(wait);
  unsigned char raw[kHeaderBytes];
  TransferResult got = recvAll(socket, raw, kHeaderBytes, welcomeDeadline);
  FrameHeader header;
  if (got.failed())
    return io::makeError(self, transferFailureText(got, op, wait, relay));
  if (!decodeHeader(raw, header) || header.op != Op::Welcome)
    return io::makeError(self, op + ": " + relay + " at " + host + ":" +
                                   std::to_string(port) +
                                   " answered with a malformed message");
  if (header.kind == Kind::Error) {
    std::string text(std::min<uint64_t>(header.bytes, 4096), '\0');
    recvAll(socket, text.data(), static_cast<int64_t>(text.size()),
            welcomeDeadline);
    return io::makeError(self, op + " failed: " + text);
  }
  Links links;
  links.peers.push_back(std::move(socket));
  links.hosts.push_back(host);
  return links;
}

} // namespace tcp

io::Expected<std::unique_ptr<Communicator>>
connectTcpWorld(const TcpWorldOptions &options) {
  if (options.size == 1)
    return std::unique_ptr<Communicator>(new SelfCommunicator(0));
  std::vector<int> worldRanks(static_cast<size_t>(options.size));
  for (int r = 0; r < options.size; ++r)
    worldRanks[r] = r;
  using namespace tcp;
  io::Expected<Links> links = io::IoError{};
  if (options.rank == 0) {
    auto listener = listenOn(options.masterPort);
    if (!listener.ok())
      return io::makeError("rank 0", "start-up: " + listener.error().message);
    links = acceptMembers(*listener, options.size, kWorldToken, worldRanks,
                          options.timeoutSeconds, "start-up");
  } else {
    links = joinRelay(options.masterAddr, options.masterPort, options.rank,
                      options.size, kWorldToken, worldRanks,
                      options.timeoutSeconds, "start-up");
  }
  if (!links.ok())
    return links.error();
  auto world = std::make_unique<TcpCommunicator>(
      options.rank, std::move(worldRanks), std::move(*links),
      options.timeoutSeconds);
  if (io::Status e = world->connectMesh())
    return *e;
  return std::unique_ptr<Communicator>(std::move(world));
}

} // namespace dsflow::dist
