//===- ExpertLoads.cpp - Read and write loads files -----------------------===//
#include "io/ExpertLoads.h"

#include "io/AtomicFile.h"
#include "io/FileUtil.h"

#include <nlohmann/json.hpp>

#include <set>

using nlohmann::json;

namespace dsflow::io {

std::string encodeExpertLoads(const ExpertLoads &loads) {
  // One layer per line keeps the file readable and diffable.
  std::string text =
      "{\"format\": " + json(kExpertLoadsFormat).dump() + ", \"model\": " +
      json(loads.model).dump(-1, ' ', false, json::error_handler_t::replace) +
      ", \"steps\": " + std::to_string(loads.steps) + ",\n \"layers\": [";
  for (size_t i = 0; i < loads.layers.size(); ++i) {
    const LayerLoads &layer = loads.layers[i];
    text += i ? ",\n  " : "\n  ";
    text += "{\"layer\": " + std::to_string(layer.layer) + ", \"loads\": [";
    for (size_t e = 0; e < layer.loads.size(); ++e)
      text += (e ? ", " : "") + std::to_string(layer.loads[e]);
    text += "]}";
  }
  text += "\n ]}\n";
  return text;
}

Status writeExpertLoads(const std::string &path, const ExpertLoads &loads) {
  return writeFileAtomically(path, encodeExpertLoads(loads));
}

/// A non-negative integer that fits in int64.
static bool isCount(const json &value) {
  return value.is_number_unsigned() ||
         (value.is_number_integer() && value.get<int64_t>() >= 0);
}

static Status checkKeys(const json &object, std::set<std::string> allowed,
                        const std::string &source, const std::string &where) {
  for (const auto &item : object.items())
    if (!allowed.count(item.key()))
      return makeError(source, where + "unknown key '" + item.key() + "'");
  return std::nullopt;
}

static Expected<LayerLoads> parseLayer(const json &value, size_t index,
                                       const std::string &source) {
  std::string where = "layers[" + std::to_string(index) + "]: ";
  if (!value.is_object())
    return makeError(source, where + "not an object");
  if (Status error = checkKeys(value, {"layer", "loads"}, source, where))
    return *error;
  auto layer = value.find("layer");
  if (layer == value.end() || !isCount(*layer) ||
      layer->get<uint64_t>() > INT32_MAX)
    return makeError(source, where + "missing non-negative integer 'layer'");
  LayerLoads out;
  out.layer = layer->get<int64_t>();
  where = "layer " + std::to_string(out.layer) + ": ";
  auto loads = value.find("loads");
  if (loads == value.end() || !loads->is_array() || loads->empty())
    return makeError(source, where + "missing non-empty array 'loads'");
  for (size_t e = 0; e < loads->size(); ++e) {
    const json &load = (*loads)[e];
    if (load.is_number_unsigned() && load.get<uint64_t>() > INT64_MAX)
      return makeError(source, where + "load of expert " + std::to_string(e) +
                                   " is too large");
    if (!isCount(load))
      return makeError(source, where + "load of expert " + std::to_string(e) +
                                   " is not a non-negative integer (" +
                                   load.dump() + ")");
    out.loads.push_back(load.get<int64_t>());
  }
  return out;
}

Expected<ExpertLoads> parseExpertLoads(const std::string &text,
                                       const std::string &source) {
  json root;
  try {
    root = json::parse(text);
  } catch (const json::parse_error &e) {
    return makeError(source,
                     "not valid JSON (byte " + std::to_string(e.byte) + ")");
  }
  if (!root.is_object())
    return makeError(source, "not a JSON object");
  if (Status error =
          checkKeys(root, {"format", "model", "steps", "layers"}, source, ""))
    return *error;
  auto format = root.find("format");
  if (format == root.end() || *format != kExpertLoadsFormat)
    return makeError(source, std::string("'format' is not '") +
                                 kExpertLoadsFormat + "'");
  ExpertLoads out;
  auto model = root.find("model");
  if (model != root.end()) {
    if (!model->is_string())
      return makeError(source, "'model' is not a string");
    out.model = model->get<std::string>();
  }
  auto steps = root.find("steps");
  if (steps != root.end()) {
    if (!isCount(*steps))
      return makeError(source, "'steps' is not a non-negative integer");
    out.steps = steps->get<int64_t>();
  }
  auto layers = root.find("layers");
  if (layers == root.end() || !layers->is_array() || layers->empty())
    return makeError(source, "missing non-empty array 'layers'");
  std::set<int64_t> seen;
  for (size_t i = 0; i < layers->size(); ++i) {
    Expected<LayerLoads> layer = parseLayer((*layers)[i], i, source);
    if (!layer)
      return layer.error();
    if (!seen.insert(layer->layer).second)
      return makeError(source, "layer " + std::to_string(layer->layer) +
                                   " appears twice");
    const LayerLoads &first = out.layers.empty() ? *layer : out.layers[0];
    if (layer->loads.size() != first.loads.size())
      return makeError(source,
                       "layer " + std::to_string(layer->layer) + " has " +
                           std::to_string(layer->loads.size()) +
                           " experts, layer " + std::to_string(first.layer) +
                           " has " + std::to_string(first.loads.size()));
    out.layers.push_back(std::move(*layer));
  }
  return out;
}

Expected<ExpertLoads> readExpertLoads(const std::string &path) {
  Expected<std::vector<uint8_t>> bytes = readWholeFile(path);
  if (!bytes)
    return bytes.error();
  return parseExpertLoads(std::string(bytes->begin(), bytes->end()), path);
}

} // namespace dsflow::io
