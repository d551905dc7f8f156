//===- MirrorDevice.cpp - A CPU executor posing as a device ---------------===//
#include "exec/MirrorDevice.h"
#include "plan/ComposedOps.h"

#include <algorithm>
#include <cstring>

namespace dsflow::exec {

MirrorDevice::MirrorDevice(std::unique_ptr<Executor> executor,
                           std::function<bool(int32_t)> runs)
    : side(std::move(executor)), chosen(std::move(runs)) {
  for (int32_t b = 0; b < side->plan().buffers_size(); ++b)
    if (side->memory().present(b))
      std::memset(side->memory().data(b), 0xFF, bytes(b)); // NaNs
}

io::Expected<std::unique_ptr<MirrorDevice>>
MirrorDevice::of(Executor &host, std::function<bool(int32_t)> runs) {
  io::Expected<std::unique_ptr<Executor>> side =
      Executor::create(host.plan(), "cpu-mirror", nullptr, [&host](int32_t b) {
        return !host.memory().present(b);
      });
  if (!side)
    return side.error();
  return std::make_unique<MirrorDevice>(std::move(*side), std::move(runs));
}

size_t MirrorDevice::bytes(int32_t b) const {
  return static_cast<size_t>(side->plan().buffers(b).bytes());
}

io::Status MirrorDevice::upload(int32_t b, const std::byte *from) {
  countsRead.erase(b);
  std::memcpy(side->memory().data(b), from, bytes(b));
  return std::nullopt;
}

io::Status MirrorDevice::download(int32_t b, std::byte *to) {
  std::memcpy(to, side->memory().data(b), bytes(b));
  return std::nullopt;
}

io::Status MirrorDevice::startDownload(int32_t b, std::byte *to) {
  const std::byte *from = side->memory().data(b);
  started.emplace_back(to, std::vector<std::byte>(from, from + bytes(b)));
  std::memset(to, 0xFF, bytes(b));
  return std::nullopt;
}

io::Status MirrorDevice::finishDownloads() {
  for (auto &[to, bytes] : started)
    std::copy(bytes.begin(), bytes.end(), to);
  started.clear();
  return std::nullopt;
}

io::Status MirrorDevice::zero(int32_t b) {
  countsRead.erase(b);
  std::memset(side->memory().data(b), 0, bytes(b));
  return std::nullopt;
}

bool MirrorDevice::waitsBeforeLaunch(int32_t kernel) const {
  int32_t counts = routedRowCounts(side->plan().kernels(kernel));
  return chosen(kernel) && counts >= 0 && !countsRead.count(counts);
}

io::Status MirrorDevice::launch(int32_t kernel) {
  const Kernel &k = side->plan().kernels(kernel);
  for (int32_t b : k.outputs())
    countsRead.erase(b);
  if (int32_t counts = routedRowCounts(k); counts >= 0)
    countsRead.insert(counts);
  std::vector<char> one(side->plan().kernels_size(), 0);
  one[kernel] = 1;
  return side->runKernels(one, nullptr);
}

} // namespace dsflow::exec
