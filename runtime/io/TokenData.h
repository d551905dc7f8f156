//===- TokenData.h - Training data as a stream of token ids -----*- C++ -*-===//
//
// A training data file is one stream of token ids, in one of three formats:
//
//   bytes  any file (e.g. text): each byte is one token, vocab_size 256. The
//          default, and what Tiny Shakespeare trains on.
//   u16    raw little-endian uint16 ids, no header: what nanoGPT-style prepare
//          scripts write (np.uint16 arrays, vocabularies up to 65536).
//   u32    raw little-endian uint32 ids, no header, for larger vocabularies.
//
// TokenFormat::Auto picks by extension: ".bin16" is u16, ".bin32" is u32,
// ".bin" is refused as ambiguous (nanoGPT's train.bin is u16, other tools write
// u32: name the format), anything else is bytes. Every id is checked to be
// below vocab_size when the file is loaded; the first bad one is reported with
// its position. The whole file is read into memory and decoded on access.
//
// The stream splits deterministically: the last floor(size * val_fraction)
// tokens are the held-out validation split, the rest is the training split.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_IO_TOKENDATA_H
#define DSFLOW_IO_TOKENDATA_H

#include "io/Status.h"

#include <cstdint>
#include <string>
#include <vector>

namespace dsflow::io {

enum class TokenFormat { Auto, Bytes, U16, U32 };

/// "auto", "bytes", "u16", "u32".
const char *tokenFormatName(TokenFormat format);
/// The format named `name` (as tokenFormatName spells it); nullopt if none.
std::optional<TokenFormat> parseTokenFormat(const std::string &name);
/// The format Auto means for `path` (see above).
Expected<TokenFormat> tokenFormatForPath(const std::string &path);

struct TokenFileOptions {
  TokenFormat format = TokenFormat::Auto;
  int64_t vocabSize = 256;
};

/// A half-open range [begin, end) of token positions.
struct TokenRange {
  int64_t begin = 0;
  int64_t end = 0;
  int64_t size() const { return end - begin; }
};

/// A validated stream of token ids.
class TokenData {
public:
  /// Reads and validates the file at `path`.
  static Expected<TokenData> load(const std::string &path,
                                  const TokenFileOptions &options = {});
  /// Validates `bytes` (the content of a file called `sourceName`).
  static Expected<TokenData> fromBytes(std::vector<uint8_t> bytes,
                                       const std::string &sourceName,
                                       const TokenFileOptions &options = {});

  const std::string &source() const { return sourceName; }
  /// The resolved format (never Auto).
  TokenFormat format() const { return fmt; }
  int64_t vocabSize() const { return vocab; }
  int64_t size() const { return count; }

  /// The id at position `index` (0 <= index < size()).
  int32_t at(int64_t index) const;
  /// Copies `length` ids starting at `begin` (a range inside the stream).
  void copy(int64_t begin, int64_t length, int32_t *out) const;

private:
  std::string sourceName;
  std::vector<uint8_t> bytes;
  TokenFormat fmt = TokenFormat::Bytes;
  int64_t vocab = 256;
  int64_t count = 0;
};

/// The training and validation splits of a stream.
struct DataSplit {
  TokenRange train;
  TokenRange validation; ///< Empty when valFraction is 0.
};

/// Splits `data`: validation is the last floor(size * valFraction) tokens
/// (0 <= valFraction < 1). The training split, and the validation split when
/// valFraction > 0, must each hold one window of `windowLength` tokens.
Expected<DataSplit> splitTokens(const TokenData &data, double valFraction,
                                int64_t windowLength);

} // namespace dsflow::io

#endif // DSFLOW_IO_TOKENDATA_H
