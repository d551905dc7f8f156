//===- CudaModule.cpp - The plan's CUDA module ----------------------------===//
#include "Codegen/CudaModule.h"

#include "Codegen/CudaKernels.h"
#include "Codegen/CudaSupport.h"
#include "Codegen/Nvrtc.h"

#include <map>
#include <vector>

namespace dsflow::codegen {
namespace {

/// `body` with every @NAME@ replaced by `name`.
std::string named(std::string body, const std::string &name) {
  const std::string marker = "@NAME@";
  for (size_t at = body.find(marker); at != std::string::npos;
       at = body.find(marker, at + name.size()))
    body.replace(at, marker.size(), name);
  return body;
}

/// Whether an FP8 linear layer (forward or activation gradient) reads output
/// 0 of kernel k as its activation operand (input 0, in 1x128 tiles).
bool feedsFp8Linear(const Plan &plan, int k) {
  const Kernel &producer = plan.kernels(k);
  if (producer.outputs_size() == 0)
    return false;
  for (const Kernel &consumer : plan.kernels()) {
    bool fp8 = false;
    for (const Attribute &a : consumer.attributes())
      fp8 |= a.name() == "graph.fp8.format" && a.str() == "e4m3";
    if (fp8 && (consumer.op() == "linear" || consumer.op() == "linear_grad") &&
        consumer.inputs_size() > 0 && consumer.inputs(0) == producer.outputs(0))
      return true;
  }
  return false;
}

} // namespace

io::Status buildCudaModule(Plan &plan, const std::string &arch) {
  CudaModule module;
  module.set_arch(arch);
  // The support functions' numerics come first: quantizing variants use
  // them.
  std::string source = std::string(cudaModulePrelude()) + cudaSupportSource();
  std::map<std::string, std::string> functionOf; // body -> name
  std::vector<int32_t> launchOf(plan.kernels_size(), 0);
  for (int k = 0; k < plan.kernels_size(); ++k) {
    CudaLaunch *previous = nullptr;
    for (const CudaFunction &f : generateCudaFunctions(plan, plan.kernels(k))) {
      auto [it, added] = functionOf.try_emplace(
          f.body, "dsflow_" + plan.kernels(k).op() + "_" +
                      std::to_string(functionOf.size()));
      if (added)
        source += named(f.body, it->second) + "\n";
      CudaLaunch &launch = *module.add_launches();
      launch.set_function(it->second);
      launch.set_quantizes_output(f.quantizesOutput);
      if (!f.quantizingBody.empty() && feedsFp8Linear(plan, k)) {
        auto [q, fresh] =
            functionOf.try_emplace(f.quantizingBody, it->second + "_fp8");
        if (fresh)
          source += named(f.quantizingBody, q->second) + "\n";
        launch.set_quantizing_function(q->second);
      }
      launch.set_grid(f.grid);
      launch.set_block(f.block);
      launch.set_shared_bytes(f.sharedBytes);
      if (previous)
        previous->set_then(module.launches_size());
      else
        launchOf[k] = module.launches_size();
      previous = &launch;
    }
  }
  module.set_functions(static_cast<int32_t>(functionOf.size()));
  for (const std::string &name : cudaSupportFunctionNames())
    module.add_support_functions(name);
  io::Expected<CompiledCuda> compiled = compileCuda(source, arch);
  if (!compiled)
    return compiled.error();
  module.set_source(source);
  module.set_ptx(compiled->ptx);
  module.set_cubin(compiled->cubin);
  *plan.mutable_cuda() = std::move(module);
  for (int k = 0; k < plan.kernels_size(); ++k)
    plan.mutable_kernels(k)->set_cuda_launch(launchOf[k]);
  return std::nullopt;
}

} // namespace dsflow::codegen
