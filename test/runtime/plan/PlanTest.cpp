//===- PlanTest.cpp - Plan validation and kernel binding of bad plans -----===//
//
// A plan is untrusted input. These tests build a small valid plan by hand and
// break it one way at a time: the loader or the binder must refuse it with a
// message that names the problem, and nothing may crash.
//
//===----------------------------------------------------------------------===//
#include "exec/Executor.h"
#include "plan/PlanFile.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>

namespace dsflow {
namespace {

Buffer *addBuffer(Plan &plan, const std::string &name, DType dtype,
                  std::vector<int64_t> shape, BufferKind kind, int64_t offset) {
  Buffer *b = plan.add_buffers();
  b->set_name(name);
  b->set_dtype(dtype);
  for (int64_t d : shape)
    b->add_shape(d);
  b->set_kind(kind);
  b->set_offset(offset);
  b->set_bytes(numElements(*b) * dtypeBytes(dtype));
  return b;
}

/// tokens -> embedding -> linear -> cross_entropy, forward only.
Plan tinyPlan() {
  Plan plan;
  plan.set_format(kPlanFormatId);
  TrainingConfig &t = *plan.mutable_training();
  t.set_seq_len(4);
  t.set_micro_batch(1);
  t.set_micro_batches(1);
  addBuffer(plan, "tokens", DTYPE_I32, {1, 5}, INPUT, 0);           // 0
  addBuffer(plan, "embed", DTYPE_F32, {8, 4}, PARAMETER, 0);        // 1
  addBuffer(plan, "w", DTYPE_F32, {8, 4}, PARAMETER, 128);          // 2
  addBuffer(plan, "ids", DTYPE_I32, {1, 4}, ACTIVATION, 0);         // 3
  addBuffer(plan, "labels", DTYPE_I32, {1, 4}, ACTIVATION, 64);     // 4
  addBuffer(plan, "x", DTYPE_F32, {1, 4, 4}, ACTIVATION, 128);      // 5
  addBuffer(plan, "logits", DTYPE_F32, {1, 4, 8}, ACTIVATION, 192); // 6
  addBuffer(plan, "loss", DTYPE_F32, {}, ACTIVATION, 320);          // 7
  addBuffer(plan, "lse", DTYPE_F32, {4}, ACTIVATION, 384);          // 8
  auto kernel = [&](const char *op, std::vector<int32_t> in,
                    std::vector<int32_t> out) {
    Kernel *k = plan.add_kernels();
    k->set_op(op);
    for (int32_t b : in)
      k->add_inputs(b);
    for (int32_t b : out)
      k->add_outputs(b);
    return k;
  };
  Attribute offset;
  offset.set_name("offset");
  offset.set_i64(0);
  *kernel("token_window", {0}, {3})->add_attributes() = offset;
  offset.set_i64(1);
  *kernel("token_window", {0}, {4})->add_attributes() = offset;
  kernel("embedding", {1, 3}, {5});
  kernel("linear", {5, 2}, {6});
  kernel("cross_entropy", {6, 4}, {7, 8});
  Program &p = *plan.add_programs();
  p.set_role("train");
  for (int32_t k = 0; k < plan.kernels_size(); ++k)
    p.add_kernels(k);
  plan.add_losses(7);
  plan.add_losses(7);
  MemoryPlan &m = *plan.mutable_memory();
  m.set_parameter_bytes(256);
  m.set_input_bytes(64);
  m.set_activation_bytes(448);
  return plan;
}

void expectInvalid(const std::function<void(Plan &)> &breakIt,
                   const std::string &message) {
  Plan plan = tinyPlan();
  breakIt(plan);
  io::Expected<Plan> decoded = decodePlanFile(encodePlanFile(plan), "p.plan");
  ASSERT_FALSE(decoded.ok());
  EXPECT_NE(decoded.error().message.find(message), std::string::npos)
      << decoded.error().message;
  EXPECT_EQ(decoded.error().message.rfind("p.plan: ", 0), 0u);
}

TEST(PlanFile, RoundTripAndRun) {
  io::Expected<Plan> plan =
      decodePlanFile(encodePlanFile(tinyPlan()), "p.plan");
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  auto executor = exec::Executor::create(*plan, "p.plan");
  ASSERT_TRUE(executor.ok()) << executor.error().message;
  int32_t tokens[5] = {1, 2, 3, 4, 5};
  std::copy(tokens, tokens + 5, (*executor)->tokens());
  ASSERT_FALSE((*executor)->runMicroBatch());
  // Zero weights: uniform logits, loss ln 8.
  EXPECT_NEAR((*executor)->loss(0), std::log(8.0), 1e-6);
}

TEST(PlanFile, WrongFormatId) {
  expectInvalid([](Plan &p) { p.set_format("other"); }, "format id 'other'");
}
TEST(PlanFile, BufferOutsideItsRegion) {
  expectInvalid([](Plan &p) { p.mutable_buffers(6)->set_offset(400); },
                "buffer 6 ('logits') lies outside its region");
}
TEST(PlanFile, BufferSizeDisagreesWithShape) {
  expectInvalid([](Plan &p) { p.mutable_buffers(5)->set_bytes(12); },
                "buffer 5 ('x') is 12 bytes, its shape needs 64");
}
TEST(PlanFile, Fp8BuffersCarryTheirTileScales) {
  // 3 rows of 200: 600 E4M3 bytes and 3 x 2 FP32 scales (1x128 tiles).
  EXPECT_EQ(storageBytes(DTYPE_FP8_E4M3, {3, 200}), 600 + 3 * 2 * 4);
  EXPECT_EQ(storageBytes(DTYPE_FP8_E4M3, {4, 128}), 512 + 4 * 4);
  EXPECT_EQ(storageBytes(DTYPE_BF16, {3, 200}), 1200);
  expectInvalid(
      [](Plan &p) {
        p.mutable_buffers(5)->set_dtype(DTYPE_FP8_E4M3);
        p.mutable_buffers(5)->set_bytes(16);
      },
      "buffer 5 ('x') is 16 bytes, its shape needs 32");
}
TEST(PlanFile, TheCpuBackendRefusesFp8Buffers) {
  Plan plan = tinyPlan();
  plan.mutable_buffers(5)->set_dtype(DTYPE_FP8_E4M3);
  plan.mutable_buffers(5)->set_bytes(32); // 16 values, 4 scales
  io::Expected<Plan> decoded = decodePlanFile(encodePlanFile(plan), "p.plan");
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  auto executor = exec::Executor::create(*decoded, "p.plan");
  ASSERT_FALSE(executor.ok());
  EXPECT_EQ(executor.error().message,
            "p.plan: the CPU backend runs FP32 plans; 'x' is FP8 (compile "
            "with --precision=fp32)");
}
TEST(PlanFile, CudaLaunchesAreChecked) {
  auto withLaunch = [](Plan &p) {
    CudaLaunch &l = *p.mutable_cuda()->add_launches();
    l.set_function("dsflow_add_0");
    l.set_grid(1);
    l.set_block(256);
    p.mutable_cuda()->set_cubin("\x7f"
                                "ELF");
  };
  expectInvalid(
      [&](Plan &p) {
        withLaunch(p);
        p.mutable_kernels(3)->set_cuda_launch(2);
      },
      "kernel 3 ('linear') names CUDA launch 1, which does not exist");
  expectInvalid(
      [&](Plan &p) {
        withLaunch(p);
        p.mutable_cuda()->mutable_launches(0)->set_block(2048);
      },
      "CUDA launch 0 ('dsflow_add_0') has no function or an invalid shape");
  expectInvalid(
      [&](Plan &p) {
        withLaunch(p);
        p.mutable_cuda()->clear_cubin();
      },
      "the CUDA module has launches but no machine code");
  // A chain of launches goes forward, so that it ends.
  expectInvalid(
      [&](Plan &p) {
        withLaunch(p);
        p.mutable_cuda()->mutable_launches(0)->set_then(1);
      },
      "CUDA launch 0 ('dsflow_add_0') continues with launch 0, which is not "
      "a later one");
  expectInvalid(
      [&](Plan &p) {
        withLaunch(p);
        p.mutable_cuda()->mutable_launches(0)->set_then(5);
      },
      "CUDA launch 0 ('dsflow_add_0') continues with launch 4, which is not "
      "a later one");
}
TEST(PlanFile, NegativeDimension) {
  expectInvalid([](Plan &p) { p.mutable_buffers(5)->set_shape(0, -1); },
                "buffer 5 ('x') has an invalid shape");
}
TEST(PlanFile, KernelReadsMissingBuffer) {
  expectInvalid([](Plan &p) { p.mutable_kernels(3)->set_inputs(0, 99); },
                "kernel 3 (linear) reads buffer 99, which does not exist");
}
TEST(PlanFile, KernelWritesParameter) {
  expectInvalid([](Plan &p) { p.mutable_kernels(3)->set_outputs(0, 2); },
                "kernel 3 (linear) writes buffer 2, which does not exist or is "
                "read-only");
}
TEST(PlanFile, ProgramRunsMissingKernel) {
  expectInvalid([](Plan &p) { p.mutable_programs(0)->add_kernels(17); },
                "program 'train' runs kernel 17, which does not exist");
}
TEST(PlanFile, LossNotScalar) {
  expectInvalid([](Plan &p) { p.set_losses(0, 6); },
                "loss buffer 6 is not a scalar buffer");
}
TEST(PlanFile, GradientOfNothing) {
  expectInvalid(
      [](Plan &p) {
        addBuffer(p, "g", DTYPE_F32, {2}, GRADIENT, 0)->set_gradient_of(5);
        p.mutable_memory()->set_gradient_bytes(64);
      },
      "is the gradient of no parameter");
}
TEST(PlanFile, PipelineStagesMustCoverTheLayers) {
  auto pipeline = [](Plan &plan, const char *schedule,
                     std::vector<std::pair<int, int>> layers) {
    plan.mutable_model()->set_num_layers(4);
    PipelinePlan &p = *plan.mutable_pipeline();
    p.set_schedule(schedule);
    for (auto [first, end] : layers) {
      PipelineStage &s = *p.add_stages();
      s.set_first_layer(first);
      s.set_end_layer(end);
    }
    p.mutable_stages(0)->set_embedding(true);
    p.mutable_stages(p.stages_size() - 1)->set_head(true);
  };
  expectInvalid(
      [&](Plan &p) {
        pipeline(p, "gpipe", {{0, 4}});
      },
      "pipeline schedule 'gpipe' is unknown");
  expectInvalid(
      [&](Plan &p) {
        pipeline(p, "1f1b", {{0, 2}, {3, 4}});
      },
      "pipeline stage 1 holds layers [3, 4), not a non-empty run "
      "from 2");
  expectInvalid(
      [&](Plan &p) {
        pipeline(p, "dualpipe", {{0, 2}, {2, 3}});
      },
      "pipeline stages do not cover the model's layers");
  Plan ok = tinyPlan();
  pipeline(ok, "dualpipe", {{0, 2}, {2, 4}});
  EXPECT_TRUE(decodePlanFile(encodePlanFile(ok), "p.plan").ok());
}

TEST(PlanFile, NoTrainingShape) {
  expectInvalid([](Plan &p) { p.mutable_training()->set_seq_len(0); },
                "training shape");
}

/// Binding checks what the structural validation cannot: op semantics.
void expectUnbindable(const std::function<void(Plan &)> &breakIt,
                      const std::string &message) {
  Plan plan = tinyPlan();
  breakIt(plan);
  ASSERT_FALSE(validatePlan(plan, "p.plan").has_value());
  auto executor = exec::Executor::create(plan, "p.plan");
  ASSERT_FALSE(executor.ok());
  EXPECT_NE(executor.error().message.find(message), std::string::npos)
      << executor.error().message;
}

TEST(KernelBinding, UnknownOp) {
  expectUnbindable([](Plan &p) { p.mutable_kernels(3)->set_op("conv2d"); },
                   "kernel 3 (conv2d): the CPU backend has no kernel 'conv2d'");
}
TEST(KernelBinding, WrongArity) {
  expectUnbindable(
      [](Plan &p) { p.mutable_kernels(3)->add_inputs(5); },
      "kernel 3 (linear): expects 2 inputs and 1 outputs, has 3 and 1");
}
TEST(KernelBinding, TooFewOperandsIsAnErrorNotACrash) {
  // Every op with one input or output removed must be refused cleanly.
  Plan plan = tinyPlan();
  for (int32_t k = 0; k < plan.kernels_size(); ++k) {
    for (bool input : {true, false}) {
      Plan broken = plan;
      Kernel &kernel = *broken.mutable_kernels(k);
      auto &list = input ? *kernel.mutable_inputs() : *kernel.mutable_outputs();
      if (list.empty())
        continue;
      list.RemoveLast();
      auto executor = exec::Executor::create(broken, "p.plan");
      EXPECT_FALSE(executor.ok()) << "kernel " << k;
      if (!executor.ok())
        EXPECT_NE(executor.error().message.find("kernel " + std::to_string(k)),
                  std::string::npos)
            << executor.error().message;
    }
  }
}

TEST(KernelBinding, SizesDisagree) {
  // A weight of rank 1.
  expectUnbindable(
      [](Plan &p) { p.mutable_kernels(3)->set_inputs(1, 8); },
      "kernel 3 (linear): input, weight and output sizes disagree");
  // An output too small for x W^T.
  expectUnbindable(
      [](Plan &p) { p.mutable_kernels(3)->set_outputs(0, 5); },
      "kernel 3 (linear): input, weight and output sizes disagree");
}
TEST(KernelBinding, WrongElementType) {
  // Float values where token ids belong (sizes fit: 4 floats for 4 ids).
  expectUnbindable(
      [](Plan &p) { p.mutable_kernels(4)->set_inputs(1, 8); },
      "kernel 4 (cross_entropy): buffer 'lse' has the wrong element "
      "type");
}
TEST(KernelBinding, MissingAttribute) {
  expectUnbindable([](Plan &p) { p.mutable_kernels(0)->clear_attributes(); },
                   "kernel 0 (token_window): missing attribute 'offset'");
}

TEST(KernelRun, BadTokenIsAnError) {
  Plan plan = tinyPlan();
  auto executor = exec::Executor::create(plan, "p.plan");
  ASSERT_TRUE(executor.ok());
  int32_t tokens[5] = {1, 2, 99, 4, 5};
  std::copy(tokens, tokens + 5, (*executor)->tokens());
  io::Status status = (*executor)->runMicroBatch();
  ASSERT_TRUE(status.has_value());
  EXPECT_NE(status->message.find("kernel 2 (embedding)"), std::string::npos)
      << status->message;
}

} // namespace
} // namespace dsflow

