//===- dsflow-plan.cpp - Print a training plan readably -------------------===//
//
// dsflow-plan STEP.plan [--all]
// Prints the plan's model and training configuration, its memory plan, its
// programs (instruction streams), kernels and buffers. Long listings show their
// first rows unless --all is given.
//
//===----------------------------------------------------------------------===//
#include "KeptActivations.h"
#include "PipelineSummary.h"
#include "io/AtomicFile.h"
#include "plan/ComposedOps.h"
#include "plan/PlanFile.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>

using namespace dsflow;

namespace {

constexpr int kShortListing = 40;

const char *kindName(BufferKind kind) {
  switch (kind) {
  case PARAMETER:
    return "param";
  case GRADIENT:
    return "grad";
  case ACTIVATION:
    return "act";
  case INPUT:
    return "input";
  default:
    return "?";
  }
}

const char *dtypeName(DType dtype) {
  switch (dtype) {
  case DTYPE_F32:
    return "f32";
  case DTYPE_F64:
    return "f64";
  case DTYPE_BF16:
    return "bf16";
  case DTYPE_I32:
    return "i32";
  case DTYPE_FP8_E4M3:
    return "fp8";
  default:
    return "?";
  }
}

std::string shapeOf(const Buffer &b) {
  std::string s = "[";
  for (int i = 0; i < b.shape_size(); ++i)
    s += (i ? "x" : "") + std::to_string(b.shape(i));
  return s + "]";
}

std::string mib(int64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.2f MiB", bytes / 1048576.0);
  return text;
}

void printHeader(const Plan &plan) {
  const TrainingConfig &t = plan.training();
  std::printf("plan %s v%u: model %s (%lld layers, hidden %lld, vocab %lld)\n",
              plan.format().c_str(), kPlanFormatVersion,
              plan.model().name().c_str(),
              (long long)plan.model().num_layers(),
              (long long)plan.model().hidden_size(),
              (long long)plan.model().vocab_size());
  std::printf("step: %lld micro-batches of %lld x %lld tokens; AdamW lr %g "
              "(min %g, warmup %lld, cosine to %lld), weight decay %g, clip %g, "
              "%s moments; bias update %g; seed %llu\n",
              (long long)t.micro_batches(), (long long)t.micro_batch(),
              (long long)t.seq_len(), t.learning_rate(), t.min_learning_rate(),
              (long long)t.warmup_steps(), (long long)t.total_steps(),
              t.weight_decay(), t.grad_clip(), t.bf16_moments() ? "BF16" : "FP32",
              t.bias_update_speed(), (unsigned long long)t.seed());
  if (plan.has_cluster()) {
    const ClusterConfig &c = plan.cluster();
    std::printf("cluster: %d nodes x %d ranks per node = %lld ranks; pp %d, "
                "ep %d, dp %d; ZeRO-1 %s\n",
                c.nodes(), c.ranks_per_node(),
                (long long)c.nodes() * c.ranks_per_node(), c.pp(), c.ep(),
                c.dp(), c.zero1() ? "on" : "off");
  }
  if (plan.has_pipeline()) {
    const PipelinePlan &p = plan.pipeline();
    double most = 0, total = 0;
    for (const PipelineStage &s : p.stages()) {
      most = std::max(most, s.cost());
      total += s.cost();
    }
    double mean = p.stages_size() ? total / p.stages_size() : 0;
    std::printf("pipeline: %s, %d stages, stage cost max/mean %.3f\n",
                p.schedule().c_str(), p.stages_size(),
                mean > 0 ? most / mean : 1.0);
    for (int i = 0; i < p.stages_size(); ++i) {
      const PipelineStage &s = p.stages(i);
      std::printf("  stage %d: layers %lld-%lld%s%s%s, %.3g multiply-adds per "
                  "token\n",
                  i, (long long)s.first_layer(), (long long)s.end_layer() - 1,
                  s.embedding() ? " + embedding" : "",
                  s.head() ? " + head" : "", s.mtp() ? " + MTP" : "", s.cost());
    }
  }
  if (plan.has_expert_placement()) {
    const ExpertPlacement &p = plan.expert_placement();
    std::printf("expert placement: %d EP ranks x %d slots, %d MoE layers\n",
                p.ep_ranks(), p.slots_per_rank(), p.layers_size());
    for (const LayerPlacement &l : p.layers()) {
      std::printf("  layer %d:", l.layer());
      for (int r = 0; r < p.ep_ranks(); ++r) {
        std::printf(" [");
        for (int s = 0; s < p.slots_per_rank(); ++s) {
          int slot = r * p.slots_per_rank() + s;
          if (slot < l.slot_expert_size())
            std::printf(s ? " %d" : "%d", l.slot_expert(slot));
        }
        std::printf("]");
      }
      std::printf("\n");
    }
  }
}

void printMemory(const Plan &plan) {
  const MemoryPlan &m = plan.memory();
  std::printf("\nmemory plan:\n");
  std::printf("  parameters   %14lld bytes  %s\n", (long long)m.parameter_bytes(),
              mib(m.parameter_bytes()).c_str());
  std::printf("  gradients    %14lld bytes  %s\n", (long long)m.gradient_bytes(),
              mib(m.gradient_bytes()).c_str());
  std::printf("  inputs       %14lld bytes  %s\n", (long long)m.input_bytes(),
              mib(m.input_bytes()).c_str());
  std::printf("  activations  %14lld bytes  %s  (arena peak, by liveness)\n",
              (long long)m.activation_bytes(), mib(m.activation_bytes()).c_str());
  std::printf("  kept for the backward %5s%14lld bytes  %s  (live when it starts)\n",
              "", (long long)m.boundary_activation_bytes(),
              mib(m.boundary_activation_bytes()).c_str());
}

void printCuda(const Plan &plan) {
  const CudaModule &cuda = plan.cuda();
  if (!plan.has_cuda())
    return;
  std::map<std::string, int> launchesByOp; // kernels with launches, by op
  std::map<std::string, int> composedByOp; // the runtime composes
  std::map<std::string, int> missingByOp;  // and neither
  int generated = 0;
  for (const Kernel &k : plan.kernels())
    if (k.cuda_launch() > 0)
      launchesByOp[k.op()]++, ++generated;
    else if (composedPrecision(plan, k))
      composedByOp[k.op()]++;
    else
      missingByOp[k.op()]++;
  std::printf("\ncuda: %s module, %d functions for %d of %d kernels (%d "
              "launches); PTX %zu bytes, machine code %zu bytes\n",
              cuda.arch().c_str(), cuda.functions(), generated,
              plan.kernels_size(), cuda.launches_size(), cuda.ptx().size(),
              cuda.cubin().size());
  for (const auto &[op, count] : launchesByOp)
    std::printf("  %-22s %6d\n", op.c_str(), count);
  // What the CUDA runtime composes itself (cuBLASLt GEMMs and its support
  // functions), and what stays on the CPU.
  auto listed = [](const std::map<std::string, int> &byOp) {
    std::string list;
    for (const auto &[op, count] : byOp)
      list += (list.empty() ? "" : ", ") + op + " " + std::to_string(count);
    return list;
  };
  std::string composed = listed(composedByOp), missing = listed(missingByOp);
  if (!composed.empty())
    std::printf("  composed by the runtime (cuBLASLt, support functions): "
                "%s\n",
                composed.c_str());
  std::printf("  without device code: %s\n",
              missing.empty() ? "none" : missing.c_str());
  if (cuda.support_functions_size())
    std::printf("  runtime support functions: %d (the FFNs' SwiGLU, the optimizer, "
                "the FP8 recipe's quantization)\n",
                cuda.support_functions_size());
  int fused = 0;
  for (const CudaLaunch &launch : cuda.launches())
    fused += !launch.quantizing_function().empty();
  if (fused)
    std::printf("  rms_norm with the FP8 quantization of its output fused, for "
                "the linear layers reading it: %d\n",
                fused);
}

/// PREFIX.cu, PREFIX.ptx and PREFIX.cubin: the module's source, PTX and
/// machine code, for nvdisasm, cuobjdump or a profiler.
io::Status dumpCuda(const Plan &plan, const std::string &prefix) {
  if (!plan.has_cuda())
    return io::makeError("plan", "has no CUDA module (compile with --cuda)");
  const CudaModule &cuda = plan.cuda();
  for (const auto &[suffix, bytes] :
       {std::pair<const char *, const std::string *>{".cu", &cuda.source()},
        {".ptx", &cuda.ptx()},
        {".cubin", &cuda.cubin()}})
    if (io::Status e = io::writeFileAtomically(prefix + suffix, *bytes))
      return e;
  return std::nullopt;
}

void printPrograms(const Plan &plan, bool all) {
  std::printf("\nprograms:\n");
  for (const Program &p : plan.programs()) {
    std::printf("  %s (ranks", p.role().c_str());
    for (int32_t r : p.ranks())
      std::printf(" %d", r);
    std::printf("): %d kernels\n   ", p.kernels_size());
    int shown = all ? p.kernels_size() : std::min(p.kernels_size(), kShortListing);
    for (int i = 0; i < shown; ++i)
      std::printf(" %d:%s", p.kernels(i), plan.kernels(p.kernels(i)).op().c_str());
    if (shown < p.kernels_size())
      std::printf(" ... (%d more)", p.kernels_size() - shown);
    std::printf("\n");
  }
}

void printKernels(const Plan &plan, bool all) {
  std::map<std::string, int> byOp;
  int weightGrads = 0, backward = 0, recomputed = 0;
  for (const Kernel &k : plan.kernels()) {
    byOp[k.op()]++;
    weightGrads += k.weight_gradient();
    backward += k.backward();
    recomputed += k.recomputed();
  }
  std::map<int32_t, int> groupSizes;
  for (const Kernel &k : plan.kernels())
    groupSizes[k.fusion_group()]++;
  int fused = 0;
  for (const auto &[group, size] : groupSizes)
    fused += size > 1;
  std::printf("\nkernels: %d (%d backward, %d weight-gradient, %d recomputed), "
              "%zu fusion groups (%d of several kernels)\n",
              plan.kernels_size(), backward, weightGrads, recomputed,
              groupSizes.size(), fused);
  for (const auto &[op, count] : byOp)
    std::printf("  %-22s %6d\n", op.c_str(), count);
  int shown = all ? plan.kernels_size() : std::min(plan.kernels_size(), kShortListing);
  std::printf("  %-5s %-22s %-5s %s\n", "#", "op", "group", "inputs -> outputs");
  for (int i = 0; i < shown; ++i) {
    const Kernel &k = plan.kernels(i);
    std::printf("  %-5d %-22s %-5d", i, k.op().c_str(), k.fusion_group());
    for (int32_t b : k.inputs())
      std::printf(" %d", b);
    std::printf(" ->");
    for (int32_t b : k.outputs())
      std::printf(" %d", b);
    std::printf("%s%s\n", k.weight_gradient() ? "  [W]" : "",
                k.accumulates() ? "  [+=]" : "");
  }
  if (shown < plan.kernels_size())
    std::printf("  ... %d more (--all)\n", plan.kernels_size() - shown);
}

void printBuffers(const Plan &plan, bool all) {
  std::map<std::string, std::pair<int, int64_t>> byKind;
  for (const Buffer &b : plan.buffers()) {
    auto &[count, bytes] = byKind[kindName(b.kind())];
    count++;
    bytes += b.bytes();
  }
  std::printf("\nbuffers: %d\n", plan.buffers_size());
  for (const auto &[kind, stats] : byKind)
    std::printf("  %-6s %7d buffers, %14lld bytes before sharing\n", kind.c_str(),
                stats.first, (long long)stats.second);
  int shown = all ? plan.buffers_size() : std::min(plan.buffers_size(), kShortListing);
  std::printf("  %-6s %-6s %-5s %-18s %12s %12s  %s\n", "#", "kind", "type",
              "shape", "offset", "bytes", "name");
  for (int i = 0; i < shown; ++i) {
    const Buffer &b = plan.buffers(i);
    std::printf("  %-6d %-6s %-5s %-18s %12lld %12lld  %s\n", i, kindName(b.kind()),
                dtypeName(b.dtype()), shapeOf(b).c_str(), (long long)b.offset(),
                (long long)b.bytes(), b.name().c_str());
  }
  if (shown < plan.buffers_size())
    std::printf("  ... %d more (--all)\n", plan.buffers_size() - shown);
}

} // namespace

