//===- SafetensorsReaderTest.cpp - One test per malformed-file rule -------===//
//
// Each test hands the reader a file broken in one way and checks the one-line
// error names the file and the problem.
//
//===----------------------------------------------------------------------===//
#include "IoTestUtil.h"

#include "io/Safetensors.h"

namespace dsflow::io {
namespace {

const char *kName = "ckpt/step-100.safetensors";

/// A file: 8-byte little-endian length of `header`, `header`, `data`.
std::vector<uint8_t> fileWith(const std::string &header,
                              const std::string &data,
                              uint64_t length = UINT64_MAX) {
  if (length == UINT64_MAX)
    length = header.size();
  std::vector<uint8_t> bytes;
  for (int i = 0; i < 8; ++i)
    bytes.push_back(static_cast<uint8_t>(length >> (8 * i)));
  bytes.insert(bytes.end(), header.begin(), header.end());
  bytes.insert(bytes.end(), data.begin(), data.end());
  return bytes;
}

Expected<SafetensorsFile> parse(const std::string &header,
                                const std::string &data) {
  return SafetensorsFile::parse(fileWith(header, data), kName);
}

std::string f32(const std::string &shape, int begin, int end) {
  return "{\"dtype\":\"F32\",\"shape\":" + shape + ",\"data_offsets\":[" +
         std::to_string(begin) + "," + std::to_string(end) + "]}";
}

TEST(SafetensorsReader, AcceptsAValidFile) {
  Expected<SafetensorsFile> file =
      parse("{\"a\":" + f32("[2]", 0, 8) + ",\"b\":" + f32("[1]", 8, 12) +
                ",\"__metadata__\":{\"k\":\"v\"}}  ",
            std::string(12, '\0'));
  ASSERT_TRUE(file) << file.error().message;
  EXPECT_EQ(file->tensors().size(), 2u);
  EXPECT_EQ(file->metadata().at("k"), "v");
  EXPECT_EQ(file->source(), kName);
}

TEST(SafetensorsReader, FileShorterThanTheLengthField) {
  EXPECT_IO_ERROR(SafetensorsFile::parse({1, 2, 3, 4, 5}, kName),
                  "ckpt/step-100.safetensors: file is 5 bytes, too short for "
                  "the 8-byte header length");
  EXPECT_IO_ERROR(SafetensorsFile::parse({}, kName), "file is 0 bytes");
}

TEST(SafetensorsReader, HeaderLengthBeyondTheFile) {
  EXPECT_IO_ERROR(
      SafetensorsFile::parse(fileWith("{}", "", 9999999), kName),
      "ckpt/step-100.safetensors: header length 9999999 exceeds file size 10");
}

TEST(SafetensorsReader, HeaderLengthBeyondTheLimit) {
  EXPECT_IO_ERROR(SafetensorsFile::parse(fileWith("{}", "", 200000000), kName),
                  "header length 200000000 exceeds the limit of 100000000");
}

TEST(SafetensorsReader, HeaderNotJson) {
  EXPECT_IO_ERROR(parse("{\"a\": nope}", ""), "header is not valid JSON");
  EXPECT_IO_ERROR(parse("", ""), "header is not valid JSON");
  // Padding must be spaces; anything after the object is garbage.
  EXPECT_IO_ERROR(parse(std::string("{}") + '\0', ""),
                  "header is not valid JSON: it holds a NUL byte");
  EXPECT_IO_ERROR(parse(std::string("{}") + '\0' + "junk", ""),
                  "it holds a NUL byte");
  // A line break in the header text stays out of the one-line message.
  EXPECT_IO_ERROR(parse("{\n\"a\"\n: x\n}", ""), "header is not valid JSON");
}

TEST(SafetensorsReader, HeaderNotAnObject) {
  EXPECT_IO_ERROR(parse("[1, 2]", ""),
                  "ckpt/step-100.safetensors: header is not a JSON object");
  EXPECT_IO_ERROR(parse("\"text\"", ""), "header is not a JSON object");
}

TEST(SafetensorsReader, UnknownDType) {
  EXPECT_IO_ERROR(
      parse("{\"w\":{\"dtype\":\"F128\",\"shape\":[1],\"data_offsets\":[0,"
            "16]}}",
            std::string(16, '\0')),
      "tensor 'w': unknown dtype 'F128'");
}

TEST(SafetensorsReader, MissingOrMistypedFields) {
  EXPECT_IO_ERROR(parse("{\"w\":[1]}", ""), "tensor 'w': entry is not a JSON "
                                            "object");
  EXPECT_IO_ERROR(parse("{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}",
                        std::string(4, '\0')),
                  "tensor 'w': missing string field 'dtype'");
  EXPECT_IO_ERROR(parse("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}",
                        std::string(4, '\0')),
                  "tensor 'w': missing array field 'shape'");
  EXPECT_IO_ERROR(
      parse("{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", std::string(4, '\0')),
      "tensor 'w': 'data_offsets' is not a pair of non-negative "
      "integers");
  EXPECT_IO_ERROR(
      parse("{\"w\":" + f32("[-1]", 0, 4) + "}", std::string(4, '\0')),
      "tensor 'w': shape [-1] is not a list of non-negative "
      "integers");
  EXPECT_IO_ERROR(
      parse("{\"w\":" + f32("[1.5]", 0, 4) + "}", std::string(4, '\0')),
      "is not a list of non-negative integers");
  EXPECT_IO_ERROR(
      parse("{\"w\":" + f32("[1]", 4, 0) + "}", std::string(4, '\0')),
      "tensor 'w': data_offsets [4, 0] end before they begin");
}

TEST(SafetensorsReader, ShapeInconsistentWithOffsets) {
  EXPECT_IO_ERROR(
      parse("{\"w\":" + f32("[2]", 0, 4) + "}", std::string(4, '\0')),
      "tensor 'w': shape [2] of F32 needs 8 bytes but "
      "data_offsets [0, 4] hold 4");
  EXPECT_IO_ERROR(
      parse("{\"w\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,"
            "8]}}",
            std::string(8, '\0')),
      "shape [3] of BF16 needs 6 bytes");
}

TEST(SafetensorsReader, ShapeTooLarge) {
  EXPECT_IO_ERROR(
      parse("{\"w\":" + f32("[4294967296, 4294967296, 4294967296]", 0, 4) + "}",
            std::string(4, '\0')),
      "tensor 'w': shape [4294967296, 4294967296, 4294967296] is "
      "too large");
}

TEST(SafetensorsReader, OverlappingOffsets) {
  EXPECT_IO_ERROR(
      parse("{\"a\":" + f32("[2]", 0, 8) + ",\"b\":" + f32("[2]", 4, 12) + "}",
            std::string(12, '\0')),
      "tensors 'a' and 'b' overlap in the data region");
}

TEST(SafetensorsReader, GapBetweenTensors) {
  EXPECT_IO_ERROR(
      parse("{\"a\":" + f32("[1]", 0, 4) + ",\"b\":" + f32("[1]", 8, 12) + "}",
            std::string(12, '\0')),
      "bytes [4, 8) of the data region belong to no tensor");
}

TEST(SafetensorsReader, OffsetsOutOfRange) {
  EXPECT_IO_ERROR(
      parse("{\"a\":" + f32("[4]", 0, 16) + "}", std::string(8, '\0')),
      "tensor 'a': data_offsets [0, 16] exceed the data region of "
      "8 bytes");
}

TEST(SafetensorsReader, DataRegionSizeMismatch) {
  EXPECT_IO_ERROR(
      parse("{\"a\":" + f32("[2]", 0, 8) + "}", std::string(12, '\0')),
      "data region is 12 bytes but the tensors cover 8");
  EXPECT_IO_ERROR(parse("{}", std::string(3, '\0')),
                  "data region is 3 bytes but the tensors cover 0");
}

TEST(SafetensorsReader, DuplicateNames) {
  EXPECT_IO_ERROR(
      parse("{\"a\":" + f32("[1]", 0, 4) + ",\"a\":" + f32("[1]", 4, 8) + "}",
            std::string(8, '\0')),
      "ckpt/step-100.safetensors: duplicate tensor name 'a'");
  EXPECT_IO_ERROR(parse("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\","
                        "\"shape\":[1],\"data_offsets\":[0,4]}}",
                        std::string(4, '\0')),
                  "duplicate key 'dtype' in the header");
}

TEST(SafetensorsReader, MetadataMustMapStringsToStrings) {
  EXPECT_IO_ERROR(parse("{\"__metadata__\":{\"k\":1}}", ""),
                  "__metadata__ value of 'k' is not a string");
  EXPECT_IO_ERROR(parse("{\"__metadata__\":[]}", ""),
                  "__metadata__ is not a JSON object");
}

TEST(SafetensorsReader, MissingFileOnDisk) {
  EXPECT_IO_ERROR(SafetensorsFile::load("/nonexistent/x.safetensors"),
                  "/nonexistent/x.safetensors: cannot open");
  test::TempDir dir;
  EXPECT_IO_ERROR(SafetensorsFile::load(dir.path()), "not a regular file");
}

} // namespace
} // namespace dsflow::io
