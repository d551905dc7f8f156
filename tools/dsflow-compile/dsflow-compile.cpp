//===- dsflow-compile.cpp - Compile a model description -------------------===//
//
// dsflow-compile MODEL [--emit=summary|graph|spec] [-o FILE]
// MODEL is a .pbtxt ModelSpec, a Hugging Face config.json or a DeepSeek inference
// config JSON. Output is written atomically: on any error no file is left.
//
//===----------------------------------------------------------------------===//
#include "Frontend/GraphBuilder.h"
#include "Frontend/ModelSpecLoader.h"
#include "Frontend/ParamSummary.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/raw_ostream.h"

#include <google/protobuf/text_format.h>

namespace cl = llvm::cl;

namespace {

enum class Emit { Summary, Graph, Spec };

cl::opt<std::string> modelPath(cl::Positional, cl::Required,
                               cl::desc("<model description>"));
cl::opt<Emit> emit(
    "emit", cl::desc("What to produce"), cl::init(Emit::Summary),
    cl::values(
        clEnumValN(Emit::Summary, "summary", "per-component parameter table"),
        clEnumValN(Emit::Graph, "graph", "the graph dialect module"),
        clEnumValN(Emit::Spec, "spec",
                   "the validated ModelSpec as text proto (converts JSON)")));
cl::opt<std::string> outputPath("o", cl::desc("Output file (default stdout)"),
                                cl::value_desc("file"), cl::init("-"));
cl::opt<int64_t> seqLen("seq-len", cl::desc("Sequence length"), cl::init(4096));
cl::opt<int64_t> microBatch("micro-batch", cl::desc("Sequences per micro-batch"),
                            cl::init(1));
cl::opt<double> mtpLossWeight("mtp-loss-weight",
                              cl::desc("Weight of the MTP loss (lambda)"),
                              cl::init(0.3));

int fail(const std::string &message) {
  llvm::errs() << "dsflow-compile: error: " << message << "\n";
  return 1;
}

} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  cl::ParseCommandLineOptions(argc, argv, "dsflow model compiler\n");
  if (seqLen <= 0)
    return fail("--seq-len must be positive, got " + std::to_string(seqLen));
  if (microBatch <= 0)
    return fail("--micro-batch must be positive, got " +
                std::to_string(microBatch));
  if (!(mtpLossWeight >= 0))
    return fail("--mtp-loss-weight must not be negative");

  std::string error;
  std::optional<dsflow::ModelSpec> spec = dsflow::loadModelSpec(modelPath, error);
  if (!spec)
    return fail(error);

  std::string text;
  llvm::raw_string_ostream os(text);
  if (emit == Emit::Spec) {
    google::protobuf::TextFormat::Printer printer;
    std::string out;
    printer.PrintToString(*spec, &out);
    os << "# ModelSpec of " << spec->name() << " (from " << modelPath << ")\n"
       << out;
  } else {
    mlir::MLIRContext context;
    dsflow::GraphOptions options;
    options.seqLen = seqLen;
    options.microBatch = microBatch;
    options.mtpLossWeight = mtpLossWeight;
    mlir::OwningOpRef<mlir::ModuleOp> module =
        dsflow::buildGraph(context, *spec, options);
    if (mlir::failed(mlir::verify(*module)))
      return fail(modelPath + ": the built graph does not verify (a dsflow bug)");
    if (emit == Emit::Graph)
      module->print(os);
    else
      dsflow::printParamSummary(dsflow::summarizeParameters(*module), *module,
                                os);
  }

  if (llvm::Error e = llvm::writeToOutput(
          outputPath, [&](llvm::raw_ostream &out) -> llvm::Error {
            out << text;
            return llvm::Error::success();
          }))
    return fail(outputPath + ": " + llvm::toString(std::move(e)));
  return 0;
}
