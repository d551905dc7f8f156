//===- Trainer.cpp - The training loop ------------------------------------===//
#include "plan/PlanFile.h"
#include "train/Trainer.h"

#include "train/LrSchedule.h"
#include "train/ParamInit.h"
#include "train/StepDump.h"

#include <chrono>
#include <cmath>
#include <cstring>

namespace dsflow::train {
namespace {

std::string duration(double seconds) {
  char text[32];
  long s = std::lround(seconds);
  if (s >= 3600)
    std::snprintf(text, sizeof(text), "%ldh%02ldm", s / 3600, s / 60 % 60);
  else
    std::snprintf(text, sizeof(text), "%ldm%02lds", s / 60, s % 60);
  return text;
}

/// The parameters as checkpoint tensors (pointing into the executor's memory).
std::vector<io::TensorRef> parameterTensors(exec::Memory &memory) {
  std::vector<io::TensorRef> tensors;
  const Plan &plan = memory.plan();
  for (int32_t i = 0; i < plan.buffers_size(); ++i) {
    const Buffer &b = plan.buffers(i);
    if (b.kind() != PARAMETER)
      continue;
    io::TensorRef ref;
    ref.name = b.name();
    ref.dtype = io::DType::F32;
    ref.shape.assign(b.shape().begin(), b.shape().end());
    ref.data = memory.data(i);
    ref.byteSize = static_cast<uint64_t>(b.bytes());
    tensors.push_back(std::move(ref));
  }
  return tensors;
}

} // namespace

Trainer::Trainer(exec::Executor &executor, const TrainOptions &options)
    : executor(executor), options(options),
      optimizer(executor.plan(), executor.plan().training().bf16_moments()),
      balance(executor.plan()) {}

io::Expected<std::unique_ptr<Trainer>>
Trainer::create(exec::Executor &executor, const TrainOptions &options) {
  if (executor.isDouble())
    return io::makeError(options.dataPath,
                         "training runs FP32 plans; this plan is FP64");
  std::unique_ptr<Trainer> t(new Trainer(executor, options));
  const Plan &plan = executor.plan();
  io::Expected<io::TokenData> data = io::TokenData::load(
      options.dataPath, {options.format, plan.model().vocab_size()});
  if (!data)
    return data.error();
  t->data = std::make_unique<io::TokenData>(std::move(*data));
  int64_t rows = plan.training().micro_batch();
  int64_t window = executor.tokenCount() / rows;
  io::Expected<io::DataSplit> split =
      io::splitTokens(*t->data, options.valFraction, window);
  if (!split)
    return split.error();
  t->split = *split;
  io::Expected<io::BatchSampler> sampler = io::BatchSampler::create(
      *t->data, t->split.train, rows, window, plan.training().seed());
  if (!sampler)
    return sampler.error();
  t->sampler = std::make_unique<io::BatchSampler>(std::move(*sampler));

  if (!options.resume && !options.checkpointDir.empty() &&
      io::hasCheckpoint(options.checkpointDir))
    return io::makeError(options.checkpointDir,
                         "already holds checkpoints: pass --resume to continue "
                         "from the latest, or choose another directory");
  initializeParameters(executor.memory(), plan.training().seed(),
                       options.initStd);
  if (options.resume && !options.checkpointDir.empty() &&
      io::hasCheckpoint(options.checkpointDir)) {
    io::Expected<io::Checkpoint> checkpoint =
        io::loadLatestCheckpoint(options.checkpointDir);
    if (!checkpoint)
      return checkpoint.error();
    if (io::Status e = t->resumeFrom(*checkpoint))
      return *e;
    if (t->startStep >= options.steps)
      return io::makeError(checkpoint->path,
                           "the checkpoint is at step " +
                               std::to_string(t->startStep) +
                               "; --steps " + std::to_string(options.steps) +
                               " would train nothing");
  }
  return t;
}

io::Status Trainer::resumeFrom(const io::Checkpoint &checkpoint) {
  exec::Memory &memory = executor.memory();
  const Plan &plan = executor.plan();
  for (int32_t i = 0; i < plan.buffers_size(); ++i) {
    const Buffer &b = plan.buffers(i);
    if (b.kind() != PARAMETER)
      continue;
    io::Expected<std::vector<float>> values = checkpoint.model.read<float>(
        b.name(), io::Shape(b.shape().begin(), b.shape().end()));
    if (!values)
      return values.error();
    std::memcpy(memory.data(i), values->data(), static_cast<size_t>(b.bytes()));
  }
  if (io::Status e = optimizer.loadState(checkpoint.optimizer))
    return e;
  if (io::Status e = sampler->restoreState(checkpoint.resume.dataPosition))
    return io::makeError(checkpoint.path, e->message);
  startStep = checkpoint.step;
  return std::nullopt;
}

io::Status Trainer::saveCheckpoint(int64_t step) {
  io::ResumeState resume{sampler->saveState(), ""};
  return io::saveCheckpoint(options.checkpointDir, step,
                            parameterTensors(executor.memory()),
                            optimizer.stateTensors(), resume);
}

io::Status Trainer::trainStep(int64_t step, double &loss, double &lmLoss,
                              double &mtpLoss) {
  const TrainingConfig &t = executor.plan().training();
  exec::Memory &memory = executor.memory();
  memory.zeroGradients();
  loss = lmLoss = mtpLoss = 0;
  int64_t microBatches = t.micro_batches();
  bool hasMtp = executor.plan().losses_size() > 2;
  for (int64_t mb = 0; mb < microBatches; ++mb) {
    sampler->next(batch);
    std::memcpy(executor.tokens(), batch.data(), batch.size() * sizeof(int32_t));
    if (io::Status e = executor.runMicroBatch())
      return e;
    if (io::Status e = balance.accumulate(memory))
      return e;
    loss += executor.loss(0) / double(microBatches);
    lmLoss += executor.loss(1) / double(microBatches);
    if (hasMtp)
      mtpLoss += executor.loss(2) / double(microBatches);
  }
  if (!std::isfinite(loss))
    return io::makeError(options.dataPath, "the loss became " +
                                               std::to_string(loss) +
                                               " at step " + std::to_string(step));
  // Mean over micro-batches, then clip the global norm.
  double gradScale = 1.0 / double(microBatches);
  double norm = optimizer.gradientNorm(memory, gradScale);
  if (t.grad_clip() > 0 && norm > t.grad_clip())
    gradScale *= t.grad_clip() / (norm + 1e-6);
  lastLr = learningRate(t, step);
  lastGradScale = gradScale;
  std::unique_ptr<StepDump> dump;
  if (!options.dumpStep.empty() && step == startStep)
    dump = std::make_unique<StepDump>(executor, batch);
  optimizer.step(memory, lastLr, gradScale);
  balance.updateBiases(memory, t.bias_update_speed());
  if (dump)
    return dump->finish(options.dumpStep, lastLr, gradScale, balance);
  return std::nullopt;
}

io::Expected<double> Trainer::evaluate() {
  if (split.validation.size() == 0)
    return io::makeError(options.dataPath, "no validation split");
  int64_t rows = executor.plan().training().micro_batch();
  io::Expected<io::EvalBatches> batches = io::EvalBatches::create(
      *data, split.validation, rows, executor.tokenCount() / rows);
  if (!batches)
    return batches.error();
  double sum = 0;
  int64_t used = 0;
  for (int64_t i = 0; i < batches->numBatches() && used < options.evalBatches;
       ++i) {
    if (batches->batch(i, batch) != rows)
      break; // Only full micro-batches fit the plan.
    std::memcpy(executor.tokens(), batch.data(), batch.size() * sizeof(int32_t));
    if (io::Status e = executor.runForward())
      return *e;
    sum += executor.loss(1);
    ++used;
  }
  if (used == 0)
    return io::makeError(options.dataPath,
                         "the validation split holds no full micro-batch");
  return sum / double(used);
}

io::Expected<TrainSummary> Trainer::run(const std::atomic<bool> &stop,
                                        std::FILE *log) {
  const TrainingConfig &t = executor.plan().training();
  TrainSummary summary;
  summary.firstStep = summary.lastStep = startStep;
  std::FILE *csv = nullptr;
  if (!options.lossLog.empty()) {
    csv = std::fopen(options.lossLog.c_str(), startStep > 0 ? "a" : "w");
    if (!csv)
      return io::makeError(options.lossLog, "cannot open the loss log");
    if (startStep == 0)
      std::fprintf(csv, "step,loss,lm_loss,mtp_loss,val_loss,lr,imbalance\n");
  }
  auto closeCsv = [&] {
    if (csv)
      std::fclose(csv);
  };
  int64_t tokensPerStep = t.micro_batches() * t.micro_batch() * t.seq_len();
  auto start = std::chrono::steady_clock::now();
  if (startStep > 0)
    std::fprintf(log, "resumed from step %lld\n", (long long)startStep);
  for (int64_t step = startStep; step < options.steps; ++step) {
    double loss, lmLoss, mtpLoss;
    if (io::Status e = trainStep(step, loss, lmLoss, mtpLoss)) {
      closeCsv();
      return *e;
    }
    int64_t done = step + 1;
    summary.lastStep = done;
    summary.finalLoss = loss;
    summary.finalLmLoss = lmLoss;
    summary.tokens += tokensPerStep;
    std::optional<double> val;
    bool last = done == options.steps || stop;
    if ((options.evalInterval > 0 && done % options.evalInterval == 0) ||
        (last && options.valFraction > 0)) {
      io::Expected<double> v = evaluate();
      if (!v) {
        closeCsv();
        return v.error();
      }
      val = *v;
      summary.finalValLoss = val;
    }
    double elapsed = std::chrono::duration<double>(
                         std::chrono::steady_clock::now() - start)
                         .count();
    summary.seconds = elapsed;
    if (csv)
      std::fprintf(csv, "%lld,%.6f,%.6f,%.6f,%s,%.6g,%.4f\n", (long long)done,
                   loss, lmLoss, mtpLoss,
                   val ? std::to_string(*val).c_str() : "", learningRate(t, step),
                   balance.imbalance());
    if (done % options.logInterval == 0 || last || val) {
      double rate = double(summary.tokens) / std::max(elapsed, 1e-9);
      double eta = elapsed / double(done - startStep) * double(options.steps - done);
      std::fprintf(log,
                   "step %lld/%lld | loss %.4f | lm %.4f | mtp %.4f%s | %.0f "
                   "tok/s | imbalance %.2f | lr %.2e | %s elapsed | ETA %s\n",
                   (long long)done, (long long)options.steps, loss, lmLoss,
                   mtpLoss,
                   val ? (" | val " + std::to_string(*val).substr(0, 6)).c_str()
                       : "",
                   rate, balance.imbalance(), learningRate(t, step),
                   duration(elapsed).c_str(), duration(eta).c_str());
      std::fflush(log);
    }
    bool periodic = options.checkpointInterval > 0 &&
                    done % options.checkpointInterval == 0;
    if (!options.checkpointDir.empty() && (periodic || last))
      if (io::Status e = saveCheckpoint(done)) {
        closeCsv();
        return *e;
      }
    if (stop && done < options.steps) {
      summary.interrupted = true;
      break;
    }
  }
  closeCsv();
  return summary;
}

} // namespace dsflow::train
