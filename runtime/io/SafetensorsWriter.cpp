//===- SafetensorsWriter.cpp - Writing safetensors files ------------------===//
#include "io/SafetensorsWriter.h"

#include "io/AtomicFile.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <set>

using nlohmann::ordered_json;

namespace dsflow::io {

static std::string inQuotes(const std::string &name) {
  return "'" + name + "'";
}

/// Checks one tensor and returns its data size.
static Expected<uint64_t> checkTensor(const TensorRef &tensor,
                                      const std::string &source) {
  if (tensor.name.empty())
    return makeError(source, "tensor with an empty name");
  if (tensor.name == "__metadata__")
    return makeError(source, "tensor name '__metadata__' is reserved");
  std::string where = "tensor " + inQuotes(tensor.name) + ": ";
  std::optional<uint64_t> count = elementCount(tensor.shape);
  uint64_t needed;
  if (!count ||
      __builtin_mul_overflow(*count, dtypeSize(tensor.dtype), &needed))
    return makeError(source,
                     where + "invalid shape " + formatShape(tensor.shape));
  if (needed != tensor.byteSize)
    return makeError(source, where + "shape " + formatShape(tensor.shape) +
                                 " of " + dtypeName(tensor.dtype) + " needs " +
                                 std::to_string(needed) + " bytes, got " +
                                 std::to_string(tensor.byteSize));
  if (!tensor.produce && !tensor.data && needed != 0)
    return makeError(source, where + "no data");
  return needed;
}

/// The header JSON, or an error (e.g. a name that is not UTF-8).
static Expected<std::string>
buildHeader(const std::vector<const TensorRef *> &order,
            const Metadata &metadata, const std::string &source) {
  ordered_json header = ordered_json::object();
  if (!metadata.empty()) {
    ordered_json meta = ordered_json::object();
    for (const auto &[key, value] : metadata)
      meta[key] = value;
    header["__metadata__"] = std::move(meta);
  }
  uint64_t offset = 0;
  for (const TensorRef *tensor : order) {
    ordered_json entry = ordered_json::object();
    entry["dtype"] = dtypeName(tensor->dtype);
    entry["shape"] = tensor->shape;
    entry["data_offsets"] = {offset, offset + tensor->byteSize};
    header[tensor->name] = std::move(entry);
    offset += tensor->byteSize;
  }
  try {
    std::string text = header.dump();
    text.append((8 - text.size() % 8) % 8, ' ');
    return text;
  } catch (const ordered_json::exception &e) {
    return makeError(source,
                     std::string("cannot encode the header: ") + e.what());
  }
}

Status writeSafetensors(ByteSink &sink, const std::vector<TensorRef> &tensors,
                        const Metadata &metadata, const std::string &source) {
  std::set<std::string> names;
  std::vector<const TensorRef *> order;
  for (const TensorRef &tensor : tensors) {
    Expected<uint64_t> size = checkTensor(tensor, source);
    if (!size)
      return size.error();
    if (!names.insert(tensor.name).second)
      return makeError(source,
                       "duplicate tensor name " + inQuotes(tensor.name));
    order.push_back(&tensor);
  }
  std::sort(order.begin(), order.end(),
            [](const TensorRef *a, const TensorRef *b) {
              if (a->dtype != b->dtype)
                return a->dtype > b->dtype;
              return a->name < b->name;
            });
  Expected<std::string> header = buildHeader(order, metadata, source);
  if (!header)
    return header.error();

  uint8_t length[8];
  uint64_t n = header->size();
  for (int i = 0; i < 8; ++i)
    length[i] = static_cast<uint8_t>(n >> (8 * i));
  if (Status error = sink.write(length, sizeof(length)))
    return error;
  if (Status error = sink.write(header->data(), header->size()))
    return error;
  for (const TensorRef *tensor : order) {
    if (!tensor->produce) {
      if (Status error = sink.write(tensor->data, tensor->byteSize))
        return error;
      continue;
    }
    uint64_t before = sink.bytesWritten();
    if (Status error = tensor->produce(sink))
      return error;
    uint64_t wrote = sink.bytesWritten() - before;
    if (wrote != tensor->byteSize)
      return makeError(source, "tensor " + inQuotes(tensor->name) +
                                   ": producer wrote " + std::to_string(wrote) +
                                   " bytes, expected " +
                                   std::to_string(tensor->byteSize));
  }
  return std::nullopt;
}

Status saveSafetensors(const std::string &path,
                       const std::vector<TensorRef> &tensors,
                       const Metadata &metadata, FileDigest *digest) {
  return writeFileAtomically(
      path,
      [&](ByteSink &sink) {
        return writeSafetensors(sink, tensors, metadata, path);
      },
      digest);
}

} // namespace dsflow::io
