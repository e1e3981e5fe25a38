#!/usr/bin/env bash
# A single-node Ceph cluster with an S3 gateway (RGW) on loopback, for the S3
# tests and for anyone who wants a local, real S3 implementation.
#
#   scripts/local_s3.sh start [DIR]   start it; prints the endpoint and keys
#   scripts/local_s3.sh stop  [DIR]   stop everything it started, remove DIR
#
# Needs Debian's ceph-mon, ceph-osd and radosgw. Everything lives in DIR
# (default /tmp/sluice-s3): config, data (in memory: memstore), logs, pids.
# Endpoint http://127.0.0.1:7480, region "default", and these fixed keys:
set -euo pipefail

ACCESS_KEY=sluicetestaccesskey
SECRET_KEY=sluicetestsecretkey0123456789
PORT=${SLUICE_S3_PORT:-7480}
MON_PORT=${SLUICE_S3_MON_PORT:-6789}

cmd=${1:-}
dir=${2:-/tmp/sluice-s3}
conf="$dir/ceph.conf"

stop() {
  for name in radosgw osd mon; do
    if [ -f "$dir/$name.pid" ]; then
      kill "$(cat "$dir/$name.pid")" 2>/dev/null || true
    fi
  done
  for name in radosgw osd mon; do
    if [ -f "$dir/$name.pid" ]; then
      pid=$(cat "$dir/$name.pid")
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$dir"
}

start() {
  if [ -e "$dir" ]; then
    echo "local_s3: $dir exists; stop the cluster first ($0 stop $dir)" >&2
    exit 1
  fi
  for port in "$MON_PORT" "$PORT"; do
    # A daemon of another cluster on these ports would answer in its place.
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "local_s3: 127.0.0.1:$port is in use (another cluster still stopping?)" >&2
      exit 1
    fi
  done
  mkdir -p "$dir/mon" "$dir/osd" "$dir/rgw" "$dir/run"
  fsid=$(python3 -c 'import uuid; print(uuid.uuid4())')
  cat >"$conf" <<CONF
[global]
fsid = $fsid
mon host = 127.0.0.1:$MON_PORT
# On a port other than 6789 the mon would speak only msgr2, whose default
# (secure) mode the gateway cannot use here: crc works on any port.
ms mon client mode = crc
auth cluster required = none
auth service required = none
auth client required = none
auth supported = none
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
run dir = $dir/run
log file = $dir/\$name.log
admin socket = $dir/run/\$name.asok
pid file = $dir/\$type.pid
[mon.a]
mon data = $dir/mon
public addr = 127.0.0.1:$MON_PORT
[osd.0]
osd data = $dir/osd
osd objectstore = memstore
memstore device bytes = 4294967296
[client.rgw]
pid file = $dir/radosgw.pid
log file = $dir/radosgw.log
rgw frontends = beast endpoint=127.0.0.1:$PORT
rgw data = $dir/rgw
rgw dns name = 127.0.0.1
CONF
  monmaptool --create --clobber --fsid "$fsid" --add a "127.0.0.1:$MON_PORT" "$dir/monmap" >/dev/null
  ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" >/dev/null
  ceph-mon -c "$conf" -i a 2>>"$dir/start.log"
  ceph -c "$conf" osd create >/dev/null 2>>"$dir/start.log"
  ceph-osd -c "$conf" -i 0 --mkfs >>"$dir/start.log" 2>&1
  ceph-osd -c "$conf" -i 0 2>>"$dir/start.log"
  ceph -c "$conf" osd crush add osd.0 1.0 host=localhost root=default >>"$dir/start.log" 2>&1
  radosgw -c "$conf" -n client.rgw 2>>"$dir/start.log"
  for _ in $(seq 120); do
    if curl -fs "http://127.0.0.1:$PORT/" >/dev/null 2>&1; then break; fi
    sleep 0.5
  done
  curl -fs "http://127.0.0.1:$PORT/" >/dev/null || { echo "local_s3: RGW did not answer; see $dir/*.log" >&2; exit 1; }
  radosgw-admin -c "$conf" user create 2>>"$dir/start.log" --uid=sluice --display-name=sluice \
    --access-key="$ACCESS_KEY" --secret="$SECRET_KEY" >/dev/null
  echo "endpoint=http://127.0.0.1:$PORT"
  echo "region=default"
  echo "AWS_ACCESS_KEY_ID=$ACCESS_KEY"
  echo "AWS_SECRET_ACCESS_KEY=$SECRET_KEY"
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop [DIR]" >&2; exit 2 ;;
esac
