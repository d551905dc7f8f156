//===- CollectiveChecks.cpp - Every collective against local values -------===//
#include "CollectiveChecks.h"

#include "dist/PlanCheck.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>

namespace dsflow::dist::test {

namespace {
/// A check's outcome: empty if it passed.
using Result = std::string;

uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

/// Rank r's value at index i: both signs, magnitudes 1e-4..1e4, so the
/// rounding of a sum depends on its order.
double value(int rank, int64_t i) {
  uint64_t h = mix(static_cast<uint64_t>(rank) * 1000003u + i);
  double mantissa = static_cast<double>(h % 20001) / 10000.0 - 1.0;
  int exponent = static_cast<int>((h >> 20) % 9) - 4;
  return mantissa * std::pow(10.0, exponent);
}

template <typename T> T typed(int rank, int64_t i) {
  if constexpr (std::is_same_v<T, int64_t>)
    return static_cast<int64_t>(mix(rank * 7919u + i)) >> 4; // no overflow
  else
    return static_cast<T>(value(rank, i));
}

template <typename T> std::vector<T> input(int rank, int64_t count) {
  std::vector<T> v(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i)
    v[i] = typed<T>(rank, i);
  return v;
}

/// The fixed-order sum over `ranks` (in this order) at index i.
template <typename T> T orderedSum(const std::vector<int> &ranks, int64_t i) {
  T acc = typed<T>(ranks[0], i);
  for (size_t k = 1; k < ranks.size(); ++k)
    acc += typed<T>(ranks[k], i);
  return acc;
}

std::vector<int> allRanks(int n) {
  std::vector<int> ranks;
  for (int r = 0; r < n; ++r)
    ranks.push_back(r);
  return ranks;
}

template <typename T> std::string text(T v) {
  char buffer[40];
  if constexpr (std::is_floating_point_v<T>)
    std::snprintf(buffer, sizeof buffer, "%.17g", static_cast<double>(v));
  else
    std::snprintf(buffer, sizeof buffer, "%lld", static_cast<long long>(v));
  return buffer;
}

template <typename T>
Result compare(const T *got, const std::vector<T> &want, const char *what) {
  for (size_t i = 0; i < want.size(); ++i)
    if (std::memcmp(&got[i], &want[i], sizeof(T)) != 0)
      return std::string(what) + ": element " + std::to_string(i) +
             " differs (got " + text(got[i]) + ", want " + text(want[i]) + ")";
  return "";
}

std::string message(const io::Status &s) { return s ? s->message : ""; }

/// The ranks of `comm` as seen by the world: inputs are keyed by world rank
/// so that sub-communicator results can be predicted too.
std::vector<int> worldOf(Communicator &comm) {
  std::vector<int> ranks;
  for (int r = 0; r < comm.size(); ++r)
    ranks.push_back(comm.worldRank(r));
  return ranks;
}

template <typename T> Result allReduce(Communicator &comm, int64_t count) {
  std::vector<int> ranks = worldOf(comm);
  std::vector<T> data = input<T>(ranks[comm.rank()], count);
  if (io::Status s = comm.allReduceSum(data.data(), count))
    return message(s);
  std::vector<T> want(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i)
    want[i] = orderedSum<T>(ranks, i);
  return compare(data.data(), want, "sum");
}

Result orderMatters(Communicator &comm) {
  // Guards the checks above: with these inputs another order would give
  // other bits, so a transport summing in another order would fail them.
  if (comm.size() < 3)
    return "";
  std::vector<int> forward = allRanks(comm.size()),
                   backward(forward.rbegin(), forward.rend());
  for (int64_t i = 0; i < 1000; ++i)
    if (orderedSum<float>(forward, i) != orderedSum<float>(backward, i))
      return "";
  return "the inputs do not tell summation orders apart";
}

template <typename T> Result reduceScatter(Communicator &comm, bool inPlace) {
  int n = comm.size(), me = comm.rank();
  std::vector<int64_t> counts;
  for (int r = 0; r < n; ++r)
    counts.push_back(std::vector<int64_t>{7, 0, 1234, 5}[r % 4] +
                     (r % 4 ? r : 0));
  std::vector<int64_t> offsets = offsetsOf(counts);
  int64_t total = offsets.back() + counts.back();
  std::vector<int> ranks = worldOf(comm);
  std::vector<T> in = input<T>(ranks[me], total);
  std::vector<T> out(static_cast<size_t>(counts[me]));
  T *target = inPlace ? in.data() + offsets[me] : out.data();
  if (io::Status s = comm.reduceScatterSum(in.data(), target, counts))
    return message(s);
  std::vector<T> want;
  for (int64_t i = 0; i < counts[me]; ++i)
    want.push_back(orderedSum<T>(ranks, offsets[me] + i));
  return compare(target, want, "shard");
}

template <typename T> Result allGather(Communicator &comm, bool inPlace) {
  int n = comm.size(), me = comm.rank();
  std::vector<int64_t> counts;
  for (int r = 0; r < n; ++r)
    counts.push_back((r * 37 % 5) * 11 + (r == 2 ? 1000 : 0)); // rank 0: none
  std::vector<int64_t> offsets = offsetsOf(counts);
  int64_t total = offsets.back() + counts.back();
  std::vector<int> ranks = worldOf(comm);
  std::vector<T> mine = input<T>(ranks[me] + 100, counts[me]);
  std::vector<T> out(static_cast<size_t>(total), T(-1));
  const T *in = mine.data();
  if (inPlace) {
    std::copy(mine.begin(), mine.end(), out.begin() + offsets[me]);
    in = out.data() + offsets[me];
  }
  if (io::Status s = comm.allGather(in, out.data(), counts))
    return message(s);
  std::vector<T> want;
  for (int r = 0; r < n; ++r)
    for (T v : input<T>(ranks[r] + 100, counts[r]))
      want.push_back(v);
  return compare(out.data(), want, "gathered");
}

/// Bytes rank s sends rank d in the all-to-all check: uneven, some zero, one
/// large pair.
int64_t pairBytes(int s, int d) {
  return ((s * 7 + d * 3) % 5) * 13 + (s == d ? 1 : 0) +
         (s == 1 && d == 0 ? (3 << 20) : 0);
}

unsigned char pairByte(int s, int d, int64_t i) {
  return static_cast<unsigned char>(s * 31 + d * 17 + i * 7);
}

Result allToAll(Communicator &comm) {
  int n = comm.size(), me = comm.rank();
  std::vector<int> ranks = worldOf(comm);
  std::vector<int64_t> sendBytes, recvBytes;
  std::vector<unsigned char> send;
  for (int d = 0; d < n; ++d) {
    sendBytes.push_back(pairBytes(ranks[me], ranks[d]));
    recvBytes.push_back(pairBytes(ranks[d], ranks[me]));
    for (int64_t i = 0; i < sendBytes.back(); ++i)
      send.push_back(pairByte(ranks[me], ranks[d], i));
  }
  std::vector<unsigned char> want;
  for (int s = 0; s < n; ++s)
    for (int64_t i = 0; i < recvBytes[s]; ++i)
      want.push_back(pairByte(ranks[s], ranks[me], i));
  std::vector<unsigned char> recv(want.size(), 0xee);
  if (io::Status s =
          comm.allToAllV(send.data(), sendBytes, recv.data(), recvBytes))
    return message(s);
  return compare(recv.data(), want, "received");
}

Result broadcast(Communicator &comm, int root, int64_t bytes) {
  std::vector<unsigned char> data(static_cast<size_t>(bytes));
  for (int64_t i = 0; i < bytes; ++i)
    data[i] = comm.rank() == root ? pairByte(root, 9, i) : 0x55;
  if (io::Status s = comm.broadcast(data.data(), bytes, root))
    return message(s);
  std::vector<unsigned char> want;
  for (int64_t i = 0; i < bytes; ++i)
    want.push_back(pairByte(root, 9, i));
  return compare(data.data(), want, "broadcast data");
}

Result barriers(Communicator &comm) {
  for (int i = 0; i < 3; ++i)
    if (io::Status s = comm.barrier())
      return message(s);
  return "";
}

/// Collectives on a sub-communicator, inputs keyed by world rank.
Result onGroup(Communicator &group, const char *name) {
  for (const Result &r :
       {allReduce<float>(group, 1001), allGather<double>(group, false),
        allToAll(group), reduceScatter<float>(group, false)})
    if (!r.empty())
      return std::string(name) + ": " + r;
  return "";
}

Result grid(Communicator &comm) {
  // The 2 x 2 (or 2 x n/2) grid of expert and data parallelism: EP groups
  // are consecutive ranks, DP groups strided.
  int n = comm.size(), me = comm.rank();
  if (n % 2 != 0)
    return "";
  auto ep = comm.split(me / 2, me);
  if (!ep.ok())
    return ep.error().message;
  auto dp = comm.split(me % 2, me);
  if (!dp.ok())
    return dp.error().message;
  Communicator &e = **ep, &d = **dp;
  if (e.size() != 2 || e.rank() != me % 2 || d.size() != n / 2 ||
      d.rank() != me / 2)
    return "wrong group sizes or ranks (ep " + std::to_string(e.rank()) + "/" +
           std::to_string(e.size()) + ", dp " + std::to_string(d.rank()) + "/" +
           std::to_string(d.size()) + ")";
  for (int r = 0; r < 2; ++r)
    if (e.worldRank(r) != comm.worldRank(me / 2 * 2 + r))
      return "wrong world ranks in the EP group";
  // Interleaved, as a training step would: EP, DP, EP, world.
  for (const Result &r : {onGroup(e, "ep"), onGroup(d, "dp"), onGroup(e, "ep"),
                          allReduce<float>(comm, 77)})
    if (!r.empty())
      return r;
  return "";
}

Result keyOrder(Communicator &comm) {
  // Keys order the new ranks: reversed keys, reversed ranks.
  auto reversed = comm.split(0, -comm.rank());
  if (!reversed.ok())
    return reversed.error().message;
  if ((*reversed)->rank() != comm.size() - 1 - comm.rank())
    return "rank " + std::to_string((*reversed)->rank()) +
           " in the reversed split";
  if (Result r = allReduce<float>(**reversed, 333); !r.empty())
    return "reversed: " + r;
  auto alone = comm.split(comm.rank(), 0);
  if (!alone.ok())
    return alone.error().message;
  if ((*alone)->size() != 1)
    return "a split with distinct colors made a group of " +
           std::to_string((*alone)->size());
  return allReduce<double>(**alone, 10);
}

Result planCheck(Communicator &comm) {
  int n = comm.size();
  if (io::Status s = checkSamePlan(comm, 0x1234))
    return "same plan refused: " + s->message;
  if (n < 2)
    return "";
  uint64_t hash = comm.rank() == n - 1 ? 0xbad : 0x1234;
  io::Status s = checkSamePlan(comm, hash);
  std::string want = "plan check: rank " + std::to_string(n - 1) +
                     " loaded a different plan (hash 0x0000000000000bad vs "
                     "rank 0's 0x0000000000001234)";
  if (message(s) != want)
    return "got '" + message(s) + "', want '" + want + "'";
  if (n >= 3) {
    hash = comm.rank() == 1 || comm.rank() == n - 1 ? 0xbad : 0x1234;
    s = checkSamePlan(comm, hash);
    if (message(s).find("2 ranks loaded a different plan than rank 0") ==
        std::string::npos)
      return "two differing ranks: got '" + message(s) + "'";
  }
  return "";
}
/// Around a ring: each rank sends three messages of other sizes to the next
/// rank, then receives the previous rank's, in order. On a communicator
/// without point-to-point messages (a TCP sub-communicator, self): a one-line
/// error, and the communicator stays usable.
Result pointToPoint(Communicator &comm) {
  int n = comm.size(), me = comm.rank();
  if (!comm.pointToPoint()) {
    float x = 0;
    io::Status s = comm.send(n > 1 ? (me + 1) % n : 0, 0, &x, sizeof(x));
    if (message(s).find("point-to-point messages need the MPI transport") ==
        std::string::npos)
      return "without MPI: got '" + message(s) + "'";
    return allReduce<float>(comm, 3);
  }
  if (n < 2)
    return "";
  const std::vector<int64_t> sizes = {0, 1, 3 << 20};
  auto value = [](int rank, size_t message, int64_t i) {
    return float(rank * 1000 + int(message) * 100) + float(i % 97);
  };
  for (size_t m = 0; m < sizes.size(); ++m) {
    std::vector<float> out(size_t(sizes[m]));
    for (int64_t i = 0; i < sizes[m]; ++i)
      out[size_t(i)] = value(me, m, i);
    // Tags 7 and 9: a receiver picks messages by tag, in order within one.
    if (io::Status s = comm.send((me + 1) % n, m == 1 ? 9 : 7, out.data(),
                                 sizes[m] * int64_t(sizeof(float))))
      return message(s);
  }
  int from = (me + n - 1) % n;
  // Tag 9's message first, then tag 7's two in their order.
  for (size_t m : {size_t(1), size_t(0), size_t(2)}) {
    std::vector<float> in(size_t(sizes[m]), -1.0f);
    if (io::Status s = comm.receive(from, m == 1 ? 9 : 7, in.data(),
                                    sizes[m] * int64_t(sizeof(float))))
      return message(s);
    for (int64_t i = 0; i < sizes[m]; ++i)
      if (in[size_t(i)] != value(from, m, i))
        return "message " + std::to_string(m) + " element " +
               std::to_string(i) + " is " + std::to_string(in[size_t(i)]);
  }
  if (io::Status s = comm.flushSends())
    return message(s);
  // Argument errors (the communicator stays usable after them).
  io::Status self = comm.send(me, 0, nullptr, 0);
  if (message(self).find("is not another rank") == std::string::npos)
    return "sending to itself: got '" + message(self) + "'";
  return "";
}
} // namespace

CheckReport runCollectiveChecks(Communicator &comm) {
  int n = comm.size();
  std::vector<std::pair<std::string, std::function<Result()>>> checks = {
      {"all-reduce f32 empty", [&] { return allReduce<float>(comm, 0); }},
      {"all-reduce f32 x1", [&] { return allReduce<float>(comm, 1); }},
      {"all-reduce f32 fewer than ranks",
       [&] { return allReduce<float>(comm, n - 1); }},
      {"all-reduce f32 x1000", [&] { return allReduce<float>(comm, 1000); }},
      {"all-reduce f32 x262147",
       [&] { return allReduce<float>(comm, 262147); }},
      {"all-reduce f64", [&] { return allReduce<double>(comm, 1003); }},
      {"all-reduce i64", [&] { return allReduce<int64_t>(comm, 1001); }},
      {"summation order observable", [&] { return orderMatters(comm); }},
      {"reduce-scatter f32", [&] { return reduceScatter<float>(comm, false); }},
      {"reduce-scatter f64",
       [&] { return reduceScatter<double>(comm, false); }},
      {"reduce-scatter i64",
       [&] { return reduceScatter<int64_t>(comm, false); }},
      {"reduce-scatter in place",
       [&] { return reduceScatter<float>(comm, true); }},
      {"all-gather f32 uneven", [&] { return allGather<float>(comm, false); }},
      {"all-gather f64 in place",
       [&] { return allGather<double>(comm, true); }},
      {"all-to-all-v uneven", [&] { return allToAll(comm); }},
      {"broadcast from 0", [&] { return broadcast(comm, 0, 1000); }},
      {"broadcast from last", [&] { return broadcast(comm, n - 1, 5 << 20); }},
      {"broadcast empty", [&] { return broadcast(comm, n / 2, 0); }},
      {"barrier", [&] { return barriers(comm); }},
      {"split into an EP x DP grid", [&] { return grid(comm); }},
      {"split by key, split alone", [&] { return keyOrder(comm); }},
      {"plan hash check", [&] { return planCheck(comm); }},
      {"point-to-point in order", [&] { return pointToPoint(comm); }},
  };
  CheckReport report;
  for (auto &[name, check] : checks) {
    Result failure = check();
    if (failure.empty()) {
      ++report.passed;
      continue;
    }
    report.failures.push_back(name + ": " + failure);
    // A communicator error leaves the ranks out of step: stop here.
    if (failure.rfind("rank ", 0) == 0)
      break;
  }
  return report;
}

} // namespace dsflow::dist::test
