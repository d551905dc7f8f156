//===- ChromeTrace.cpp - Trace events per instruction ---------------------===//
#include "Schedule/ChromeTrace.h"

#include <cstdio>

namespace dsflow::schedule {

namespace {

constexpr int kCompute = 0, kCommunication = 1;
constexpr double kMicrosPerUnit = 1000;

class Events {
public:
  void metadata(int pid, int tid, const char *what, const std::string &name) {
    add("{\"ph\":\"M\",\"pid\":" + std::to_string(pid) +
        ",\"tid\":" + std::to_string(tid) + ",\"name\":\"" + what +
        "\",\"args\":{\"name\":\"" + name + "\"}}");
  }
  void complete(int pid, int tid, const std::string &name, const char *cat,
                double start, double end, const Chunk &chunk) {
    char times[96];
    std::snprintf(times, sizeof(times), "\"ts\":%.3f,\"dur\":%.3f",
                  start * kMicrosPerUnit, (end - start) * kMicrosPerUnit);
    add("{\"ph\":\"X\",\"pid\":" + std::to_string(pid) +
        ",\"tid\":" + std::to_string(tid) + ",\"name\":\"" + name +
        "\",\"cat\":\"" + cat + "\"," + times +
        ",\"args\":{\"micro_batch\":" + std::to_string(chunk.microBatch) +
        ",\"stage\":" + std::to_string(chunk.stage) + "}}");
  }
  std::string json() const {
    return "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n" + body + "\n]}\n";
  }

private:
  void add(const std::string &event) {
    body += (body.empty() ? "" : ",\n") + event;
  }
  std::string body;
};

/// The overlap steps of a pair, a quarter of its time each.
void pairSteps(Events &events, int rank, const Instruction &in,
               const InstructionTime &t) {
  const auto &slots = forwardBackwardOverlap();
  double step = (t.end - t.start) / double(slots.size());
  const char *half[] = {"F", "B"};
  for (size_t k = 0; k < slots.size(); ++k) {
    const OverlapSlot &slot = slots[k];
    double start = t.start + double(k) * step;
    auto chunkOf = [&](Half h) {
      return h == Half::Forward ? in.chunk : in.backward;
    };
    events.complete(rank, kCompute,
                    std::string(subChunkName(slot.compute)) + "." +
                        half[int(slot.computeHalf)],
                    "sub-chunk", start, start + step,
                    chunkOf(slot.computeHalf));
    events.complete(rank, kCommunication,
                    std::string(subChunkName(slot.communication)) + "." +
                        half[int(slot.communicationHalf)],
                    "all-to-all", start, start + step,
                    chunkOf(slot.communicationHalf));
  }
}

} // namespace

std::string chromeTraceJson(const PipelineSchedule &s,
                            const SimulationResult &r) {
  Events events;
  for (int rank = 0; rank < s.ranks; ++rank) {
    events.metadata(rank, kCompute, "process_name",
                    "rank " + std::to_string(rank));
    events.metadata(rank, kCompute, "thread_name", "compute");
    events.metadata(rank, kCommunication, "thread_name", "communication");
    for (size_t i = 0; i < s.streams[rank].size(); ++i) {
      const Instruction &in = s.streams[rank][i];
      const InstructionTime &t = r.times[rank][i];
      std::string name = describe(in);
      if (in.op == Op::ForwardBackward)
        name = "F " + describe(in.chunk) + " & B " + describe(in.backward);
      events.complete(rank, isCompute(in.op) ? kCompute : kCommunication, name,
                      opName(in.op), t.start, t.end, in.chunk);
      if (in.op == Op::ForwardBackward)
        pairSteps(events, rank, in, t);
    }
  }
  return events.json();
}

} // namespace dsflow::schedule
