//===- Safetensors.cpp - Reading and validating safetensors files ---------===//
#include "io/Safetensors.h"

#include "io/BFloat16.h"
#include "io/FileUtil.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <set>

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors data is little-endian; big-endian hosts need "
              "byte swapping here");

using nlohmann::json;

namespace dsflow::io {

std::string formatShape(const Shape &shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

std::optional<uint64_t> elementCount(const Shape &shape) {
  uint64_t count = 1;
  for (int64_t dim : shape) {
    if (dim < 0 ||
        __builtin_mul_overflow(count, static_cast<uint64_t>(dim), &count))
      return std::nullopt;
  }
  return count;
}

static std::string inQuotes(const std::string &name) {
  return "'" + name + "'";
}

/// Parses the header text, refusing duplicate keys in any object.
static Expected<json> parseHeaderJson(const std::string &text,
                                      const std::string &source) {
  std::vector<std::set<std::string>> openObjects;
  std::optional<std::string> duplicate;
  bool duplicateIsTensor = false;
  json::parser_callback_t callback = [&](int depth, json::parse_event_t event,
                                         json &parsed) {
    if (event == json::parse_event_t::object_start) {
      openObjects.emplace_back();
    } else if (event == json::parse_event_t::object_end) {
      if (!openObjects.empty())
        openObjects.pop_back();
    } else if (event == json::parse_event_t::key && !openObjects.empty() &&
               parsed.is_string()) {
      std::string key = parsed.get<std::string>();
      if (!openObjects.back().insert(key).second && !duplicate) {
        duplicate = key;
        duplicateIsTensor = depth == 1;
      }
    }
    return true;
  };
  json header;
  try {
    header = json::parse(text, callback);
  } catch (const json::exception &e) {
    return makeError(source,
                     std::string("header is not valid JSON: ") + e.what());
  }
  if (duplicate)
    return makeError(source,
                     duplicateIsTensor
                         ? "duplicate tensor name " + inQuotes(*duplicate)
                         : "duplicate key " + inQuotes(*duplicate) +
                               " in the header");
  return header;
}

static Status parseMetadata(const json &value, const std::string &source,
                            Metadata &meta) {
  if (!value.is_object())
    return makeError(source, "__metadata__ is not a JSON object");
  for (const auto &[key, item] : value.items()) {
    if (!item.is_string())
      return makeError(source, "__metadata__ value of " + inQuotes(key) +
                                   " is not a string");
    meta[key] = item.get<std::string>();
  }
  return std::nullopt;
}

static Expected<TensorInfo> parseTensorInfo(const std::string &name,
                                            const json &value,
                                            const std::string &source) {
  std::string where = "tensor " + inQuotes(name) + ": ";
  if (!value.is_object())
    return makeError(source, where + "entry is not a JSON object");
  TensorInfo info;
  info.name = name;

  auto dtypeIt = value.find("dtype");
  if (dtypeIt == value.end() || !dtypeIt->is_string())
    return makeError(source, where + "missing string field 'dtype'");
  std::optional<DType> dtype = parseDType(dtypeIt->get<std::string>());
  if (!dtype)
    return makeError(source, where + "unknown dtype " +
                                 inQuotes(dtypeIt->get<std::string>()));
  info.dtype = *dtype;

  auto shapeIt = value.find("shape");
  if (shapeIt == value.end() || !shapeIt->is_array())
    return makeError(source, where + "missing array field 'shape'");
  for (const json &dim : *shapeIt) {
    if (!dim.is_number_unsigned() ||
        dim.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
      return makeError(source, where + "shape " + shapeIt->dump() +
                                   " is not a list of non-negative integers");
    info.shape.push_back(dim.get<int64_t>());
  }

  auto offsetsIt = value.find("data_offsets");
  if (offsetsIt == value.end() || !offsetsIt->is_array() ||
      offsetsIt->size() != 2 || !(*offsetsIt)[0].is_number_unsigned() ||
      !(*offsetsIt)[1].is_number_unsigned())
    return makeError(source, where + "'data_offsets' is not a pair of "
                                     "non-negative integers");
  info.begin = (*offsetsIt)[0].get<uint64_t>();
  info.end = (*offsetsIt)[1].get<uint64_t>();
  std::string offsets = "data_offsets [" + std::to_string(info.begin) + ", " +
                        std::to_string(info.end) + "]";
  if (info.end < info.begin)
    return makeError(source, where + offsets + " end before they begin");

  std::optional<uint64_t> count = elementCount(info.shape);
  uint64_t needed;
  if (!count || __builtin_mul_overflow(*count, dtypeSize(info.dtype), &needed))
    return makeError(source, where + "shape " + formatShape(info.shape) +
                                 " is too large");
  if (needed != info.byteSize())
    return makeError(source, where + "shape " + formatShape(info.shape) +
                                 " of " + dtypeName(info.dtype) + " needs " +
                                 std::to_string(needed) + " bytes but " +
                                 offsets + " hold " +
                                 std::to_string(info.byteSize()));
  return info;
}

/// Checks that the byte ranges tile [0, dataSize) exactly.
static Status checkOffsets(std::vector<TensorInfo> infos, uint64_t dataSize,
                           const std::string &source) {
  for (const TensorInfo &info : infos)
    if (info.end > dataSize)
      return makeError(source, "tensor " + inQuotes(info.name) +
                                   ": data_offsets [" +
                                   std::to_string(info.begin) + ", " +
                                   std::to_string(info.end) +
                                   "] exceed the data region of " +
                                   std::to_string(dataSize) + " bytes");
  std::sort(infos.begin(), infos.end(),
            [](const TensorInfo &a, const TensorInfo &b) {
              return std::tie(a.begin, a.end) < std::tie(b.begin, b.end);
            });
  uint64_t covered = 0;
  const TensorInfo *previous = nullptr;
  for (const TensorInfo &info : infos) {
    if (info.begin < covered)
      return makeError(source, "tensors " + inQuotes(previous->name) + " and " +
                                   inQuotes(info.name) +
                                   " overlap in the data region");
    if (info.begin > covered)
      return makeError(source, "bytes [" + std::to_string(covered) + ", " +
                                   std::to_string(info.begin) +
                                   ") of the data region belong to no tensor");
    covered = info.end;
    previous = &info;
  }
  if (covered != dataSize)
    return makeError(source, "data region is " + std::to_string(dataSize) +
                                 " bytes but the tensors cover " +
                                 std::to_string(covered));
  return std::nullopt;
}

Expected<SafetensorsFile> SafetensorsFile::load(const std::string &path) {
  Expected<std::vector<uint8_t>> bytes = readWholeFile(path);
  if (!bytes)
    return bytes.error();
  return parse(std::move(*bytes), path);
}

Expected<SafetensorsFile> SafetensorsFile::parse(std::vector<uint8_t> bytes,
                                                 const std::string &source) {
  uint64_t size = bytes.size();
  if (size < 8)
    return makeError(source, "file is " + std::to_string(size) +
                                 " bytes, too short for the 8-byte header "
                                 "length");
  uint64_t headerSize = 0;
  for (int i = 7; i >= 0; --i)
    headerSize = (headerSize << 8) | bytes[i];
  if (headerSize > kMaxSafetensorsHeaderBytes)
    return makeError(source, "header length " + std::to_string(headerSize) +
                                 " exceeds the limit of " +
                                 std::to_string(kMaxSafetensorsHeaderBytes));
  if (headerSize > size - 8)
    return makeError(source, "header length " + std::to_string(headerSize) +
                                 " exceeds file size " + std::to_string(size));

  std::string text(reinterpret_cast<const char *>(bytes.data()) + 8,
                   headerSize);
  // nlohmann::json stops at a NUL byte; JSON has none outside escapes.
  if (text.find('\0') != std::string::npos)
    return makeError(source, "header is not valid JSON: it holds a NUL byte "
                             "(padding must be spaces)");
  Expected<json> header = parseHeaderJson(text, source);
  if (!header)
    return header.error();
  if (!header->is_object())
    return makeError(source, "header is not a JSON object");

  SafetensorsFile file;
  file.sourceName = source;
  for (const auto &[name, value] : header->items()) {
    if (name == "__metadata__") {
      if (Status error = parseMetadata(value, source, file.meta))
        return *error;
      continue;
    }
    Expected<TensorInfo> info = parseTensorInfo(name, value, source);
    if (!info)
      return info.error();
    file.infos.push_back(std::move(*info));
  }
  file.dataStart = 8 + headerSize;
  if (Status error = checkOffsets(file.infos, size - file.dataStart, source))
    return *error;
  std::sort(
      file.infos.begin(), file.infos.end(),
      [](const TensorInfo &a, const TensorInfo &b) { return a.name < b.name; });
  file.bytes = std::move(bytes);
  return file;
}

const TensorInfo *SafetensorsFile::find(const std::string &name) const {
  auto it = std::lower_bound(infos.begin(), infos.end(), name,
                             [](const TensorInfo &info, const std::string &n) {
                               return info.name < n;
                             });
  if (it == infos.end() || it->name != name)
    return nullptr;
  return &*it;
}

Expected<const TensorInfo *> SafetensorsFile::lookup(const std::string &name,
                                                     DType dtype,
                                                     const Shape &shape) const {
  const TensorInfo *info = find(name);
  if (!info)
    return makeError(sourceName, "no tensor " + inQuotes(name));
  if (info->dtype != dtype)
    return makeError(sourceName, "tensor " + inQuotes(name) +
                                     ": expected dtype " + dtypeName(dtype) +
                                     ", got " + dtypeName(info->dtype));
  if (info->shape != shape)
    return makeError(sourceName, "tensor " + inQuotes(name) +
                                     ": expected shape " + formatShape(shape) +
                                     ", got " + formatShape(info->shape));
  return info;
}

Expected<std::vector<float>>
SafetensorsFile::readAsFloat(const std::string &name,
                             const Shape &shape) const {
  const TensorInfo *info = find(name);
  if (!info)
    return makeError(sourceName, "no tensor " + inQuotes(name));
  switch (info->dtype) {
  case DType::F32:
    return read<float>(name, shape);
  case DType::BF16: {
    Expected<std::vector<BF16>> values = read<BF16>(name, shape);
    if (!values)
      return values.error();
    return bf16sToFloats(*values);
  }
  case DType::F64: {
    Expected<std::vector<double>> values = read<double>(name, shape);
    if (!values)
      return values.error();
    return std::vector<float>(values->begin(), values->end());
  }
  default:
    return makeError(sourceName, "tensor " + inQuotes(name) + ": dtype " +
                                     dtypeName(info->dtype) +
                                     " is not F32, BF16 or F64");
  }
}

} // namespace dsflow::io
