//===- CudaKernelsTest.cpp - What CUDA code is generated for a kernel -----===//
//
// The generator's choices on hand-made plans: launch shapes, the constants it
// bakes in, FP32 vs BF16 storage, kernels it leaves alone; and the module's
// sharing of identical functions. Compiling the code needs NVRTC
// (test/Tools/cuda-codegen.test); running it needs a GPU.
//
//===----------------------------------------------------------------------===//
#include "Codegen/CudaKernels.h"
#include "Codegen/CudaModule.h"
#include "Codegen/Nvrtc.h"

#include <gtest/gtest.h>

namespace dsflow::codegen {
namespace {

int32_t addBuffer(Plan &plan, DType dtype, std::vector<int64_t> shape) {
  Buffer &b = *plan.add_buffers();
  b.set_dtype(dtype);
  b.set_kind(ACTIVATION);
  for (int64_t d : shape)
    b.add_shape(d);
  return plan.buffers_size() - 1;
}

Kernel &addKernel(Plan &plan, const std::string &op,
                  std::vector<int32_t> inputs, std::vector<int32_t> outputs) {
  Kernel &k = *plan.add_kernels();
  k.set_op(op);
  for (int32_t b : inputs)
    k.add_inputs(b);
  for (int32_t b : outputs)
    k.add_outputs(b);
  return k;
}

void setF64(Kernel &k, const std::string &name, double value) {
  Attribute &a = *k.add_attributes();
  a.set_name(name);
  a.set_f64(value);
}

TEST(CudaKernels, RmsNormIsOneBlockPerRowWithItsEpsilon) {
  Plan plan;
  int32_t x = addBuffer(plan, DTYPE_BF16, {2, 3, 7168}),
          w = addBuffer(plan, DTYPE_BF16, {7168}),
          y = addBuffer(plan, DTYPE_BF16, {2, 3, 7168}),
          inv = addBuffer(plan, DTYPE_BF16, {6});
  Kernel &k = addKernel(plan, "rms_norm", {x, w}, {y, inv});
  setF64(k, "epsilon", 1e-6);
  std::optional<CudaFunction> f = generateCudaFunction(plan, k);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->grid, 6);
  EXPECT_EQ(f->block, 256);
  EXPECT_NE(f->body.find("const __nv_bfloat16 *__restrict__ in0"),
            std::string::npos);
  EXPECT_NE(f->body.find("dim = 7168LL"), std::string::npos);
  EXPECT_NE(f->body.find("float(9.9999999999999995e-07)"), std::string::npos);
  // 7168 = 896 pieces of 8: 4 a thread, held in registers between passes.
  EXPECT_NE(f->body.find("constexpr int W = 8, C = 4;"), std::string::npos);
  // The weight gradient: 32 columns a block, 8 lanes a column, in clusters
  // of 8 blocks that split the rows.
  int32_t dy = addBuffer(plan, DTYPE_BF16, {6, 7168}),
          dw = addBuffer(plan, DTYPE_BF16, {7168});
  std::optional<CudaFunction> wgrad = generateCudaFunction(
      plan, addKernel(plan, "rms_norm_wgrad", {dy, x, inv}, {dw}));
  ASSERT_TRUE(wgrad);
  EXPECT_EQ(wgrad->grid, 224 * 8);
  EXPECT_EQ(wgrad->block, 256);
  EXPECT_NE(wgrad->body.find("__cluster_dims__(8, 1, 1)"), std::string::npos);
  // Without its epsilon, or with a statistics buffer of the wrong size,
  // nothing is generated.
  k.clear_attributes();
  EXPECT_FALSE(generateCudaFunction(plan, k));
  setF64(k, "epsilon", 1e-6);
  plan.mutable_buffers(inv)->set_shape(0, 5);
  EXPECT_FALSE(generateCudaFunction(plan, k));
}

TEST(CudaKernels, ElementwiseGridStrideAndAccumulatingBackward) {
  Plan plan;
  int32_t dy = addBuffer(plan, DTYPE_F32, {1000}),
          g = addBuffer(plan, DTYPE_F32, {1000}),
          u = addBuffer(plan, DTYPE_F32, {1000}),
          dg = addBuffer(plan, DTYPE_F32, {1000}),
          du = addBuffer(plan, DTYPE_F32, {1000});
  Kernel &grad = addKernel(plan, "swiglu_grad", {dy, g, u}, {dg, du});
  std::optional<CudaFunction> f = generateCudaFunction(plan, grad);
  ASSERT_TRUE(f);
  // 1000 elements: 8 a thread step (16-byte BF16 accesses), ceil(125 / 256)
  // blocks. The backward's "+=" starts from zeros: the runtime zeroes the
  // outputs of a kernel that does not accumulate, so they are not read.
  EXPECT_EQ(f->grid, 1);
  EXPECT_NE(f->body.find("constexpr int W = 8;"), std::string::npos);
  EXPECT_NE(f->body.find("for (int j = 0; j < W; ++j) y1[j] = 0.f;"),
            std::string::npos);
  EXPECT_EQ(f->body.find("ldv<W>(out1"), std::string::npos);
  EXPECT_NE(f->body.find("y1[j] += dy * g * s;"), std::string::npos);
  // A kernel that accumulates (into a gradient in place) reads them first.
  grad.set_accumulates(true);
  f = generateCudaFunction(plan, grad);
  ASSERT_TRUE(f);
  EXPECT_NE(f->body.find("ldv<W>(out1, i, y1);"), std::string::npos);
  // A size that is not a multiple of 8 goes one element a step; a forward
  // kernel does not read its output.
  int32_t a = addBuffer(plan, DTYPE_F32, {1001}),
          b = addBuffer(plan, DTYPE_F32, {1001}),
          c = addBuffer(plan, DTYPE_F32, {1001});
  f = generateCudaFunction(plan, addKernel(plan, "add", {a, b}, {c}));
  ASSERT_TRUE(f);
  EXPECT_EQ(f->grid, 4); // ceil(1001 / 256)
  EXPECT_NE(f->body.find("constexpr int W = 1;"), std::string::npos);
  EXPECT_EQ(f->body.find("ldv<W>(out0"), std::string::npos);
  // Sizes that disagree, FP8 storage, GEMMs: not generated.
  int32_t small = addBuffer(plan, DTYPE_F32, {999});
  EXPECT_FALSE(generateCudaFunction(
      plan, addKernel(plan, "swiglu_grad", {dy, g, small}, {dg, du})));
  int32_t fp8 = addBuffer(plan, DTYPE_FP8_E4M3, {1000});
  EXPECT_FALSE(
      generateCudaFunction(plan, addKernel(plan, "add", {fp8, g}, {dg})));
  EXPECT_FALSE(
      generateCudaFunction(plan, addKernel(plan, "linear", {g, u}, {dg})));
}

TEST(CudaKernels, RopeBakesTheCpuFrequencies) {
  Plan plan;
  int32_t x = addBuffer(plan, DTYPE_F32, {1, 4, 2, 8}),
          y = addBuffer(plan, DTYPE_F32, {1, 4, 2, 8});
  Kernel &k = addKernel(plan, "rope", {x}, {y});
  setF64(k, "theta", 10000.0);
  std::optional<CudaFunction> f = generateCudaFunction(plan, k);
  ASSERT_TRUE(f);
  // dim 8: 1, 10000^-1/4 = 0.1, 0.01, 0.001.
  EXPECT_NE(f->body.find("@NAME@_inv_freq[] = {1, 0.10000000000000001, "
                         "0.01, 0.001}"),
            std::string::npos);
  // 2 heads of 4 pairs a token: each thread step computes its own angles.
  EXPECT_EQ(f->body.find("__shared__"), std::string::npos);
  EXPECT_NE(f->body.find("sincos(double(t % seq) * @NAME@_inv_freq[i], &sn, "
                         "&c);"),
            std::string::npos);
  // Four pairs (8 elements) a thread step.
  EXPECT_NE(f->body.find("constexpr int P = 4;"), std::string::npos);
  EXPECT_NE(f->body.find("r[2 * u] = float(x0 * c - x1 * sn);"),
            std::string::npos);
  EXPECT_EQ(f->body.find("ldv<2 * P>(out0"), std::string::npos);
  k.set_op("rope_grad");
  k.set_accumulates(true);
  f = generateCudaFunction(plan, k);
  ASSERT_TRUE(f);
  EXPECT_NE(f->body.find("ldv<2 * P>(out0, base, r);"), std::string::npos);
  EXPECT_NE(f->body.find("r[2 * u] += float(x0 * c + x1 * sn);"),
            std::string::npos);
}

TEST(CudaKernels, RopeOfManyHeadsSharesEachTokensAngles) {
  Plan plan;
  int32_t x = addBuffer(plan, DTYPE_BF16, {1, 4, 128, 64}),
          y = addBuffer(plan, DTYPE_BF16, {1, 4, 128, 64});
  Kernel &k = addKernel(plan, "rope", {x}, {y});
  setF64(k, "theta", 10000.0);
  std::optional<CudaFunction> f = generateCudaFunction(plan, k);
  ASSERT_TRUE(f);
  // A block per token (4 of them) computes its 32 angles once for 128 heads.
  EXPECT_EQ(f->grid, 4);
  EXPECT_NE(f->body.find("__shared__ double sines[32], cosines[32];"),
            std::string::npos);
  EXPECT_NE(f->body.find("const double sn = sines[i], c = cosines[i];"),
            std::string::npos);
}

TEST(CudaKernels, EmbeddingGradientBlocksOwnVocabularyRows) {
  Plan plan;
  int32_t dy = addBuffer(plan, DTYPE_BF16, {2, 5, 64}),
          ids = addBuffer(plan, DTYPE_I32, {2, 5}),
          table = addBuffer(plan, DTYPE_BF16, {1000, 64});
  std::optional<CudaFunction> f = generateCudaFunction(
      plan, addKernel(plan, "embedding_wgrad", {dy, ids}, {table}));
  ASSERT_TRUE(f);
  EXPECT_EQ(f->grid, 16); // ceil(1000 / 64) blocks of 64 rows
  EXPECT_NE(f->body.find("const int first = blockIdx.x * 64, last = min(first "
                         "+ 64, 1000);"),
            std::string::npos);
  EXPECT_EQ(f->body.find("atomic"), std::string::npos);
}

TEST(CudaKernels, SplitAndConcatFindThePieceFromTheColumn) {
  Plan plan;
  int32_t whole = addBuffer(plan, DTYPE_BF16, {4, 24}),
          a = addBuffer(plan, DTYPE_BF16, {4, 16}),
          b = addBuffer(plan, DTYPE_BF16, {4, 8});
  std::optional<CudaFunction> split =
      generateCudaFunction(plan, addKernel(plan, "split", {whole}, {a, b}));
  ASSERT_TRUE(split);
  EXPECT_NE(split->body.find("if (c < 16) {\n      stv<W>(out0, r * 16LL + c "
                             "- 0, v);"),
            std::string::npos);
  EXPECT_NE(split->body.find("else {\n      stv<W>(out1, r * 8LL + c - 16, "
                             "v);"),
            std::string::npos);
  // concat adds into its output, from zeros unless it accumulates.
  std::optional<CudaFunction> concat =
      generateCudaFunction(plan, addKernel(plan, "concat", {a, b}, {whole}));
  ASSERT_TRUE(concat);
  EXPECT_NE(concat->body.find("ldv<W>(in1, r * 8LL + c - 16, v);"),
            std::string::npos);
  EXPECT_NE(concat->body.find("y[j] = 0.f"), std::string::npos);
  // Pieces that do not add up to the whole: not generated.
  int32_t c = addBuffer(plan, DTYPE_BF16, {4, 4});
  EXPECT_FALSE(
      generateCudaFunction(plan, addKernel(plan, "split", {whole}, {a, c})));
}

TEST(CudaKernels, TokenWindowCopiesEachRowsWindow) {
  Plan plan;
  int32_t ids = addBuffer(plan, DTYPE_I32, {2, 9}),
          window = addBuffer(plan, DTYPE_I32, {2, 8});
  Kernel &k = addKernel(plan, "token_window", {ids}, {window});
  Attribute &offset = *k.add_attributes();
  offset.set_name("offset");
  offset.set_i64(1);
  std::optional<CudaFunction> f = generateCudaFunction(plan, k);
  ASSERT_TRUE(f);
  EXPECT_NE(f->body.find("out0[i] = in0[(i / 8LL) * 9LL + 1LL + i % 8LL];"),
            std::string::npos);
  offset.set_i64(2); // past the end
  EXPECT_FALSE(generateCudaFunction(plan, k));
}

TEST(CudaKernels, MlaAttentionIsOneFusedKernelPerHeadAndQueryTile) {
  Plan plan;
  // DeepSeek-V3's head: nope 128 + rope 64 for the scores, values 128.
  int32_t qn = addBuffer(plan, DTYPE_BF16, {2, 100, 3, 128}),
          qp = addBuffer(plan, DTYPE_BF16, {2, 100, 3, 64}),
          kn = addBuffer(plan, DTYPE_BF16, {2, 100, 3, 128}),
          kp = addBuffer(plan, DTYPE_BF16, {2, 100, 1, 64}),
          v = addBuffer(plan, DTYPE_BF16, {2, 100, 3, 128}),
          out = addBuffer(plan, DTYPE_BF16, {2, 100, 3, 128}),
          lse = addBuffer(plan, DTYPE_F32, {2, 100, 3});
  Kernel &k = addKernel(plan, "mla_attention", {qn, qp, kn, kp, v}, {out, lse});
  setF64(k, "softmax_scale", 0.125);
  std::optional<CudaFunction> f = generateCudaFunction(plan, k);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->grid, 2 * 3 * 7); // batch x heads x ceil(100 / 16) query tiles
  EXPECT_EQ(f->block, 256);
  EXPECT_NE(f->body.find("constexpr int S = 100, H = 3, N = 128, R = 64, V = "
                         "128, D = 192"),
            std::string::npos);
  EXPECT_NE(f->body.find("const float scale = float(0.125);"),
            std::string::npos);
  // Without its scale, or with a key of another width: not generated.
  k.clear_attributes();
  EXPECT_FALSE(generateCudaFunction(plan, k));
  setF64(k, "softmax_scale", 0.125);
  plan.mutable_buffers(kp)->set_shape(3, 32);
  EXPECT_FALSE(generateCudaFunction(plan, k));
}

