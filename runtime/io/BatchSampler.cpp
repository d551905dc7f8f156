//===- BatchSampler.cpp - Training and evaluation batches -----------------===//
#include "io/BatchSampler.h"

#include <algorithm>
#include <sstream>

namespace dsflow::io {

static constexpr const char *kStateTag = "dsflow-sampler-v1";

static Status checkShape(const TokenData &data, TokenRange range,
                         int64_t batchSize, int64_t windowLength,
                         const char *what) {
  const std::string &source = data.source();
  if (batchSize < 1)
    return makeError(source, std::string(what) + ": batch size " +
                                 std::to_string(batchSize) + " is below 1");
  if (windowLength < 2)
    return makeError(source, std::string(what) + ": window length " +
                                 std::to_string(windowLength) +
                                 " is below 2 tokens");
  if (range.begin < 0 || range.end > data.size() || range.begin > range.end)
    return makeError(source, std::string(what) + ": token range [" +
                                 std::to_string(range.begin) + ", " +
                                 std::to_string(range.end) +
                                 ") is not inside the " +
                                 std::to_string(data.size()) + " tokens");
  if (range.size() < windowLength)
    return makeError(source, std::string(what) + ": token range of " +
                                 std::to_string(range.size()) +
                                 " tokens is shorter than one window of " +
                                 std::to_string(windowLength));
  return std::nullopt;
}

Expected<BatchSampler> BatchSampler::create(const TokenData &data,
                                            TokenRange range, int64_t batchSize,
                                            int64_t windowLength,
                                            uint64_t seed) {
  if (Status error =
          checkShape(data, range, batchSize, windowLength, "training batches"))
    return *error;
  BatchSampler sampler;
  sampler.data = &data;
  sampler.range = range;
  sampler.rows = batchSize;
  sampler.window = windowLength;
  sampler.engine.seed(seed);
  return sampler;
}

int64_t BatchSampler::nextStart() {
  uint64_t starts = static_cast<uint64_t>(range.size() - window + 1);
  // Values below 2^64 mod starts would favour small offsets: draw again.
  uint64_t threshold = (0 - starts) % starts;
  uint64_t value;
  do
    value = engine();
  while (value < threshold);
  return range.begin + static_cast<int64_t>(value % starts);
}

void BatchSampler::next(std::vector<int32_t> &out) {
  out.resize(static_cast<size_t>(rows * window));
  for (int64_t row = 0; row < rows; ++row)
    data->copy(nextStart(), window, out.data() + row * window);
  ++drawn;
}

std::string BatchSampler::saveState() const {
  std::ostringstream out;
  out << kStateTag << ' ' << range.begin << ' ' << range.end << ' ' << rows
      << ' ' << window << ' ' << drawn << ' ' << engine;
  return out.str();
}

Status BatchSampler::restoreState(const std::string &state) {
  std::string where = data->source() + ": sampler state";
  std::istringstream in(state);
  std::string tag;
  TokenRange savedRange;
  int64_t savedRows = 0, savedWindow = 0;
  uint64_t savedDrawn = 0;
  if (!(in >> tag) || tag != kStateTag)
    return makeError(where,
                     std::string("does not start with '") + kStateTag + "'");
  if (!(in >> savedRange.begin >> savedRange.end >> savedRows >> savedWindow >>
        savedDrawn))
    return makeError(where, "malformed counters");
  if (savedRange.begin != range.begin || savedRange.end != range.end ||
      savedRows != rows || savedWindow != window)
    return makeError(
        where, "saved for batch " + std::to_string(savedRows) + " x window " +
                   std::to_string(savedWindow) + " over tokens [" +
                   std::to_string(savedRange.begin) + ", " +
                   std::to_string(savedRange.end) + "), this sampler draws " +
                   std::to_string(rows) + " x " + std::to_string(window) +
                   " over [" + std::to_string(range.begin) + ", " +
                   std::to_string(range.end) + ")");
  std::mt19937_64 savedEngine;
  if (!(in >> savedEngine))
    return makeError(where, "malformed random engine state");
  in >> std::ws;
  if (!in.eof())
    return makeError(where, "unexpected text after the engine state");
  engine = savedEngine;
  drawn = savedDrawn;
  return std::nullopt;
}

Expected<EvalBatches> EvalBatches::create(const TokenData &data,
                                          TokenRange range, int64_t batchSize,
                                          int64_t windowLength) {
  if (Status error = checkShape(data, range, batchSize, windowLength,
                                "evaluation batches"))
    return *error;
  EvalBatches batches;
  batches.data = &data;
  batches.range = range;
  batches.rows = batchSize;
  batches.window = windowLength;
  batches.windows = range.size() / windowLength;
  return batches;
}

int64_t EvalBatches::batch(int64_t index, std::vector<int32_t> &out) const {
  if (index < 0 || index >= numBatches()) {
    out.clear();
    return 0;
  }
  int64_t first = index * rows;
  int64_t count = std::min(rows, windows - first);
  out.resize(static_cast<size_t>(count * window));
  for (int64_t row = 0; row < count; ++row)
    data->copy(range.begin + (first + row) * window, window,
               out.data() + row * window);
  return count;
}

} // namespace dsflow::io
