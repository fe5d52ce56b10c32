#!/bin/bash
# A/B of two sizer binaries (say, a change and its parent, both release builds) on compare.sh's cold
# workloads (srcset, distinct; bench/numbered-urls.lua, every request a new variant, each run a fresh server
# with an empty variant store) and its hot path (the W1 600w JPEG from the memory tier), alternating rounds.
# Prints one line of req/s per round and binary. Loopback only; needs wrk and curl.
# usage: ab.sh OLD NEW ROUNDS SECS
set -u
OLD=$1; NEW=$2; ROUNDS=${3:-2}; SECS=${4:-15}
here=$(cd "$(dirname "$0")" && pwd)
IM=$here/../testdata/images
KEYS=kleiber-6028x3391.jpg,dragonfly-4224x3168.jpg,picos-3264x2448.jpg,path-2560x1600.jpg
W=${AB_WORK:-/tmp/peers/ab}; rm -rf $W; mkdir -p $W/src $W/dist
for k in ${KEYS//,/ }; do cp $IM/$k $W/src/; done
dk=()
for i in $(seq -w 1 600); do for k in ${KEYS//,/ }; do ln $W/src/$k $W/dist/d$i-$k; dk+=("d$i-$k"); done; done
DKEYS=$(IFS=,; echo "${dk[*]}")
port=18181
run() { # bin root keys urls conc
  rm -rf $2/copy
  RUST_LOG=error $1 serve --root $2 --listen 127.0.0.1:$port >/dev/null 2>&1 & pid=$!
  for _ in $(seq 100); do curl -s -o /dev/null 127.0.0.1:$port/healthz && break; sleep 0.05; done
  r=$(KEYS=$3 URLS=$4 wrk -t 2 -c $5 -d ${SECS}s -s $here/numbered-urls.lua http://127.0.0.1:$port 2>&1 | awk '/Requests\/sec/ {print $2}')
  kill $pid; wait $pid 2>/dev/null
  echo -n "$r"
}
hot() { # bin
  rm -rf $W/src/copy
  RUST_LOG=warn $1 serve --root $W/src --listen 127.0.0.1:$port >/dev/null 2>&1 & pid=$!
  for _ in $(seq 100); do curl -s -o /dev/null 127.0.0.1:$port/healthz && break; sleep 0.05; done
  for _ in 1 2 3; do curl -s -o /dev/null 127.0.0.1:$port/w/600/kleiber-6028x3391.jpg; done
  r=$(wrk -t 2 -c 32 -d ${SECS}s --latency http://127.0.0.1:$port/w/600/kleiber-6028x3391.jpg 2>&1 | awk '/Requests\/sec/ {r=$2} $1=="99%" {p=$2} END {print r" p99="p}')
  kill $pid; wait $pid 2>/dev/null
  echo -n "$r"
}
for r in $(seq $ROUNDS); do
  for name in old new; do
    bin=$OLD; [ $name = new ] && bin=$NEW
    echo "round $r $name srcset c2 $(run $bin $W/src $KEYS srcset 2) c8 $(run $bin $W/src $KEYS srcset 8) distinct c2 $(run $bin $W/dist $DKEYS distinct 2) c8 $(run $bin $W/dist $DKEYS distinct 8) hot $(hot $bin)"
  done
done