void setStr(Kernel &k, const std::string &name, const std::string &value) {
  Attribute &a = *k.add_attributes();
  a.set_name(name);
  a.set_str(value);
}

TEST(CudaKernels, MlaAttentionGradientTakesThreeLaunches) {
  Plan plan;
  int32_t dOut = addBuffer(plan, DTYPE_BF16, {2, 100, 3, 128}),
          qn = addBuffer(plan, DTYPE_BF16, {2, 100, 3, 128}),
          qp = addBuffer(plan, DTYPE_BF16, {2, 100, 3, 64}),
          kn = addBuffer(plan, DTYPE_BF16, {2, 100, 3, 128}),
          kp = addBuffer(plan, DTYPE_BF16, {2, 100, 1, 64}),
          v = addBuffer(plan, DTYPE_BF16, {2, 100, 3, 128}),
          lse = addBuffer(plan, DTYPE_F32, {2, 100, 3});
  int32_t dqn = addBuffer(plan, DTYPE_BF16, {2, 100, 3, 128}),
          dqp = addBuffer(plan, DTYPE_BF16, {2, 100, 3, 64}),
          dkn = addBuffer(plan, DTYPE_BF16, {2, 100, 3, 128}),
          dkp = addBuffer(plan, DTYPE_BF16, {2, 100, 1, 64}),
          dv = addBuffer(plan, DTYPE_BF16, {2, 100, 3, 128});
  Kernel &k =
      addKernel(plan, "mla_attention_grad", {dOut, qn, qp, kn, kp, v, lse},
                {dqn, dqp, dkn, dkp, dv});
  setF64(k, "softmax_scale", 0.125);
  std::vector<CudaFunction> launches = generateCudaFunctions(plan, k);
  ASSERT_EQ(launches.size(), 3u);
  // Per query tile: the rows' <dO, O>; per key tile (all heads): dk, dv and
  // dk_pe; per query tile: dq.
  EXPECT_EQ(launches[0].grid, 2 * 3 * 7);
  EXPECT_EQ(launches[1].grid, 2 * 7);
  EXPECT_EQ(launches[2].grid, 2 * 3 * 7);
  EXPECT_NE(launches[0].body.find("*reinterpret_cast<float *>(out1 + "),
            std::string::npos);
  EXPECT_NE(launches[1].body.find("st(out3, (b * S + j) * R"),
            std::string::npos);
  // Not one launch: generateCudaFunction has none to give.
  EXPECT_FALSE(generateCudaFunction(plan, k));
  // Outputs that hold gradients already cannot hold D: not generated.
  k.set_accumulates(true);
  EXPECT_TRUE(generateCudaFunctions(plan, k).empty());
}

