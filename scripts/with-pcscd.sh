#!/usr/bin/env bash
# Brings up a private pcscd with the vsmartcard vpcd virtual reader, runs "$@" against
# it, and stops pcscd by PID. Exports VPCD_PORT0/VPCD_PORT1 (TCP ports the card side
# connects to) and PCSC_READER0/PCSC_READER1 (reader names as PC/SC reports them).
# Based on the tested script in shared/docs/virtual-reader.md §5.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
"$here/install-deps.sh" pcsc

work=$(mktemp -d)
port0=${VPCD_PORT:-35963}          # slot 0 = port0, slot 1 = port0+1
name=${VPCD_NAME:-Virtual PCD}     # readers: "$name 00 00", "$name 00 01"
mkdir -p "$work/reader.conf.d"
cat > "$work/reader.conf.d/vpcd" <<CONF
FRIENDLYNAME "$name"
DEVICENAME   /dev/null:$port0
LIBPATH      /usr/lib/pcsc/drivers/serial/libifdvpcd.so
CHANNELID    $port0
CONF

# One pcscd per machine (fixed socket and pid file).
if [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null; then
  systemctl stop pcscd.socket pcscd.service 2>/dev/null || true
fi
if [[ -S /run/pcscd/pcscd.comm ]]; then
  old=$(tr -d '\0' < /run/pcscd/pcscd.pid 2>/dev/null || true)
  if [[ -n "$old" ]] && kill -0 "$old" 2>/dev/null; then
    echo "with-pcscd: a pcscd (pid $old) is already running; stop it first (kill $old)" >&2; exit 1
  fi
  rm -f /run/pcscd/pcscd.comm /run/pcscd/pcscd.pid     # stale, from a killed daemon
fi

: > "$work/pcscd.log"      # create it before the child does, or the first grep races
pcscd --foreground --info --config "$work/reader.conf.d" > "$work/pcscd.log" 2>&1 &
pcscd_pid=$!
cleanup() {
  kill -TERM "$pcscd_pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pcscd_pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pcscd_pid" 2>/dev/null || true
  wait "$pcscd_pid" 2>/dev/null || true
  if [[ -n "${KEEP_PCSCD_LOG:-}" ]]; then cp "$work/pcscd.log" "$KEEP_PCSCD_LOG"; fi
  rm -rf "$work"
}
trap cleanup EXIT

for _ in $(seq 100); do    # up to 10 s; it normally takes ~0.1 s
  kill -0 "$pcscd_pid" 2>/dev/null || { tr -d '\0' < "$work/pcscd.log" >&2; echo "with-pcscd: pcscd died" >&2; exit 1; }
  grep -aq 'daemon ready' "$work/pcscd.log" && [[ -S /run/pcscd/pcscd.comm ]] && break
  sleep 0.1
done
grep -aq 'daemon ready' "$work/pcscd.log" || { echo "with-pcscd: pcscd not ready after 10 s" >&2; exit 1; }
# pcscd still says "ready" when the vpcd reader failed (e.g. its port is taken).
if grep -aqE 'init failed|Could not initialize' "$work/pcscd.log"; then
  tr -d '\0' < "$work/pcscd.log" >&2; echo "with-pcscd: the virtual reader did not start (ports $port0/$((port0 + 1)) busy?)" >&2; exit 1
fi

export VPCD_PORT0=$port0 VPCD_PORT1=$((port0 + 1))
export PCSC_READER0="$name 00 00" PCSC_READER1="$name 00 01"
echo "with-pcscd: pcscd pid $pcscd_pid ready; readers '$PCSC_READER0' (port $VPCD_PORT0), '$PCSC_READER1' (port $VPCD_PORT1)"
"$@"
