//===- DType.cpp - Names and sizes of safetensors element types -----------===//
#include "io/DType.h"

namespace dsflow::io {

namespace {
struct DTypeEntry {
  DType dtype;
  const char *name;
  size_t size;
};
} // namespace

static const DTypeEntry kDTypes[] = {
    {DType::Bool, "BOOL", 1},      {DType::U8, "U8", 1},
    {DType::I8, "I8", 1},          {DType::F8E5M2, "F8_E5M2", 1},
    {DType::F8E4M3, "F8_E4M3", 1}, {DType::I16, "I16", 2},
    {DType::U16, "U16", 2},        {DType::F16, "F16", 2},
    {DType::BF16, "BF16", 2},      {DType::I32, "I32", 4},
    {DType::U32, "U32", 4},        {DType::F32, "F32", 4},
    {DType::F64, "F64", 8},        {DType::I64, "I64", 8},
    {DType::U64, "U64", 8},
};

static const DTypeEntry &entry(DType dtype) {
  return kDTypes[static_cast<size_t>(dtype)];
}

const char *dtypeName(DType dtype) { return entry(dtype).name; }

size_t dtypeSize(DType dtype) { return entry(dtype).size; }

std::optional<DType> parseDType(const std::string &name) {
  for (const DTypeEntry &e : kDTypes)
    if (name == e.name)
      return e.dtype;
  return std::nullopt;
}

} // namespace dsflow::io
