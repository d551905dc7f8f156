//===- Socket.cpp - Non-blocking TCP sockets with deadlines ---------------===//
#include "dist/Socket.h"

#include "io/FileUtil.h"

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace dsflow::dist {

static constexpr int64_t kMaxStep = int64_t(16) << 20;

Socket &Socket::operator=(Socket &&other) noexcept {
  if (this != &other) {
    close();
    descriptor = other.descriptor;
    other.descriptor = -1;
  }
  return *this;
}

void Socket::close() {
  if (descriptor >= 0)
    ::close(descriptor);
  descriptor = -1;
}

static io::IoError failure(const std::string &what, int err) {
  return io::IoError{what + ": " + io::errnoText(err)};
}

/// Collectives exchange small messages in lock step: send them at once.
static void tune(int fd) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

io::Expected<Socket> listenOn(int port) {
  Socket s(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!s.valid())
    return failure("cannot create a socket", errno);
  // A restarted job may reuse the port while old connections linger.
  int one = 1;
  ::setsockopt(s.fd(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_ANY);
  address.sin_port = htons(static_cast<uint16_t>(port));
  if (::bind(s.fd(), reinterpret_cast<sockaddr *>(&address), sizeof address))
    return failure("cannot listen on port " + std::to_string(port), errno);
  if (::listen(s.fd(), 1024))
    return failure("cannot listen on port " + std::to_string(port), errno);
  return s;
}

int localPort(const Socket &socket) {
  sockaddr_in address{};
  socklen_t length = sizeof address;
  if (::getsockname(socket.fd(), reinterpret_cast<sockaddr *>(&address),
                    &length))
    return -1;
  return ntohs(address.sin_port);
}

std::string peerAddress(const Socket &socket) {
  sockaddr_in address{};
  socklen_t length = sizeof address;
  char text[INET_ADDRSTRLEN] = "";
  if (::getpeername(socket.fd(), reinterpret_cast<sockaddr *>(&address),
                    &length) ||
      !::inet_ntop(AF_INET, &address.sin_addr, text, sizeof text))
    return "";
  return text;
}

io::Expected<Socket> acceptPending(const Socket &listener) {
  int fd =
      ::accept4(listener.fd(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
        errno == ECONNABORTED)
      return Socket();
    return failure("accept failed", errno);
  }
  tune(fd);
  return Socket(fd);
}

/// Waits until `fd` is ready for `events` or the deadline expires; false on
/// expiry.
static bool waitFor(int fd, short events, ProgressDeadline &deadline) {
  while (true) {
    int ms = deadline.remainingMs();
    if (ms == 0)
      return false;
    pollfd p{fd, events, 0};
    int rc = ::poll(&p, 1, std::min(ms, 1000));
    if (rc > 0 || (rc < 0 && errno != EINTR))
      return true; // ready, or an error the next call will report
  }
}

io::Expected<Socket> connectTo(const std::string &host, int port,
                               ProgressDeadline &deadline) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo *found = nullptr;
  std::string where = host + ":" + std::to_string(port);
  int rc =
      ::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found);
  if (rc != 0)
    return io::IoError{"cannot resolve " + host + ": " + gai_strerror(rc)};
  sockaddr_in address = *reinterpret_cast<sockaddr_in *>(found->ai_addr);
  ::freeaddrinfo(found);

  int lastError = 0;
  while (true) {
    Socket s(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!s.valid())
      return failure("cannot create a socket", errno);
    rc = ::connect(s.fd(), reinterpret_cast<sockaddr *>(&address),
                   sizeof address);
    int err = rc == 0 ? 0 : errno;
    if (err == EINPROGRESS) {
      if (!waitFor(s.fd(), POLLOUT, deadline))
        return io::IoError{"timed out connecting to " + where};
      socklen_t length = sizeof err;
      ::getsockopt(s.fd(), SOL_SOCKET, SO_ERROR, &err, &length);
    }
    if (err == 0) {
      tune(s.fd());
      return s;
    }
    // Nobody listens yet (or the network is not up yet): try again.
    if (err != ECONNREFUSED && err != ETIMEDOUT && err != EHOSTUNREACH &&
        err != ENETUNREACH && err != ECONNRESET && err != EINTR)
      return failure("cannot connect to " + where, err);
    lastError = err;
    if (deadline.remainingMs() <= 100)
      return io::IoError{"timed out after " + secondsText(deadline.seconds()) +
                         " connecting to " + where + " (" +
                         io::errnoText(lastError) +
                         "; is rank 0 running and MASTER_ADDR/MASTER_PORT "
                         "right?)"};
    ::usleep(100 * 1000);
  }
}

IoResult sendSome(const Socket &s, const void *data, int64_t bytes,
                  int64_t &moved, int &err) {
  moved = 0;
  ssize_t n =
      ::send(s.fd(), data, static_cast<size_t>(std::min(bytes, kMaxStep)),
             MSG_NOSIGNAL);
  if (n >= 0) {
    moved = n;
    return IoResult::Progress;
  }
  err = errno;
  if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR)
    return IoResult::WouldBlock;
  if (err == EPIPE || err == ECONNRESET)
    return IoResult::Closed;
  return IoResult::Failed;
}

IoResult recvSome(const Socket &s, void *data, int64_t bytes, int64_t &moved,
                  int &err) {
  moved = 0;
  ssize_t n =
      ::recv(s.fd(), data, static_cast<size_t>(std::min(bytes, kMaxStep)), 0);
  if (n > 0) {
    moved = n;
    return IoResult::Progress;
  }
  if (n == 0)
    return IoResult::Closed;
  err = errno;
  if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR)
    return IoResult::WouldBlock;
  if (err == ECONNRESET)
    return IoResult::Closed;
  return IoResult::Failed;
}

static TransferResult transferAll(const Socket &s, char *data, int64_t bytes,
                                  ProgressDeadline &deadline, bool sending) {
  TransferResult result;
  int64_t done = 0;
  while (done < bytes) {
    int64_t moved = 0;
    IoResult r =
        sending ? sendSome(s, data + done, bytes - done, moved, result.err)
                : recvSome(s, data + done, bytes - done, moved, result.err);
    if (r == IoResult::Progress) {
      done += moved;
      deadline.progress();
      continue;
    }
    if (r != IoResult::WouldBlock) {
      result.result = r;
      return result;
    }
    if (!waitFor(s.fd(), sending ? POLLOUT : POLLIN, deadline)) {
      result.timedOut = true;
      return result;
    }
  }
  return result;
}

TransferResult sendAll(const Socket &s, const void *data, int64_t bytes,
                       ProgressDeadline &deadline) {
  return transferAll(s, const_cast<char *>(static_cast<const char *>(data)),
                     bytes, deadline, true);
}

TransferResult recvAll(const Socket &s, void *data, int64_t bytes,
                       ProgressDeadline &deadline) {
  return transferAll(s, static_cast<char *>(data), bytes, deadline, false);
}

std::string transferFailureText(const TransferResult &result,
                                const std::string &op, double timeoutSeconds,
                                const std::string &peer) {
  if (result.timedOut)
    return timedOutText(op, timeoutSeconds, peer);
  if (result.result == IoResult::Closed)
    return op + ": " + peer + " closed the connection (it may have died)";
  return op + ": connection to " + peer +
         " failed: " + io::errnoText(result.err);
}

} // namespace dsflow::dist
