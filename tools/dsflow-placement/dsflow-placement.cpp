//===- dsflow-placement.cpp - Place routed experts onto EP ranks ----------===//
//
// dsflow-placement [--model M | --experts E --groups G] --nodes N --ep R
//                  [--slots-per-rank S] [--algorithm auto|hierarchical|global]
//                  [--loads FILE | --zipf s [--tokens T] [--seed X]]
//                  [--layers L] [--summary] [-o placement.json]
// Places each MoE layer's experts (DeepSeek's EPLB, compiler/Placement), prints
// the expected tokens per EP rank, max / mean, before (contiguous, no
// replicas) and after, and writes the placement as JSON. Loads come from a
// loads file (dsflow-run --expert-loads), from Zipf, or are uniform. Any bad
// flag or input: a one-line error, exit 1, no output file.
//
//===----------------------------------------------------------------------===//
#include "Frontend/ModelSpecLoader.h"
#include "Placement/ClusterPlacement.h"
#include "Placement/PlacementJson.h"
#include "Placement/SyntheticLoads.h"
#include "io/AtomicFile.h"

#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"

#include <cmath>
#include <cstdio>
#include <set>

namespace cl = llvm::cl;
using namespace dsflow;
using namespace dsflow::placement;

namespace {

// Bounds on what one run allocates (loads and slots over all layers).
constexpr int64_t kMaxLayers = 1 << 16;
constexpr int64_t kMaxEntries = int64_t(1) << 27;

cl::opt<std::string> modelPath(
    "model",
    cl::desc("Model description: experts, groups and MoE layers from it"),
    cl::value_desc("file"));
cl::opt<int64_t> experts("experts", cl::desc("Routed experts per layer"),
                         cl::init(0));
cl::opt<int64_t> groups("groups", cl::desc("Expert groups (default 1)"),
                        cl::init(1));
cl::opt<int64_t> nodes("nodes", cl::desc("Nodes"), cl::init(1));
cl::opt<int64_t> epRanks("ep", cl::desc("EP ranks (over all nodes)"),
                         cl::init(1));
cl::opt<int64_t> slotsPerRank(
    "slots-per-rank",
    cl::desc("Expert slots per EP rank (default experts / ep: no replicas)"),
    cl::init(0));
cl::opt<Algorithm> algorithm(
    "algorithm", cl::desc("Placement algorithm"), cl::init(Algorithm::Auto),
    cl::values(clEnumValN(Algorithm::Auto, "auto",
                          "hierarchical when groups % nodes == 0, else global"),
               clEnumValN(Algorithm::Hierarchical, "hierarchical",
                          "groups onto nodes, then within each node"),
               clEnumValN(Algorithm::Global, "global",
                          "over all slots and ranks at once")));
cl::opt<std::string> loadsPath("loads",
                               cl::desc("Measured loads (dsflow.expert_loads)"),
                               cl::value_desc("file"));
cl::opt<double> zipf("zipf", cl::desc("Synthetic Zipf loads with exponent s"),
                     cl::value_desc("s"));
cl::opt<int64_t> layerCount("layers",
                            cl::desc("MoE layers of synthetic loads (default: "
                                     "the model's, else 1)"),
                            cl::init(1));
cl::opt<int64_t> tokens("tokens",
                        cl::desc("Token-expert assignments per layer of "
                                 "synthetic loads"),
                        cl::init(1 << 20));
cl::opt<uint64_t> seed("seed", cl::desc("Seed of the Zipf permutations"),
                       cl::init(1));
cl::opt<bool> summaryOnly("summary",
                          cl::desc("Print the summary, not every layer"),
                          cl::init(false));
cl::opt<std::string> outputPath("o", cl::desc("Write the placement (JSON)"),
                                cl::value_desc("file"));

int fail(const std::string &message) {
  std::fprintf(stderr, "dsflow-placement: error: %s\n", message.c_str());
  return 1;
}

bool given(const cl::Option &option) { return option.getNumOccurrences() > 0; }

/// Checks that `value` from a flag agrees with the model's.
std::optional<std::string> agree(const cl::Option &flag, int64_t value,
                                 int64_t model, const std::string &what) {
  if (given(flag) && value != model)
    return "--" + flag.ArgStr.str() + " " + std::to_string(value) +
           " differs from the model's " + std::to_string(model) + " " + what;
  return std::nullopt;
}

std::string format(const char *fmt, double a, double b) {
  char text[96];
  std::snprintf(text, sizeof(text), fmt, a, b);
  return text;
}

void printReport(const Placement &placement, const PlacementReport &report,
                 const std::string &loadsDescription) {
  const PlacementLayout &l = placement.layout;
  std::printf("layout: %lld experts, %lld groups; %lld nodes x %lld EP ranks; "
              "%lld slots per rank (%lld redundant); %s placement\n",
              (long long)l.experts, (long long)l.groups, (long long)l.nodes,
              (long long)l.ranksPerNode(), (long long)l.slotsPerRank,
              (long long)(l.slots() - l.experts),
              algorithmName(placement.algorithm));
  std::printf("loads: %s; MoE layers: %zu\n", loadsDescription.c_str(),
              report.layers.size());
  if (!summaryOnly) {
    std::printf("\n| layer | rank max/mean before | after | node max/mean "
                "before | after | most replicas |\n"
                "|---:|---:|---:|---:|---:|---:|\n");
    for (const LayerReport &r : report.layers)
      std::printf("| %lld | %.3f | %.3f | %.3f | %.3f | %lld |\n",
                  (long long)r.layer, r.rankBefore.ratio(), r.rankAfter.ratio(),
                  r.nodeBefore.ratio(), r.nodeAfter.ratio(),
                  (long long)r.maxReplicas);
    std::printf("\n");
  }
  for (auto [name, over] :
       {std::pair{"rank", report.rank}, std::pair{"node", report.node}}) {
    std::printf(
        "%s max/mean, worst layer: %s\n", name,
        format("%.3f -> %.3f", over.worstBefore, over.worstAfter).c_str());
    std::printf(
        "%s max/mean, mean over layers: %s\n", name,
        format("%.3f -> %.3f", over.meanBefore, over.meanAfter).c_str());
  }
}

} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  cl::ParseCommandLineOptions(argc, argv, "dsflow expert placement (EPLB)\n");
  if (given(loadsPath) &&
      (given(zipf) || given(layerCount) || given(tokens) || given(seed)))
    return fail("--loads conflicts with --zipf, --layers, --tokens and --seed");
  if (given(zipf) && !(zipf >= 0 && std::isfinite(zipf)))
    return fail("--zipf must be a finite exponent >= 0");
  if (tokens < 0)
    return fail("--tokens must not be negative, got " + std::to_string(tokens));
  if (layerCount <= 0 || layerCount > kMaxLayers)
    return fail("--layers must be in [1, " + std::to_string(kMaxLayers) +
                "], got " + std::to_string(layerCount));

  PlacementLayout layout{experts, groups, nodes, epRanks, slotsPerRank};
  std::string modelName;
  std::vector<int64_t> layers;
  std::set<int64_t> modelLayers;
  if (given(modelPath)) {
    std::string error;
    std::optional<ModelSpec> spec = loadModelSpec(modelPath, error);
    if (!spec)
      return fail(error);
    modelName = spec->name();
    if (spec->moe().num_routed_experts() == 0)
      return fail(modelPath + ": the model has no routed experts");
    if (auto e = agree(experts, experts, spec->moe().num_routed_experts(),
                       "routed experts"))
      return fail(*e);
    if (auto e =
            agree(groups, groups, spec->moe().expert_groups(), "expert groups"))
      return fail(*e);
    if (given(layerCount))
      return fail("--layers conflicts with --model (the model's MoE layers "
                  "are placed)");
    layout.experts = spec->moe().num_routed_experts();
    layout.groups = spec->moe().expert_groups();
    layers = moeLayers(*spec);
    modelLayers.insert(layers.begin(), layers.end());
  }

  std::vector<io::LayerLoads> loads;
  std::string loadsDescription;
  if (given(loadsPath)) {
    io::Expected<io::ExpertLoads> file = io::readExpertLoads(loadsPath);
    if (!file)
      return fail(file.error().message);
    if (layout.experts == 0)
      layout.experts = static_cast<int64_t>(file->layers[0].loads.size());
    for (const io::LayerLoads &layer : file->layers)
      if (given(modelPath) && !modelLayers.count(layer.layer))
        return fail(loadsPath + ": layer " + std::to_string(layer.layer) +
                    " is not a MoE layer of " + modelName);
    if (modelName.empty())
      modelName = file->model;
    loads = std::move(file->layers);
    loadsDescription = "measured (" + loadsPath + ", model '" + file->model +
                       "', " + std::to_string(file->steps) + " steps)";
  } else if (layout.experts <= 0) {
    return fail("give --experts (positive), --model or --loads");
  }
  if (!given(slotsPerRank) && layout.epRanks > 0)
    layout.slotsPerRank = std::max<int64_t>(1, layout.experts / layout.epRanks);
  // The layout first: it bounds the sizes synthetic loads allocate.
  if (io::Status error = validateLayout(layout))
    return fail(error->message);

  if (layers.empty() && !given(loadsPath))
    for (int64_t l = 0; l < layerCount; ++l)
      layers.push_back(l);
  int64_t layerTotal = given(loadsPath) ? static_cast<int64_t>(loads.size())
                                        : static_cast<int64_t>(layers.size());
  if (layerTotal * std::max(layout.experts, layout.slots()) > kMaxEntries)
    return fail("too large: " + std::to_string(layerTotal) + " layers x " +
                std::to_string(std::max(layout.experts, layout.slots())) +
                " experts or slots exceeds " + std::to_string(kMaxEntries));

  if (given(loadsPath)) {
    if (io::Status error = checkLoads(layout, loads))
      return fail(loadsPath + ": " + error->message);
  } else {
    if (given(zipf)) {
      loads = zipfLoads(layers, layout.experts, zipf, tokens, seed);
      loadsDescription = format("Zipf s=%g, %.0f token-expert assignments "
                                "per layer",
                                zipf, static_cast<double>(tokens)) +
                         ", seed " + std::to_string(seed);
    } else {
      loads = uniformLoads(layers, layout.experts, tokens);
      loadsDescription = "uniform, " + std::to_string(tokens) +
                         " token-expert assignments per layer";
    }
  }
  io::Expected<Placement> placement = placeExperts(layout, algorithm, loads);
  if (!placement)
    return fail(placement.error().message);
  PlacementReport report = reportPlacement(*placement, loads);
  if (given(outputPath))
    if (io::Status error = io::writeFileAtomically(
            outputPath,
            encodePlacementJson(*placement, loads, report, modelName)))
      return fail(error->message);
  printReport(*placement, report, loadsDescription);
  return 0;
}
