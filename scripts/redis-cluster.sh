#!/usr/bin/env bash
# A local 3-master Redis Cluster (no replicas) for trying REDIS_CLUSTER_NODES on a development machine.
#   bash scripts/redis-cluster.sh                      # start on 7001 7002 7003 (cluster bus on port+10000)
#   bash scripts/redis-cluster.sh start 7101 7102 7103 # other ports
#   bash scripts/redis-cluster.sh stop [PORTS…]        # shut the nodes down and delete their data
# Needs redis-server and redis-cli ≥ 6.2 on PATH. Data lives in a temporary directory, never in the
# shared Redis on 6379.
set -euo pipefail

cmd=start
if [[ "${1:-}" == start || "${1:-}" == stop ]]; then cmd=$1; shift; fi
ports=("$@")
if [[ ${#ports[@]} -eq 0 ]]; then ports=(7001 7002 7003); fi
if [[ ${#ports[@]} -lt 3 ]]; then echo "redis-cluster: a cluster needs at least 3 masters (got ${#ports[@]} ports)" >&2; exit 2; fi
dir="${TMPDIR:-/tmp}/hdt-redis-cluster-${ports[0]}"
nodes=$(printf '127.0.0.1:%s,' "${ports[@]}"); nodes=${nodes%,}

if [[ $cmd == stop ]]; then
  for p in "${ports[@]}"; do redis-cli -p "$p" shutdown nosave >/dev/null 2>&1 || true; done
  rm -rf "$dir"
  echo "redis-cluster: stopped ${nodes}"
  exit 0
fi

mkdir -p "$dir"
for p in "${ports[@]}"; do
  if redis-cli -p "$p" ping >/dev/null 2>&1; then continue; fi
  redis-server --port "$p" --bind 127.0.0.1 --daemonize yes --cluster-enabled yes \
    --cluster-config-file "$dir/nodes-$p.conf" --cluster-node-timeout 5000 \
    --appendonly yes --appendfilename "appendonly-$p.aof" --appenddirname "aof-$p" --maxmemory-policy noeviction \
    --dir "$dir" --logfile "$dir/redis-$p.log"
done
for p in "${ports[@]}"; do
  for _ in $(seq 1 50); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.1; done
  redis-cli -p "$p" ping >/dev/null || { echo "redis-cluster: node on $p did not start (see $dir/redis-$p.log)" >&2; exit 1; }
done

if ! redis-cli -p "${ports[0]}" cluster info | grep -q 'cluster_state:ok'; then
  hosts=(); for p in "${ports[@]}"; do hosts+=("127.0.0.1:$p"); done
  redis-cli --cluster create "${hosts[@]}" --cluster-replicas 0 --cluster-yes >/dev/null
  for _ in $(seq 1 100); do redis-cli -p "${ports[0]}" cluster info | grep -q 'cluster_state:ok' && break; sleep 0.1; done
fi
redis-cli -p "${ports[0]}" cluster info | grep -q 'cluster_state:ok' || { echo "redis-cluster: the cluster did not reach cluster_state:ok" >&2; exit 1; }
echo "redis-cluster: running (data in $dir). Use it with:"
echo "  REDIS_CLUSTER_NODES=${nodes}"
