//===- TokenData.cpp - Training data as a stream of token ids -------------===//
#include "io/TokenData.h"

#include "io/FileUtil.h"

#include <cmath>
#include <cstdio>

namespace dsflow::io {

const char *tokenFormatName(TokenFormat format) {
  switch (format) {
  case TokenFormat::Auto:
    return "auto";
  case TokenFormat::Bytes:
    return "bytes";
  case TokenFormat::U16:
    return "u16";
  case TokenFormat::U32:
    return "u32";
  }
  return "?";
}

std::optional<TokenFormat> parseTokenFormat(const std::string &name) {
  for (TokenFormat format : {TokenFormat::Auto, TokenFormat::Bytes,
                             TokenFormat::U16, TokenFormat::U32})
    if (name == tokenFormatName(format))
      return format;
  return std::nullopt;
}

static bool endsWith(const std::string &text, const std::string &suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

Expected<TokenFormat> tokenFormatForPath(const std::string &path) {
  if (endsWith(path, ".bin16"))
    return TokenFormat::U16;
  if (endsWith(path, ".bin32"))
    return TokenFormat::U32;
  if (endsWith(path, ".bin"))
    return makeError(path, "a .bin file may hold uint16 or uint32 ids: name "
                           "the format (u16 or u32) or rename it to .bin16 "
                           "or .bin32");
  return TokenFormat::Bytes;
}

static size_t tokenWidth(TokenFormat format) {
  switch (format) {
  case TokenFormat::U16:
    return 2;
  case TokenFormat::U32:
    return 4;
  default:
    return 1;
  }
}

static uint32_t decode(const uint8_t *p, size_t width) {
  switch (width) {
  case 2:
    return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8;
  case 4:
    return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
           static_cast<uint32_t>(p[2]) << 16 |
           static_cast<uint32_t>(p[3]) << 24;
  default:
    return p[0];
  }
}

Expected<TokenData> TokenData::load(const std::string &path,
                                    const TokenFileOptions &options) {
  TokenFileOptions resolved = options;
  if (resolved.format == TokenFormat::Auto) {
    Expected<TokenFormat> format = tokenFormatForPath(path);
    if (!format)
      return format.error();
    resolved.format = *format;
  }
  Expected<std::vector<uint8_t>> bytes = readWholeFile(path);
  if (!bytes)
    return bytes.error();
  return fromBytes(std::move(*bytes), path, resolved);
}

Expected<TokenData> TokenData::fromBytes(std::vector<uint8_t> bytes,
                                         const std::string &source,
                                         const TokenFileOptions &options) {
  TokenFormat format = options.format;
  if (format == TokenFormat::Auto) {
    Expected<TokenFormat> byPath = tokenFormatForPath(source);
    if (!byPath)
      return byPath.error();
    format = *byPath;
  }
  if (options.vocabSize < 1 || options.vocabSize > INT32_MAX)
    return makeError(source, "vocab_size " + std::to_string(options.vocabSize) +
                                 " is outside [1, 2147483647]");
  if (bytes.empty())
    return makeError(source, "file is empty: no tokens");
  size_t width = tokenWidth(format);
  if (bytes.size() % width != 0)
    return makeError(source, std::to_string(bytes.size()) +
                                 " bytes is not a multiple of " +
                                 std::to_string(width) + " (" +
                                 tokenFormatName(format) + " token ids)");
  int64_t count = static_cast<int64_t>(bytes.size() / width);
  uint64_t vocab = static_cast<uint64_t>(options.vocabSize);
  for (int64_t i = 0; i < count; ++i) {
    uint32_t id = decode(bytes.data() + i * width, width);
    if (id >= vocab)
      return makeError(
          source, "token id " + std::to_string(id) + " at position " +
                      std::to_string(i) + " (byte offset " +
                      std::to_string(i * width) + ") is not below vocab_size " +
                      std::to_string(vocab));
  }
  TokenData data;
  data.sourceName = source;
  data.bytes = std::move(bytes);
  data.fmt = format;
  data.vocab = options.vocabSize;
  data.count = count;
  return data;
}

int32_t TokenData::at(int64_t index) const {
  size_t width = tokenWidth(fmt);
  return static_cast<int32_t>(decode(bytes.data() + index * width, width));
}

void TokenData::copy(int64_t begin, int64_t length, int32_t *out) const {
  size_t width = tokenWidth(fmt);
  const uint8_t *p = bytes.data() + begin * width;
  for (int64_t i = 0; i < length; ++i, p += width)
    out[i] = static_cast<int32_t>(decode(p, width));
}

static std::string formatFraction(double value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%g", value);
  return text;
}

Expected<DataSplit> splitTokens(const TokenData &data, double valFraction,
                                int64_t windowLength) {
  const std::string &source = data.source();
  if (!(valFraction >= 0.0 && valFraction < 1.0))
    return makeError(source, "val_fraction " + formatFraction(valFraction) +
                                 " is outside [0, 1)");
  if (windowLength < 2)
    return makeError(source, "window length " + std::to_string(windowLength) +
                                 " is below 2 tokens");
  int64_t size = data.size();
  if (size < windowLength)
    return makeError(source, std::to_string(size) +
                                 " tokens, fewer than one window of " +
                                 std::to_string(windowLength));
  int64_t valSize =
      static_cast<int64_t>(std::floor(static_cast<double>(size) * valFraction));
  DataSplit split;
  split.train = {0, size - valSize};
  split.validation = {size - valSize, size};
  if (split.train.size() < windowLength)
    return makeError(source, "the training split holds " +
                                 std::to_string(split.train.size()) +
                                 " tokens, fewer than one window of " +
                                 std::to_string(windowLength) +
                                 " (val_fraction " +
                                 formatFraction(valFraction) + ")");
  if (valFraction > 0 && split.validation.size() < windowLength)
    return makeError(source, "the validation split holds " +
                                 std::to_string(split.validation.size()) +
                                 " tokens, fewer than one window of " +
                                 std::to_string(windowLength) +
                                 " (val_fraction " +
                                 formatFraction(valFraction) + ")");
  return split;
}

} // namespace dsflow::io