TEST(CudaKernels, RouterGradientIsAWarpPerToken) {
  Plan plan;
  int32_t dw = addBuffer(plan, DTYPE_F32, {10, 8}),
          scores = addBuffer(plan, DTYPE_F32, {10, 256}),
          idx = addBuffer(plan, DTYPE_I32, {10, 8}),
          dl = addBuffer(plan, DTYPE_F32, {10, 256});
  Kernel &k = addKernel(plan, "moe_gate_grad", {dw, scores, idx}, {dl});
  setF64(k, "route_scale", 2.5);
  setStr(k, "score_function", "sigmoid");
  Attribute &normalize = *k.add_attributes();
  normalize.set_name("normalize_topk");
  normalize.set_boolean(true);
  std::optional<CudaFunction> f = generateCudaFunction(plan, k);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->grid, 2); // 8 tokens a block
  EXPECT_EQ(f->block, 256);
  EXPECT_NE(f->body.find("c * (dw / denom - dot / (denom * denom))"),
            std::string::npos);
  EXPECT_NE(f->body.find("dS[q] * s * (1.f - s)"), std::string::npos);
  // An unknown score function: not generated.
  k.mutable_attributes(1)->set_str("tanh");
  EXPECT_FALSE(generateCudaFunction(plan, k));
}

