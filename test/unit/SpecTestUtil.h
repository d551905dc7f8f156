//===- SpecTestUtil.h - Helpers for the model description tests -*- C++ -*-===//
#ifndef DSFLOW_TEST_UNIT_SPECTESTUTIL_H
#define DSFLOW_TEST_UNIT_SPECTESTUTIL_H

#include "Frontend/ModelSpecLoader.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace dsflow::test {

inline std::string modelPath(const std::string &name) {
  return std::string(DSFLOW_MODELS_DIR) + "/" + name;
}

inline std::string readFile(const std::string &path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

/// Parses `text` as a description named `source`; expects a failure whose message
/// contains every one of `parts`, on one line.
inline void expectError(const std::string &text, const std::string &source,
                        std::initializer_list<std::string> parts) {
  std::string error;
  std::optional<ModelSpec> spec = parseModelSpec(text, source, error);
  ASSERT_FALSE(spec.has_value()) << "accepted:\n" << text;
  EXPECT_EQ(error.find('\n'), std::string::npos) << error;
  EXPECT_EQ(error.rfind(source + ": ", 0), 0u) << error;
  for (const std::string &part : parts)
    EXPECT_NE(error.find(part), std::string::npos)
        << "error '" << error << "' lacks '" << part << "'";
}

} // namespace dsflow::test

#endif // DSFLOW_TEST_UNIT_SPECTESTUTIL_H
