//===- Status.cpp - Descriptions of the CPU kernels' status codes ---------===//
#include "runtime/backends/cpu/Kernels.h"

namespace dsflow::cpu {

const char *toString(Status status) {
  switch (status) {
  case Status::Ok:
    return "ok";
  case Status::TokenIdOutOfRange:
    return "token id outside the embedding table";
  case Status::LabelOutOfRange:
    return "label outside the vocabulary";
  case Status::ExpertIndexOutOfRange:
    return "expert index outside the routed experts";
  case Status::BadExpertCounts:
    return "per-expert row counts do not add up to the rows";
  case Status::BadPermutation:
    return "dispatch row permutation is not a permutation";
  case Status::BadGateConfig:
    return "router groups and top-k cannot select k experts";
  case Status::CommunicationFailed:
    return "an exchange with other ranks failed";
  }
  return "unknown status";
}

} // namespace dsflow::cpu