void setI64(Kernel &k, const std::string &name, int64_t value) {
  Attribute &a = *k.add_attributes();
  a.set_name(name);
  a.set_i64(value);
}

void setBool(Kernel &k, const std::string &name, bool value) {
  Attribute &a = *k.add_attributes();
  a.set_name(name);
  a.set_boolean(value);
}

/// A router kernel of DeepSeek-V3's attributes: 8 of `experts` experts a
/// token from 4 of 8 groups.
Kernel &addRouter(Plan &plan, int64_t tokens, int64_t experts) {
  int32_t x = addBuffer(plan, DTYPE_BF16, {tokens, 7168}),
          w = addBuffer(plan, DTYPE_BF16, {experts, 7168}),
          bias = addBuffer(plan, DTYPE_F32, {experts}),
          weights = addBuffer(plan, DTYPE_F32, {tokens, 8}),
          idx = addBuffer(plan, DTYPE_I32, {tokens, 8}),
          scores = addBuffer(plan, DTYPE_F32, {tokens, experts});
  Kernel &k = addKernel(plan, "moe_gate", {x, w, bias}, {weights, idx, scores});
  setI64(k, "expert_groups", 8);
  setI64(k, "groups_per_token", 4);
  setF64(k, "route_scale", 2.5);
  setStr(k, "score_function", "sigmoid");
  setBool(k, "normalize_topk", true);
  return k;
}

