//===- TcpCommunicator.cpp - Collectives relayed over TCP -----------------===//
#include "dist/TcpCommunicator.h"

#include "dist/Reduction.h"
#include "dist/SelfCommunicator.h"

#include <algorithm>
#include <cstring>

namespace dsflow::dist::tcp {

static int64_t sumOf(const std::vector<int64_t> &counts) {
  int64_t total = 0;
  for (int64_t c : counts)
    total += c;
  return total;
}

io::Status TcpCommunicator::doAllReduceSum(void *data, int64_t count,
                                           ElemType type) {
  // One round: the relay sums x_0 (its own) + x_1 + ... in rank order.
  const Op op = Op::AllReduce;
  beginRound();
  int64_t bytes = count * elemBytes(type);
  char *buffer = static_cast<char *>(data);
  if (me != 0) {
    if (io::Status s = sendToRelay(op, {{buffer, bytes}}))
      return s;
    return receiveFromRelay(op, buffer, bytes);
  }
  std::vector<std::vector<char>> payloads;
  if (io::Status s = gather(op, std::vector<int64_t>(size(), bytes), payloads))
    return s;
  for (int r = 1; r < size(); ++r)
    accumulate(type, buffer, payloads[r].data(), count);
  return reply(op, std::vector<std::vector<Part>>(size(), {{buffer, bytes}}));
}

io::Status
TcpCommunicator::doReduceScatterSum(const void *in, void *out,
                                    const std::vector<int64_t> &counts,
                                    ElemType type) {
  const Op op = Op::ReduceScatter;
  beginRound();
  int64_t size = elemBytes(type), total = sumOf(counts) * size;
  const char *input = static_cast<const char *>(in);
  if (me != 0) {
    if (io::Status s = sendToRelay(op, {{input, total}}))
      return s;
    return receiveFromRelay(op, out, counts[me] * size);
  }
  std::vector<std::vector<char>> payloads;
  if (io::Status s =
          gather(op, std::vector<int64_t>(this->size(), total), payloads))
    return s;
  std::vector<char> sum(input, input + total);
  for (int r = 1; r < this->size(); ++r)
    accumulate(type, sum.data(), payloads[r].data(), total / size);
  std::vector<int64_t> offsets = offsetsOf(counts);
  std::vector<std::vector<Part>> parts(this->size());
  for (int r = 1; r < this->size(); ++r)
    parts[r] = {{sum.data() + offsets[r] * size, counts[r] * size}};
  if (counts[0] > 0)
    std::memcpy(out, sum.data(), static_cast<size_t>(counts[0] * size));
  return reply(op, parts);
}

io::Status TcpCommunicator::doAllGather(const void *in, void *out,
                                        const std::vector<int64_t> &bytes) {
  const Op op = Op::AllGather;
  beginRound();
  int64_t total = sumOf(bytes);
  char *output = static_cast<char *>(out);
  if (me != 0) {
    if (io::Status s =
            sendToRelay(op, {{static_cast<const char *>(in), bytes[me]}}))
      return s;
    return receiveFromRelay(op, output, total);
  }
  std::vector<std::vector<char>> payloads;
  if (io::Status s = gather(op, bytes, payloads))
    return s;
  std::vector<int64_t> offsets = offsetsOf(bytes);
  if (bytes[0] > 0 && in != output)
    std::memmove(output, in, static_cast<size_t>(bytes[0]));
  for (int r = 1; r < size(); ++r)
    if (bytes[r] > 0)
      std::memcpy(output + offsets[r], payloads[r].data(),
                  static_cast<size_t>(bytes[r]));
  return reply(op, std::vector<std::vector<Part>>(size(), {{output, total}}));
}

/// 2n little-endian u64: a rank's send sizes, then its receive sizes.
static std::string encodeSizes(const std::vector<int64_t> &send,
                               const std::vector<int64_t> &recv) {
  std::string out;
  for (const auto *sizes : {&send, &recv})
    for (int64_t b : *sizes)
      putU64(out, static_cast<uint64_t>(b));
  return out;
}

io::Status TcpCommunicator::doAllToAllV(const void *send,
                                        const std::vector<int64_t> &sendBytes,
                                        void *recv,
                                        const std::vector<int64_t> &recvBytes) {
  const Op op = Op::AllToAll;
  beginRound();
  int n = size();
  const char *input = static_cast<const char *>(send);
  char *output = static_cast<char *>(recv);
  if (me != 0) {
    // The relay needs this rank's sizes to route and check the blocks.
    std::string sizes = encodeSizes(sendBytes, recvBytes);
    if (io::Status s = sendToRelay(op, {{sizes.data(), (int64_t)sizes.size()},
                                        {input, sumOf(sendBytes)}}))
      return s;
    return receiveFromRelay(op, output, sumOf(recvBytes));
  }
  std::vector<std::vector<char>> payloads;
  if (io::Status s = gather(op, std::vector<int64_t>(n, -1), payloads))
    return s;
  // sends[s][d], receives[d][s] and each rank's data, rank 0's from the
  // arguments.
  std::vector<std::vector<int64_t>> sends(n), receives(n);
  std::vector<const char *> data(n);
  sends[0] = sendBytes;
  receives[0] = recvBytes;
  data[0] = input;
  int64_t header = 16 * static_cast<int64_t>(n);
  for (int r = 1; r < n; ++r) {
    const std::vector<char> &p = payloads[r];
    bool valid = static_cast<int64_t>(p.size()) >= header;
    int64_t total = 0;
    for (int i = 0; valid && i < 2 * n; ++i) {
      auto value = static_cast<int64_t>(
          getU64(reinterpret_cast<const unsigned char *>(p.data()) + 8 * i));
      valid = value >= 0 && value < (int64_t(1) << 50);
      (i < n ? sends[r] : receives[r]).push_back(value);
      if (i < n)
        total += value;
    }
    if (!valid || static_cast<int64_t>(p.size()) != header + total)
      return fail(op,
                  error("all-to-all: " + who(r) + " sent a malformed message"));
    data[r] = p.data() + header;
  }
  for (int s = 0; s < n; ++s)
    for (int d = 0; d < n; ++d)
      if (sends[s][d] != receives[d][s])
        return fail(op,
                    error("all-to-all: " + who(s) + " sends " +
                          std::to_string(sends[s][d]) + " bytes to " + who(d) +
                          ", which expects " + std::to_string(receives[d][s])));
  // Rank d receives the blocks for it from ranks 0..n-1, in rank order.
  std::vector<std::vector<int64_t>> sendOffsets(n);
  for (int s = 0; s < n; ++s)
    sendOffsets[s] = offsetsOf(sends[s]);
  std::vector<std::vector<Part>> parts(n);
  for (int d = 0; d < n; ++d)
    for (int s = 0; s < n; ++s)
      parts[d].push_back({data[s] + sendOffsets[s][d], sends[s][d]});
  int64_t at = 0;
  for (const Part &p : parts[0]) {
    if (p.bytes > 0)
      std::memcpy(output + at, p.data, static_cast<size_t>(p.bytes));
    at += p.bytes;
  }
  return reply(op, parts);
}

io::Status TcpCommunicator::doBroadcast(void *data, int64_t bytes, int root) {
  // Every rank reports its size (so a disagreement is caught) and the root
  // its data; the relay forwards the data to every rank but the root.
  const Op op = Op::Broadcast;
  beginRound();
  char *buffer = static_cast<char *>(data);
  std::string size;
  putU64(size, static_cast<uint64_t>(bytes));
  if (me != 0) {
    std::vector<Part> parts = {{size.data(), 8}};
    if (me == root)
      parts.push_back({buffer, bytes});
    if (io::Status s = sendToRelay(op, parts))
      return s;
    return receiveFromRelay(op, buffer, me == root ? 0 : bytes);
  }
  std::vector<std::vector<char>> payloads;
  std::vector<int64_t> expected(this->size(), 8);
  if (root != 0)
    expected[root] = -1;
  if (io::Status s = gather(op, expected, payloads))
    return s;
  for (int r = 1; r < this->size(); ++r) {
    const std::vector<char> &p = payloads[r];
    int64_t theirs =
        p.size() >= 8 ? static_cast<int64_t>(getU64(
                            reinterpret_cast<const unsigned char *>(p.data())))
                      : -1;
    if (theirs != bytes ||
        static_cast<int64_t>(p.size()) != 8 + (r == root ? bytes : 0))
      return fail(op, error("broadcast: " + who(r) + " passed " +
                            std::to_string(theirs) + " bytes where " + who(0) +
                            " passed " + std::to_string(bytes) +
                            " (the ranks disagree on sizes)"));
  }
  if (root != 0 && bytes > 0)
    std::memcpy(buffer, payloads[root].data() + 8, static_cast<size_t>(bytes));
  std::vector<std::vector<Part>> parts(this->size(), {{buffer, bytes}});
  parts[root].clear();
  return reply(op, parts);
}

io::Status TcpCommunicator::doBarrier() {
  const Op op = Op::Barrier;
  beginRound();
  if (me != 0) {
    if (io::Status s = sendToRelay(op, {}))
      return s;
    return receiveFromRelay(op, nullptr, 0);
  }
  std::vector<std::vector<char>> payloads;
  if (io::Status s = gather(op, std::vector<int64_t>(size(), 0), payloads))
    return s;
  return reply(op, std::vector<std::vector<Part>>(size()));
}

} // namespace dsflow::dist::tcp
