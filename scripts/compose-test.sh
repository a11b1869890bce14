#!/usr/bin/env bash
# The compose test: builds the images the local way (scripts/images.sh), then
#   1. validates docker-compose.yml and brings the stack up with `--wait`, timed;
#   2. queries the admin API from the host (the devices enrolled; they follow the clock),
#      and the console (`/console`, Basic with the admin token);
#   3. runs the labs through the `scenario` service and checks its JUnit report, then
#      stops the server and devices (SIGTERM) and checks that they exit cleanly;
#   4. brings up a second server replica on the same PostgreSQL, runs a week of four
#      devices (tests/compose/failover) through both, `docker kill`s one server mid-week,
#      and checks that the devices finished through the other with every report in the
#      journal exactly once (the scenario's own expectations) and the JUnit green;
# and tears everything down, volumes included, whatever happened. Its last line is
# `compose: N passed, N failed`; it exits 1 if anything failed. Called by .ci/run.
set -uo pipefail
cd "$(dirname "$0")/.."

export COMPOSE_PROJECT_NAME=tenantless-test
export TENANTLESS_DEVICES=3
export TENANTLESS_ADMIN_TOKEN=compose-test-admin
token=$TENANTLESS_ADMIN_TOKEN
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
export TENANTLESS_ADMIN_PORT=$(free_port) TENANTLESS_DEVICE_PORT=$(free_port)
export TENANTLESS_ADMIN_TLS_PORT=$(free_port)
admin=http://127.0.0.1:$TENANTLESS_ADMIN_PORT
work=$(mktemp -d)
chmod 0777 "$work"

passed=0
failed=0
ok() { echo "ok   $1"; passed=$((passed + 1)); }
not_ok() { echo "FAIL $1"; failed=$((failed + 1)); }
check() { # description, command...
    local what=$1
    shift
    if "$@"; then ok "$what"; else not_ok "$what"; fi
}
compose() { docker compose --profile replica --profile scenario "$@"; }
down() { compose down --volumes --remove-orphans --timeout 10 >/dev/null 2>&1; }
finish() {
    down
    rm -rf "$work"
    echo "compose: $passed passed, $failed failed"
}
trap finish EXIT
trap 'exit 1' INT TERM

