#!/usr/bin/env bash
# Side by side with a real Backstage catalog backend: the same N descriptor entities ingested into
# Backstage (its catalog plugin on Postgres) and into surveyor (Postgres, then SQLite); wall, CPU
# and peak RSS of each ingest, then by-query latency on each. Figures only; nothing is asserted.
#
#   crates/bench/peer/backstage.sh [N]        # N components, default 10000
#
# Needs Node and npm (the backend's packages are installed from npm, pinned by package-lock.json,
# on first use) and Postgres with trust auth; without Node it says so and exits 0. Environment:
#   PEER_PG       Postgres for both catalogs (default postgres://postgres@127.0.0.1:5432); the
#                 databases surveyor_peer_backstage and surveyor_peer_surveyor are recreated
#   PEER_DIR      work directory (default target/bench/peer): files, configs, logs, result.txt
#   PEER_QUERIES  by-query requests per catalog (default 200), one client
#   PEER_TIMEOUT  seconds Backstage may take to ingest (default 1800)
#   SURVEYOR      the surveyor binary (default: built with cargo build --release)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
n=${1:-10000}
pg=${PEER_PG:-postgres://postgres@127.0.0.1:5432}
work=${PEER_DIR:-$root/target/bench/peer}
queries=${PEER_QUERIES:-200}
timeout=${PEER_TIMEOUT:-1800}
bs_port=7007
sv_port=7879

if ! [[ $n =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 [N]   (N: how many components, a positive number)" >&2
    exit 2
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "skipped: Node (node and npm) is absent, and the Backstage backend runs on it"
    exit 0
fi
for tool in psql curl /usr/bin/time; do
    if ! command -v "$tool" >/dev/null; then
        echo "error: $tool is needed" >&2
        exit 2
    fi
done
if ! psql "$pg/postgres" -Atc 'select 1' >/dev/null; then
    echo "error: Postgres is not reachable at $pg" >&2
    exit 2
fi

if [ -z "${SURVEYOR:-}" ]; then
    (cd "$root" && cargo build --release --locked -q -p surveyor-cli)
    SURVEYOR="${CARGO_TARGET_DIR:-$root/target}/release/surveyor"
fi
if [ ! -d "$here/node_modules" ]; then
    echo "installing the Backstage backend's packages (npm ci)"
    (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi
backstage_version=$(node -p "require('$here/node_modules/@backstage/plugin-catalog-backend/package.json').version")

rm -rf "$work"
mkdir -p "$work"
node "$here/gen.mjs" "$n" "$work"
files=$(find "$work/entities" -name '*.yaml' | wc -l)

pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

recreate() {
    psql -q "$pg/postgres" -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1"
}

# Postgres's CPU seconds so far: its live processes, plus the children the postmaster has reaped
# (every connection's backend is a child, gone when the connection closes).
postgres_cpu() {
    local postmaster total=0 p
    postmaster=$(pgrep -o -x postgres)
    read -r -a s <"/proc/$postmaster/stat"
    total=$((s[15] + s[16]))
    for p in $(pgrep -x postgres); do
        read -r -a s <"/proc/$p/stat" 2>/dev/null || continue
        total=$((total + s[13] + s[14]))
    done
    echo "$total"
}
ticks=$(getconf CLK_TCK)
seconds() { awk -v t="$1" -v hz="$ticks" 'BEGIN { printf "%.1f", t / hz }'; }

wait_http() { # url pid log
    for _ in $(seq 1 240); do
        curl -fs -o /dev/null "$1" && return 0
        if ! kill -0 "$2" 2>/dev/null; then
            echo "error: the server exited before it answered at $1; its log, $3:" >&2
            tail -n 20 "$3" >&2
            return 1
        fi
        sleep 0.5
    done
    echo "error: nothing answered at $1 within 2 minutes" >&2
    return 1
}

results="$work/result.txt"
: >"$results"
row() { printf '%-28s %9s %9s %9s %9s %9s %9s %6s\n' "$@" | tee -a "$results"; }

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$results"
echo "$n components in $files files, plus 50 groups and 100 systems" | tee -a "$results"

# --- Backstage ---------------------------------------------------------------------------------
recreate surveyor_peer_backstage
pg_host=$(echo "$pg" | sed -E 's#^postgres(ql)?://([^@/]*@)?([^:/]+).*#\3#')
pg_portnum=$(echo "$pg" | sed -nE 's#^postgres(ql)?://([^@/]*@)?[^:/]+:([0-9]+).*#\3#p')
pg_user=$(echo "$pg" | sed -nE 's#^postgres(ql)?://([^:@/]+)(:[^@]*)?@.*#\2#p')
cat >"$work/app-config.yaml" <<EOF
backend:
  baseUrl: http://127.0.0.1:$bs_port
  listen: { port: $bs_port, host: 127.0.0.1 }
  auth:
    dangerouslyDisableDefaultAuthPolicy: true
  database:
    client: pg
    pluginDivisionMode: schema
    connection:
      host: $pg_host
      port: ${pg_portnum:-5432}
      user: ${pg_user:-postgres}
      database: surveyor_peer_backstage
catalog:
  rules:
    - allow: [Component, System, Group]
  locations:
    - type: file
      target: $work/entities/*.yaml
EOF
pg_before=$(postgres_cpu)
start=$(date +%s.%N)
# The subshell execs node, so its pid is node's. Backstage looks for a package.json above its
# working directory: this one's.
(cd "$here" && exec node "$here/backend.cjs" --config "$work/app-config.yaml" >"$work/backstage.log" 2>&1) &
bs_pid=$!
pids+=("$bs_pid")
wait_http "http://127.0.0.1:$bs_port/api/catalog/entities/by-query?limit=1" "$bs_pid" "$work/backstage.log"
count_url="http://127.0.0.1:$bs_port/api/catalog/entities/by-query?filter=kind%3Dcomponent&limit=1"
deadline=$(($(date +%s) + timeout))
while :; do
    seen=$(curl -fs "$count_url" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).totalItems))')
    [ "$seen" -ge "$n" ] && break
    if [ "$(date +%s)" -ge "$deadline" ]; then
        echo "error: Backstage ingested $seen of $n components in ${timeout}s" >&2
        exit 1
    fi
    sleep 1
done
end=$(date +%s.%N)
read -r -a st <"/proc/$bs_pid/stat"
bs_cpu=$((st[13] + st[14]))
bs_rss=$(awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$bs_pid/status")
pg_cpu=$(($(postgres_cpu) - pg_before))
bs_wall=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
bs_q=$(node "$here/query.mjs" "http://127.0.0.1:$bs_port" "$queries")
kill "$bs_pid"
wait "$bs_pid" 2>/dev/null || true

# --- surveyor ----------------------------------------------------------------------------------
surveyor_side() { # backend database-url
    cat >"$work/surveyor.toml" <<EOF
[catalog]
database = "$2"

[server]
listen = "127.0.0.1:$sv_port"
console = false

[[connectors]]
id = "descriptors"
kind = "file"
paths = ["entities/*.yaml"]
EOF
    local before after cpu wall rss q pid
    before=$(postgres_cpu)
    /usr/bin/time -f '%e %U %S %M' -o "$work/time-$1.txt" \
        "$SURVEYOR" sync --config "$work/surveyor.toml" >"$work/sync-$1.log" 2>&1
    after=$(postgres_cpu)
    read -r wall user sys rss <"$work/time-$1.txt"
    cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.1f", u + s }')
    "$SURVEYOR" serve --config "$work/surveyor.toml" >"$work/serve-$1.log" 2>&1 &
    pid=$!
    pids+=("$pid")
    wait_http "http://127.0.0.1:$sv_port/readyz" "$pid" "$work/serve-$1.log"
    q=$(node "$here/query.mjs" "http://127.0.0.1:$sv_port" "$queries")
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    local pgcpu="-"
    [ "$1" = postgres ] && pgcpu=$(seconds $((after - before)))
    sv_row=("surveyor, $1" "$wall" "$cpu" "$pgcpu" "$((rss / 1024))" "$q")
}

recreate surveyor_peer_surveyor
surveyor_side postgres "$pg/surveyor_peer_surveyor"
sv_pg=("${sv_row[@]}")
surveyor_side sqlite "sqlite://$work/surveyor.db"
sv_lite=("${sv_row[@]}")

# --- the table ---------------------------------------------------------------------------------
field() { node -e "console.log(JSON.parse(process.argv[1]).$2)" "$1"; }
echo | tee -a "$results"
row "catalog" "ingest s" "CPU s" "PG CPU s" "RSS MB" "bq p50" "bq p99" "items"
row "Backstage $backstage_version, postgres" "$bs_wall" "$(seconds "$bs_cpu")" "$(seconds "$pg_cpu")" \
    "$bs_rss" "$(field "$bs_q" p50)" "$(field "$bs_q" p99)" "$(field "$bs_q" items)"
for r in sv_pg sv_lite; do
    declare -n v=$r
    row "${v[0]}" "${v[1]}" "${v[2]}" "${v[3]}" "${v[4]}" "$(field "${v[5]}" p50)" \
        "$(field "${v[5]}" p99)" "$(field "${v[5]}" items)"
done
echo | tee -a "$results"
echo "ingest: until all $n components answer by-query (Backstage) or sync exits (surveyor), start-up included" | tee -a "$results"
echo "CPU s: the catalog process's own; PG CPU s: the Postgres server's during the ingest" | tee -a "$results"
echo "bq: by-query for one team's components (kind and relations.ownedBy, 20 a page), ms, one client, $queries requests" | tee -a "$results"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$results"
