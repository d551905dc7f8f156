//===- QuantizedParameters.cpp - One FP8 copy of each weight per run ------===//
#include "exec/QuantizedParameters.h"

namespace dsflow::exec {

template <typename T>
typename QuantizedParameters<T>::Use
QuantizedParameters<T>::use(int32_t buffer, const T *source, int64_t rows,
                            int64_t cols, Fp8Role role, bool ue8m0) {
  std::unique_ptr<Copy> &slot = copies[{buffer, role, ue8m0}];
  if (!slot) {
    slot = std::make_unique<Copy>();
    slot->values.resize(size_t(rows * cols));
  }
  Copy *copy = slot.get();
  return {copy->values.data(), [this, copy, source, rows, cols, role, ue8m0] {
            if (copy->madeInRun == run)
              return;
            fakeQuantize(source, copy->values.data(), rows, cols, role, ue8m0);
            copy->madeInRun = run;
          }};
}

template <typename T> int64_t QuantizedParameters<T>::bytes() const {
  int64_t total = 0;
  for (const auto &[key, copy] : copies)
    total += int64_t(copy->values.size() * sizeof(T));
  return total;
}

template class QuantizedParameters<float>;
template class QuantizedParameters<double>;

} // namespace dsflow::exec
