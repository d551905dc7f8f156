//===- ClusterConfig.cpp - The cluster a plan is compiled for -------------===//
#include "Cluster/ClusterConfig.h"

#include "Frontend/TextProto.h"

#include <algorithm>
#include <fstream>
#include <sstream>

namespace dsflow {
namespace {

std::string str(int64_t v) { return std::to_string(v); }

} // namespace

ClusterConfig singleRankCluster() {
  ClusterConfig c;
  c.set_nodes(1);
  c.set_ranks_per_node(1);
  c.set_pp(1);
  c.set_ep(1);
  c.set_dp(1);
  c.set_zero1(true);
  return c;
}

std::optional<ClusterConfig> loadClusterConfig(const std::string &path,
                                               std::string &error) {
  std::ifstream in(path);
  if (!in) {
    error = path + ": cannot read the cluster description";
    return std::nullopt;
  }
  std::stringstream text;
  text << in.rdbuf();
  ClusterConfig config;
  if (!readTextProto(text.str(), config, error)) {
    error = path + ": " + error;
    return std::nullopt;
  }
  ClusterConfig defaults = singleRankCluster();
  defaults.MergeFrom(config); // Set (non-zero) fields override the 1s.
  if (!config.has_zero1())
    defaults.set_zero1(true);
  return defaults;
}

std::string validateCluster(const ClusterConfig &c, const ModelSpec &model) {
  const std::pair<const char *, int64_t> degrees[] = {
      {"nodes", c.nodes()}, {"ranks_per_node", c.ranks_per_node()},
      {"pp", c.pp()},       {"ep", c.ep()},
      {"dp", c.dp()}};
  for (const auto &[name, value] : degrees)
    if (value < 1)
      return std::string(name) + " must be at least 1, got " + str(value);
  int64_t world = worldSize(c);
  int64_t product = int64_t(c.pp()) * c.ep() * c.dp();
  if (product != world)
    return "pp " + str(c.pp()) + " x ep " + str(c.ep()) + " x dp " +
           str(c.dp()) + " = " + str(product) + " ranks, but " +
           str(c.nodes()) + " nodes x " + str(c.ranks_per_node()) +
           " ranks per node = " + str(world);
  if (c.pp() > model.num_layers())
    return "pp " + str(c.pp()) + " exceeds the model's " +
           str(model.num_layers()) + " layers";
  const MoeSpec &moe = model.moe();
  if (c.ep() > 1) {
    if (moe.num_routed_experts() == 0)
      return "ep " + str(c.ep()) + " needs routed experts; " + model.name() +
             " has none";
    if (moe.num_routed_experts() % c.ep() != 0)
      return str(moe.num_routed_experts()) +
             " routed experts do not divide over ep " + str(c.ep()) + " ranks";
    // An expert-parallel group is ep consecutive ranks: whole nodes, or part
    // of one node.
    if (c.ep() % c.ranks_per_node() != 0 && c.ranks_per_node() % c.ep() != 0)
      return "an expert-parallel group of ep " + str(c.ep()) +
             " ranks must fill whole nodes or fit in one (ranks per node " +
             str(c.ranks_per_node()) + ")";
    // Node-limited routing: each node of the group holds whole expert groups.
    int64_t groupNodes = std::max<int64_t>(1, c.ep() / c.ranks_per_node());
    int64_t groups = std::max<int64_t>(1, moe.expert_groups());
    if (groupNodes > 1 && groups % groupNodes != 0)
      return str(groups) + " expert groups do not map onto the " +
             str(groupNodes) + " nodes of an expert-parallel group";
  }
  return "";
}

} // namespace dsflow
