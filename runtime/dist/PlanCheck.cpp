//===- PlanCheck.cpp - Do all ranks run the same plan? --------------------===//
#include "dist/PlanCheck.h"

#include <cstdio>

namespace dsflow::dist {

static std::string hex(uint64_t value) {
  char text[24];
  std::snprintf(text, sizeof text, "0x%016llx",
                static_cast<unsigned long long>(value));
  return text;
}

io::Status checkSamePlan(Communicator &comm, uint64_t planHash,
                         const std::string &what) {
  int n = comm.size();
  std::vector<uint64_t> hashes(static_cast<size_t>(n));
  if (io::Status s = comm.allGatherBytes(&planHash, hashes.data(),
                                         std::vector<int64_t>(n, 8)))
    return s;
  std::vector<int> differ;
  for (int r = 1; r < n; ++r)
    if (hashes[r] != hashes[0])
      differ.push_back(r);
  if (differ.empty())
    return std::nullopt;
  std::string rank0 = "rank " + std::to_string(comm.worldRank(0));
  if (differ.size() == 1) {
    int r = differ[0];
    return io::makeError(what + " check",
                         "rank " + std::to_string(comm.worldRank(r)) +
                             " loaded a different " + what + " (hash " +
                             hex(hashes[r]) + " vs " + rank0 + "'s " +
                             hex(hashes[0]) + ")");
  }
  // Name a few; the count says how many.
  std::string list;
  for (size_t i = 0; i < differ.size() && i < 8; ++i)
    list += (i ? ", rank " : "rank ") +
            std::to_string(comm.worldRank(differ[i])) + " " +
            hex(hashes[differ[i]]);
  if (differ.size() > 8)
    list += ", ...";
  return io::makeError(what + " check",
                       std::to_string(differ.size()) +
                           " ranks loaded a different " + what + " than " +
                           rank0 + " (hash " + hex(hashes[0]) + "): " + list);
}

} // namespace dsflow::dist
