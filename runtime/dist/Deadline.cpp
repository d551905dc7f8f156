//===- Deadline.cpp - How long a collective may wait for peers ------------===//
#include "dist/Deadline.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace dsflow::dist {

io::Expected<double> parseCommTimeout(const char *text) {
  std::string value = text ? text : "";
  char *end = nullptr;
  errno = 0;
  double seconds = std::strtod(value.c_str(), &end);
  if (value.empty() || *end != '\0' || errno != 0 || !std::isfinite(seconds) ||
      seconds <= 0 || seconds > 1e7)
    return io::makeError("DSFLOW_COMM_TIMEOUT",
                         "'" + value +
                             "' is not a number of seconds (a positive "
                             "number, e.g. 300)");
  return seconds;
}

io::Expected<double> commTimeoutFromEnv() {
  const char *text = std::getenv("DSFLOW_COMM_TIMEOUT");
  if (!text)
    return kDefaultCommTimeoutSeconds;
  return parseCommTimeout(text);
}

std::string secondsText(double seconds) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%g s", seconds);
  return buffer;
}

std::string timedOutText(const std::string &op, double seconds,
                         const std::string &whom) {
  return op + " timed out after " + secondsText(seconds) + " waiting for " +
         whom +
         " (a rank may have died or be stuck; DSFLOW_COMM_TIMEOUT sets the "
         "limit)";
}

std::string ranksText(const std::vector<int> &ranks) {
  if (ranks.empty())
    return "peers";
  std::string text = ranks.size() == 1 ? "rank " : "ranks ";
  for (size_t i = 0; i < ranks.size(); ++i)
    text += (i ? ", " : "") + std::to_string(ranks[i]);
  return text;
}

int ProgressDeadline::remainingMs() const {
  auto limit = last + std::chrono::duration_cast<Clock::duration>(
                          std::chrono::duration<double>(timeout));
  auto left = limit - Clock::now();
  if (left <= Clock::duration::zero())
    return 0;
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
  return ms > 1000000000 ? 1000000000 : static_cast<int>(ms);
}

} // namespace dsflow::dist