bool has(const CudaFunction &f, const std::string &text) {
  return f.body.find(text) != std::string::npos;
}

TEST(CudaKernels, RouterComputesItsGemmThenEachTokensChoice) {
  Plan plan;
  Kernel &k = addRouter(plan, 100, 256);
  std::optional<CudaFunction> f = generateCudaFunction(plan, k);
  ASSERT_TRUE(f);
  // 16 tokens a block, 16 (token, expert) logits a thread, 32-wide chunks of
  // H; the w chunk's rows 257 floats apart (no bank conflicts).
  EXPECT_EQ(f->grid, 7);
  EXPECT_EQ(f->block, 256);
  EXPECT_TRUE(has(*f, "constexpr int E = 256, K = 8, TB = 16, KC = 32, "
                      "RS = 257, Q = 16, TILE = 8224;"));
  EXPECT_TRUE(has(*f, "const float c = float(2.5);"));
  EXPECT_TRUE(has(*f, "s[e] = sigmoid(s[e]);"));
  // The group limit: groups of 32 scored by their two best, 4 kept.
  EXPECT_TRUE(has(*f, "constexpr int G = 8, M = 4, GS = 32;"));
  EXPECT_TRUE(has(*f, "constexpr bool TOP_TWO = true;"));
  EXPECT_TRUE(has(*f, "constexpr bool NORMALIZE = true;"));
  // Softmax scores: a group's score is its best; no normalization.
  k.mutable_attributes(3)->set_str("softmax");
  k.mutable_attributes(4)->set_boolean(false);
  f = generateCudaFunction(plan, k);
  ASSERT_TRUE(f);
  EXPECT_TRUE(has(*f, "s[e] = expf(s[e] - most);"));
  EXPECT_TRUE(has(*f, "constexpr bool TOP_TWO = false;"));
  EXPECT_TRUE(has(*f, "constexpr bool NORMALIZE = false;"));
  // Every group kept: no group limit.
  k.mutable_attributes(1)->set_i64(8);
  f = generateCudaFunction(plan, k);
  ASSERT_TRUE(f);
  EXPECT_FALSE(has(*f, "groupScore"));
  // What the CPU refuses (groups that do not divide the experts, fewer
  // allowed experts than k), and routers over 512 experts: not generated.
  k.mutable_attributes(0)->set_i64(3);
  EXPECT_FALSE(generateCudaFunction(plan, k));
  k.mutable_attributes(0)->set_i64(128); // groups of 2, 8 kept: 16 allowed
  EXPECT_TRUE(generateCudaFunction(plan, k));
  k.mutable_attributes(1)->set_i64(3); // 6 allowed
  EXPECT_FALSE(generateCudaFunction(plan, k));
  EXPECT_FALSE(generateCudaFunction(plan, addRouter(plan, 100, 1024)));
}

/// A dispatch of `tokens` rows of `dim` (`dtype`), `topK` of `experts`
/// experts each: outputs rows, counts, sources.
Kernel &addDispatch(Plan &plan, DType dtype, int64_t tokens, int64_t dim,
                    int64_t topK, int64_t experts) {
  int32_t x = addBuffer(plan, dtype, {tokens, dim}),
          idx = addBuffer(plan, DTYPE_I32, {tokens, topK}),
          rows = addBuffer(plan, dtype, {tokens * topK, dim}),
          counts = addBuffer(plan, DTYPE_I32, {experts}),
          sources = addBuffer(plan, DTYPE_I32, {tokens * topK});
  return addKernel(plan, "dispatch", {x, idx}, {rows, counts, sources});
}

TEST(CudaKernels, DispatchSortsTheSlotsThenCopiesTheRows) {
  Plan plan;
  Kernel &k = addDispatch(plan, DTYPE_BF16, 100, 7168, 8, 256);
  int32_t rows = k.outputs(0);
  std::vector<CudaFunction> launches = generateCudaFunctions(plan, k);
  ASSERT_EQ(launches.size(), 2u);
  // One block sorts the 800 slots: 25 warps of 32 consecutive slots.
  EXPECT_EQ(launches[0].grid, 1);
  EXPECT_EQ(launches[0].block, 25 * 32);
  EXPECT_TRUE(has(launches[0], "constexpr int E = 256, WARPS = 25;"));
  EXPECT_TRUE(has(launches[0], "N = 800LL, SEG = 32LL;"));
  EXPECT_TRUE(has(launches[0], "__match_any_sync"));
  // Then a block per row copies the row of its slot's token.
  EXPECT_EQ(launches[1].grid, 800);
  EXPECT_TRUE(has(launches[1], "const int p = out2[r];"));
  EXPECT_TRUE(has(launches[1], "(long long)(p / 8) * dim;"));
  EXPECT_FALSE(generateCudaFunction(plan, k));
  EXPECT_FALSE(launches[1].quantizesOutput);
  // FP8 rows (a scale per 128 values) are not generated.
  plan.mutable_buffers(rows)->set_dtype(DTYPE_FP8_E4M3);
  EXPECT_TRUE(generateCudaFunctions(plan, k).empty());
}

