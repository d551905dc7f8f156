//===- ExpertLoadsTest.cpp - The loads file (dsflow.expert_loads) ---------===//
#include "io/ExpertLoads.h"

#include "../runtime/io/IoTestUtil.h"

#include <gtest/gtest.h>

namespace dsflow::io {
namespace {

std::string parseError(const std::string &text) {
  Expected<ExpertLoads> loads = parseExpertLoads(text, "loads.json");
  return loads.ok() ? "ok" : loads.error().message;
}

std::string withLayers(const std::string &layers) {
  return R"({"format": "dsflow.expert_loads", "model": "m", "steps": 3, )"
         R"("layers": )" +
         layers + "}";
}

TEST(ExpertLoads, RoundTripThroughAFile) {
  test::TempDir dir;
  ExpertLoads loads;
  loads.model = "small-v3 \"quoted\"";
  loads.steps = 300;
  loads.layers = {{1, {10, 0, 5, INT64_MAX}}, {6, {1, 2, 3, 4}}};
  ASSERT_FALSE(writeExpertLoads(dir.file("loads.json"), loads));
  Expected<ExpertLoads> back = readExpertLoads(dir.file("loads.json"));
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->model, loads.model);
  EXPECT_EQ(back->steps, 300);
  ASSERT_EQ(back->layers.size(), 2u);
  EXPECT_EQ(back->layers[0].layer, 1);
  EXPECT_EQ(back->layers[0].loads, loads.layers[0].loads);
  EXPECT_EQ(back->layers[1].layer, 6);
  EXPECT_EQ(back->layers[1].loads, loads.layers[1].loads);
  // Only the file itself: no temporaries left behind.
  EXPECT_EQ(dir.list(), std::vector<std::string>{"loads.json"});
}

TEST(ExpertLoads, TheDocumentedExampleParses) {
  EXPECT_EQ(parseError(withLayers(R"([{"layer": 1, "loads": [8120, 7904]},
      {"layer": 2, "loads": [1, 2]}])")),
            "ok");
}

TEST(ExpertLoads, Errors) {
  EXPECT_EQ(parseError("{\"format\": "),
            "loads.json: not valid JSON (byte 12)");
  EXPECT_EQ(parseError("[]"), "loads.json: not a JSON object");
  EXPECT_EQ(parseError(R"({"format": "dsflow.plan", "layers": []})"),
            "loads.json: 'format' is not 'dsflow.expert_loads'");
  EXPECT_EQ(parseError(withLayers("[]")),
            "loads.json: missing non-empty array 'layers'");
  EXPECT_EQ(parseError(withLayers(R"([{"layer": 1, "loads": [1, 2]},
      {"layer": 3, "loads": [1, 2, 3]}])")),
            "loads.json: layer 3 has 3 experts, layer 1 has 2");
  EXPECT_EQ(parseError(withLayers(R"([{"layer": 4, "loads": [1, -2]}])")),
            "loads.json: layer 4: load of expert 1 is not a non-negative "
            "integer (-2)");
  EXPECT_EQ(parseError(withLayers(R"([{"layer": 4, "loads": [1, 2.5]}])")),
            "loads.json: layer 4: load of expert 1 is not a non-negative "
            "integer (2.5)");
  EXPECT_EQ(parseError(withLayers(
                R"([{"layer": 4, "loads": [18446744073709551615]}])")),
            "loads.json: layer 4: load of expert 0 is too large");
  EXPECT_EQ(parseError(withLayers(R"([{"layer": -1, "loads": [1]}])")),
            "loads.json: layers[0]: missing non-negative integer 'layer'");
  EXPECT_EQ(parseError(withLayers(R"([{"layer": 1, "loads": [1]},
      {"layer": 1, "loads": [2]}])")),
            "loads.json: layer 1 appears twice");
  EXPECT_EQ(parseError(withLayers(R"([{"layer": 1, "load": [1]}])")),
            "loads.json: layers[0]: unknown key 'load'");
  EXPECT_EQ(parseError(R"({"format": "dsflow.expert_loads", "step": 1,
      "layers": [{"layer": 1, "loads": [1]}]})"),
            "loads.json: unknown key 'step'");
  EXPECT_EQ(parseError(R"({"format": "dsflow.expert_loads", "steps": -1,
      "layers": [{"layer": 1, "loads": [1]}]})"),
            "loads.json: 'steps' is not a non-negative integer");
}

TEST(ExpertLoads, MissingFile) {
  test::TempDir dir;
  Expected<ExpertLoads> loads = readExpertLoads(dir.file("none.json"));
  ASSERT_FALSE(loads.ok());
  EXPECT_NE(loads.error().message.find("none.json"), std::string::npos);
}

} // namespace
} // namespace dsflow::io
