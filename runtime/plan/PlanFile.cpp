//===- PlanFile.cpp - Reading and writing plan files ----------------------===//
#include "plan/PlanFile.h"

#include "io/AtomicFile.h"
#include "io/FileUtil.h"
#include "io/Fnv1a.h"

#include <cstring>

namespace dsflow {
namespace {

constexpr char kMagic[8] = {'D', 'S', 'F', 'L', 'O', 'W', 'P', 'L'};
constexpr size_t kFrameBytes = 32;

void putLittleEndian(std::string &out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i)
    out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

uint64_t getLittleEndian(const std::string &in, size_t at, int bytes) {
  uint64_t value = 0;
  for (int i = 0; i < bytes; ++i)
    value |= uint64_t(static_cast<unsigned char>(in[at + i])) << (8 * i);
  return value;
}

} // namespace

std::string encodePlanFile(const Plan &plan) {
  std::string payload;
  plan.SerializeToString(&payload);
  std::string out(kMagic, sizeof(kMagic));
  putLittleEndian(out, kPlanFormatVersion, 4);
  putLittleEndian(out, 0, 4);
  putLittleEndian(out, payload.size(), 8);
  putLittleEndian(out, io::fnv1a64(payload.data(), payload.size()), 8);
  return out + payload;
}

io::Expected<Plan> decodePlanFile(const std::string &bytes,
                                  const std::string &source) {
  if (bytes.size() < kFrameBytes ||
      std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0)
    return io::makeError(source, "not a dsflow plan (no DSFLOWPL header)");
  uint64_t version = getLittleEndian(bytes, 8, 4);
  if (version != kPlanFormatVersion)
    return io::makeError(source, "plan format version " +
                                     std::to_string(version) +
                                     ", this dsflow reads version " +
                                     std::to_string(kPlanFormatVersion) +
                                     ": recompile the model");
  uint64_t length = getLittleEndian(bytes, 16, 8);
  uint64_t available = bytes.size() - kFrameBytes;
  if (length != available)
    return io::makeError(source, "truncated or padded: the header announces " +
                                     std::to_string(length) +
                                     " payload bytes, the file holds " +
                                     std::to_string(available));
  uint64_t checksum = getLittleEndian(bytes, 24, 8);
  if (io::fnv1a64(bytes.data() + kFrameBytes, length) != checksum)
    return io::makeError(source, "corrupted: payload checksum mismatch");
  Plan plan;
  if (!plan.ParseFromArray(bytes.data() + kFrameBytes, static_cast<int>(length)))
    return io::makeError(source, "corrupted: the payload is not a plan");
  if (io::Status invalid = validatePlan(plan, source))
    return *invalid;
  return plan;
}

io::Status writePlanFile(const std::string &path, const Plan &plan) {
  return io::writeFileAtomically(path, encodePlanFile(plan));
}

io::Expected<Plan> readPlanFile(const std::string &path) {
  io::Expected<std::vector<uint8_t>> bytes = io::readWholeFile(path);
  if (!bytes)
    return bytes.error();
  return decodePlanFile(std::string(bytes->begin(), bytes->end()), path);
}

} // namespace dsflow