int main(int argc, char **argv) {
  const char *usage = "usage: dsflow-plan STEP.plan [--all] [--timeline "
                      "OUT.svg] [--trace OUT.json] [--cuda-dump PREFIX]\n";
  std::string timelinePath, tracePath, cudaPrefix;
  std::string path;
  bool all = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
      std::fputs(usage, stdout);
      return 0;
    }
    if (!std::strcmp(argv[i], "--all")) {
      all = true;
    } else if (!std::strcmp(argv[i], "--timeline") && i + 1 < argc) {
      timelinePath = argv[++i];
    } else if (!std::strcmp(argv[i], "--trace") && i + 1 < argc) {
      tracePath = argv[++i];
    } else if (!std::strcmp(argv[i], "--cuda-dump") && i + 1 < argc) {
      cudaPrefix = argv[++i];
    } else if (argv[i][0] == '-' || !path.empty()) {
      std::fprintf(stderr, "dsflow-plan: error: unexpected argument '%s'\n%s",
                   argv[i], usage);
      return 2;
    } else {
      path = argv[i];
    }
  }
  if (path.empty()) {
    std::fputs(usage, stderr);
    return 2;
  }
  io::Expected<Plan> plan = readPlanFile(path);
  if (!plan) {
    std::fprintf(stderr, "dsflow-plan: error: %s\n", plan.error().message.c_str());
    return 1;
  }
  printHeader(*plan);
  printMemory(*plan);
  printKeptActivations(*plan, all);
  if (io::Status e = printPipelineSummary(*plan, timelinePath, tracePath)) {
    std::fprintf(stderr, "dsflow-plan: error: %s\n", e->message.c_str());
    return 1;
  }
  printCuda(*plan);
  if (!cudaPrefix.empty())
    if (io::Status e = dumpCuda(*plan, cudaPrefix)) {
      std::fprintf(stderr, "dsflow-plan: error: %s\n", e->message.c_str());
      return 1;
    }
  printPrograms(*plan, all);
  printKernels(*plan, all);
  printBuffers(*plan, all);
  return 0;
}
