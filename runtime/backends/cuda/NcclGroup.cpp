//===- NcclGroup.cpp - NCCL over a job's ranks, one GPU each --------------===//
#include "runtime/backends/cuda/NcclGroup.h"

#include <nccl.h>

#include "runtime/backends/cuda/DynamicSymbols.h"

namespace dsflow::cuda {

struct NcclGroup::Api {
  decltype(&::ncclGetUniqueId) getUniqueId;
  decltype(&::ncclCommInitRank) commInitRank;
  decltype(&::ncclCommDestroy) commDestroy;
  decltype(&::ncclAllReduce) allReduce;
  decltype(&::ncclGetErrorString) getErrorString;
};

namespace {

io::Status ncclError(const NcclGroup::Api &api, ncclResult_t result,
                     const std::string &what) {
  if (result == ncclSuccess)
    return std::nullopt;
  return io::makeError("nccl", what + ": " + api.getErrorString(result));
}
} // namespace

io::Expected<std::unique_ptr<NcclGroup>>
NcclGroup::create(dist::Communicator &world) {
  // Never unloaded: NCCL keeps threads of its own that could outlive us.
  void *library = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (!library)
    return io::makeError("nccl",
                         std::string("no NCCL library (") + dlerror() + ")");
  std::unique_ptr<NcclGroup> g(new NcclGroup());
  g->library = library;
  g->api = std::make_unique<Api>();
  Api &a = *g->api;
  if (!bindSymbol(library, "ncclGetUniqueId", a.getUniqueId) ||
      !bindSymbol(library, "ncclCommInitRank", a.commInitRank) ||
      !bindSymbol(library, "ncclCommDestroy", a.commDestroy) ||
      !bindSymbol(library, "ncclAllReduce", a.allReduce) ||
      !bindSymbol(library, "ncclGetErrorString", a.getErrorString))
    return io::makeError("nccl", "libnccl.so.2 lacks an entry point dsflow "
                                 "uses (NCCL 2 expected)");
  // Every rank takes part in the broadcast, even when rank 0 failed, so that
  // no rank waits: a failed id arrives as zeros and every rank reports it.
  ncclUniqueId id = {};
  ncclResult_t made = ncclSuccess;
  if (world.rank() == 0)
    made = a.getUniqueId(&id);
  int32_t ok = made == ncclSuccess;
  if (io::Status e = world.broadcast(&ok, sizeof(ok), 0))
    return *e;
  if (!ok)
    return io::makeError("nccl", "rank 0 could not make an NCCL id");
  if (io::Status e = world.broadcast(&id, sizeof(id), 0))
    return *e;
  ncclComm_t comm = nullptr;
  if (io::Status e =
          ncclError(a, a.commInitRank(&comm, world.size(), id, world.rank()),
                    "joining the ranks' NCCL communicator"))
    return *e;
  g->comm = comm;
  return g;
}

NcclGroup::~NcclGroup() {
  if (comm)
    api->commDestroy(static_cast<ncclComm_t>(comm));
}

io::Status NcclGroup::allReduceSum(CUdeviceptr data, int64_t count,
                                   CUstream stream) {
  void *p = reinterpret_cast<void *>(data);
  return ncclError(*api,
                   api->allReduce(p, p, size_t(count), ncclFloat32, ncclSum,
                                  static_cast<ncclComm_t>(comm),
                                  static_cast<cudaStream_t>(stream)),
                   "all-reduce of " + std::to_string(count) + " floats");
}

} // namespace dsflow::cuda
