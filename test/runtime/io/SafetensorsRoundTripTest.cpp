//===- SafetensorsRoundTripTest.cpp - Writing and reading safetensors -----===//
#include "IoTestUtil.h"

#include "io/BFloat16.h"
#include "io/Safetensors.h"
#include "io/SafetensorsWriter.h"

#include <cmath>
#include <limits>

namespace dsflow::io {
namespace {

using test::readFile;
using test::TempDir;

std::vector<uint8_t> toBytes(const std::string &text) {
  return std::vector<uint8_t>(text.begin(), text.end());
}

std::string serialize(const std::vector<TensorRef> &tensors,
                      const Metadata &metadata = {}) {
  StringSink sink;
  Status error = writeSafetensors(sink, tensors, metadata, "mem");
  EXPECT_IO_OK(error);
  return sink.bytes();
}

TEST(SafetensorsRoundTrip, EveryWritableDType) {
  TempDir dir;
  std::vector<float> f32 = {1.5f, -2.0f, 3.25f, 0.0f, 1e-20f, 7.0f};
  std::vector<double> f64 = {3.141592653589793, -1e300};
  std::vector<BF16> bf16 = floatsToBf16({1.0f, -0.5f, 3.0f, 1e30f});
  std::vector<int32_t> i32 = {INT32_MIN, -1, 0, INT32_MAX};
  std::vector<int64_t> i64 = {INT64_MIN, 42, INT64_MAX};
  std::vector<uint8_t> u8 = {0, 255, 7};
  std::string path = dir.file("all.safetensors");
  Status error = saveSafetensors(path,
                                 {TensorRef::of("model.f32", {2, 3}, f32),
                                  TensorRef::of("model.f64", {2}, f64),
                                  TensorRef::of("model.bf16", {2, 2}, bf16),
                                  TensorRef::of("model.i32", {4}, i32),
                                  TensorRef::of("model.i64", {3, 1}, i64),
                                  TensorRef::of("model.u8", {3}, u8)},
                                 {{"format", "pt"}, {"note", "line one"}});
  EXPECT_IO_OK(error);

  Expected<SafetensorsFile> file = SafetensorsFile::load(path);
  ASSERT_TRUE(file) << file.error().message;
  EXPECT_EQ(file->tensors().size(), 6u);
  EXPECT_EQ(file->metadata().at("format"), "pt");
  EXPECT_EQ(file->metadata().at("note"), "line one");
  EXPECT_EQ(*file->read<float>("model.f32", {2, 3}), f32);
  EXPECT_EQ(*file->read<double>("model.f64", {2}), f64);
  Expected<std::vector<BF16>> bf = file->read<BF16>("model.bf16", {2, 2});
  ASSERT_TRUE(bf);
  for (size_t i = 0; i < bf16.size(); ++i)
    EXPECT_EQ((*bf)[i].bits, bf16[i].bits);
  EXPECT_EQ(*file->read<int32_t>("model.i32", {4}), i32);
  EXPECT_EQ(*file->read<int64_t>("model.i64", {3, 1}), i64);
  EXPECT_EQ(*file->read<uint8_t>("model.u8", {3}), u8);

  const TensorInfo *info = file->find("model.bf16");
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->dtype, DType::BF16);
  EXPECT_EQ(info->shape, (Shape{2, 2}));
  EXPECT_EQ(file->find("model.missing"), nullptr);
}

TEST(SafetensorsRoundTrip, Bf16SpecialValuesSurvive) {
  float inf = std::numeric_limits<float>::infinity();
  std::vector<float> values = {inf, -inf, std::nanf(""), 1.0f + 1.0f / 256,
                               -0.0f};
  std::vector<BF16> packed = floatsToBf16(values);
  std::string bytes = serialize({TensorRef::of("x", {5}, packed)});
  Expected<SafetensorsFile> file = SafetensorsFile::parse(toBytes(bytes), "m");
  ASSERT_TRUE(file) << file.error().message;
  Expected<std::vector<float>> back = file->readAsFloat("x", {5});
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ((*back)[0], inf);
  EXPECT_EQ((*back)[1], -inf);
  EXPECT_TRUE(std::isnan((*back)[2]));
  EXPECT_EQ((*back)[3], 1.0f) << "tie rounded to even";
  EXPECT_TRUE(std::signbit((*back)[4]));
}

TEST(SafetensorsRoundTrip, MatchesTheReferenceLayoutByteForByte) {
  // What the reference implementation (safetensors.torch.save_file) writes for
  // these tensors: data ordered I64, F32, BF16 (descending dtype), then by
  // name;
  // "__metadata__" first; compact JSON padded with spaces to 8 bytes.
  std::vector<float> b = {1.0f, 2.0f};
  std::vector<int64_t> a = {5};
  std::vector<BF16> c = floatsToBf16({1.0f, 2.0f, 3.0f});
  std::vector<float> d = {4.0f};
  std::string bytes =
      serialize({TensorRef::of("b", {2}, b), TensorRef::of("d", {1}, d),
                 TensorRef::of("c", {3}, c), TensorRef::of("a", {1}, a)},
                {{"format", "pt"}});
  std::string header =
      "{\"__metadata__\":{\"format\":\"pt\"},"
      "\"a\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]},"
      "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]},"
      "\"d\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[16,20]},"
      "\"c\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[20,26]}}";
  header.append((8 - header.size() % 8) % 8, ' ');
  ASSERT_GE(bytes.size(), 8 + header.size());
  uint64_t length = 0;
  for (int i = 7; i >= 0; --i)
    length = length << 8 | static_cast<uint8_t>(bytes[i]);
  EXPECT_EQ(length, header.size());
  EXPECT_EQ(bytes.substr(8, header.size()), header);
  EXPECT_EQ((8 + length) % 8, 0u) << "data region starts 8-byte aligned";
  EXPECT_EQ(bytes.size(), 8 + header.size() + 26);
  // The data region, little-endian: a, b, d, c.
  std::string data = bytes.substr(8 + header.size());
  EXPECT_EQ(static_cast<uint8_t>(data[0]), 5);
  float first;
  std::memcpy(&first, data.data() + 8, 4);
  EXPECT_EQ(first, 1.0f);
  EXPECT_EQ(static_cast<uint8_t>(data[20]), 0x80); // bf16 1.0 = 0x3F80
  EXPECT_EQ(static_cast<uint8_t>(data[21]), 0x3F);
}

TEST(SafetensorsRoundTrip, EmptyFileAndZeroSizedTensors) {
  Expected<SafetensorsFile> empty =
      SafetensorsFile::parse(toBytes(serialize({})), "empty");
  ASSERT_TRUE(empty) << empty.error().message;
  EXPECT_TRUE(empty->tensors().empty());

  std::vector<float> none;
  std::vector<float> one = {9.0f};
  Expected<SafetensorsFile> file = SafetensorsFile::parse(
      toBytes(serialize({TensorRef::of("z1", {0}, none),
                         TensorRef::of("z2", {3, 0}, none),
                         TensorRef::of("scalar", {}, one)})),
      "zeros");
  ASSERT_TRUE(file) << file.error().message;
  EXPECT_TRUE(file->read<float>("z2", {3, 0})->empty());
  EXPECT_EQ(*file->read<float>("scalar", {}), one);
}

TEST(SafetensorsRoundTrip, ProducerStreamsTheBytes) {
  std::vector<float> values = {1, 2, 3, 4};
  TensorRef ref;
  ref.name = "streamed";
  ref.dtype = DType::F32;
  ref.shape = {4};
  ref.byteSize = 16;
  ref.produce = [&](ByteSink &sink) -> Status {
    for (float v : values)
      if (Status error = sink.write(&v, sizeof(v)))
        return error;
    return std::nullopt;
  };
  Expected<SafetensorsFile> file =
      SafetensorsFile::parse(toBytes(serialize({ref})), "s");
  ASSERT_TRUE(file) << file.error().message;
  EXPECT_EQ(*file->read<float>("streamed", {4}), values);
}

TEST(SafetensorsLookup, ChecksDTypeAndShape) {
  std::vector<float> norm(32, 1.0f);
  Expected<SafetensorsFile> file = SafetensorsFile::parse(
      toBytes(serialize({TensorRef::of("model.norm.weight", {32}, norm)})),
      "ckpt/model.safetensors");
  ASSERT_TRUE(file);
  EXPECT_IO_ERROR(file->lookup("model.norm.weight", DType::F32, {64}),
                  "ckpt/model.safetensors: tensor 'model.norm.weight': "
                  "expected shape [64], got [32]");
  EXPECT_IO_ERROR(file->read<BF16>("model.norm.weight", {32}),
                  "tensor 'model.norm.weight': expected dtype BF16, got F32");
  EXPECT_IO_ERROR(file->read<float>("model.embed", {32}),
                  "ckpt/model.safetensors: no tensor 'model.embed'");
  EXPECT_IO_OK(file->lookup("model.norm.weight", DType::F32, {32}));
}

TEST(SafetensorsLookup, ReadAsFloatConvertsOrRefuses) {
  std::vector<double> f64 = {0.5, -8.0};
  std::vector<int32_t> i32 = {1, 2};
  Expected<SafetensorsFile> file =
      SafetensorsFile::parse(toBytes(serialize({TensorRef::of("d", {2}, f64),
                                                TensorRef::of("i", {2}, i32)})),
                             "f.safetensors");
  ASSERT_TRUE(file);
  EXPECT_EQ(*file->readAsFloat("d", {2}), (std::vector<float>{0.5f, -8.0f}));
  EXPECT_IO_ERROR(file->readAsFloat("i", {2}),
                  "tensor 'i': dtype I32 is not F32, BF16 or F64");
  EXPECT_IO_ERROR(file->readAsFloat("d", {3}), "expected shape [3], got [2]");
  EXPECT_IO_ERROR(file->readAsFloat("q", {3}), "no tensor 'q'");
}

TEST(SafetensorsWriter, RefusesBadTensors) {
  std::vector<float> four(4);
  StringSink sink;
  EXPECT_IO_ERROR(writeSafetensors(sink,
                                   {TensorRef::of("a", {4}, four),
                                    TensorRef::of("a", {2, 2}, four)},
                                   {}, "out.safetensors"),
                  "out.safetensors: duplicate tensor name 'a'");
  EXPECT_IO_ERROR(writeSafetensors(sink, {TensorRef::of("a", {5}, four)}, {},
                                   "out.safetensors"),
                  "tensor 'a': shape [5] of F32 needs 20 bytes, got 16");
  EXPECT_IO_ERROR(writeSafetensors(sink, {TensorRef::of("", {4}, four)}, {},
                                   "out.safetensors"),
                  "tensor with an empty name");
  EXPECT_IO_ERROR(writeSafetensors(sink,
                                   {TensorRef::of("__metadata__", {4}, four)},
                                   {}, "out.safetensors"),
                  "tensor name '__metadata__' is reserved");
  EXPECT_IO_ERROR(writeSafetensors(sink, {TensorRef::of("a", {-4}, four)}, {},
                                   "out.safetensors"),
                  "tensor 'a': invalid shape [-4]");
  EXPECT_IO_ERROR(writeSafetensors(sink, {TensorRef::of("bad\xff", {4}, four)},
                                   {}, "out.safetensors"),
                  "cannot encode the header");
  EXPECT_EQ(sink.bytesWritten(), 0u) << "nothing written before validation";

  TensorRef shortProducer;
  shortProducer.name = "p";
  shortProducer.shape = {4};
  shortProducer.byteSize = 16;
  shortProducer.produce = [](ByteSink &s) { return s.write("12345678", 8); };
  EXPECT_IO_ERROR(writeSafetensors(sink, {shortProducer}, {}, "o"),
                  "tensor 'p': producer wrote 8 bytes, expected 16");
}

TEST(SafetensorsWriter, FailedSaveLeavesTheOldFile) {
  TempDir dir;
  std::string path = dir.file("w.safetensors");
  std::vector<float> ok = {1, 2};
  ASSERT_FALSE(saveSafetensors(path, {TensorRef::of("w", {2}, ok)}));
  std::string before = readFile(path);
  EXPECT_IO_ERROR(saveSafetensors(path, {TensorRef::of("w", {3}, ok)}),
                  "needs 12 bytes, got 8");
  EXPECT_EQ(readFile(path), before);
  EXPECT_EQ(dir.list(), std::vector<std::string>{"w.safetensors"});
}

} // namespace
} // namespace dsflow::io
