//===- TokenDataTest.cpp - Token files, formats, validation, splits -------===//
#include "IoTestUtil.h"

#include "io/TokenData.h"

#include <cmath>

namespace dsflow::io {
namespace {

using test::TempDir;
using test::writeFile;

std::string u16File(const std::vector<uint16_t> &ids) {
  std::string bytes;
  for (uint16_t id : ids) {
    bytes += static_cast<char>(id & 0xFF);
    bytes += static_cast<char>(id >> 8);
  }
  return bytes;
}

std::string u32File(const std::vector<uint32_t> &ids) {
  std::string bytes;
  for (uint32_t id : ids)
    for (int shift = 0; shift < 32; shift += 8)
      bytes += static_cast<char>((id >> shift) & 0xFF);
  return bytes;
}

std::vector<int32_t> allTokens(const TokenData &data) {
  std::vector<int32_t> out(static_cast<size_t>(data.size()));
  data.copy(0, data.size(), out.data());
  return out;
}

TEST(TokenData, TextIsOneTokenPerByte) {
  TempDir dir;
  writeFile(dir.file("tiny.txt"), "Hi!\n\xC3\xA9");
  Expected<TokenData> data = TokenData::load(dir.file("tiny.txt"));
  ASSERT_TRUE(data) << data.error().message;
  EXPECT_EQ(data->format(), TokenFormat::Bytes);
  EXPECT_EQ(data->vocabSize(), 256);
  EXPECT_EQ(allTokens(*data),
            (std::vector<int32_t>{'H', 'i', '!', '\n', 0xC3, 0xA9}));
  EXPECT_EQ(data->at(4), 0xC3);
}

TEST(TokenData, TinyShakespeare) {
  std::string path = std::string(DSFLOW_MODELS_DIR) + "/tinyshakespeare.txt";
  Expected<TokenData> data = TokenData::load(path);
  ASSERT_TRUE(data) << data.error().message;
  EXPECT_EQ(data->size(), 1115394);
  EXPECT_EQ(data->at(0), 'F'); // "First Citizen:"
  Expected<DataSplit> split = splitTokens(*data, 0.1, 256 + 1 + 1);
  ASSERT_TRUE(split) << split.error().message;
  EXPECT_EQ(split->validation.size(), 111539);
  EXPECT_EQ(split->train.end, 1115394 - 111539);
}

TEST(TokenData, Uint16FilesByExtension) {
  TempDir dir;
  std::vector<uint16_t> ids = {0, 1, 50256, 65535, 258};
  writeFile(dir.file("train.bin16"), u16File(ids));
  Expected<TokenData> data =
      TokenData::load(dir.file("train.bin16"), {TokenFormat::Auto, 65536});
  ASSERT_TRUE(data) << data.error().message;
  EXPECT_EQ(data->format(), TokenFormat::U16);
  EXPECT_EQ(allTokens(*data), (std::vector<int32_t>{0, 1, 50256, 65535, 258}));
}

TEST(TokenData, Uint32FilesByExtension) {
  TempDir dir;
  std::vector<uint32_t> ids = {7, 129279, 100000, 0};
  writeFile(dir.file("train.bin32"), u32File(ids));
  Expected<TokenData> data =
      TokenData::load(dir.file("train.bin32"), {TokenFormat::Auto, 129280});
  ASSERT_TRUE(data) << data.error().message;
  EXPECT_EQ(data->format(), TokenFormat::U32);
  EXPECT_EQ(allTokens(*data), (std::vector<int32_t>{7, 129279, 100000, 0}));
}

TEST(TokenData, ExplicitFormatOverridesTheExtension) {
  TempDir dir;
  writeFile(dir.file("train.bin"), u16File({300, 2}));
  Expected<TokenData> data =
      TokenData::load(dir.file("train.bin"), {TokenFormat::U16, 1000});
  ASSERT_TRUE(data) << data.error().message;
  EXPECT_EQ(allTokens(*data), (std::vector<int32_t>{300, 2}));
  Expected<TokenData> asU32 =
      TokenData::load(dir.file("train.bin"), {TokenFormat::U32, 1 << 20});
  ASSERT_TRUE(asU32);
  EXPECT_EQ(asU32->at(0), 300 | 2 << 16);
}

TEST(TokenData, PlainBinIsAmbiguous) {
  TempDir dir;
  writeFile(dir.file("train.bin"), u16File({1, 2}));
  EXPECT_IO_ERROR(
      TokenData::load(dir.file("train.bin"), {TokenFormat::Auto, 1000}),
      "train.bin: a .bin file may hold uint16 or uint32 ids");
}

TEST(TokenData, EmptyFile) {
  TempDir dir;
  writeFile(dir.file("empty.txt"), "");
  EXPECT_IO_ERROR(TokenData::load(dir.file("empty.txt")),
                  "empty.txt: file is empty: no tokens");
}

TEST(TokenData, OddByteCountForUint16) {
  EXPECT_IO_ERROR(TokenData::fromBytes(std::vector<uint8_t>(1001, 0),
                                       "data/train.bin16",
                                       {TokenFormat::Auto, 1000}),
                  "data/train.bin16: 1001 bytes is not a multiple of 2 (u16 "
                  "token ids)");
  EXPECT_IO_ERROR(TokenData::fromBytes(std::vector<uint8_t>(6, 0),
                                       "train.bin32",
                                       {TokenFormat::Auto, 1000}),
                  "6 bytes is not a multiple of 4 (u32 token ids)");
}

TEST(TokenData, IdAtOrAboveTheVocabulary) {
  std::string bytes = u16File({1, 2, 999, 1000, 5000});
  EXPECT_IO_ERROR(
      TokenData::fromBytes(std::vector<uint8_t>(bytes.begin(), bytes.end()),
                           "val.bin16", {TokenFormat::Auto, 1000}),
      "val.bin16: token id 1000 at position 3 (byte offset 6) is not below "
      "vocab_size 1000");
  EXPECT_IO_ERROR(TokenData::fromBytes({'a', 'b', 200}, "text.txt",
                                       {TokenFormat::Bytes, 128}),
                  "text.txt: token id 200 at position 2 (byte offset 2)");
  std::string big = u32File({5, 0xFFFFFFFFu});
  EXPECT_IO_ERROR(
      TokenData::fromBytes(std::vector<uint8_t>(big.begin(), big.end()),
                           "x.bin32", {TokenFormat::Auto, INT32_MAX}),
      "token id 4294967295 at position 1 (byte offset 4)");
}

TEST(TokenData, InvalidVocabularySize) {
  EXPECT_IO_ERROR(TokenData::fromBytes({1}, "t.txt", {TokenFormat::Bytes, 0}),
                  "t.txt: vocab_size 0 is outside [1, 2147483647]");
  EXPECT_IO_ERROR(
      TokenData::fromBytes({1}, "t.txt", {TokenFormat::Bytes, 1ll << 32}),
      "vocab_size 4294967296 is outside");
}

TEST(TokenData, MissingFile) {
  EXPECT_IO_ERROR(TokenData::load("/nonexistent/input.txt"),
                  "/nonexistent/input.txt: cannot open");
}

TEST(TokenData, FormatNames) {
  for (TokenFormat format : {TokenFormat::Auto, TokenFormat::Bytes,
                             TokenFormat::U16, TokenFormat::U32})
    EXPECT_EQ(parseTokenFormat(tokenFormatName(format)), format);
  EXPECT_EQ(parseTokenFormat("uint16"), std::nullopt);
  EXPECT_EQ(*tokenFormatForPath("a/b.txt"), TokenFormat::Bytes);
  EXPECT_EQ(*tokenFormatForPath("a/b.bin16"), TokenFormat::U16);
}

Expected<TokenData> counting(int64_t count) {
  std::vector<uint8_t> bytes(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i)
    bytes[i] = static_cast<uint8_t>(i % 256);
  return TokenData::fromBytes(std::move(bytes), "input.txt");
}

TEST(TokenSplit, LastFractionIsValidation) {
  Expected<TokenData> data = counting(1000);
  ASSERT_TRUE(data);
  Expected<DataSplit> split = splitTokens(*data, 0.1, 17);
  ASSERT_TRUE(split) << split.error().message;
  EXPECT_EQ(split->train.begin, 0);
  EXPECT_EQ(split->train.end, 900);
  EXPECT_EQ(split->validation.begin, 900);
  EXPECT_EQ(split->validation.end, 1000);
  // Rounding down: 1005 * 0.1 = 100.5 -> 100 validation tokens.
  Expected<TokenData> odd = counting(1005);
  EXPECT_EQ(splitTokens(*odd, 0.1, 17)->validation.size(), 100);
  Expected<DataSplit> none = splitTokens(*data, 0.0, 17);
  ASSERT_TRUE(none);
  EXPECT_EQ(none->train.size(), 1000);
  EXPECT_EQ(none->validation.size(), 0);
}

TEST(TokenSplit, FileShorterThanOneWindow) {
  Expected<TokenData> data = counting(10);
  EXPECT_IO_ERROR(splitTokens(*data, 0.1, 17),
                  "input.txt: 10 tokens, fewer than one window of 17");
}

TEST(TokenSplit, SplitsShorterThanOneWindow) {
  Expected<TokenData> data = counting(100);
  EXPECT_IO_ERROR(splitTokens(*data, 0.1, 17),
                  "input.txt: the validation split holds 10 tokens, fewer "
                  "than one window of 17 (val_fraction 0.1)");
  EXPECT_IO_ERROR(splitTokens(*data, 0.9, 17),
                  "the training split holds 10 tokens, fewer than one window "
                  "of 17 (val_fraction 0.9)");
}

TEST(TokenSplit, BadArguments) {
  Expected<TokenData> data = counting(100);
  EXPECT_IO_ERROR(splitTokens(*data, 1.0, 17), "val_fraction 1 is outside "
                                               "[0, 1)");
  EXPECT_IO_ERROR(splitTokens(*data, -0.1, 17), "val_fraction -0.1");
  EXPECT_IO_ERROR(splitTokens(*data, std::nan(""), 17), "val_fraction nan");
  EXPECT_IO_ERROR(splitTokens(*data, 0.1, 1), "window length 1 is below 2");
}

} // namespace
} // namespace dsflow::io