TEST(CudaKernels, Fp32DispatchUnderTheFp8RecipeQuantizesItsRowsAsItCopies) {
  Plan plan;
  Kernel &k = addDispatch(plan, DTYPE_F32, 16, 200, 2, 8);
  for (auto [name, value] : {std::pair("graph.fp8.format", "e4m3"),
                             std::pair("graph.fp8.scales", "ue8m0")}) {
    Attribute &a = *k.add_attributes();
    a.set_name(name);
    a.set_str(value);
  }
  std::vector<CudaFunction> launches = generateCudaFunctions(plan, k);
  ASSERT_EQ(launches.size(), 2u);
  EXPECT_FALSE(launches[0].quantizesOutput);
  EXPECT_TRUE(launches[1].quantizesOutput);
  // Two 1x128 tiles a row: their max-abs, then the values E4M3 and back
  // with power-of-two scales.
  EXPECT_TRUE(has(launches[1], "__shared__ unsigned tileMax[2];"));
  EXPECT_TRUE(has(launches[1], "__uint_as_float(tileMax[(e + j) / 128]), 1)"));
  EXPECT_TRUE(has(launches[1], "stv<W>(out0, r * dim + e, x);"));
}

TEST(CudaKernels, DispatchGradientAndCombineGatherTheirSlotsRows) {
  Plan plan;
  int32_t rows = addBuffer(plan, DTYPE_F32, {8, 16}),
          w = addBuffer(plan, DTYPE_F32, {4, 2}),
          idx = addBuffer(plan, DTYPE_I32, {4, 2}),
          sources = addBuffer(plan, DTYPE_I32, {8}),
          y = addBuffer(plan, DTYPE_F32, {4, 16});
  Kernel &grad = addKernel(plan, "dispatch_grad", {rows, idx, sources}, {y});
  std::optional<CudaFunction> f = generateCudaFunction(plan, grad);
  ASSERT_TRUE(f);
  // A block per token finds its 2 slots' rows, then adds them in order,
  // from zeros unless the kernel accumulates.
  EXPECT_EQ(f->grid, 4);
  EXPECT_TRUE(has(*f, "row[j] = rowOfSlot(in1, in2, 8LL, r * K + j);"));
  EXPECT_TRUE(has(*f, "d[q] += v[q];"));
  EXPECT_FALSE(has(*f, "ldv<W>(out0"));
  grad.set_accumulates(true);
  f = generateCudaFunction(plan, grad);
  ASSERT_TRUE(f);
  EXPECT_TRUE(has(*f, "ldv<W>(out0, r * dim + e, d);"));
  // combine weighs them and overwrites its output, as the CPU does.
  Kernel &combine = addKernel(plan, "combine", {rows, w, idx, sources}, {y});
  combine.set_accumulates(true);
  f = generateCudaFunction(plan, combine);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->grid, 4);
  EXPECT_TRUE(has(*f, "row[j] = rowOfSlot(in2, in3, 8LL, r * K + j);"));
  EXPECT_TRUE(has(*f, "d[q] += weight[j] * v[q];"));
  EXPECT_FALSE(has(*f, "ldv<W>(out0"));
  // Rows that do not match the slots: not generated.
  plan.mutable_buffers(rows)->set_shape(0, 7);
  EXPECT_FALSE(generateCudaFunction(plan, grad));
  EXPECT_FALSE(generateCudaFunction(plan, combine));
}