namespace dsflow::exec {
namespace {

TEST(Memory, LeavesOutAbsentParametersAndTheirGradients) {
  Plan plan = tinyPlan();
  Buffer *grad = addBuffer(plan, "embed", DTYPE_F32, {8, 4}, GRADIENT, 0); // 9
  grad->set_gradient_of(1);
  addBuffer(plan, "w", DTYPE_F32, {8, 4}, GRADIENT, 128)->set_gradient_of(2);
  plan.mutable_memory()->set_gradient_bytes(256);
  Memory all(plan);
  EXPECT_EQ(all.parameterBytes(), 256);
  EXPECT_TRUE(all.present(1) && all.present(2) && all.present(9));

  Memory packed(plan, [](int32_t b) { return b == 1; });
  EXPECT_FALSE(packed.present(1));
  EXPECT_FALSE(packed.present(9)) << "the gradient goes with its parameter";
  ASSERT_TRUE(packed.present(2) && packed.present(10));
  EXPECT_EQ(packed.parameterBytes(), 128);
  EXPECT_EQ(packed.gradientBytes(), 128);
  // Activations keep the plan's offsets.
  EXPECT_EQ(packed.data(6) - packed.data(5), all.data(6) - all.data(5));
  // What is left is usable: written and read back.
  auto *w = reinterpret_cast<float *>(packed.data(2));
  std::fill(w, w + 32, 2.0f);
  packed.zeroGradients();
  EXPECT_EQ(reinterpret_cast<float *>(packed.data(10))[31], 0.0f);
  EXPECT_EQ(w[31], 2.0f);
}

} // namespace
} // namespace dsflow::exec

