#!/bin/sh
# kill_rank.sh R SECONDS CMD...: runs CMD; the rank whose $RANK is R (a
# torchrun-style launch) is killed with SIGKILL after SECONDS, as if it died.
victim=$1 seconds=$2
shift 2
if [ "$RANK" = "$victim" ]; then
  exec timeout -s KILL "$seconds" "$@"
fi
exec "$@"
