//===- TcpFrame.h - The framing of the TCP communicator ---------*- C++ -*-===//
//
// Every message between a rank and its relay (rank 0 of the communicator)
// starts with a 24-byte little-endian header:
//   magic u32 | op u8 | kind u8 | 0 u16 | sequence u32 | 0 u32 | bytes u64
// The op and the sequence number (collectives called so far) let the relay
// tell a rank that called a different collective from a slow one; kind Error
// carries a one-line message instead of data.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_DIST_TCPFRAME_H
#define DSFLOW_DIST_TCPFRAME_H

#include <cstdint>
#include <string>

namespace dsflow::dist::tcp {

constexpr uint32_t kFrameMagic = 0x43465344; // "DSFC"
constexpr int64_t kHeaderBytes = 24;

enum class Op : uint8_t {
  Hello = 1,
  Welcome,
  AllReduce,
  ReduceScatter,
  AllGather,
  AllToAll,
  Broadcast,
  Barrier,
  Split,
};

enum class Kind : uint8_t { Data = 1, Error = 2 };

struct FrameHeader {
  Op op = Op::Hello;
  Kind kind = Kind::Data;
  uint32_t sequence = 0;
  uint64_t bytes = 0;
};

/// The user-facing name: "all-reduce", "start-up", ...
const char *opName(Op op);

void encodeHeader(const FrameHeader &header, unsigned char out[kHeaderBytes]);
/// False if the bytes do not start with the magic or name no known op/kind.
bool decodeHeader(const unsigned char in[kHeaderBytes], FrameHeader &header);

/// Appends / reads little-endian integers (the payloads of hellos, split).
void putU64(std::string &out, uint64_t value);
uint64_t getU64(const unsigned char *in);

} // namespace dsflow::dist::tcp

#endif // DSFLOW_DIST_TCPFRAME_H
