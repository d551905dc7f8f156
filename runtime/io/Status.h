//===- Status.h - Error values of the runtime I/O library -------*- C++ -*-===//
//
// Nothing in dsflow::io throws or aborts on bad input. A function that can fail
// returns `Status` (nullopt on success) or `Expected<T>` (a value or an
// IoError). Every message is one line that names the file and what is wrong:
//   "ckpt/step-100.safetensors: header length 9999999 exceeds file size 1234"
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_IO_STATUS_H
#define DSFLOW_IO_STATUS_H

#include <cassert>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace dsflow::io {

/// One failure: a single line, "FILE: what is wrong".
struct IoError {
  std::string message;
};

/// Builds "where: what", replacing line breaks and other control characters in
/// either part so the message stays on one line.
IoError makeError(const std::string &where, const std::string &what);

/// The result of an operation with no value: nullopt means success.
using Status = std::optional<IoError>;

/// A value of type T or an IoError.
template <typename T> class Expected {
public:
  Expected(T value) : storage(std::move(value)) {}
  Expected(IoError error) : storage(std::move(error)) {}

  bool ok() const { return storage.index() == 0; }
  explicit operator bool() const { return ok(); }

  T &operator*() {
    assert(ok() && "dereferencing an error");
    return std::get<0>(storage);
  }
  const T &operator*() const {
    assert(ok() && "dereferencing an error");
    return std::get<0>(storage);
  }
  T *operator->() { return &**this; }
  const T *operator->() const { return &**this; }

  const IoError &error() const {
    assert(!ok() && "no error in a value");
    return std::get<1>(storage);
  }
  /// The error as a Status (nullopt when this holds a value).
  Status status() const {
    if (ok())
      return std::nullopt;
    return error();
  }

private:
  std::variant<T, IoError> storage;
};

} // namespace dsflow::io

#endif // DSFLOW_IO_STATUS_H