TEST(CudaKernels, BalanceLossBlocksTakeChunksOfASequence) {
  Plan plan;
  int32_t scores = addBuffer(plan, DTYPE_F32, {12, 16}),
          idx = addBuffer(plan, DTYPE_I32, {12, 4}),
          loss = addBuffer(plan, DTYPE_F32, {});
  Kernel &k = addKernel(plan, "balance_loss", {scores, idx}, {loss});
  setF64(k, "alpha", 1e-4);
  Attribute &sequences = *k.add_attributes();
  sequences.set_name("sequences");
  sequences.set_i64(3);
  std::optional<CudaFunction> f = generateCudaFunction(plan, k);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->grid, 3); // 3 sequences of 4 tokens: a block each
  EXPECT_NE(f->body.find("constexpr int E = 16, K = 4;"), std::string::npos);
  EXPECT_NE(f->body.find("blockSumDouble"), std::string::npos);
  sequences.set_i64(5); // 12 tokens do not split into 5 sequences
  EXPECT_FALSE(generateCudaFunction(plan, k));
  // 2 sequences of 4096 tokens: 64 blocks of 64 tokens each.
  int32_t longScores = addBuffer(plan, DTYPE_F32, {8192, 16}),
          longIdx = addBuffer(plan, DTYPE_I32, {8192, 4});
  Kernel &two = addKernel(plan, "balance_loss", {longScores, longIdx}, {loss});
  setF64(two, "alpha", 1e-4);
  Attribute &runs = *two.add_attributes();
  runs.set_name("sequences");
  runs.set_i64(2);
  f = generateCudaFunction(plan, two);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->grid, 128);
  // Two differently shaped balance losses in one module: the block sum they
  // share is the prelude's, not defined in each function.
  EXPECT_EQ(f->body.find("double blockSumDouble("), std::string::npos);
  if (!haveNvrtc())
    GTEST_SKIP() << "no NVRTC: the module is not compiled";
  sequences.set_i64(3);
  EXPECT_FALSE(buildCudaModule(plan));
  EXPECT_EQ(plan.cuda().functions(), 2);
}

TEST(CudaKernels, CrossEntropyReadsInt32LabelsAndAddsIntoTheLoss) {
  Plan plan;
  int32_t logits = addBuffer(plan, DTYPE_BF16, {6, 1000}),
          labels = addBuffer(plan, DTYPE_I32, {1, 6}),
          loss = addBuffer(plan, DTYPE_BF16, {}),
          lse = addBuffer(plan, DTYPE_BF16, {6});
  std::optional<CudaFunction> f = generateCudaFunction(
      plan, addKernel(plan, "cross_entropy", {logits, labels}, {loss, lse}));
  ASSERT_TRUE(f);
  EXPECT_EQ(f->grid, 6); // a block per token
  EXPECT_NE(f->body.find("const int *__restrict__ in1"), std::string::npos);
  EXPECT_NE(f->body.find("atomicAddTo(out0, (lse - ld(in0, r * dim + label)) "
                         "/ 6.f)"),
            std::string::npos);
  // Labels that are not int32 are not generated.
  plan.mutable_buffers(labels)->set_dtype(DTYPE_F32);
  EXPECT_FALSE(generateCudaFunction(plan, plan.kernels(0)));
}

TEST(CudaKernels, CombineGradientsGoThroughTheRowSources) {
  Plan plan;
  int32_t dy = addBuffer(plan, DTYPE_F32, {4, 16}),
          w = addBuffer(plan, DTYPE_F32, {4, 2}),
          idx = addBuffer(plan, DTYPE_I32, {4, 2}),
          source = addBuffer(plan, DTYPE_I32, {8}),
          dRows = addBuffer(plan, DTYPE_F32, {8, 16}),
          dots = addBuffer(plan, DTYPE_F32, {8}),
          dw = addBuffer(plan, DTYPE_F32, {4, 2});
  std::optional<CudaFunction> rows = generateCudaFunction(
      plan, addKernel(plan, "combine_grad", {dy, w, idx, source}, {dRows}));
  ASSERT_TRUE(rows);
  // A block per row (8 of them), reading token p / k's gradient.
  EXPECT_EQ(rows->grid, 8);
  EXPECT_NE(rows->body.find("const long long from = (long long)(p / 2) * dim;"),
            std::string::npos);
  std::optional<CudaFunction> weights =
      generateCudaFunction(plan, addKernel(plan, "combine_weights_grad",
                                           {dots, w, idx, source}, {dw}));
  ASSERT_TRUE(weights);
  EXPECT_NE(weights->body.find("if (w != 0.f) acc(out0, p, ld(in0, i) / w)"),
            std::string::npos);
  // Row sources of the wrong length: not generated.
  plan.mutable_buffers(source)->set_shape(0, 7);
  EXPECT_FALSE(generateCudaFunction(plan, plan.kernels(0)));
  EXPECT_FALSE(generateCudaFunction(plan, plan.kernels(1)));
}

TEST(CudaModule, KernelsWithTheSameBodyShareAFunction) {
  if (!haveNvrtc())
    GTEST_SKIP() << "built without NVRTC";
  Plan plan;
  int32_t a = addBuffer(plan, DTYPE_F32, {64}),
          b = addBuffer(plan, DTYPE_F32, {64}),
          c = addBuffer(plan, DTYPE_F32, {64}),
          d = addBuffer(plan, DTYPE_F32, {32});
  addKernel(plan, "add", {a, b}, {c});
  addKernel(plan, "linear", {a, b}, {c}); // not generated
  addKernel(plan, "add", {b, c}, {a});    // same body as kernel 0
  addKernel(plan, "fill", {}, {d});
  setF64(*plan.mutable_kernels(3), "value", 2.0);
  ASSERT_FALSE(buildCudaModule(plan));
  EXPECT_EQ(plan.cuda().arch(), "sm_90a");
  EXPECT_EQ(plan.cuda().functions(), 2);
  ASSERT_EQ(plan.cuda().launches_size(), 3);
  EXPECT_EQ(plan.kernels(0).cuda_launch(), 1);
  EXPECT_EQ(plan.kernels(1).cuda_launch(), 0);
  EXPECT_EQ(plan.kernels(2).cuda_launch(), 2);
  EXPECT_EQ(plan.cuda().launches(0).function(),
            plan.cuda().launches(1).function());
  EXPECT_NE(plan.cuda().launches(2).function(),
            plan.cuda().launches(0).function());
  EXPECT_FALSE(plan.cuda().cubin().empty());
  EXPECT_NE(plan.cuda().ptx().find(".target sm_90a"), std::string::npos);
}

