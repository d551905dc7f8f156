//===- Socket.h - Non-blocking TCP sockets with deadlines -------*- C++ -*-===//
//
// The TCP communicator's plumbing. Sockets are non-blocking and every wait is
// a poll() bounded by a ProgressDeadline, so no call here blocks forever.
// Errors are IoErrors holding only "what" (the caller adds "rank R: op: ").
// IPv4 only.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_DIST_SOCKET_H
#define DSFLOW_DIST_SOCKET_H

#include "dist/Deadline.h"
#include "io/Status.h"

#include <cstdint>
#include <string>

namespace dsflow::dist {

/// An owned, non-blocking socket descriptor, closed on destruction.
class Socket {
public:
  Socket() = default;
  explicit Socket(int fd) : descriptor(fd) {}
  ~Socket() { close(); }
  Socket(Socket &&other) noexcept : descriptor(other.descriptor) {
    other.descriptor = -1;
  }
  Socket &operator=(Socket &&other) noexcept;
  Socket(const Socket &) = delete;
  Socket &operator=(const Socket &) = delete;

  int fd() const { return descriptor; }
  bool valid() const { return descriptor >= 0; }
  void close();

private:
  int descriptor = -1;
};

/// A listening socket on every IPv4 address at `port` (0: a free port).
io::Expected<Socket> listenOn(int port);

/// The local port of a bound socket.
int localPort(const Socket &socket);

/// The numeric IPv4 address of the peer of a connected socket.
std::string peerAddress(const Socket &socket);

/// Accepts one connection if one is pending (an invalid Socket if none).
io::Expected<Socket> acceptPending(const Socket &listener);

/// Connects to host:port, retrying while nobody listens there yet (the peer
/// may start later) until `deadline` expires.
io::Expected<Socket> connectTo(const std::string &host, int port,
                               ProgressDeadline &deadline);

/// How one step of I/O on a socket went.
enum class IoResult { Progress, WouldBlock, Closed, Failed };

/// Sends or receives up to `bytes` (at most 16 MiB at once); `moved` gets the
/// count. `err` holds errno for Failed.
IoResult sendSome(const Socket &s, const void *data, int64_t bytes,
                  int64_t &moved, int &err);
IoResult recvSome(const Socket &s, void *data, int64_t bytes, int64_t &moved,
                  int &err);

/// How a whole transfer ended.
struct TransferResult {
  IoResult result = IoResult::Progress; // Progress: done
  int err = 0;                          // errno for Failed
  bool timedOut = false;
  bool failed() const { return timedOut || result != IoResult::Progress; }
};

/// Sends exactly `bytes`, waiting at most the deadline for each step.
TransferResult sendAll(const Socket &s, const void *data, int64_t bytes,
                       ProgressDeadline &deadline);
/// Receives exactly `bytes`, waiting at most the deadline for each step.
TransferResult recvAll(const Socket &s, void *data, int64_t bytes,
                       ProgressDeadline &deadline);

/// The message for a failed transfer of `op` with `peer` ("rank 3"):
/// "all-reduce: rank 3 closed the connection (it may have died)",
/// "all-reduce timed out after 5 s waiting for rank 3 (...)", ...
std::string transferFailureText(const TransferResult &result,
                                const std::string &op, double timeoutSeconds,
                                const std::string &peer);

} // namespace dsflow::dist

#endif // DSFLOW_DIST_SOCKET_H
