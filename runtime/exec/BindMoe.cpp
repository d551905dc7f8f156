//===- BindMoe.cpp - Binding of the MoE, MTP and loss ops -----------------===//
#include "exec/ExpertParallel.h"
#include "exec/KernelBinding.h"

#include <map>
#include <vector>

namespace dsflow::exec {
namespace {

using cpu::Status;

template <typename T>
io::Expected<BoundKernel> bindCrossEntropy(BindContext<T> &c) {
  c.arity(2, 2);
  int64_t vocab = c.inputLast(0), tokens = c.inputSize(1);
  c.check(c.inputSize(0) == tokens * vocab && c.outputSize(0) == 1 &&
              c.outputSize(1) == tokens,
          "logits, labels and outputs disagree");
  const T *logits = c.in(0);
  const int32_t *labels = c.inIds(1);
  T *loss = c.out(0), *lse = c.out(1);
  return c.finish([=] {
    return cpu::crossEntropyForward(logits, labels, loss, lse, tokens, vocab);
  });
}

template <typename T>
io::Expected<BoundKernel> bindCrossEntropyGrad(BindContext<T> &c) {
  c.arity(4, 1);
  int64_t vocab = c.inputLast(1), tokens = c.inputSize(2);
  c.check(c.inputSize(0) == 1 && c.inputSize(1) == tokens * vocab &&
              c.inputSize(3) == tokens && c.outputSize(0) == tokens * vocab,
          "loss gradient, logits, labels and saved log-sum-exp disagree");
  const T *dLoss = c.in(0), *logits = c.in(1), *lse = c.in(3);
  const int32_t *labels = c.inIds(2);
  T *dLogits = c.out(0);
  return c.finish([=] {
    return cpu::crossEntropyBackward(logits, labels, lse, *dLoss, dLogits,
                                     tokens, vocab);
  });
}

/// The router's parameters from a moe_gate kernel's attributes and sizes.
template <typename T>
cpu::MoeGateParams gateParams(BindContext<T> &c, int64_t tokens, int64_t hidden,
                              int64_t experts, int64_t topK) {
  std::string function = c.str("score_function");
  c.check(function == "sigmoid" || function == "softmax",
          "unknown score function '" + function + "'");
  return {tokens,
          hidden,
          experts,
          topK,
          c.has("expert_groups") ? c.i64("expert_groups") : 1,
          c.has("groups_per_token") ? c.i64("groups_per_token") : 1,
          c.f64("route_scale"),
          function == "sigmoid" ? cpu::ScoreFunction::Sigmoid
                                : cpu::ScoreFunction::Softmax,
          c.boolean("normalize_topk")};
}

template <typename T> io::Expected<BoundKernel> bindMoeGate(BindContext<T> &c) {
  c.arity(3, 3);
  int64_t hidden = c.inputLast(0), experts = c.inputDim(1, 0);
  int64_t tokens = hidden ? c.inputSize(0) / hidden : 0;
  int64_t topK = tokens ? c.outputSize(0) / tokens : 0;
  c.check(c.inputSize(1) == experts * hidden && c.inputSize(2) == experts &&
              topK >= 1 && c.outputSize(0) == tokens * topK &&
              c.outputSize(1) == tokens * topK &&
              c.outputSize(2) == tokens * experts,
          "router operands disagree");
  cpu::MoeGateParams p = gateParams(c, tokens, hidden, experts, topK);
  const T *x = c.in(0), *w = c.in(1), *bias = c.in(2);
  T *weights = c.out(0), *scores = c.out(2);
  int32_t *indices = c.outIds(1);
  return c.finish([=] {
    return cpu::moeGateForward(x, w, bias, weights, indices, scores, p);
  });
}

template <typename T>
io::Expected<BoundKernel> bindMoeGateGrad(BindContext<T> &c) {
  // The scores' gradient (from the balance loss) is an optional 4th input.
  bool withScores = c.numInputs() == 4;
  c.arity(withScores ? 4 : 3, 1);
  int64_t experts = c.inputLast(1);
  int64_t tokens = experts ? c.inputSize(1) / experts : 0;
  int64_t topK = tokens ? c.inputSize(0) / tokens : 0;
  c.check(topK >= 1 && topK <= experts && c.inputSize(0) == tokens * topK &&
              c.inputSize(2) == tokens * topK &&
              c.outputSize(0) == tokens * experts,
          "router gradient operands disagree");
  if (withScores)
    c.check(c.inputSize(3) == tokens * experts,
            "scores gradient has the wrong size");
  cpu::MoeGateParams p = gateParams(c, tokens, /*hidden=*/0, experts, topK);
  const T *dWeights = c.in(0), *scores = c.in(1);
  const T *dScores = withScores ? c.in(3) : nullptr;
  const int32_t *indices = c.inIds(2);
  T *dLogits = c.out(0);
  return c.finish([=] {
    return cpu::moeGateLogitsGrad<T>(dWeights, dScores, scores, indices,
                                     dLogits, p);
  });
}

/// Scores [T, E] and indices [T, k] of a balance loss from input `first` on.
template <typename T>
void balanceShape(BindContext<T> &c, int first, int64_t &tokens,
                  int64_t &experts, int64_t &topK, int64_t &sequences) {
  experts = c.inputLast(first);
  topK = c.inputLast(first + 1);
  tokens = experts ? c.inputSize(first) / experts : 0;
  sequences = c.i64("sequences");
  c.check(tokens > 0 && c.inputSize(first + 1) == tokens * topK &&
              sequences > 0 && tokens % sequences == 0,
          "scores, indices and sequences disagree");
}

template <typename T>
io::Expected<BoundKernel> bindBalanceLoss(BindContext<T> &c) {
  c.arity(2, 1);
  int64_t tokens, experts, topK, sequences;
  balanceShape(c, 0, tokens, experts, topK, sequences);
  c.check(c.outputSize(0) == 1, "the loss is a scalar");
  const T *scores = c.in(0);
  const int32_t *indices = c.inIds(1);
  T *loss = c.out(0);
  double alpha = c.f64("alpha");
  return c.finish([=] {
    return cpu::balanceLossForward(scores, indices, loss, tokens, experts, topK,
                                   sequences, alpha);
  });
}

template <typename T>
io::Expected<BoundKernel> bindBalanceLossGrad(BindContext<T> &c) {
  c.arity(3, 1);
  int64_t tokens, experts, topK, sequences;
  balanceShape(c, 1, tokens, experts, topK, sequences);
  c.check(c.inputSize(0) == 1 && c.outputSize(0) == tokens * experts,
          "gradient sizes disagree");
  const T *dLoss = c.in(0), *scores = c.in(1);
  const int32_t *indices = c.inIds(2);
  T *dScores = c.out(0);
  double alpha = c.f64("alpha");
  return c.finish([=] {
    return cpu::balanceLossBackward(*dLoss, scores, indices, dScores, tokens,
                                    experts, topK, sequences, alpha);
  });
}

template <typename T>
io::Expected<BoundKernel> bindDispatch(BindContext<T> &c) {
  c.arity(2, 3);
  int64_t hidden = c.inputLast(0), topK = c.inputLast(1);
  int64_t tokens = hidden ? c.inputSize(0) / hidden : 0;
  int64_t experts = c.outputSize(1);
  c.check(c.inputSize(1) == tokens * topK &&
              c.outputSize(0) == tokens * topK * hidden &&
              c.outputSize(2) == tokens * topK,
          "dispatch operands disagree");
  const T *x = c.in(0);
  const int32_t *indices = c.inIds(1);
  T *rows = c.out(0);
  int32_t *counts = c.outIds(1), *rowSource = c.outIds(2);
  return c.finish([=] {
    return cpu::dispatchForward(x, indices, rows, counts, rowSource, tokens,
                                topK, experts, hidden);
  });
}

template <typename T>
io::Expected<BoundKernel> bindDispatchGrad(BindContext<T> &c) {
  c.arity(3, 1);
  int64_t topK = c.inputLast(1), hidden = c.inputLast(0);
  int64_t tokens = topK ? c.inputSize(1) / topK : 0;
  c.check(c.inputSize(0) == tokens * topK * hidden &&
              c.inputSize(2) == tokens * topK &&
              c.outputSize(0) == tokens * hidden,
          "dispatch gradient operands disagree");
  const T *dRows = c.in(0);
  const int32_t *rowSource = c.inIds(2);
  T *dx = c.out(0);
  return c.finish([=] {
    return cpu::dispatchBackward(dRows, rowSource, dx, tokens, topK, hidden);
  });
}

/// The combine kernels' routing operands from input `weightsAt` on: weights
/// [T, k], indices [T, k], rowSource [T*k].
template <typename T>
void combineRouting(BindContext<T> &c, int weightsAt, int64_t &tokens,
                    int64_t &topK) {
  topK = c.inputLast(weightsAt);
  tokens = topK ? c.inputSize(weightsAt) / topK : 0;
  c.check(c.inputSize(weightsAt + 1) == tokens * topK &&
              c.inputSize(weightsAt + 2) == tokens * topK,
          "combine weights, indices and row sources disagree");
}

/// [rows [T*k, H], weights, indices, rowSource] -> y [T, H].
template <typename T> io::Expected<BoundKernel> bindCombine(BindContext<T> &c) {
  c.arity(4, 1);
  int64_t tokens, topK;
  combineRouting(c, 1, tokens, topK);
  int64_t hidden = c.inputLast(0);
  c.check(c.inputSize(0) == tokens * topK * hidden &&
              c.outputSize(0) == tokens * hidden,
          "combine rows or output have the wrong size");
  const T *rows = c.in(0), *weights = c.in(1);
  const int32_t *rowSource = c.inIds(3);
  T *y = c.out(0);
  return c.finish([=] {
    return cpu::combineForward(rows, weights, rowSource, y, tokens, topK,
                               hidden);
  });
}

/// [dy [T, H], weights, indices, rowSource] -> dRows [T*k, H].
template <typename T>
io::Expected<BoundKernel> bindCombineGrad(BindContext<T> &c) {
  c.arity(4, 1);
  int64_t tokens, topK;
  combineRouting(c, 1, tokens, topK);
  int64_t hidden = c.inputLast(0);
  c.check(c.inputSize(0) == tokens * hidden &&
              c.outputSize(0) == tokens * topK * hidden,
          "combine gradient operands disagree");
  const T *dy = c.in(0), *weights = c.in(1);
  const int32_t *rowSource = c.inIds(3);
  T *dRows = c.out(0);
  return c.finish([=] {
    return cpu::combineBackward(dy, weights, rowSource, dRows, tokens, topK,
                                hidden);
  });
}

/// [rowDots [T*k], weights, indices, rowSource] -> dWeights [T, k].
template <typename T>
io::Expected<BoundKernel> bindCombineWeightsGrad(BindContext<T> &c) {
  c.arity(4, 1);
  int64_t tokens, topK;
  combineRouting(c, 1, tokens, topK);
  c.check(c.inputSize(0) == tokens * topK && c.outputSize(0) == tokens * topK,
          "combine weights gradient operands disagree");
  const T *rowDots = c.in(0), *weights = c.in(1);
  const int32_t *rowSource = c.inIds(3);
  T *dWeights = c.out(0);
  return c.finish([=] {
    return cpu::combineWeightsBackward(rowDots, weights, rowSource, dWeights,
                                       tokens, topK);
  });
}

/// The routed experts' operands: [prefix..., rows, counts, E gates, E ups,
/// E downs, saved gate, saved up]; checks every weight's size.
template <typename T> struct ExpertOperands {
  int64_t numRows = 0, experts = 0, hidden = 0, inter = 0;
  std::vector<const T *> gate, up, down;
};

template <typename T>
ExpertOperands<T> expertOperands(BindContext<T> &c, int rowsAt, int savedAt) {
  ExpertOperands<T> e;
  e.hidden = c.inputLast(rowsAt);
  e.numRows = e.hidden ? c.inputSize(rowsAt) / e.hidden : 0;
  e.experts = c.inputSize(rowsAt + 1);
  int weightsAt = rowsAt + 2;
  c.check(e.experts >= 1 && c.numInputs() >= weightsAt + 3 * e.experts,
          "fewer weights than experts");
  if (c.numInputs() < weightsAt + 3 * e.experts)
    return e;
  e.inter = c.inputDim(weightsAt, 0);
  for (int64_t x = 0; x < e.experts; ++x) {
    int g = weightsAt + x, u = g + e.experts, d = u + e.experts;
    c.check(c.inputSize(g) == e.inter * e.hidden &&
                c.inputSize(u) == e.inter * e.hidden &&
                c.inputSize(d) == e.hidden * e.inter,
            "an expert's weights have the wrong size");
    e.gate.push_back(c.in(g));
    e.up.push_back(c.in(u));
    e.down.push_back(c.in(d));
  }
  if (savedAt >= 0)
    c.check(c.numInputs() == savedAt + 2 &&
                c.inputSize(savedAt) == e.numRows * e.inter &&
                c.inputSize(savedAt + 1) == e.numRows * e.inter,
            "saved pre-activations have the wrong size");
  return e;
}

/// The expert-parallel exchange of a routed-expert kernel whose rows are input
/// `rowsAt`; null without expert parallelism (or after a recorded problem).
template <typename T>
std::shared_ptr<ExpertExchange<T>>
expertExchange(BindContext<T> &c, const ExpertOperands<T> &e, int rowsAt) {
  if (!c.expertParallel || e.gate.empty())
    return nullptr;
  const std::string &weight = c.input(rowsAt + 2).name();
  std::optional<int64_t> layer = modelLayerOf(weight);
  if (!c.check(layer.has_value(),
               "expert weight '" + weight + "' names no model layer"))
    return nullptr;
  auto exchange = c.expertParallel->template exchange<T>(
      c.plan, &c.memory, *layer, e.experts, e.hidden, e.inter);
  if (!c.check(bool(exchange), exchange ? "" : exchange.error().message))
    return nullptr;
  return *exchange;
}

template <typename T> ExpertWeights<T> weightsOf(const ExpertOperands<T> &e) {
  return {e.gate.data(), e.up.data(), e.down.data()};
}

template <typename T>
io::Expected<BoundKernel> bindExpertFfn(BindContext<T> &c) {
  auto e = std::make_shared<ExpertOperands<T>>(expertOperands(c, 0, -1));
  c.check(c.numInputs() == 2 + 3 * e->experts && c.numOutputs() == 3 &&
              c.outputSize(0) == e->numRows * e->hidden &&
              c.outputSize(1) == e->numRows * e->inter &&
              c.outputSize(2) == e->numRows * e->inter,
          "expert outputs have the wrong size");
  const T *rows = c.in(0);
  const int32_t *counts = c.inIds(1);
  T *y = c.out(0), *savedGate = c.out(1), *savedUp = c.out(2);
  auto fp8 = c.innerFp8();
  if (auto exchange = expertExchange(c, *e, 0))
    return c.finish([=] {
      return exchange->forward(rows, counts, e->numRows, weightsOf(*e), y,
                               fp8 ? &*fp8 : nullptr);
    });
  return c.finish([=] {
    return cpu::expertFfnForward(rows, counts, e->gate.data(), e->up.data(),
                                 e->down.data(), y, savedGate, savedUp,
                                 e->numRows, e->experts, e->hidden, e->inter,
                                 fp8 ? &*fp8 : nullptr);
  });
}

/// The gradients' operands: [dy, rows, counts, E gates, E ups, E downs,
/// saved gate pre-activations, saved up pre-activations] (rows, which only the
/// weight gradient reads, are left to its binder).
template <typename T> struct ExpertGradOperands {
  std::shared_ptr<ExpertOperands<T>> e;
  const T *dy = nullptr, *savedGate = nullptr, *savedUp = nullptr;
  const int32_t *counts = nullptr;
};

template <typename T>
ExpertGradOperands<T> expertGradOperands(BindContext<T> &c) {
  int64_t experts = c.numInputs() > 2 ? c.inputSize(2) : 0;
  ExpertGradOperands<T> g;
  g.e = std::make_shared<ExpertOperands<T>>(
      expertOperands(c, 1, 3 + 3 * static_cast<int>(experts)));
  c.check(c.inputSize(0) == g.e->numRows * g.e->hidden,
          "gradient sizes disagree");
  g.dy = c.in(0);
  g.counts = c.inIds(2);
  int saved = c.numInputs() - 2;
  g.savedGate = c.in(saved);
  g.savedUp = c.in(saved + 1);
  return g;
}

template <typename T>
io::Expected<BoundKernel> bindExpertFfnGrad(BindContext<T> &c) {
  ExpertGradOperands<T> g = expertGradOperands(c);
  auto e = g.e;
  c.check(c.numOutputs() == 2 && c.outputSize(0) == e->numRows * e->hidden &&
              c.outputSize(1) == e->numRows,
          "gradient sizes disagree");
  T *dRows = c.out(0), *rowDots = c.out(1);
  auto fp8 = c.innerFp8();
  if (auto exchange = expertExchange(c, *e, 1))
    return c.finish([=] {
      return exchange->backwardData(g.dy, e->numRows, weightsOf(*e), dRows,
                                    rowDots, fp8 ? &*fp8 : nullptr);
    });
  return c.finish([=] {
    return cpu::expertFfnBackwardB(g.dy, g.counts, e->gate.data(), e->up.data(),
                                   e->down.data(), g.savedGate, g.savedUp,
                                   dRows, rowDots, e->numRows, e->experts,
                                   e->hidden, e->inter, fp8 ? &*fp8 : nullptr);
  });
}

template <typename T>
io::Expected<BoundKernel> bindExpertFfnWGrad(BindContext<T> &c) {
  ExpertGradOperands<T> g = expertGradOperands(c);
  auto e = g.e;
  c.check(c.numOutputs() == 3 * e->experts,
          "one gradient per expert weight expected");
  // Only the weight gradient reads the rows (the B part does not).
  const T *rows = c.in(1);
  auto grads = std::make_shared<std::vector<T *>>();
  for (int i = 0; i < c.numOutputs(); ++i) {
    c.check(c.outputSize(i) == e->inter * e->hidden,
            "a weight gradient has the wrong size");
    grads->push_back(c.out(i));
  }
  auto fp8 = c.innerFp8();
  if (auto exchange = expertExchange(c, *e, 1))
    return c.finish([=] {
      T *const *d = grads->data();
      return exchange->backwardWeights(g.dy, e->numRows, weightsOf(*e), d,
                                       d + e->experts, d + 2 * e->experts,
                                       fp8 ? &*fp8 : nullptr);
    });
  return c.finish([=] {
    T *const *d = grads->data();
    return cpu::expertFfnBackwardW(g.dy, rows, g.counts, e->down.data(),
                                   g.savedGate, g.savedUp, d, d + e->experts,
                                   d + 2 * e->experts, e->numRows, e->experts,
                                   e->hidden, e->inter, fp8 ? &*fp8 : nullptr);
  });
}

/// Shared experts: [prefix..., x, gate, up, down(, saved gate, saved up)].
template <typename T>
bool sharedShape(BindContext<T> &c, int xAt, int64_t &tokens, int64_t &hidden,
                 int64_t &inter) {
  hidden = c.inputLast(xAt);
  tokens = hidden ? c.inputSize(xAt) / hidden : 0;
  inter = c.inputDim(xAt + 1, 0);
  return c.check(c.inputSize(xAt + 1) == inter * hidden &&
                     c.inputSize(xAt + 2) == inter * hidden &&
                     c.inputSize(xAt + 3) == hidden * inter,
                 "shared expert weights have the wrong size");
}

template <typename T>
io::Expected<BoundKernel> bindSharedExperts(BindContext<T> &c) {
  c.arity(4, 3);
  int64_t tokens, hidden, inter;
  sharedShape(c, 0, tokens, hidden, inter);
  c.check(c.outputSize(0) == tokens * hidden &&
              c.outputSize(1) == tokens * inter &&
              c.outputSize(2) == tokens * inter,
          "outputs have the wrong size");
  const T *x = c.in(0), *g = c.in(1), *u = c.in(2), *d = c.in(3);
  T *y = c.out(0), *sg = c.out(1), *su = c.out(2);
  auto fp8 = c.innerFp8();
  return c.finish([=] {
    cpu::sharedExpertsForward(x, g, u, d, y, sg, su, tokens, hidden, inter,
                              fp8 ? &*fp8 : nullptr);
    return Status::Ok;
  });
}

/// The gradients' operands: [dy, x, gate, up, down, saved gate, saved up].
template <typename T>
void sharedGradShape(BindContext<T> &c, int64_t &tokens, int64_t &hidden,
                     int64_t &inter) {
  sharedShape(c, 1, tokens, hidden, inter);
  c.check(c.inputSize(0) == tokens * hidden &&
              c.inputSize(5) == tokens * inter &&
              c.inputSize(6) == tokens * inter,
          "gradient or saved pre-activations have the wrong size");
}

template <typename T>
io::Expected<BoundKernel> bindSharedExpertsGrad(BindContext<T> &c) {
  c.arity(7, 1);
  int64_t tokens, hidden, inter;
  sharedGradShape(c, tokens, hidden, inter);
  c.check(c.outputSize(0) == tokens * hidden, "gradient sizes disagree");
  const T *dy = c.in(0), *g = c.in(2), *u = c.in(3), *d = c.in(4),
          *sg = c.in(5), *su = c.in(6);
  T *dx = c.out(0);
  auto fp8 = c.innerFp8();
  return c.finish([=] {
    cpu::sharedExpertsBackwardB(dy, g, u, d, sg, su, dx, tokens, hidden, inter,
                                fp8 ? &*fp8 : nullptr);
    return Status::Ok;
  });
}

template <typename T>
io::Expected<BoundKernel> bindSharedExpertsWGrad(BindContext<T> &c) {
  c.arity(7, 3);
  int64_t tokens, hidden, inter;
  sharedGradShape(c, tokens, hidden, inter);
  c.check(c.outputSize(0) == inter * hidden &&
              c.outputSize(1) == inter * hidden &&
              c.outputSize(2) == hidden * inter,
          "gradient sizes disagree");
  const T *dy = c.in(0), *x = c.in(1), *d = c.in(4), *sg = c.in(5),
          *su = c.in(6);
  T *dg = c.out(0), *du = c.out(1), *dd = c.out(2);
  auto fp8 = c.innerFp8();
  return c.finish([=] {
    cpu::sharedExpertsBackwardW(dy, x, d, sg, su, dg, du, dd, tokens, hidden,
                                inter, fp8 ? &*fp8 : nullptr);
    return Status::Ok;
  });
}

template <typename T>
io::Expected<BoundKernel> bindMtpProject(BindContext<T> &c) {
  c.arity(3, 1);
  int64_t hidden = c.inputLast(0);
  int64_t m = hidden ? c.inputSize(0) / hidden : 0;
  c.check(c.inputSize(1) == m * hidden &&
              c.inputSize(2) == 2 * hidden * hidden &&
              c.outputSize(0) == m * hidden,
          "MTP projection operands disagree");
  const T *e = c.in(0), *h = c.in(1), *eh = c.in(2);
  T *y = c.out(0);
  return c.finish([=] {
    cpu::mtpProjectForward(e, h, eh, y, m, hidden);
    return Status::Ok;
  });
}

template <typename T>
io::Expected<BoundKernel> bindMtpProjectGrad(BindContext<T> &c) {
  c.arity(2, 2);
  int64_t hidden = c.inputLast(0);
  int64_t m = hidden ? c.inputSize(0) / hidden : 0;
  c.check(c.inputSize(1) == 2 * hidden * hidden &&
              c.outputSize(0) == m * hidden && c.outputSize(1) == m * hidden,
          "MTP projection gradient operands disagree");
  const T *dy = c.in(0), *eh = c.in(1);
  T *de = c.out(0), *dh = c.out(1);
  return c.finish([=] {
    cpu::mtpProjectBackwardB(dy, eh, de, dh, m, hidden);
    return Status::Ok;
  });
}

template <typename T>
io::Expected<BoundKernel> bindMtpProjectWGrad(BindContext<T> &c) {
  c.arity(3, 1);
  int64_t hidden = c.inputLast(0);
  int64_t m = hidden ? c.inputSize(0) / hidden : 0;
  c.check(c.inputSize(1) == m * hidden && c.inputSize(2) == m * hidden &&
              c.outputSize(0) == 2 * hidden * hidden,
          "MTP projection gradient operands disagree");
  const T *dy = c.in(0), *e = c.in(1), *h = c.in(2);
  T *deh = c.out(0);
  return c.finish([=] {
    cpu::mtpProjectBackwardW(dy, e, h, deh, m, hidden);
    return Status::Ok;
  });
}

} // namespace

template <typename T> Binder<T> moeBinder(const std::string &op) {
  static const std::map<std::string, Binder<T>> binders = {
      {"cross_entropy", bindCrossEntropy<T>},
      {"cross_entropy_grad", bindCrossEntropyGrad<T>},
      {"moe_gate", bindMoeGate<T>},
      {"moe_gate_grad", bindMoeGateGrad<T>},
      {"balance_loss", bindBalanceLoss<T>},
      {"balance_loss_grad", bindBalanceLossGrad<T>},
      {"dispatch", bindDispatch<T>},
      {"dispatch_grad", bindDispatchGrad<T>},
      {"combine", bindCombine<T>},
      {"combine_grad", bindCombineGrad<T>},
      {"combine_weights_grad", bindCombineWeightsGrad<T>},
      {"expert_ffn", bindExpertFfn<T>},
      {"expert_ffn_grad", bindExpertFfnGrad<T>},
      {"expert_ffn_wgrad", bindExpertFfnWGrad<T>},
      {"shared_experts", bindSharedExperts<T>},
      {"shared_experts_grad", bindSharedExpertsGrad<T>},
      {"shared_experts_wgrad", bindSharedExpertsWGrad<T>},
      {"mtp_project", bindMtpProject<T>},
      {"mtp_project_grad", bindMtpProjectGrad<T>},
      {"mtp_project_wgrad", bindMtpProjectWGrad<T>},
  };
  auto it = binders.find(op);
  return it == binders.end() ? nullptr : it->second;
}

template Binder<float> moeBinder<float>(const std::string &);
template Binder<double> moeBinder<double>(const std::string &);

} // namespace dsflow::exec
