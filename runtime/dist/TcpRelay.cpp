//===- TcpRelay.cpp - One round of the TCP communicator's star ------------===//
//
// The relay reads every rank's frame concurrently (poll over all links), so a
// slow rank delays nobody's transfer and a dead or silent one is named. The
// other ranks only ever talk to the relay; while they send, they also watch
// for the relay's error notice, so a failure reaches them at once.
//
//===----------------------------------------------------------------------===//
#include "dist/TcpCommunicator.h"

#include "io/FileUtil.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <new>
#include <optional>
#include <poll.h>
#include <sys/socket.h>

namespace dsflow::dist::tcp {

// An error notice longer than this is cut (it is one line of text).
static constexpr uint64_t kMaxNoticeBytes = 4096;

static std::string mismatchText(const std::string &peer, const FrameHeader &got,
                                Op op, uint32_t sequence,
                                const std::string &self) {
  if (got.op != op)
    return peer + " called " + opName(got.op) + " where " + self + " called " +
           opName(op) +
           " (every rank must call the same collectives in the same order)";
  return peer + " is at collective #" + std::to_string(got.sequence) +
         " where " + self + " is at #" + std::to_string(sequence) +
         " (every rank must call the same collectives in the same order)";
}

namespace {
/// The links of the ranks r in [1, n) with pending(r), watched for `events`.
struct PeerPoll {
  std::vector<pollfd> fds;
  std::vector<int> ranks;
};

template <typename Pending>
PeerPoll peersToPoll(const Links &links, int n, short events, Pending pending) {
  PeerPoll set;
  for (int r = 1; r < n; ++r)
    if (pending(r)) {
      set.fds.push_back({links.peers[r].fd(), events, 0});
      set.ranks.push_back(r);
    }
  return set;
}

/// Polls `set` for up to a second; the problem as text once no progress came
/// before `deadline`, or when poll itself fails.
std::optional<std::string> pollPeers(PeerPoll &set,
                                     const ProgressDeadline &deadline,
                                     const std::string &name,
                                     const std::vector<int> &world) {
  int ms = deadline.remainingMs();
  if (ms == 0) {
    std::vector<int> waiting;
    for (int r : set.ranks)
      waiting.push_back(world[r]);
    return timedOutText(name, deadline.seconds(), ranksText(waiting));
  }
  int rc = ::poll(set.fds.data(), set.fds.size(), std::min(ms, 1000));
  if (rc < 0 && errno != EINTR)
    return name + ": poll failed: " + io::errnoText(errno);
  return std::nullopt;
}
} // namespace

io::IoError TcpCommunicator::fail(Op op, const io::IoError &failure) {
  if (me != 0)
    return failure;
  // One non-blocking attempt per rank: a notice must never make the relay
  // wait, and the communicator is unusable from here on anyway.
  unsigned char header[kHeaderBytes];
  std::string text = failure.message.substr(0, kMaxNoticeBytes);
  encodeHeader({op, Kind::Error, sequence, text.size()}, header);
  std::string notice(reinterpret_cast<char *>(header), kHeaderBytes);
  notice += text;
  for (int r = 1; r < size(); ++r) {
    int64_t moved = 0;
    int err = 0;
    sendSome(links.peers[r], notice.data(), static_cast<int64_t>(notice.size()),
             moved, err);
    ::shutdown(links.peers[r].fd(), SHUT_WR); // the notice, then end of data
  }
  // Closing a socket with unread data makes the kernel reset the connection,
  // and a reset can discard the notice before the rank reads it. So read
  // (and drop) what the ranks still send until they hang up, for a moment:
  // the callers exit on an error, closing their side.
  ProgressDeadline deadline(2.0);
  std::vector<bool> open(size(), true);
  std::vector<char> scratch(1 << 16);
  for (int left = size() - 1; left > 0 && !deadline.expired();) {
    PeerPoll set = peersToPoll(links, size(), POLLIN,
                               [&](int r) { return bool(open[r]); });
    if (::poll(set.fds.data(), set.fds.size(), deadline.remainingMs()) <= 0)
      continue;
    for (size_t i = 0; i < set.fds.size(); ++i) {
      int64_t moved = 0;
      int err = 0;
      if (set.fds[i].revents == 0)
        continue;
      IoResult result =
          recvSome(links.peers[set.ranks[i]], scratch.data(),
                   static_cast<int64_t>(scratch.size()), moved, err);
      if (result == IoResult::Closed || result == IoResult::Failed) {
        open[set.ranks[i]] = false;
        --left;
      }
    }
  }
  return failure;
}

namespace {
/// The relay's view of one rank's frame in flight.
struct Inbound {
  unsigned char raw[kHeaderBytes];
  int64_t headerGot = 0;
  FrameHeader header;
  int64_t got = 0;
  bool done = false;
};
} // namespace

io::Status TcpCommunicator::gather(Op op, const std::vector<int64_t> &expected,
                                   std::vector<std::vector<char>> &payloads) {
  const std::string name = opName(op);
  int n = size();
  payloads.assign(static_cast<size_t>(n), {});
  std::vector<Inbound> in(static_cast<size_t>(n));
  ProgressDeadline deadline(timeout);
  int left = n - 1;
  while (left > 0) {
    PeerPoll set =
        peersToPoll(links, n, POLLIN, [&](int r) { return !in[r].done; });
    if (std::optional<std::string> problem =
            pollPeers(set, deadline, name, world))
      return fail(op, error(*problem));
    for (size_t i = 0; i < set.fds.size(); ++i) {
      if (set.fds[i].revents == 0)
        continue;
      int r = set.ranks[i];
      Inbound &frame = in[r];
      std::vector<char> &payload = payloads[r];
      // Read what is there; stop when the socket runs dry or the frame ends.
      while (!frame.done) {
        bool inHeader = frame.headerGot < kHeaderBytes;
        int64_t moved = 0;
        int err = 0;
        IoResult result =
            inHeader
                ? recvSome(links.peers[r], frame.raw + frame.headerGot,
                           kHeaderBytes - frame.headerGot, moved, err)
                : recvSome(links.peers[r], payload.data() + frame.got,
                           static_cast<int64_t>(payload.size()) - frame.got,
                           moved, err);
        if (result == IoResult::WouldBlock)
          break;
        if (result != IoResult::Progress)
          return fail(op, error(transferFailureText({result, err}, name,
                                                    timeout, who(r))));
        deadline.progress();
        (inHeader ? frame.headerGot : frame.got) += moved;
        if (inHeader && frame.headerGot == kHeaderBytes) {
          if (!decodeHeader(frame.raw, frame.header) ||
              frame.header.kind != Kind::Data)
            return fail(
                op, error(name + ": " + who(r) + " sent a malformed message"));
          if (frame.header.op != op || frame.header.sequence != sequence)
            return fail(op, error(mismatchText(who(r), frame.header, op,
                                               sequence, who(0))));
          int64_t bytes = static_cast<int64_t>(frame.header.bytes);
          if (expected[r] >= 0 && bytes != expected[r])
            return fail(op,
                        error(name + ": " + who(r) + " passed " +
                              std::to_string(bytes) + " bytes where " + who(0) +
                              " passed " + std::to_string(expected[r]) +
                              " (the ranks disagree on sizes)"));
          try {
            payload.resize(static_cast<size_t>(bytes));
          } catch (const std::bad_alloc &) {
            return fail(op,
                        error(name + ": cannot buffer " +
                              std::to_string(bytes) + " bytes from " + who(r)));
          }
        }
        if (frame.headerGot == kHeaderBytes &&
            frame.got == static_cast<int64_t>(payload.size())) {
          frame.done = true;
          --left;
        }
      }
    }
  }
  return std::nullopt;
}

io::Status TcpCommunicator::reply(Op op,
                                  const std::vector<std::vector<Part>> &parts) {
  const std::string name = opName(op);
  int n = size();
  // Per rank: the header, then its parts; `part` and `offset` track progress.
  std::vector<std::array<unsigned char, kHeaderBytes>> headers(n);
  std::vector<std::vector<Part>> queue(n);
  std::vector<size_t> part(n, 0);
  std::vector<int64_t> offset(n, 0);
  int left = 0;
  for (int r = 1; r < n; ++r) {
    uint64_t total = 0;
    for (const Part &p : parts[r])
      total += static_cast<uint64_t>(p.bytes);
    encodeHeader({op, Kind::Data, sequence, total}, headers[r].data());
    queue[r].push_back(
        {reinterpret_cast<char *>(headers[r].data()), kHeaderBytes});
    for (const Part &p : parts[r])
      if (p.bytes > 0)
        queue[r].push_back(p);
    ++left;
  }
  ProgressDeadline deadline(timeout);
  while (left > 0) {
    PeerPoll set = peersToPoll(
        links, n, POLLOUT, [&](int r) { return part[r] < queue[r].size(); });
    if (std::optional<std::string> problem =
            pollPeers(set, deadline, name, world))
      return fail(op, error(*problem));
    for (size_t i = 0; i < set.fds.size(); ++i) {
      if (set.fds[i].revents == 0)
        continue;
      int r = set.ranks[i];
      while (part[r] < queue[r].size()) {
        const Part &p = queue[r][part[r]];
        int64_t moved = 0;
        int err = 0;
        IoResult result = sendSome(links.peers[r], p.data + offset[r],
                                   p.bytes - offset[r], moved, err);
        if (result == IoResult::WouldBlock)
          break;
        if (result != IoResult::Progress)
          return fail(op, error(transferFailureText({result, err}, name,
                                                    timeout, who(r))));
        deadline.progress();
        offset[r] += moved;
        if (offset[r] == p.bytes) {
          ++part[r];
          offset[r] = 0;
          if (part[r] == queue[r].size())
            --left;
        }
      }
    }
  }
  return std::nullopt;
}

/// Reads a frame the relay sent out of turn or in answer; returns its error.
static io::IoError relayNotice(const Socket &relay, const std::string &self,
                               const std::string &relayName,
                               const std::string &name, double waitSeconds,
                               const FrameHeader *known) {
  ProgressDeadline deadline(waitSeconds);
  FrameHeader header;
  if (known) {
    header = *known;
  } else {
    unsigned char raw[kHeaderBytes];
    TransferResult r = recvAll(relay, raw, kHeaderBytes, deadline);
    if (r.failed())
      return io::makeError(
          self, transferFailureText(r, name, waitSeconds, relayName));
    if (!decodeHeader(raw, header))
      return io::makeError(self, name + ": " + relayName +
                                     " sent a malformed message");
  }
  if (header.kind != Kind::Error)
    return io::makeError(self, name + ": " + relayName +
                                   " answered before this rank finished "
                                   "sending (the ranks disagree on sizes?)");
  std::string text(std::min<uint64_t>(header.bytes, kMaxNoticeBytes), '\0');
  TransferResult r =
      recvAll(relay, text.data(), static_cast<int64_t>(text.size()), deadline);
  if (r.failed())
    return io::makeError(self, name + " failed on " + relayName);
  return io::makeError(self, name + " failed: " + text);
}

io::Status TcpCommunicator::sendToRelay(Op op, const std::vector<Part> &parts) {
  const std::string name = opName(op);
  const Socket &relay = links.peers[0];
  unsigned char header[kHeaderBytes];
  uint64_t total = 0;
  for (const Part &p : parts)
    total += static_cast<uint64_t>(p.bytes);
  encodeHeader({op, Kind::Data, sequence, total}, header);
  std::vector<Part> queue = {{reinterpret_cast<char *>(header), kHeaderBytes}};
  queue.insert(queue.end(), parts.begin(), parts.end());
  ProgressDeadline deadline(relayWaitSeconds());
  for (const Part &p : queue) {
    int64_t done = 0;
    while (done < p.bytes) {
      int64_t moved = 0;
      int err = 0;
      IoResult result =
          sendSome(relay, p.data + done, p.bytes - done, moved, err);
      if (result == IoResult::Progress) {
        done += moved;
        deadline.progress();
        continue;
      }
      if (result != IoResult::WouldBlock) {
        // The relay may have hung up after a notice: report that instead.
        pollfd p{relay.fd(), POLLIN, 0};
        if (::poll(&p, 1, 0) > 0 && (p.revents & POLLIN)) {
          io::IoError notice =
              relayNotice(relay, "rank " + std::to_string(world[me]), who(0),
                          name, 1.0, nullptr);
          if (notice.message.find(name + " failed: ") != std::string::npos)
            return notice;
        }
        return error(transferFailureText({result, err}, name,
                                         relayWaitSeconds(), who(0)));
      }
      int ms = deadline.remainingMs();
      if (ms == 0)
        return error(timedOutText(name, relayWaitSeconds(), who(0)));
      // The relay only speaks before this rank finished sending to report a
      // failure (or by closing): read that rather than wait.
      pollfd p{relay.fd(), POLLOUT | POLLIN, 0};
      if (::poll(&p, 1, std::min(ms, 1000)) > 0 && (p.revents & POLLIN))
        return relayNotice(relay, "rank " + std::to_string(world[me]), who(0),
                           name, relayWaitSeconds(), nullptr);
    }
  }
  return std::nullopt;
}

io::Status TcpCommunicator::receiveFromRelay(Op op, void *out, int64_t bytes,
                                             std::vector<char> *any) {
  const std::string name = opName(op);
  const Socket &relay = links.peers[0];
  ProgressDeadline deadline(relayWaitSeconds());
  unsigned char raw[kHeaderBytes];
  TransferResult r = recvAll(relay, raw, kHeaderBytes, deadline);
  if (r.failed())
    return error(transferFailureText(r, name, relayWaitSeconds(), who(0)));
  FrameHeader header;
  if (!decodeHeader(raw, header))
    return error(name + ": " + who(0) + " sent a malformed message");
  if (header.kind == Kind::Error)
    return relayNotice(relay, "rank " + std::to_string(world[me]), who(0), name,
                       relayWaitSeconds(), &header);
  if (header.op != op || header.sequence != sequence)
    return error(mismatchText(who(0), header, op, sequence, "this rank"));
  int64_t got = static_cast<int64_t>(header.bytes);
  if (any) {
    try {
      any->resize(static_cast<size_t>(got));
    } catch (const std::bad_alloc &) {
      return error(name + ": cannot buffer " + std::to_string(got) +
                   " bytes from " + who(0));
    }
    out = any->data();
  } else if (got != bytes) {
    return error(name + ": " + who(0) + " sent " + std::to_string(got) +
                 " bytes where this rank expected " + std::to_string(bytes) +
                 " (the ranks disagree on sizes)");
  }
  r = recvAll(relay, out, got, deadline);
  if (r.failed())
    return error(transferFailureText(r, name, relayWaitSeconds(), who(0)));
  return std::nullopt;
}

} // namespace dsflow::dist::tcp
