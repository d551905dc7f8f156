//===- Memory.cpp - The regions a plan's buffers live in ------------------===//
#include "exec/Memory.h"

#include <algorithm>
#include <cstring>

namespace dsflow::exec {

namespace {
/// Regions are 64-byte aligned and zero-initialised.
std::shared_ptr<std::byte[]> allocate(int64_t bytes) {
  size_t size = static_cast<size_t>(std::max<int64_t>(bytes, 64));
  return std::shared_ptr<std::byte[]>(new (std::align_val_t(64))
                                          std::byte[size]());
}
} // namespace

Memory::Memory(const Plan &plan, const std::function<bool(int32_t)> &absent)
    : planRef(plan) {
  const MemoryPlan &m = plan.memory();
  if (absent) {
    packParameters(absent);
  } else {
    parameters = {allocate(m.parameter_bytes()), m.parameter_bytes()};
    gradients = {allocate(m.gradient_bytes()), m.gradient_bytes()};
  }
  inputs = {allocate(m.input_bytes()), m.input_bytes()};
  activations = {allocate(m.activation_bytes()), m.activation_bytes()};
}

std::unique_ptr<Memory> Memory::sharingParameters(const Memory &other) {
  const MemoryPlan &m = other.planRef.memory();
  auto copy = std::unique_ptr<Memory>(new Memory(other.planRef, other));
  copy->inputs = {allocate(m.input_bytes()), m.input_bytes()};
  copy->activations = {allocate(m.activation_bytes()), m.activation_bytes()};
  return copy;
}

void Memory::packParameters(const std::function<bool(int32_t)> &absent) {
  packedOffset.assign(planRef.buffers_size(), -1);
  int64_t parameterEnd = 0, gradientEnd = 0;
  for (int32_t i = 0; i < planRef.buffers_size(); ++i) {
    const Buffer &b = planRef.buffers(i);
    int64_t *end = b.kind() == PARAMETER  ? &parameterEnd
                   : b.kind() == GRADIENT ? &gradientEnd
                                          : nullptr;
    if (!end) {
      packedOffset[i] = b.offset();
      continue;
    }
    int32_t param = b.kind() == GRADIENT ? b.gradient_of() : i;
    if (absent(param))
      continue;
    packedOffset[i] = *end;
    *end += (b.bytes() + 63) / 64 * 64; // The plan's 64-byte alignment.
  }
  parameters = {allocate(parameterEnd), parameterEnd};
  gradients = {allocate(gradientEnd), gradientEnd};
}

Memory::Region &Memory::regionOf(BufferKind kind) {
  return const_cast<Region &>(std::as_const(*this).regionOf(kind));
}

const Memory::Region &Memory::regionOf(BufferKind kind) const {
  switch (kind) {
  case PARAMETER:
    return parameters;
  case GRADIENT:
    return gradients;
  case INPUT:
    return inputs;
  default:
    return activations;
  }
}

std::byte *Memory::data(int32_t index) const {
  const Buffer &b = planRef.buffers(index);
  int64_t offset = packedOffset.empty() ? b.offset() : packedOffset[index];
  return offset < 0 ? nullptr : regionOf(b.kind()).bytes.get() + offset;
}

void Memory::touch(int32_t index) {
  const Buffer &b = planRef.buffers(index);
  if (b.kind() == ACTIVATION)
    highWater = std::max(highWater, b.offset() + b.bytes());
}

void Memory::zeroGradients() {
  std::memset(gradients.bytes.get(), 0, static_cast<size_t>(gradients.size));
}

} // namespace dsflow::exec
