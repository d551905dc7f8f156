//===- MirrorDevice.h - A CPU executor posing as a device -------*- C++ -*-===//
//
// A device that is a second CPU executor with a memory of its own, filled
// with NaNs until copied to: the kernels it is given run there on its copy
// of their buffers. Offload's bookkeeping is then checked without a GPU:
// a copy it forgets, or makes from the wrong side, shows as a NaN or as a
// difference from the CPU backend alone, bitwise (the same kernels compute
// either way). A started download takes its bytes at once and fills the
// host's with NaNs until finished, so that reading them early shows.
// dsflow-run --device cpu-mirror runs every other kernel on one
// (cpu-mirror-all: every kernel); the offload tests give theirs an
// optimizer.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_RUNTIME_EXEC_MIRRORDEVICE_H
#define DSFLOW_RUNTIME_EXEC_MIRRORDEVICE_H

#include "exec/Executor.h"

#include <functional>
#include <set>
#include <utility>
#include <vector>

namespace dsflow::exec {

class MirrorDevice : public Device {
public:
  /// Runs the kernels `runs` picks on `side` (an executor of the same plan
  /// whose memory holds the buffers the host's does).
  MirrorDevice(std::unique_ptr<Executor> side,
               std::function<bool(int32_t)> runs);
  /// A mirror of `host`'s memory (the same buffers present).
  static io::Expected<std::unique_ptr<MirrorDevice>>
  of(Executor &host, std::function<bool(int32_t)> runs);

  std::string name() const override { return "cpu-mirror"; }
  bool runs(int32_t kernel) const override { return chosen(kernel); }
  io::Status upload(int32_t b, const std::byte *from) override;
  io::Status download(int32_t b, std::byte *to) override;
  io::Status startDownload(int32_t b, std::byte *to) override;
  io::Status finishDownloads() override;
  io::Status zero(int32_t b) override;
  io::Status launch(int32_t kernel) override;
  /// As the CUDA device: a routed FFN's first read of its row counts since
  /// they were written.
  bool waitsBeforeLaunch(int32_t kernel) const override;

protected:
  Executor &mirror() { return *side; }

private:
  size_t bytes(int32_t b) const;
  std::unique_ptr<Executor> side;
  std::function<bool(int32_t)> chosen;
  /// Started downloads: where to, and the bytes taken.
  std::vector<std::pair<std::byte *, std::vector<std::byte>>> started;
  /// Row-count buffers a routed FFN read since they were last written.
  std::set<int32_t> countsRead;
};

} // namespace dsflow::exec

#endif // DSFLOW_RUNTIME_EXEC_MIRRORDEVICE_H