api() { # method, path, [json body]
    curl -fsS -X "$1" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
        ${3:+--data "$3"} "$admin$2"
}
json() { python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"; }
junit_green() { # report, least number of test cases
    python3 - "$1" "$2" <<'PY'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except (OSError, ET.ParseError) as e:
    sys.exit(f"junit: {e}")
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
tests = sum(int(s.get("tests", 0)) for s in suites)
bad = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
print(f"junit: {tests} test case(s), {bad} failed")
sys.exit(0 if tests >= int(sys.argv[2]) and bad == 0 else 1)
PY
}

echo "== images"
if [ "${TENANTLESS_SKIP_IMAGES:-}" != 1 ]; then
    scripts/images.sh || { not_ok "images build"; exit 1; }
fi
ok "images build"
check "docker-compose.yml is valid" docker compose --profile replica --profile scenario config --quiet
down

echo "== docker compose up --wait"
start=$(date +%s.%N)
if docker compose up --wait --wait-timeout 120; then
    ok "stack up and healthy"
    echo "time to healthy: $(python3 -c "print(f'{$(date +%s.%N) - $start:.1f}')") s"
else
    not_ok "stack up and healthy"
    docker compose ps -a
    docker compose logs --tail 30
    exit 1
fi

echo "== the admin API, from the host"
devices=$(api GET /beta/deviceManagement/managedDevices | json 'len(d["value"])')
check "the $TENANTLESS_DEVICES devices enrolled (admin API lists $devices)" test "$devices" = "$TENANTLESS_DEVICES"
followers=$(api POST /testbed/clock/advance '{"by": "2h"}' | json 'd["followers"]')
check "the devices follow the server's clock ($followers followers)" test "$followers" = "$TENANTLESS_DEVICES"
sessions=$(api GET '/testbed/events/count?filter=%7B%22kind%22%3A%22session_started%22%7D' | json 'd["count"]')
check "the devices checked in as the clock moved ($sessions sessions)" test "$sessions" -gt "$TENANTLESS_DEVICES"
docker compose cp server:/var/lib/tenantless/pki/ca.pem "$work/ca.pem" >/dev/null 2>&1
tls_devices=$(curl -fsS --cacert "$work/ca.pem" -H "Authorization: Bearer $token" \
    "https://127.0.0.1:$TENANTLESS_ADMIN_TLS_PORT/v1.0/deviceManagement/managedDevices" | json 'len(d["value"])')
check "the admin API over HTTPS, trusting the server's CA ($tls_devices devices)" test "$tls_devices" = "$TENANTLESS_DEVICES"

echo "== the console, from the host (curl, as a browser signs in)"
device_id=$(api GET /beta/deviceManagement/managedDevices | json 'd["value"][0]["id"]')
device_name=$(api GET /beta/deviceManagement/managedDevices | json 'd["value"][0]["deviceName"]')
code=$(curl -s -o /dev/null -w '%{http_code}' "$admin/console/")
check "the console asks for the admin token (HTTP $code)" test "$code" = 401
curl -fsS -u "admin:$token" "$admin/console/" >"$work/console.html" 2>/dev/null
check "the console lists the devices ($device_name)" grep -q -- "$device_name" "$work/console.html"
curl -fsS -u "admin:$token" "$admin/console/devices/$device_id" >"$work/device.html" 2>/dev/null
check "a device's console page lists its management sessions" grep -q 'id="sessions"' "$work/device.html"
# Sessions are numbered across the server, so follow the device page's first link.
session_link=$(grep -o '/console/devices/[^"]*/sessions/[0-9]*' "$work/device.html" | head -n 1)
curl -fsS -u "admin:$token" "$admin$session_link" >"$work/session.html" 2>/dev/null
check "the SyncML viewer shows the device's first session (${session_link:-no link})" \
    grep -q 'SyncHdr' "$work/session.html"

echo "== the labs, through the scenario service"
mkdir -p -m 0777 "$work/labs"
labs=$(find scenarios/labs -name '*.toml' | wc -l)
if TENANTLESS_REPORTS=$work/labs docker compose run --rm scenario >"$work/labs.out" 2>&1; then
    ok "the scenario service ran the labs (exit 0)"
else
    not_ok "the scenario service ran the labs (exit 0)"
    tail -40 "$work/labs.out"
fi
tail -3 "$work/labs.out" | sed "s/^/    /"
check "the labs' JUnit report is green" junit_green "$work/labs/junit.xml" "$labs"
check "the labs' JSON report is written" test -s "$work/labs/report.json"

echo "== docker compose stop: SIGTERM"
docker compose stop --timeout 30 devices server >/dev/null 2>&1
codes=$(docker inspect --format '{{.State.ExitCode}}' $(docker compose ps --all --quiet devices server) | sort -u | tr '\n' ' ')
check "the server and the devices stop cleanly on SIGTERM (exit codes: $codes)" test "$codes" = "0 "
down

echo "== failover: two servers on one PostgreSQL, one killed mid-week"
if TENANTLESS_DEVICES=0 docker compose --profile replica up --wait --wait-timeout 120; then
    ok "two server replicas up and healthy"
else
    not_ok "two server replicas up and healthy"
    exit 1
fi
mkdir -p -m 0777 "$work/failover"
TENANTLESS_REPORTS=$work/failover TENANTLESS_SCENARIOS=$PWD/tests/compose/failover \
    TENANTLESS_SCENARIO_SERVERS=http://server:8080,http://server-b:8080 \
    docker compose run --rm scenario >"$work/failover.out" 2>&1 &
runner=$!
# Kill the first server when the world is in the middle of its week (day 4 of 7).
killed=
for _ in $(seq 1 1200); do
    kill -0 "$runner" 2>/dev/null || break
    now=$(api GET /testbed/clock 2>/dev/null | json 'd["now"]' 2>/dev/null || true)
    if [[ "$now" > "2026-03-05T08" && "$now" < "2026-03-09" ]]; then
        docker kill "$(docker compose ps -q server)" >/dev/null && killed=$now
        break
    fi
    sleep 0.1
done
check "a server was killed mid-week (world time ${killed:-never})" test -n "$killed"
wait "$runner"
status=$?
tail -3 "$work/failover.out" | sed "s/^/    /"
if [ "$status" = 0 ]; then
    ok "the devices finished their week through the other server (exit 0)"
else
    not_ok "the devices finished their week through the other server (exit $status)"
    tail -40 "$work/failover.out"
fi
check "every report in the journal exactly once (the failover JUnit is green)" \
    junit_green "$work/failover/junit.xml" 1
[ "$failed" = 0 ]
