//===- Deadline.h - How long a collective may wait for peers ----*- C++ -*-===//
//
// A collective fails once it has made no progress (no message or byte moved)
// for the timeout: a large transfer may take longer than the timeout in total,
// but a dead or stuck peer is noticed within it.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_DIST_DEADLINE_H
#define DSFLOW_DIST_DEADLINE_H

#include "io/Status.h"

#include <chrono>
#include <string>
#include <vector>

namespace dsflow::dist {

/// The default of DSFLOW_COMM_TIMEOUT, in seconds.
constexpr double kDefaultCommTimeoutSeconds = 300;

/// Parses a DSFLOW_COMM_TIMEOUT value: seconds, a positive number.
io::Expected<double> parseCommTimeout(const char *text);

/// DSFLOW_COMM_TIMEOUT from the environment (the default when unset).
io::Expected<double> commTimeoutFromEnv();

/// "300 s", "2.5 s".
std::string secondsText(double seconds);

/// "<op> timed out after T s waiting for <whom> (a rank may have died or be
/// stuck; ...)": the one message every transport gives for a silent peer.
std::string timedOutText(const std::string &op, double seconds,
                         const std::string &whom);

/// "rank 3", "ranks 1, 3" for world ranks; "peers" when none is known.
std::string ranksText(const std::vector<int> &ranks);

class ProgressDeadline {
public:
  using Clock = std::chrono::steady_clock;
  explicit ProgressDeadline(double seconds)
      : timeout(seconds), last(Clock::now()) {}

  /// Something moved: the wait starts over.
  void progress() { last = Clock::now(); }
  bool expired() const { return remainingMs() == 0; }
  /// Milliseconds left before expiry, rounded up (0 once expired).
  int remainingMs() const;
  double seconds() const { return timeout; }

private:
  double timeout;
  Clock::time_point last;
};

} // namespace dsflow::dist

#endif // DSFLOW_DIST_DEADLINE_H
