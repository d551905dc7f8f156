//===- Status.cpp - One-line error messages -------------------------------===//
#include "io/Status.h"

namespace dsflow::io {

static std::string oneLine(const std::string &text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '\n' || c == '\r')
      out += ' ';
    else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
      out += '?';
    else
      out += c;
  }
  return out;
}

IoError makeError(const std::string &where, const std::string &what) {
  return IoError{oneLine(where) + ": " + oneLine(what)};
}

} // namespace dsflow::io
