//===- TcpFrame.cpp - The framing of the TCP communicator -----------------===//
#include "dist/TcpFrame.h"

namespace dsflow::dist::tcp {

const char *opName(Op op) {
  switch (op) {
  case Op::Hello:
  case Op::Welcome:
    return "start-up";
  case Op::AllReduce:
    return "all-reduce";
  case Op::ReduceScatter:
    return "reduce-scatter";
  case Op::AllGather:
    return "all-gather";
  case Op::AllToAll:
    return "all-to-all";
  case Op::Broadcast:
    return "broadcast";
  case Op::Barrier:
    return "barrier";
  case Op::Split:
    return "split";
  }
  return "unknown collective";
}

static void putLe(unsigned char *out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i)
    out[i] = static_cast<unsigned char>(value >> (8 * i));
}

static uint64_t getLe(const unsigned char *in, int bytes) {
  uint64_t value = 0;
  for (int i = 0; i < bytes; ++i)
    value |= static_cast<uint64_t>(in[i]) << (8 * i);
  return value;
}

void encodeHeader(const FrameHeader &header, unsigned char out[kHeaderBytes]) {
  putLe(out, kFrameMagic, 4);
  out[4] = static_cast<unsigned char>(header.op);
  out[5] = static_cast<unsigned char>(header.kind);
  putLe(out + 6, 0, 2);
  putLe(out + 8, header.sequence, 4);
  putLe(out + 12, 0, 4);
  putLe(out + 16, header.bytes, 8);
}

bool decodeHeader(const unsigned char in[kHeaderBytes], FrameHeader &header) {
  if (getLe(in, 4) != kFrameMagic || in[4] < 1 ||
      in[4] > static_cast<unsigned char>(Op::Split) || in[5] < 1 || in[5] > 2)
    return false;
  header.op = static_cast<Op>(in[4]);
  header.kind = static_cast<Kind>(in[5]);
  header.sequence = static_cast<uint32_t>(getLe(in + 8, 4));
  header.bytes = getLe(in + 16, 8);
  return true;
}

void putU64(std::string &out, uint64_t value) {
  unsigned char bytes[8];
  putLe(bytes, value, 8);
  out.append(reinterpret_cast<char *>(bytes), 8);
}

uint64_t getU64(const unsigned char *in) { return getLe(in, 8); }

} // namespace dsflow::dist::tcp
