//===- LossLog.cpp - The CSV of every step's losses (--loss-log) ----------===//
#include "train/LossLog.h"

#include "io/AtomicFile.h"

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace dsflow::train {

io::Status trimLossLog(const std::string &path, int64_t lastStep) {
  std::ifstream in(path, std::ios::binary);
  if (!in) // a new log for the resumed run
    return io::writeFileAtomically(path, std::string(kLossLogHeader) + "\n");
  std::stringstream whole;
  whole << in.rdbuf();
  std::string text = whole.str();
  std::string kept = std::string(kLossLogHeader) + "\n";
  size_t start = 0;
  for (int line = 1; start < text.size(); ++line) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos)
      break; // a row cut off by a killed run
    std::string row = text.substr(start, end - start);
    start = end + 1;
    if (line == 1)
      continue; // the header
    errno = 0;
    char *after = nullptr;
    long long step = std::strtoll(row.c_str(), &after, 10);
    if (after == row.c_str() || *after != ',' || errno)
      return io::makeError(path + ":" + std::to_string(line),
                           "not a row of a loss log");
    if (step <= lastStep)
      kept += row + "\n";
  }
  if (kept == text)
    return std::nullopt;
  return io::writeFileAtomically(path, kept);
}

} // namespace dsflow::train
