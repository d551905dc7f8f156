//===- StreamBuilder.cpp - Compute plus the messages it implies -----------===//
#include "Schedule/StreamBuilder.h"

namespace dsflow::schedule {

void StreamBuilder::message(Op op, Chunk payload, int peerStage, bool queue) {
  if (peerStage < 0 || peerStage >= schedule.stages)
    return; // the pipeline's first or last stage
  int peer = schedule.rankOf(payload.microBatch, peerStage);
  if (peer == rank)
    return; // a hand-over between two stages of this rank
  Instruction in{op, payload, {}, peer};
  (queue ? pendingRecvs : schedule.streams[rank]).push_back(in);
}

void StreamBuilder::recvActivation(Chunk consumer) {
  Chunk producer{consumer.microBatch, consumer.stage - 1};
  message(Op::RecvActivation, producer, producer.stage, /*queue=*/true);
}

void StreamBuilder::recvGradient(Chunk consumer) {
  Chunk producer{consumer.microBatch, consumer.stage + 1};
  message(Op::RecvGradient, producer, producer.stage, /*queue=*/true);
}

void StreamBuilder::sendActivation(Chunk producer) {
  message(Op::SendActivation, producer, producer.stage + 1, /*queue=*/false);
}

void StreamBuilder::sendGradient(Chunk producer) {
  message(Op::SendGradient, producer, producer.stage - 1, /*queue=*/false);
}

void StreamBuilder::compute(Op op, Chunk chunk, Chunk backward) {
  std::vector<Instruction> &stream = schedule.streams[rank];
  stream.insert(stream.end(), pendingRecvs.begin(), pendingRecvs.end());
  pendingRecvs.clear();
  stream.push_back(Instruction{op, chunk, backward, -1});
}

void StreamBuilder::forward(Chunk chunk) {
  recvActivation(chunk);
  compute(Op::Forward, chunk);
  sendActivation(chunk);
}

void StreamBuilder::backward(Op op, Chunk chunk) {
  recvGradient(chunk);
  compute(op, chunk);
  sendGradient(chunk);
}

} // namespace dsflow::schedule