namespace dsflow::exec {
namespace {

TEST(Memory, SharingParametersCopiesOnlyActivations) {
  Plan plan = tinyPlan();
  Memory first(plan);
  std::unique_ptr<Memory> second = Memory::sharingParameters(first);
  EXPECT_EQ(second->data(1), first.data(1)) << "parameters are shared";
  EXPECT_NE(second->data(5), first.data(5)) << "activations are not";
  EXPECT_NE(second->data(0), first.data(0)) << "nor inputs";
  reinterpret_cast<float *>(first.data(5))[0] = 3.0f;
  EXPECT_EQ(reinterpret_cast<float *>(second->data(5))[0], 0.0f);
}

TEST(KernelTrace, CompleteEventsPerRank) {
  EXPECT_EQ(chromeTraceEvents({}, 3), "");
  std::string json =
      chromeTraceEvents({{4, "linear", 10.5, 2.25}, {5, "add", 13, 0.5}}, 3);
  EXPECT_EQ(json,
            "{\"name\": \"linear\", \"ph\": \"X\", \"pid\": 3, \"tid\": 0, "
            "\"ts\": 10.500, \"dur\": 2.250, \"args\": {\"kernel\": 4}},\n"
            "{\"name\": \"add\", \"ph\": \"X\", \"pid\": 3, \"tid\": 0, "
            "\"ts\": 13.000, \"dur\": 0.500, \"args\": {\"kernel\": 5}}");
}

} // namespace
} // namespace dsflow::exec
