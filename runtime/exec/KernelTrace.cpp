//===- KernelTrace.cpp - What the executor ran, as a Chrome trace ---------===//
#include "exec/KernelTrace.h"

#include <cstdio>

namespace dsflow::exec {

std::string chromeTraceEvents(const std::vector<KernelEvent> &events,
                              int rank) {
  std::string out;
  char line[256];
  for (const KernelEvent &e : events) {
    // Op names are identifiers: nothing to escape.
    std::snprintf(
        line, sizeof(line),
        "%s{\"name\": \"%s\", \"ph\": \"X\", \"pid\": %d, \"tid\": 0, "
        "\"ts\": %.3f, \"dur\": %.3f, \"args\": {\"kernel\": %d}}",
        out.empty() ? "" : ",\n", e.op.c_str(), rank, e.startUs, e.durationUs,
        e.kernel);
    out += line;
  }
  return out;
}

} // namespace dsflow::exec
