//===- BatchSampler.h - Training and evaluation batches ---------*- C++ -*-===//
//
// A batch is B windows of W consecutive token ids (W = seq_len + mtp_depth +
// 1), as int32 [B, W] row-major.
//
// BatchSampler draws training windows at uniformly random starts in its range,
// from a std::mt19937_64 seeded with `seed`. The mapping from the engine's
// output to a start is dsflow's own (unbiased rejection), not the standard
// library's distributions, so batches are identical on every platform.
// saveState() and restoreState() capture the engine and counters as text for
// bitwise resume.
//
// EvalBatches walks its range in non-overlapping windows (starts begin,
// begin + W, ...; the tail shorter than W is unused), B windows per batch; the
// last batch may hold fewer rows.
//
// Both keep a pointer to the TokenData, which must outlive them.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_IO_BATCHSAMPLER_H
#define DSFLOW_IO_BATCHSAMPLER_H

#include "io/TokenData.h"

#include <random>

namespace dsflow::io {

class BatchSampler {
public:
  static Expected<BatchSampler> create(const TokenData &data, TokenRange range,
                                       int64_t batchSize, int64_t windowLength,
                                       uint64_t seed);

  int64_t batchSize() const { return rows; }
  int64_t windowLength() const { return window; }
  /// How many batches were drawn since the seed.
  uint64_t batchesDrawn() const { return drawn; }

  /// The next batch, [batchSize, windowLength] row-major; `out` is resized.
  void next(std::vector<int32_t> &out);
  /// The start position of the next window (advances the engine).
  int64_t nextStart();

  /// The sampler's position as one line of text.
  std::string saveState() const;
  /// Restores a position saveState() produced for the same data range, batch
  /// size and window length; on error the sampler is unchanged.
  Status restoreState(const std::string &state);

private:
  const TokenData *data = nullptr;
  TokenRange range;
  int64_t rows = 0;
  int64_t window = 0;
  uint64_t drawn = 0;
  std::mt19937_64 engine;
};

class EvalBatches {
public:
  static Expected<EvalBatches> create(const TokenData &data, TokenRange range,
                                      int64_t batchSize, int64_t windowLength);

  int64_t numWindows() const { return windows; }
  int64_t numBatches() const { return (windows + rows - 1) / rows; }
  /// Fills `out` with batch `index` (0 <= index < numBatches()) and returns its
  /// row count; an index out of range yields 0 rows.
  int64_t batch(int64_t index, std::vector<int32_t> &out) const;

private:
  const TokenData *data = nullptr;
  TokenRange range;
  int64_t rows = 0;
  int64_t window = 0;
  int64_t windows = 0;
};

} // namespace dsflow::io

#endif // DSFLOW_IO_BATCHSAMPLER_H