TEST(CudaModule, RmsNormFeedingAnFp8LinearGetsItsQuantizationFused) {
  if (!haveNvrtc())
    GTEST_SKIP() << "built without NVRTC";
  Plan plan;
  int32_t x = addBuffer(plan, DTYPE_F32, {4, 200}),
          w = addBuffer(plan, DTYPE_F32, {200}),
          y = addBuffer(plan, DTYPE_F32, {4, 200}),
          inv = addBuffer(plan, DTYPE_F32, {4}),
          proj = addBuffer(plan, DTYPE_F32, {64, 200}),
          out = addBuffer(plan, DTYPE_F32, {4, 64}),
          y2 = addBuffer(plan, DTYPE_F32, {4, 200}),
          inv2 = addBuffer(plan, DTYPE_F32, {4});
  setF64(addKernel(plan, "rms_norm", {x, w}, {y, inv}), "epsilon", 1e-6);
  Kernel &linear = addKernel(plan, "linear", {y, proj}, {out});
  Attribute &format = *linear.add_attributes();
  format.set_name("graph.fp8.format");
  format.set_str("e4m3");
  // The same norm read by no FP8 linear: no variant.
  setF64(addKernel(plan, "rms_norm", {x, w}, {y2, inv2}), "epsilon", 1e-6);
  std::optional<CudaFunction> f = generateCudaFunction(plan, plan.kernels(0));
  ASSERT_TRUE(f);
  // 200 columns: two 1x128 tiles; codes in rows padded to 208.
  EXPECT_NE(f->quantizingBody.find("tileMax[2]"), std::string::npos);
  EXPECT_NE(f->quantizingBody.find("fp8Codes[r * 208LL + e + j]"),
            std::string::npos);
  EXPECT_NE(f->quantizingBody.find("int fp8Ue8m0)"), std::string::npos);
  ASSERT_FALSE(buildCudaModule(plan));
  const std::string &fused = plan.cuda().launches(0).quantizing_function();
  EXPECT_EQ(fused, plan.cuda().launches(0).function() + "_fp8");
  EXPECT_NE(plan.cuda().source().find(") " + fused + "("), std::string::npos);
  EXPECT_EQ(plan.cuda().launches(1).quantizing_function(), "");
  // A BF16 output has no quantizing variant (the tensor cores read FP32
  // plans' activations).
  plan.mutable_buffers(y)->set_dtype(DTYPE_BF16);
  EXPECT_EQ(generateCudaFunction(plan, plan.kernels(0))->quantizingBody, "");
}

TEST(CudaModule, RoutingAtItsLimitsFitsTheSharedMemory) {
  if (!haveNvrtc())
    GTEST_SKIP() << "built without NVRTC";
  // Routers of 512 experts (the largest tile), of 1 expert (256 tokens a
  // block) and 300 (odd chunks); a dispatch sorting 2048 experts. ptxas
  // refuses more than 48 KB of static shared memory.
  Plan plan;
  for (int64_t experts : {512, 1, 300}) {
    Kernel &k = addRouter(plan, 300, experts);
    k.mutable_attributes(0)->set_i64(1);
    k.mutable_attributes(1)->set_i64(1);
    plan.mutable_buffers(k.outputs(0))->set_shape(1, 1);
    plan.mutable_buffers(k.outputs(1))->set_shape(1, 1);
  }
  addDispatch(plan, DTYPE_F32, 300, 64, 8, 2048);
  io::Status e = buildCudaModule(plan);
  ASSERT_FALSE(e) << e->message;
  EXPECT_EQ(plan.cuda().functions(), 5);
  for (const Kernel &k : plan.kernels())
    EXPECT_GT(k.cuda_launch(), 0);
}

TEST(CudaModule, AnUnknownArchitectureIsAnErrorAndLeavesThePlan) {
  Plan plan;
  int32_t a = addBuffer(plan, DTYPE_F32, {64});
  addKernel(plan, "add", {a, a}, {a});
  io::Status e = buildCudaModule(plan, "compute_90");
  ASSERT_TRUE(e);
  EXPECT_FALSE(plan.has_cuda());
  EXPECT_EQ(plan.kernels(0).cuda_launch(), 0);
}

} // namespace
} // namespace dsflow::codegen
