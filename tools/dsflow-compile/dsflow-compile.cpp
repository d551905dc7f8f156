//===- dsflow-compile.cpp - Compile a model description -------------------===//
//
// dsflow-compile MODEL [--emit=summary|graph|spec|train-graph|plan] [-o FILE]
// MODEL is a .pbtxt ModelSpec, a Hugging Face config.json or a DeepSeek
// inference config JSON. Output is written atomically: on any error no file is
// left.
//
//===----------------------------------------------------------------------===//
#include "Cluster/ClusterConfig.h"
#include "Codegen/CudaModule.h"
#include "Frontend/GraphBuilder.h"
#include "Frontend/ModelSpecLoader.h"
#include "Frontend/ParamSummary.h"
#include "Pipelines/Pipelines.h"
#include "Placement/ClusterPlacement.h"
#include "Placement/PlacementProto.h"
#include "Placement/PlacementReport.h"
#include "Plan/PlanBuilder.h"
#include "ScheduleFlag.h"
#include "Schedule/ScheduleGenerators.h"
#include "Stages/StagePartition.h"
#include "plan/PlanFile.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Pass/PassManager.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/raw_ostream.h"

#include <google/protobuf/text_format.h>

namespace cl = llvm::cl;

namespace {

enum class Emit { Summary, Graph, Spec, TrainGraph, Plan };
enum class PrecisionFlag { FromModel, Fp32, Bf16, Fp8, Fp64 };

cl::OptionCategory compileCategory("Compilation");
cl::opt<std::string> modelPath(cl::Positional, cl::Required,
                               cl::desc("<model description>"), cl::cat(compileCategory));
cl::opt<Emit> emit(
    "emit", cl::desc("What to produce"), cl::init(Emit::Summary),
    cl::values(
        clEnumValN(Emit::Summary, "summary", "per-component parameter table"),
        clEnumValN(Emit::Graph, "graph", "the graph dialect module"),
        clEnumValN(Emit::Spec, "spec",
                   "the validated ModelSpec as text proto (converts JSON)"),
        clEnumValN(Emit::TrainGraph, "train-graph",
                   "the training step: the graph after dsflow-autodiff"),
        clEnumValN(Emit::Plan, "plan", "the executable plan (binary)")), cl::cat(compileCategory));
cl::opt<std::string> outputPath("o", cl::desc("Output file (default stdout)"),
                                cl::value_desc("file"), cl::init("-"), cl::cat(compileCategory));
cl::opt<int64_t> seqLen("seq-len", cl::desc("Sequence length"), cl::init(4096), cl::cat(compileCategory));
cl::opt<int64_t> microBatch("micro-batch",
                            cl::desc("Sequences per micro-batch"), cl::init(1), cl::cat(compileCategory));
cl::opt<double> mtpLossWeight("mtp-loss-weight",
                              cl::desc("Weight of the MTP loss (lambda)"),
                              cl::init(0.3), cl::cat(compileCategory));
cl::opt<PrecisionFlag> precision(
    "precision", cl::desc("Override the model's precision"),
    cl::init(PrecisionFlag::FromModel),
    cl::values(clEnumValN(PrecisionFlag::Fp32, "fp32", "FP32"),
               clEnumValN(PrecisionFlag::Bf16, "bf16", "BF16"),
               clEnumValN(PrecisionFlag::Fp8, "fp8", "BF16 with FP8 GEMMs"),
               clEnumValN(PrecisionFlag::Fp64, "fp64",
                          "everything in FP64 (gradient checks)")), cl::cat(compileCategory));

cl::list<std::string> recompute(
    "recompute",
    cl::desc("Recompute in the backward: rmsnorm, mla_up_proj, swiglu, "
             "moe_dispatch, all (the first three), none (default)"),
    cl::CommaSeparated, cl::cat(compileCategory));

cl::opt<bool> fp8("fp8",
                  cl::desc("FP8 GEMMs with fine-grained scaling (DeepSeek-V3, cl::cat(compileCategory)); "
                           "on by default for FP8 models"),
                  cl::init(false));
cl::opt<bool>
    fp8Ue8m0("fp8-ue8m0",
             cl::desc("With --fp8: scales rounded up to powers of two"),
             cl::init(false), cl::cat(compileCategory));

cl::opt<bool> cuda("cuda",
                   cl::desc("With --emit=plan: generate the memory-bound "
                            "kernels in CUDA and compile them (NVRTC) to PTX "
                            "and machine code for --cuda-arch"),
                   cl::init(false), cl::cat(compileCategory));
cl::opt<std::string> cudaArch("cuda-arch",
                              cl::desc("GPU architecture for --cuda"),
                              cl::init("sm_90a"), cl::cat(compileCategory));

// The cluster, recorded in the plan (docs/distributed.md).
cl::OptionCategory clusterCategory("Cluster (recorded in the plan)");
cl::opt<std::string>
    clusterPath("cluster",
                cl::desc("Cluster description (ClusterConfig text proto)"),
                cl::value_desc("file"), cl::cat(clusterCategory));
cl::opt<int> nodes("nodes", cl::desc("Nodes"), cl::init(1),
                   cl::cat(clusterCategory));
cl::opt<int> ranksPerNode("ranks-per-node", cl::desc("Ranks (GPUs) per node"),
                          cl::init(1), cl::cat(clusterCategory));
cl::opt<int> pipelineDegree("pp", cl::desc("Pipeline-parallel stages"),
                            cl::init(1), cl::cat(clusterCategory));
cl::opt<int> expertDegree("ep", cl::desc("Expert-parallel degree"), cl::init(1),
                          cl::cat(clusterCategory));
cl::opt<int>
    dataDegree("dp",
               cl::desc("Data-parallel replicas of an expert-parallel group"),
               cl::init(1), cl::cat(clusterCategory));
cl::opt<std::string> expertLoadsPath(
    "expert-loads",
    cl::desc("Router loads (dsflow-run --expert-loads) to place the experts "
             "by (EPLB; needs --ep > 1)"),
    cl::value_desc("file"), cl::cat(clusterCategory));
cl::opt<int64_t> slotsPerRank(
    "slots-per-rank",
    cl::desc("Expert slots per EP rank; those beyond experts / ep hold "
             "replicas of hot experts (needs --ep > 1)"),
    cl::init(0), cl::cat(clusterCategory));
using dsflow::schedule::ScheduleKind;
cl::opt<ScheduleKind> pipelineSchedule(
    "pipeline-schedule",
    cl::desc("Pipeline schedule when --pp > 1 (default dualpipe)"),
    cl::init(ScheduleKind::DualPipe), dsflow::scheduleKindValues(),
    cl::cat(clusterCategory));
cl::opt<bool> zero1("zero1",
                    cl::desc("Shard the optimizer state over the data-parallel "
                             "ranks (ZeRO-1; default on)"),
                    cl::init(true), cl::cat(clusterCategory));

// The training step's configuration, recorded in the plan.
cl::OptionCategory trainingCategory("Training (recorded in the plan)");
cl::opt<int64_t> microBatches("micro-batches",
                              cl::desc("Micro-batches per optimizer step"),
                              cl::init(1), cl::cat(trainingCategory));
cl::opt<double> learningRate("lr", cl::desc("Peak learning rate"),
                             cl::init(1e-3), cl::cat(trainingCategory));
cl::opt<double> minLearningRate("min-lr",
                                cl::desc("Learning rate at the end of decay"),
                                cl::init(1e-4), cl::cat(trainingCategory));
cl::opt<int64_t> warmupSteps("warmup-steps", cl::desc("Linear warmup steps"),
                             cl::init(100), cl::cat(trainingCategory));
cl::opt<int64_t> totalSteps("total-steps",
                            cl::desc("Steps of the cosine schedule"),
                            cl::init(2000), cl::cat(trainingCategory));
cl::opt<double> weightDecay("weight-decay", cl::desc("AdamW weight decay"),
                            cl::init(0.1), cl::cat(trainingCategory));
cl::opt<double> gradClip("grad-clip",
                         cl::desc("Global gradient-norm clip (0 disables)"),
                         cl::init(1.0), cl::cat(trainingCategory));
cl::opt<bool> bf16Moments("bf16-moments",
                          cl::desc("Store AdamW moments in BF16 (DeepSeek-V3)"),
                          cl::init(false), cl::cat(trainingCategory));
cl::opt<double> biasUpdateSpeed(
    "bias-update-speed",
    cl::desc("Auxiliary-loss-free balancing step gamma (0 disables)"),
    cl::init(0.001), cl::cat(trainingCategory));
cl::opt<double>
    balanceLossAlpha("balance-loss-alpha",
                     cl::desc("Sequence-wise balance loss weight (0 disables)"),
                     cl::init(0.0001), cl::cat(trainingCategory));
cl::opt<uint64_t> seed("seed", cl::desc("Initialization and data seed"),
                       cl::init(1234), cl::cat(trainingCategory));

/// Pipeline stages of the schedule: DualPipeV runs 2 on each of the pp ranks.
int64_t pipelineStages(const dsflow::ClusterConfig &cluster) {
  return pipelineSchedule == ScheduleKind::DualPipeV ? 2 * int64_t(cluster.pp())
                                                     : int64_t(cluster.pp());
}

/// The schedule's demands on the pipeline degree and the micro-batches (the
/// micro-batches of a step go through the pipeline); the problem, or "".
std::string checkSchedule(const dsflow::ClusterConfig &cluster) {
  if (pipelineSchedule.getNumOccurrences() && cluster.pp() == 1)
    return "--pipeline-schedule needs --pp > 1";
  if (cluster.pp() == 1)
    return "";
  if (dsflow::io::Status e = dsflow::schedule::checkScheduleSizes(
          pipelineSchedule, int(pipelineStages(cluster)), int(microBatches)))
    return "cluster: " + e->message;
  return "";
}

/// Splits the decoder layers into the schedule's stages (DualPipeV runs 2
/// stages on each of the pp ranks) and records them; the problem, or "".
std::string recordPipeline(const dsflow::ModelSpec &spec,
                           const dsflow::ClusterConfig &cluster,
                           dsflow::Plan &plan) {
  if (cluster.pp() <= 1)
    return "";
  auto stages = dsflow::stages::partitionStages(
      dsflow::stages::estimateCosts(spec, seqLen), pipelineStages(cluster));
  if (!stages)
    return "cluster: " + stages.error().message;
  dsflow::PipelinePlan &p = *plan.mutable_pipeline();
  p.set_schedule(dsflow::schedule::scheduleName(pipelineSchedule));
  for (const dsflow::stages::Stage &s : *stages) {
    dsflow::PipelineStage &r = *p.add_stages();
    r.set_first_layer(s.firstLayer);
    r.set_end_layer(s.endLayer);
    r.set_embedding(s.embedding);
    r.set_head(s.head);
    r.set_mtp(s.mtp);
    r.set_cost(s.cost);
  }
  return "";
}

/// Records the expert placement when loads or extra slots are given (without
/// either, the runtime's contiguous default needs no record); prints the
/// expected imbalance per EP rank before and after. The problem, or "".
std::string recordPlacement(const dsflow::ModelSpec &spec,
                            const dsflow::ClusterConfig &cluster,
                            dsflow::Plan &plan) {
  namespace placement = dsflow::placement;
  bool loadsGiven = !expertLoadsPath.empty();
  if (!loadsGiven && slotsPerRank.getNumOccurrences() == 0)
    return "";
  if (cluster.ep() <= 1)
    return "--expert-loads and --slots-per-rank place experts over EP ranks: "
           "give --ep > 1";
  std::optional<dsflow::io::ExpertLoads> loads;
  if (loadsGiven) {
    dsflow::io::Expected<dsflow::io::ExpertLoads> file =
        dsflow::io::readExpertLoads(expertLoadsPath);
    if (!file)
      return file.error().message;
    loads = std::move(*file);
  }
  placement::PlacementLayout layout =
      placement::epGroupLayout(spec, cluster, slotsPerRank);
  std::string where = loadsGiven ? expertLoadsPath + ": " : "";
  auto layerLoads =
      placement::modelLoads(spec, layout.experts, loads ? &*loads : nullptr);
  if (!layerLoads)
    return where + layerLoads.error().message;
  dsflow::io::Expected<placement::Placement> placed =
      placement::placeExperts(layout, placement::Algorithm::Auto, *layerLoads);
  if (!placed)
    return where + placed.error().message;
  *plan.mutable_expert_placement() = placement::toProto(*placed);
  placement::PlacementReport report =
      placement::reportPlacement(*placed, *layerLoads);
  std::printf("expert placement: %s, %lld slots per EP rank (%lld replicas); "
              "max/mean tokens per EP rank, worst layer: %.3f -> %.3f\n",
              placement::algorithmName(placed->algorithm),
              (long long)layout.slotsPerRank,
              (long long)(layout.slots() - layout.experts),
              report.rank.worstBefore, report.rank.worstAfter);
  return "";
}

/// The layout from --cluster or from the degree flags (not both).
std::optional<dsflow::ClusterConfig> clusterLayout(std::string &error) {
  bool flags = nodes.getNumOccurrences() || ranksPerNode.getNumOccurrences() ||
               pipelineDegree.getNumOccurrences() ||
               expertDegree.getNumOccurrences() ||
               dataDegree.getNumOccurrences();
  if (!clusterPath.empty()) {
    if (flags) {
      error = "give the layout as --cluster FILE or as --nodes/--ranks-per-"
              "node/--pp/--ep/--dp flags, not both";
      return std::nullopt;
    }
    std::optional<dsflow::ClusterConfig> c =
        dsflow::loadClusterConfig(clusterPath, error);
    if (c && zero1.getNumOccurrences())
      c->set_zero1(zero1);
    return c;
  }
  dsflow::ClusterConfig c;
  c.set_nodes(nodes);
  c.set_ranks_per_node(ranksPerNode);
  c.set_pp(pipelineDegree);
  c.set_ep(expertDegree);
  c.set_dp(dataDegree);
  c.set_zero1(zero1);
  return c;
}

int fail(const std::string &message) {
  llvm::errs() << "dsflow-compile: error: " << message << "\n";
  return 1;
}

} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  // LLVM's own options (linked in with MLIR) are not for users.
  cl::HideUnrelatedOptions({&compileCategory, &clusterCategory, &trainingCategory});
  cl::ParseCommandLineOptions(argc, argv, "dsflow model compiler\n");
  if (seqLen <= 0)
    return fail("--seq-len must be positive, got " + std::to_string(seqLen));
  if (microBatch <= 0)
    return fail("--micro-batch must be positive, got " +
                std::to_string(microBatch));
  if (!(mtpLossWeight >= 0))
    return fail("--mtp-loss-weight must not be negative");
  if (emit == Emit::Plan && outputPath == "-")
    return fail("--emit=plan writes a binary file: give -o FILE");
  if (cuda && emit != Emit::Plan)
    return fail("--cuda generates the kernels of a plan: use --emit=plan");
  if (microBatches <= 0)
    return fail("--micro-batches must be positive, got " +
                std::to_string(microBatches));
  if (!(learningRate > 0) || !(minLearningRate >= 0) ||
      minLearningRate > learningRate)
    return fail("learning rates must satisfy 0 <= --min-lr <= --lr, --lr > 0");
  if (warmupSteps < 0 || totalSteps <= 0)
    return fail("--warmup-steps must not be negative and --total-steps must "
                "be positive");
  if (!(weightDecay >= 0) || !(gradClip >= 0) || !(biasUpdateSpeed >= 0) ||
      !(balanceLossAlpha >= 0))
    return fail("--weight-decay, --grad-clip, --bias-update-speed and "
                "--balance-loss-alpha must not be negative");

  std::string error;
  std::optional<dsflow::ModelSpec> spec =
      dsflow::loadModelSpec(modelPath, error);
  if (!spec)
    return fail(error);
  std::optional<dsflow::ClusterConfig> cluster = clusterLayout(error);
  if (!cluster)
    return fail(error);
  if (std::string rule = dsflow::validateCluster(*cluster, *spec);
      !rule.empty())
    return fail("cluster: " + rule);
  if (std::string problem = checkSchedule(*cluster); !problem.empty())
    return fail(problem);
  if (precision != PrecisionFlag::FromModel && precision != PrecisionFlag::Fp64)
    spec->set_precision(precision == PrecisionFlag::Fp32   ? dsflow::FP32
                        : precision == PrecisionFlag::Bf16 ? dsflow::BF16
                                                           : dsflow::FP8);

  std::string text;
  llvm::raw_string_ostream os(text);
  mlir::MLIRContext context;
  mlir::OwningOpRef<mlir::ModuleOp> module;
  if (emit != Emit::Spec) {
    dsflow::GraphOptions options;
    options.seqLen = seqLen;
    options.microBatch = microBatch;
    options.mtpLossWeight = mtpLossWeight;
    options.float64 = precision == PrecisionFlag::Fp64;
    options.balanceLossAlpha = balanceLossAlpha;
    module = dsflow::buildGraph(context, *spec, options);
    if (mlir::failed(mlir::verify(*module)))
      return fail(modelPath +
                  ": the built graph does not verify (a dsflow bug)");
  }
  if (emit == Emit::TrainGraph || emit == Emit::Plan) {
    mlir::PassManager pm(&context);
    dsflow::TrainingPipelineOptions pipeline;
    pipeline.recompute.assign(recompute.begin(), recompute.end());
    pipeline.fp8 = fp8 || spec->precision() == dsflow::FP8;
    pipeline.fp8Ue8m0 = fp8Ue8m0 || spec->fp8_ue8m0_scales();
    dsflow::buildTrainingPipeline(pm, pipeline);
    if (mlir::failed(pm.run(*module)))
      return fail(modelPath + ": the training pipeline failed");
  }

  switch (emit) {
  case Emit::Spec: {
    google::protobuf::TextFormat::Printer printer;
    std::string out;
    printer.PrintToString(*spec, &out);
    os << "# ModelSpec of " << spec->name() << " (from " << modelPath << ")\n"
       << out;
    break;
  }
  case Emit::Graph:
  case Emit::TrainGraph:
    module->print(os);
    break;
  case Emit::Summary:
    dsflow::printParamSummary(dsflow::summarizeParameters(*module), *module,
                              os);
    break;
  case Emit::Plan: {
    dsflow::TrainingConfig training;
    training.set_seq_len(seqLen);
    training.set_micro_batch(microBatch);
    training.set_micro_batches(microBatches);
    training.set_mtp_loss_weight(mtpLossWeight);
    training.set_learning_rate(learningRate);
    training.set_min_learning_rate(minLearningRate);
    training.set_warmup_steps(warmupSteps);
    training.set_total_steps(totalSteps);
    training.set_beta1(0.9);
    training.set_beta2(0.95);
    training.set_epsilon(1e-8);
    training.set_weight_decay(weightDecay);
    training.set_grad_clip(gradClip);
    training.set_bf16_moments(bf16Moments);
    training.set_bias_update_speed(biasUpdateSpeed);
    training.set_balance_loss_alpha(balanceLossAlpha);
    training.set_seed(seed);
    // Zero-bubble schedules run the weight gradients after the rest of a
    // chunk's backward: the arena must keep their inputs.
    bool deferWeightGradients =
        cluster->pp() > 1 && pipelineSchedule != ScheduleKind::OneFOneB;
    std::optional<dsflow::Plan> plan =
        dsflow::buildPlan(*module, *spec, training, deferWeightGradients);
    if (!plan)
      return fail(modelPath + ": cannot lower the training step to a plan");
    *plan->mutable_cluster() = *cluster;
    if (std::string problem = recordPlacement(*spec, *cluster, *plan);
        !problem.empty())
      return fail(problem);
    if (std::string problem = recordPipeline(*spec, *cluster, *plan);
        !problem.empty())
      return fail(problem);
    if (cuda)
      if (dsflow::io::Status e =
              dsflow::codegen::buildCudaModule(*plan, cudaArch))
        return fail(modelPath + ": " + e->message);
    if (dsflow::io::Status e = dsflow::writePlanFile(outputPath, *plan))
      return fail(e->message);
    return 0;
  }
  }

  if (llvm::Error e = llvm::writeToOutput(
          outputPath, [&](llvm::raw_ostream &out) -> llvm::Error {
            out << text;
            return llvm::Error::success();
          }))
    return fail(outputPath + ": " + llvm::toString(std::move(e)));
  return 0;
}
