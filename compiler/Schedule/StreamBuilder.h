//===- StreamBuilder.h - Appends one rank's instructions --------*- C++ -*-===//
//
// Generators say what a rank computes; the builder adds the communication the
// placement implies. A receive is queued and lands right before the rank's
// next compute instruction (as a batched irecv is waited on before the next
// kernel); a send lands where it is asked for. Hand-overs between two stages
// on the same rank (DualPipeV's turn) and the pipeline's two ends need no
// message and get none.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_COMPILER_SCHEDULE_STREAMBUILDER_H
#define DSFLOW_COMPILER_SCHEDULE_STREAMBUILDER_H

#include "Schedule/PipelineSchedule.h"

namespace dsflow::schedule {

class StreamBuilder {
public:
  StreamBuilder(PipelineSchedule &schedule, int rank)
      : schedule(schedule), rank(rank) {}

  /// Queues the receive of `consumer`'s input activation.
  void recvActivation(Chunk consumer);
  /// Queues the receive of the gradient of `consumer`'s output.
  void recvGradient(Chunk consumer);
  void sendActivation(Chunk producer);
  void sendGradient(Chunk producer);
  /// Appends the queued receives, then the compute instruction.
  void compute(Op op, Chunk chunk, Chunk backward = {});

  /// 1F1B-style chunks: receive, compute, send.
  void forward(Chunk chunk);
  /// `op` is FullBackward or BackwardInput.
  void backward(Op op, Chunk chunk);

private:
  void message(Op op, Chunk payload, int peerStage, bool queue);

  PipelineSchedule &schedule;
  int rank;
  std::vector<Instruction> pendingRecvs;
};

} // namespace dsflow::schedule

#endif // DSFLOW_COMPILER_SCHEDULE_STREAMBUILDER_H
