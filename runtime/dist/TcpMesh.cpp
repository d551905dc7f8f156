//===- TcpMesh.cpp - Point-to-point messages of the TCP world -------------===//
//
// At start-up every rank listens on a free port; the ports (all-gather) and
// the ranks' addresses as the relay sees them (broadcast) go round the star;
// each rank connects to every lower rank, introducing itself, and accepts
// every higher one. A message on a connection is [tag u64][bytes u64] then
// its bytes.
//
//===----------------------------------------------------------------------===//
#include "dist/TcpCommunicator.h"

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

namespace dsflow::dist::tcp {

struct TcpCommunicator::Mesh {
  /// [rank]: the direct connection (none for this rank).
  std::vector<Socket> peers;
  /// Messages received ahead of the one asked for, by (sender, tag).
  std::map<std::pair<int, int>, std::deque<std::vector<char>>> early;

  struct Message {
    int peer;
    int tag;
    std::vector<char> data;
  };
  std::mutex mutex;
  std::condition_variable changed;
  std::deque<Message> queue;
  bool sending = false, stop = false;
  std::optional<io::IoError> sendError;
  std::thread sender;
};

namespace {

constexpr int64_t kMessageHeader = 16;

std::string header(int tag, int64_t bytes) {
  std::string out;
  putU64(out, static_cast<uint64_t>(tag));
  putU64(out, static_cast<uint64_t>(bytes));
  return out;
}

} // namespace

TcpCommunicator::TcpCommunicator(int rank, std::vector<int> worldRanks,
                                 Links links, double timeoutSeconds)
    : me(rank), world(std::move(worldRanks)), links(std::move(links)),
      timeout(timeoutSeconds) {}

TcpCommunicator::~TcpCommunicator() {
  if (!mesh)
    return;
  {
    std::lock_guard<std::mutex> lock(mesh->mutex);
    mesh->stop = true;
  }
  mesh->changed.notify_all();
  if (mesh->sender.joinable())
    mesh->sender.join();
}

io::Status TcpCommunicator::connectMesh() {
  const int n = size();
  io::Expected<Socket> listener = listenOn(0);
  if (!listener)
    return error("start-up: " + listener.error().message);
  uint64_t port = static_cast<uint64_t>(localPort(*listener));
  std::vector<uint64_t> ports(n);
  if (io::Status e =
          allGatherBytes(&port, ports.data(), std::vector<int64_t>(n, 8)))
    return e;
  // The relay names every other rank's address as it sees it.
  std::string table;
  if (me == 0)
    for (int r = 1; r < n; ++r)
      table += links.hosts[r] + "\n";
  int64_t length = static_cast<int64_t>(table.size());
  if (io::Status e = broadcast(&length, sizeof(length), 0))
    return e;
  table.resize(static_cast<size_t>(length));
  if (io::Status e = broadcast(table.data(), length, 0))
    return e;
  std::vector<std::string> hosts(n);
  hosts[0] = me == 0 ? "" : links.hosts[0];
  std::istringstream lines(table);
  for (int r = 1; r < n; ++r)
    std::getline(lines, hosts[r]);

  auto made = std::make_unique<Mesh>();
  made->peers.resize(n);
  for (int r = 0; r < me; ++r) {
    ProgressDeadline deadline(timeout);
    io::Expected<Socket> s =
        connectTo(hosts[r], static_cast<int>(ports[r]), deadline);
    if (!s)
      return error("start-up: connecting to " + who(r) + ": " +
                   s.error().message);
    std::string hello;
    putU64(hello, static_cast<uint64_t>(me));
    TransferResult sent = sendAll(*s, hello.data(), 8, deadline);
    if (sent.failed())
      return error(transferFailureText(sent, "start-up", timeout, who(r)));
    made->peers[r] = std::move(*s);
  }
  ProgressDeadline deadline(timeout);
  for (int accepted = 0; accepted < n - 1 - me;) {
    io::Expected<Socket> s = acceptPending(*listener);
    if (!s)
      return error("start-up: " + s.error().message);
    if (!s->valid()) {
      if (deadline.expired())
        return error(
            timedOutText("start-up", timeout, "the higher ranks to connect"));
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      continue;
    }
    unsigned char hello[8];
    TransferResult got = recvAll(*s, hello, 8, deadline);
    if (got.failed())
      return error(transferFailureText(got, "start-up", timeout, "a peer"));
    uint64_t from = getU64(hello);
    if (from <= uint64_t(me) || from >= uint64_t(n) ||
        made->peers[from].valid())
      return error("start-up: a peer introduced itself as rank " +
                   std::to_string(from));
    made->peers[from] = std::move(*s);
    ++accepted;
  }
  mesh = std::move(made);
  mesh->sender = std::thread([this] { sendQueued(); });
  return std::nullopt;
}

void TcpCommunicator::sendQueued() {
  Mesh &m = *mesh;
  std::unique_lock<std::mutex> lock(m.mutex);
  for (;;) {
    m.changed.wait(lock, [&] { return m.stop || !m.queue.empty(); });
    if (m.queue.empty())
      return; // stopping with nothing left
    Mesh::Message message = std::move(m.queue.front());
    m.queue.pop_front();
    m.sending = true;
    lock.unlock();
    std::string head =
        header(message.tag, static_cast<int64_t>(message.data.size()));
    ProgressDeadline deadline(timeout);
    TransferResult sent =
        sendAll(m.peers[message.peer], head.data(), kMessageHeader, deadline);
    if (!sent.failed())
      sent = sendAll(m.peers[message.peer], message.data.data(),
                     static_cast<int64_t>(message.data.size()), deadline);
    lock.lock();
    if (sent.failed() && !m.sendError)
      m.sendError =
          error(transferFailureText(sent, "send", timeout, who(message.peer)));
    m.sending = false;
    m.changed.notify_all();
  }
}

io::Status TcpCommunicator::doSend(int peer, int tag, const void *data,
                                   int64_t bytes) {
  const char *from = static_cast<const char *>(data);
  {
    std::lock_guard<std::mutex> lock(mesh->mutex);
    if (mesh->sendError)
      return mesh->sendError;
    mesh->queue.push_back({peer, tag, std::vector<char>(from, from + bytes)});
  }
  mesh->changed.notify_all();
  return std::nullopt;
}

io::Status TcpCommunicator::doFlushSends() {
  std::unique_lock<std::mutex> lock(mesh->mutex);
  auto idle = [&] {
    return mesh->sendError || (mesh->queue.empty() && !mesh->sending);
  };
  // Each message gets the timeout to leave.
  while (!idle()) {
    size_t left = mesh->queue.size();
    if (!mesh->changed.wait_for(
            lock, std::chrono::duration<double>(timeout),
            [&] { return idle() || mesh->queue.size() < left; }))
      return error(
          timedOutText("send", timeout, "the peers to take a message"));
  }
  return mesh->sendError;
}

io::Status TcpCommunicator::doReceive(int peer, int tag, void *data,
                                      int64_t bytes) {
  auto deliver = [&](const std::vector<char> &message) -> io::Status {
    if (static_cast<int64_t>(message.size()) != bytes)
      return error("receive: the message from " + who(peer) + " with tag " +
                   std::to_string(tag) + " has " +
                   std::to_string(message.size()) + " bytes, expected " +
                   std::to_string(bytes));
    std::copy(message.begin(), message.end(), static_cast<char *>(data));
    return std::nullopt;
  };
  auto &waiting = mesh->early[{peer, tag}];
  if (!waiting.empty()) {
    std::vector<char> message = std::move(waiting.front());
    waiting.pop_front();
    return deliver(message);
  }
  const Socket &socket = mesh->peers[peer];
  for (;;) {
    ProgressDeadline deadline(timeout);
    unsigned char head[kMessageHeader];
    TransferResult got = recvAll(socket, head, kMessageHeader, deadline);
    if (got.failed())
      return error(transferFailureText(got, "receive", timeout, who(peer)));
    int gotTag = static_cast<int>(getU64(head));
    uint64_t size = getU64(head + 8);
    if (gotTag < 0 || gotTag >= kMaxTag || size > (uint64_t(1) << 40))
      return error("receive: a malformed message from " + who(peer));
    std::vector<char> message(static_cast<size_t>(size));
    got = recvAll(socket, message.data(), static_cast<int64_t>(size), deadline);
    if (got.failed())
      return error(transferFailureText(got, "receive", timeout, who(peer)));
    if (gotTag == tag)
      return deliver(message);
    mesh->early[{peer, gotTag}].push_back(std::move(message));
  }
}

} // namespace dsflow::dist::tcp
