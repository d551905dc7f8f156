//===- BindDense.cpp - Binding of the dense ops to CPU kernels ------------===//
#include "exec/KernelBinding.h"

#include <map>
#include <vector>

namespace dsflow::exec {
namespace {

using cpu::Status;

template <typename T> io::Expected<BoundKernel> bindTokenWindow(BindContext<T> &c) {
  c.arity(1, 1);
  int64_t batch = c.inputDim(0, 0), inSeq = c.inputDim(0, 1),
          offset = c.i64("offset");
  int64_t outSeq = batch ? c.outputSize(0) / batch : 0;
  c.check(c.input(0).shape_size() == 2 && batch > 0 &&
              c.outputSize(0) == batch * outSeq && offset >= 0 &&
              offset + outSeq <= inSeq,
          "token window does not fit the tokens");
  const int32_t *ids = c.inIds(0);
  int32_t *y = c.outIds(0);
  return c.finish([=] {
    cpu::tokenWindow(ids, y, batch, inSeq, offset, outSeq);
    return Status::Ok;
  });
}

template <typename T> io::Expected<BoundKernel> bindEmbedding(BindContext<T> &c) {
  c.arity(2, 1);
  int64_t vocab = c.inputDim(0, 0), hidden = c.inputDim(0, 1),
          tokens = c.inputSize(1);
  c.check(c.input(0).shape_size() == 2 && c.outputSize(0) == tokens * hidden,
          "table, ids and output sizes disagree");
  const T *table = c.in(0);
  const int32_t *ids = c.inIds(1);
  T *y = c.out(0);
  return c.finish([=] {
    return cpu::embeddingForward(table, ids, y, tokens, vocab, hidden);
  });
}

template <typename T>
io::Expected<BoundKernel> bindEmbeddingWGrad(BindContext<T> &c) {
  c.arity(2, 1);
  int64_t hidden = c.inputLast(0), tokens = c.inputSize(1);
  int64_t vocab = hidden ? c.outputSize(0) / hidden : 0;
  c.check(c.inputSize(0) == tokens * hidden &&
              c.outputSize(0) == vocab * hidden,
          "gradient, ids and table sizes disagree");
  const T *dy = c.in(0);
  const int32_t *ids = c.inIds(1);
  T *dtable = c.out(0);
  return c.finish([=] {
    return cpu::embeddingBackwardW(dy, ids, dtable, tokens, vocab, hidden);
  });
}

/// rows x dim of a normalized input, checked against the saved statistics.
template <typename T>
bool normShape(BindContext<T> &c, int x, int invRms, int64_t &rows,
               int64_t &dim) {
  dim = c.inputLast(x);
  rows = dim ? c.inputSize(x) / dim : 0;
  return c.check(rows * dim == c.inputSize(x) &&
                     (invRms < 0 || c.inputSize(invRms) == rows),
                 "input and saved statistics disagree");
}

template <typename T> io::Expected<BoundKernel> bindRmsNorm(BindContext<T> &c) {
  c.arity(2, 2);
  int64_t rows, dim;
  normShape(c, 0, -1, rows, dim);
  c.check(c.inputSize(1) == dim && c.outputSize(0) == rows * dim &&
              c.outputSize(1) == rows,
          "weight or outputs do not match the input");
  const T *x = c.in(0), *w = c.in(1);
  T *y = c.out(0), *invRms = c.out(1);
  double eps = c.f64("epsilon");
  return c.finish([=] {
    cpu::rmsNormForward(x, w, y, invRms, rows, dim, eps);
    return Status::Ok;
  });
}

template <typename T>
io::Expected<BoundKernel> bindRmsNormGrad(BindContext<T> &c) {
  c.arity(4, 1);
  int64_t rows, dim;
  normShape(c, 1, 3, rows, dim);
  c.check(c.inputSize(0) == rows * dim && c.inputSize(2) == dim &&
              c.outputSize(0) == rows * dim,
          "gradient, weight or output do not match the input");
  const T *dy = c.in(0), *x = c.in(1), *w = c.in(2), *invRms = c.in(3);
  T *dx = c.out(0);
  return c.finish([=] {
    cpu::rmsNormBackwardB(dy, x, w, invRms, dx, rows, dim);
    return Status::Ok;
  });
}

template <typename T>
io::Expected<BoundKernel> bindRmsNormWGrad(BindContext<T> &c) {
  c.arity(3, 1);
  int64_t rows, dim;
  normShape(c, 1, 2, rows, dim);
  c.check(c.inputSize(0) == rows * dim && c.outputSize(0) == dim,
          "gradient or output do not match the input");
  const T *dy = c.in(0), *x = c.in(1), *invRms = c.in(2);
  T *dw = c.out(0);
  return c.finish([=] {
    cpu::rmsNormBackwardW(dy, x, invRms, dw, rows, dim);
    return Status::Ok;
  });
}

template <typename T> io::Expected<BoundKernel> bindLinear(BindContext<T> &c) {
  c.arity(2, 1);
  int64_t n = c.inputDim(1, 0), k = c.inputDim(1, 1);
  int64_t m = k ? c.inputSize(0) / k : 0;
  c.check(c.input(1).shape_size() == 2 && c.inputLast(0) == k &&
              c.outputSize(0) == m * n,
          "input, weight and output sizes disagree");
  const T *x = c.in(0), *w = c.in(1);
  T *y = c.out(0);
  return c.finish([=] {
    cpu::linearForward(x, w, y, m, n, k);
    return Status::Ok;
  });
}

template <typename T>
io::Expected<BoundKernel> bindLinearGrad(BindContext<T> &c) {
  c.arity(2, 1);
  int64_t n = c.inputDim(1, 0), k = c.inputDim(1, 1);
  int64_t m = n ? c.inputSize(0) / n : 0;
  c.check(c.input(1).shape_size() == 2 && c.inputLast(0) == n &&
              c.outputSize(0) == m * k,
          "gradient, weight and output sizes disagree");
  const T *dy = c.in(0), *w = c.in(1);
  T *dx = c.out(0);
  return c.finish([=] {
    cpu::linearBackwardB(dy, w, dx, m, n, k);
    return Status::Ok;
  });
}

template <typename T>
io::Expected<BoundKernel> bindLinearWGrad(BindContext<T> &c) {
  c.arity(2, 1);
  int64_t n = c.inputLast(0), k = c.inputLast(1);
  int64_t m = n ? c.inputSize(0) / n : 0;
  c.check(m * k == c.inputSize(1) && c.outputSize(0) == n * k,
          "gradient, input and output sizes disagree");
  const T *dy = c.in(0), *x = c.in(1);
  T *dw = c.out(0);
  return c.finish([=] {
    cpu::linearBackwardW(dy, x, dw, m, n, k);
    return Status::Ok;
  });
}

template <typename T> io::Expected<BoundKernel> bindReshape(BindContext<T> &c) {
  c.arity(1, 1);
  int64_t n = c.inputSize(0);
  c.check(c.outputSize(0) == n, "reshape changes the element count");
  const T *x = c.in(0);
  T *y = c.out(0);
  return c.finish([=] {
    cpu::reshapeForward(x, y, n);
    return Status::Ok;
  });
}

/// The pieces' widths of a split or concat, checked against the whole.
template <typename T>
std::vector<int64_t> pieceWidths(BindContext<T> &c, bool split,
                                 int64_t &rows) {
  const Buffer &whole = split ? c.input(0) : c.output(0);
  int pieces = split ? c.numOutputs() : c.numInputs();
  int64_t last = whole.shape_size() ? whole.shape(whole.shape_size() - 1) : 0;
  rows = last ? numElements(whole) / last : 0;
  std::vector<int64_t> widths;
  int64_t total = 0;
  for (int p = 0; p < pieces; ++p) {
    const Buffer &piece = split ? c.output(p) : c.input(p);
    int64_t width = rows ? numElements(piece) / rows : 0;
    c.check(width * rows == numElements(piece), "a piece has the wrong size");
    widths.push_back(width);
    total += width;
  }
  c.check(pieces >= 2 && total == last, "the pieces do not add up");
  return widths;
}

template <typename T> io::Expected<BoundKernel> bindSplit(BindContext<T> &c) {
  int64_t rows;
  std::vector<int64_t> widths = pieceWidths(c, /*split=*/true, rows);
  const T *x = c.in(0);
  std::vector<T *> ys;
  for (int p = 0; p < c.numOutputs(); ++p)
    ys.push_back(c.out(p));
  c.check(c.numInputs() == 1, "split takes one input");
  return c.finish([=] {
    cpu::splitForward(x, ys.data(), widths.data(),
                      static_cast<int64_t>(ys.size()), rows);
    return Status::Ok;
  });
}

template <typename T> io::Expected<BoundKernel> bindConcat(BindContext<T> &c) {
  int64_t rows;
  std::vector<int64_t> widths = pieceWidths(c, /*split=*/false, rows);
  std::vector<const T *> pieces;
  for (int p = 0; p < c.numInputs(); ++p)
    pieces.push_back(c.in(p));
  T *y = c.out(0);
  c.check(c.numOutputs() == 1, "concat has one output");
  return c.finish([=] {
    cpu::splitBackward(pieces.data(), y, widths.data(),
                       static_cast<int64_t>(pieces.size()), rows);
    return Status::Ok;
  });
}

template <typename T>
io::Expected<BoundKernel> bindRopeCommon(BindContext<T> &c, bool backward) {
  c.arity(1, 1);
  int64_t b = c.inputDim(0, 0), s = c.inputDim(0, 1), h = c.inputDim(0, 2),
          d = c.inputDim(0, 3);
  c.check(c.input(0).shape_size() == 4 && d % 2 == 0 &&
              c.outputSize(0) == c.inputSize(0),
          "input must be [batch, seq, heads, even dim] like the output");
  std::optional<cpu::YarnParams> yarn;
  if (c.has("yarn_factor"))
    yarn = cpu::YarnParams{c.f64("yarn_factor"),
                           c.i64("yarn_original_max_position"),
                           c.f64("yarn_beta_fast"), c.f64("yarn_beta_slow")};
  auto invFreq = std::make_shared<std::vector<double>>(
      cpu::ropeInvFreq(d, c.f64("theta"), yarn ? &*yarn : nullptr));
  const T *x = c.in(0);
  T *y = c.out(0);
  return c.finish([=] {
    if (backward)
      cpu::ropeBackward(x, invFreq->data(), y, b, s, h, d);
    else
      cpu::ropeForward(x, invFreq->data(), y, b, s, h, d);
    return Status::Ok;
  });
}
template <typename T> io::Expected<BoundKernel> bindRope(BindContext<T> &c) {
  return bindRopeCommon(c, false);
}
template <typename T> io::Expected<BoundKernel> bindRopeGrad(BindContext<T> &c) {
  return bindRopeCommon(c, true);
}

/// The MLA shape from q_nope, q_pe, k_nope, k_pe, value at inputs first..+4.
template <typename T> cpu::MlaShape mlaShape(BindContext<T> &c, int first) {
  cpu::MlaShape s{c.inputDim(first, 0),     c.inputDim(first, 1),
                  c.inputDim(first, 2),     c.inputDim(first, 3),
                  c.inputDim(first + 1, 3), c.inputDim(first + 4, 3)};
  int64_t bsh = s.batch * s.seq * s.heads;
  c.check(c.input(first).shape_size() == 4 && c.inputSize(first + 1) == bsh * s.ropeDim &&
              c.inputSize(first + 2) == bsh * s.nopeDim &&
              c.inputSize(first + 3) == s.batch * s.seq * s.ropeDim &&
              c.inputSize(first + 4) == bsh * s.valueDim,
          "attention inputs disagree");
  return s;
}

template <typename T>
io::Expected<BoundKernel> bindMlaAttention(BindContext<T> &c) {
  c.arity(5, 2);
  cpu::MlaShape s = mlaShape(c, 0);
  int64_t bsh = s.batch * s.seq * s.heads;
  c.check(c.outputSize(0) == bsh * s.valueDim && c.outputSize(1) == bsh,
          "output or saved log-sum-exp has the wrong size");
  const T *qn = c.in(0), *qp = c.in(1), *kn = c.in(2), *kp = c.in(3),
          *v = c.in(4);
  T *out = c.out(0), *lse = c.out(1);
  double scale = c.f64("softmax_scale");
  return c.finish([=] {
    cpu::mlaAttentionForward(qn, qp, kn, kp, v, out, lse, s, scale);
    return Status::Ok;
  });
}

template <typename T>
io::Expected<BoundKernel> bindMlaAttentionGrad(BindContext<T> &c) {
  c.arity(7, 5);
  cpu::MlaShape s = mlaShape(c, 1);
  int64_t bsh = s.batch * s.seq * s.heads;
  c.check(c.inputSize(0) == bsh * s.valueDim && c.inputSize(6) == bsh,
          "output gradient or saved log-sum-exp has the wrong size");
  for (int i = 0; i < 5; ++i)
    c.check(c.outputSize(i) == c.inputSize(i + 1),
            "a gradient differs in size from its input");
  const T *dOut = c.in(0), *qn = c.in(1), *qp = c.in(2), *kn = c.in(3),
          *kp = c.in(4), *v = c.in(5), *lse = c.in(6);
  T *dqn = c.out(0), *dqp = c.out(1), *dkn = c.out(2), *dkp = c.out(3),
    *dv = c.out(4);
  double scale = c.f64("softmax_scale");
  return c.finish([=] {
    cpu::mlaAttentionBackward(dOut, qn, qp, kn, kp, v, lse, dqn, dqp, dkn, dkp,
                              dv, s, scale);
    return Status::Ok;
  });
}

/// n elements in every input and output.
template <typename T> int64_t sameSizes(BindContext<T> &c) {
  int64_t n = c.numOutputs() ? c.outputSize(0) : 0;
  for (int i = 0; i < c.numInputs(); ++i)
    c.check(c.inputSize(i) == n, "operands differ in size");
  for (int i = 0; i < c.numOutputs(); ++i)
    c.check(c.outputSize(i) == n, "results differ in size");
  return n;
}

template <typename T> io::Expected<BoundKernel> bindAdd(BindContext<T> &c) {
  c.arity(2, 1);
  int64_t n = sameSizes(c);
  const T *a = c.in(0), *b = c.in(1);
  T *y = c.out(0);
  return c.finish([=] {
    cpu::addForward(a, b, y, n);
    return Status::Ok;
  });
}

template <typename T> io::Expected<BoundKernel> bindScale(BindContext<T> &c) {
  c.arity(1, 1);
  int64_t n = sameSizes(c);
  const T *x = c.in(0);
  T *y = c.out(0);
  double factor = c.f64("factor");
  return c.finish([=] {
    cpu::scaleForward(x, factor, y, n);
    return Status::Ok;
  });
}

template <typename T> io::Expected<BoundKernel> bindFill(BindContext<T> &c) {
  c.arity(0, 1);
  int64_t n = c.outputSize(0);
  T *y = c.out(0);
  T value = static_cast<T>(c.f64("value"));
  return c.finish([=] {
    std::fill(y, y + n, value);
    return Status::Ok;
  });
}

template <typename T> io::Expected<BoundKernel> bindSwiglu(BindContext<T> &c) {
  c.arity(2, 1);
  int64_t n = sameSizes(c);
  const T *g = c.in(0), *u = c.in(1);
  T *y = c.out(0);
  return c.finish([=] {
    cpu::swigluForward(g, u, y, n);
    return Status::Ok;
  });
}

template <typename T>
io::Expected<BoundKernel> bindSwigluGrad(BindContext<T> &c) {
  c.arity(3, 2);
  int64_t n = sameSizes(c);
  const T *dy = c.in(0), *g = c.in(1), *u = c.in(2);
  T *dg = c.out(0), *du = c.out(1);
  return c.finish([=] {
    cpu::swigluBackward(dy, g, u, dg, du, n);
    return Status::Ok;
  });
}

/// grad_buffer += value: the sum over a step's micro-batches.
template <typename T>
io::Expected<BoundKernel> bindAccumulateGrad(BindContext<T> &c) {
  c.arity(1, 1);
  int64_t n = sameSizes(c);
  c.check(c.output(0).kind() == GRADIENT, "must write a gradient buffer");
  const T *g = c.in(0);
  T *acc = c.out(0);
  return c.finish([=] {
    for (int64_t i = 0; i < n; ++i)
      acc[i] += g[i];
    return Status::Ok;
  });
}

} // namespace

template <typename T> Binder<T> denseBinder(const std::string &op) {
  static const std::map<std::string, Binder<T>> binders = {
      {"token_window", bindTokenWindow<T>},
      {"embedding", bindEmbedding<T>},
      {"embedding_wgrad", bindEmbeddingWGrad<T>},
      {"rms_norm", bindRmsNorm<T>},
      {"rms_norm_grad", bindRmsNormGrad<T>},
      {"rms_norm_wgrad", bindRmsNormWGrad<T>},
      {"linear", bindLinear<T>},
      {"linear_grad", bindLinearGrad<T>},
      {"linear_wgrad", bindLinearWGrad<T>},
      {"reshape", bindReshape<T>},
      {"split", bindSplit<T>},
      {"concat", bindConcat<T>},
      {"rope", bindRope<T>},
      {"rope_grad", bindRopeGrad<T>},
      {"mla_attention", bindMlaAttention<T>},
      {"mla_attention_grad", bindMlaAttentionGrad<T>},
      {"add", bindAdd<T>},
      {"scale", bindScale<T>},
      {"fill", bindFill<T>},
      {"swiglu", bindSwiglu<T>},
      {"swiglu_grad", bindSwigluGrad<T>},
      {"accumulate_grad", bindAccumulateGrad<T>},
  };
  auto it = binders.find(op);
  return it == binders.end() ? nullptr : it->second;
}

template Binder<float> denseBinder<float>(const std::string &);
template Binder<double> denseBinder<double>(const std::string &);

} // namespace dsflow::exec
