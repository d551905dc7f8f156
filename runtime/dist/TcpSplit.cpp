//===- TcpSplit.cpp - Splitting the TCP communicator ----------------------===//
//
// Two rounds through the relay, then a new star per group:
//   1. every rank learns every rank's (color, key), so each knows its group,
//      its rank in it (by key, then rank) and its group's first rank (leader);
//   2. each leader opens a free port and the relay tells every rank where its
//      leader listens (the relay knows each rank's address from its link);
//   3. the members connect to their leader (TcpRendezvous.cpp).
//
//===----------------------------------------------------------------------===//
#include "dist/TcpCommunicator.h"

#include "dist/SelfCommunicator.h"

#include <algorithm>

namespace dsflow::dist::tcp {

static uint64_t readU64(const std::vector<char> &bytes, size_t at) {
  return getU64(reinterpret_cast<const unsigned char *>(bytes.data()) + at);
}

io::Expected<std::unique_ptr<Communicator>> TcpCommunicator::doSplit(int color,
                                                                     int key) {
  const Op op = Op::Split;
  int n = size();

  // Round 1: (color, key) of every rank.
  beginRound();
  std::string mine;
  putU64(mine, static_cast<uint64_t>(static_cast<int64_t>(color)));
  putU64(mine, static_cast<uint64_t>(static_cast<int64_t>(key)));
  std::vector<char> table;
  if (me != 0) {
    if (io::Status s = sendToRelay(op, {{mine.data(), 16}}))
      return *s;
    if (io::Status s = receiveFromRelay(op, nullptr, 16 * int64_t(n), &table))
      return *s;
  } else {
    std::vector<std::vector<char>> payloads;
    if (io::Status s = gather(op, std::vector<int64_t>(n, 16), payloads))
      return *s;
    table.assign(mine.begin(), mine.end());
    for (int r = 1; r < n; ++r)
      table.insert(table.end(), payloads[r].begin(), payloads[r].end());
    if (io::Status s =
            reply(op, std::vector<std::vector<Part>>(
                          n, {{table.data(), (int64_t)table.size()}})))
      return *s;
  }
  if (table.size() != 16 * static_cast<size_t>(n))
    return error("split: " + who(0) + " sent a malformed table");
  std::vector<int> members;
  for (int r = 0; r < n; ++r)
    if (static_cast<int64_t>(readU64(table, 16 * r)) == color)
      members.push_back(r);
  std::stable_sort(members.begin(), members.end(), [&](int a, int b) {
    return static_cast<int64_t>(readU64(table, 16 * a + 8)) <
           static_cast<int64_t>(readU64(table, 16 * b + 8));
  });
  int groupSize = static_cast<int>(members.size());
  int groupRank = static_cast<int>(
      std::find(members.begin(), members.end(), me) - members.begin());
  int leader = members[0];
  std::vector<int> worldRanks;
  for (int r : members)
    worldRanks.push_back(world[r]);

  // Round 2: where each leader listens (port 0: not a leader, or failed).
  beginRound();
  uint32_t round = sequence;
  Socket listener;
  io::Status listenError;
  uint64_t port = 0;
  if (leader == me && groupSize > 1) {
    auto opened = listenOn(0);
    if (opened.ok()) {
      listener = std::move(*opened);
      port = static_cast<uint64_t>(localPort(listener));
    } else {
      listenError = error("split: " + opened.error().message);
    }
  }
  std::string portText;
  putU64(portText, port);
  std::vector<char> ports;
  if (me != 0) {
    if (io::Status s = sendToRelay(op, {{portText.data(), 8}}))
      return *s;
    if (io::Status s = receiveFromRelay(op, nullptr, -1, &ports))
      return *s;
  } else {
    std::vector<std::vector<char>> payloads;
    if (io::Status s = gather(op, std::vector<int64_t>(n, 8), payloads))
      return *s;
    // Per rank: port, host length, host ("" for the relay itself: its
    // members know how they reached it).
    std::string out;
    for (int r = 0; r < n; ++r) {
      std::string host = r == 0 ? "" : links.hosts[r];
      putU64(out, r == 0 ? port : readU64(payloads[r], 0));
      putU64(out, host.size());
      out += host;
    }
    ports.assign(out.begin(), out.end());
    if (io::Status s =
            reply(op, std::vector<std::vector<Part>>(
                          n, {{ports.data(), (int64_t)ports.size()}})))
      return *s;
  }
  if (listenError)
    return *listenError;
  // Find the leader's entry.
  size_t at = 0;
  std::string leaderHost;
  uint64_t leaderPort = 0;
  for (int r = 0; r < n; ++r) {
    if (at + 16 > ports.size())
      return error("split: " + who(0) + " sent a malformed table");
    uint64_t p = readU64(ports, at), length = readU64(ports, at + 8);
    if (length > ports.size() - at - 16)
      return error("split: " + who(0) + " sent a malformed table");
    if (r == leader) {
      leaderPort = p;
      leaderHost.assign(ports.data() + at + 16, length);
    }
    at += 16 + length;
  }

  if (groupSize == 1)
    return std::unique_ptr<Communicator>(new SelfCommunicator(world[me]));
  uint64_t token = (uint64_t(round) << 32) ^ static_cast<uint32_t>(color);
  io::Expected<Links> groupLinks = io::IoError{};
  if (leader == me) {
    groupLinks =
        acceptMembers(listener, groupSize, token, worldRanks, timeout, "split");
  } else {
    if (leaderPort == 0 || leaderPort > 65535)
      return error("split: " + who(leader) +
                   " could not open a port for its group");
    if (leaderHost.empty())
      leaderHost = links.hosts[0];
    groupLinks = joinRelay(leaderHost, static_cast<int>(leaderPort), groupRank,
                           groupSize, token, worldRanks, timeout, "split");
  }
  if (!groupLinks.ok())
    return groupLinks.error();
  return std::unique_ptr<Communicator>(new TcpCommunicator(
      groupRank, std::move(worldRanks), std::move(*groupLinks), timeout));
}

} // namespace dsflow::dist::tcp
