#!/usr/bin/env bash
# A dask.distributed cluster on this machine: one `dask scheduler` and N `dask worker`s.
#
#   deploy/local-cluster.sh start   [options]   start it; prints the scheduler address
#   deploy/local-cluster.sh address [--dir D]   print the address of a running cluster
#   deploy/local-cluster.sh status  [--dir D]   address and the workers connected
#   deploy/local-cluster.sh stop    [--dir D]   stop every process it started
#
# Options of `start` (environment variables in brackets):
#   -n, --workers N          worker processes                   [ANNSCALE_WORKERS, 2]
#   -t, --threads T          threads per worker                 [ANNSCALE_WORKER_THREADS, 1]
#   -m, --memory-limit M     memory limit per worker, e.g. 4GiB [ANNSCALE_WORKER_MEMORY, 4GiB]
#   -p, --port P             scheduler port (0: any free one)   [ANNSCALE_SCHEDULER_PORT, 8786]
#   --host H                 address to listen on               [ANNSCALE_SCHEDULER_HOST, 127.0.0.1]
#   --dir D                  state directory: pid files, logs, scheduler.json, worker spill
#                            space                              [ANNSCALE_CLUSTER_DIR, ./.annscale-cluster]
#   --no-nanny               run workers without a nanny (a killed worker is not restarted)
#
# Each process runs in its own session (process group), so `stop` ends a worker together
# with its nanny and nothing else. Use it from Python with
#   annscale.settings.scheduler = "$(deploy/local-cluster.sh address)"
set -euo pipefail

usage() { sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; }

cmd="${1:-}"
[ $# -gt 0 ] && shift

workers="${ANNSCALE_WORKERS:-2}"
threads="${ANNSCALE_WORKER_THREADS:-1}"
memory="${ANNSCALE_WORKER_MEMORY:-4GiB}"
port="${ANNSCALE_SCHEDULER_PORT:-8786}"
host="${ANNSCALE_SCHEDULER_HOST:-127.0.0.1}"
dir="${ANNSCALE_CLUSTER_DIR:-./.annscale-cluster}"
nanny="--nanny"
python="${PYTHON:-python}"

while [ $# -gt 0 ]; do
  case "$1" in
    -n|--workers) workers="$2"; shift 2 ;;
    -t|--threads) threads="$2"; shift 2 ;;
    -m|--memory-limit) memory="$2"; shift 2 ;;
    -p|--port) port="$2"; shift 2 ;;
    --host) host="$2"; shift 2 ;;
    --dir) dir="$2"; shift 2 ;;
    --no-nanny) nanny="--no-nanny"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "local-cluster.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done

scheduler_file="$dir/scheduler.json"

# run the rest of the command line in a new session, in the background; record its pid
spawn() {
  local name="$1"; shift
  setsid "$@" >"$dir/$name.log" 2>&1 < /dev/null &
  echo $! >"$dir/$name.pid"
}

# the scheduler address, once the cluster has `want` workers (waits up to 120 s)
wait_for() {
  local want="$1"
  "$python" - "$scheduler_file" "$want" <<'PY'
import sys
from distributed import Client

with Client(scheduler_file=sys.argv[1], timeout="120s") as client:
    client.wait_for_workers(int(sys.argv[2]), timeout=120)
    print(client.scheduler.address)
PY
}

start() {
  if [ -e "$dir/scheduler.pid" ] && kill -0 "$(cat "$dir/scheduler.pid")" 2>/dev/null; then
    echo "local-cluster.sh: a cluster is already running from $dir (stop it first)" >&2
    exit 1
  fi
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  scheduler_file="$dir/scheduler.json"
  rm -f "$scheduler_file" "$dir"/*.pid
  spawn scheduler dask scheduler --host "$host" --port "$port" --no-dashboard \
    --scheduler-file "$scheduler_file"
  for _ in $(seq 1 600); do
    [ -s "$scheduler_file" ] && break
    if ! kill -0 "$(cat "$dir/scheduler.pid")" 2>/dev/null; then
      echo "local-cluster.sh: the scheduler exited; see $dir/scheduler.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  [ -s "$scheduler_file" ] || { echo "local-cluster.sh: no scheduler after 60 s" >&2; stop; exit 1; }
  for i in $(seq 0 $((workers - 1))); do
    mkdir -p "$dir/worker-$i"
    spawn "worker-$i" dask worker --scheduler-file "$scheduler_file" --host "$host" \
      --name "local-$i" --nthreads "$threads" --memory-limit "$memory" "$nanny" \
      --local-directory "$dir/worker-$i" --no-dashboard
  done
  if ! wait_for "$workers"; then
    echo "local-cluster.sh: workers did not connect; see $dir/worker-*.log" >&2
    stop
    exit 1
  fi
}

stop() {
  local pidfile pid
  shopt -s nullglob
  # workers first (so they do not try to reconnect), then the scheduler
  for pidfile in "$dir"/worker-*.pid "$dir"/scheduler.pid; do
    pid="$(cat "$pidfile")"
    # each process leads its own session: signal the group (nanny + worker process)
    kill -TERM -- "-$pid" 2>/dev/null || true
  done
  for pidfile in "$dir"/worker-*.pid "$dir"/scheduler.pid; do
    pid="$(cat "$pidfile")"
    for _ in $(seq 1 100); do
      kill -0 -- "-$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
    rm -f "$pidfile"
  done
  rm -f "$scheduler_file"
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  address) "$python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["address"])' \
             "$scheduler_file" ;;
  status) wait_for 0 && ls "$dir"/worker-*.pid 2>/dev/null | wc -l | xargs echo "workers started:" ;;
  -h|--help|help) usage ;;
  *) usage >&2; exit 2 ;;
esac
