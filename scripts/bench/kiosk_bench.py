"""Start-up time, resident memory after hour-equivalents of frame refreshes, and bytes per
heartbeat of display-kiosk (driven by scripts/bench-kiosk.sh)."""
import argparse, http.client, json, os, statistics, subprocess, time

ap = argparse.ArgumentParser()
ap.add_argument("--kiosk"); ap.add_argument("--state-dir"); ap.add_argument("--port", type=int)
ap.add_argument("--bytes"); ap.add_argument("--hours", type=int, default=10)
a = ap.parse_args()

def get(path):
    c = http.client.HTTPConnection("127.0.0.1", a.port, timeout=5)
    c.request("GET", path); r = c.getresponse(); body = r.read(); c.close()
    return r.status, body

def spawn():
    return subprocess.Popen([a.kiosk, "run", "--state-dir", a.state_dir, "--listen", f"127.0.0.1:{a.port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "TAPKIT_LOG": "warn"})

def rss(pid):
    st = {}
    for line in open(f"/proc/{pid}/status"):
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"):
            st[k] = int(v.split()[0]) / 1024
    return st

# 1. Start-up: spawn → first 200 on "/".
times = []
for _ in range(10):
    t0 = time.monotonic(); p = spawn()
    while True:
        try:
            if get("/")[0] == 200:
                break
        except OSError:
            time.sleep(0.002)
    times.append((time.monotonic() - t0) * 1000)
    p.terminate(); p.wait()
print(f"start-up to first frame: median {statistics.median(times):.1f} ms, max {max(times):.1f} ms (10 runs)")

def conns():
    try:
        return json.load(open(a.bytes))
    except (OSError, ValueError):
        return []
time.sleep(1)
before = len(conns())

# 2. Memory: one frame render per page refresh (every 5 s: 720 per hour), sizes of real screens.
p = spawn()
while True:
    try:
        get("/healthz"); break
    except OSError:
        time.sleep(0.01)
print(f"resident at start: {rss(p.pid)['VmRSS']:.1f} MiB")
sizes = [(800, 480), (1920, 1080), (1080, 1920), (1024, 600)]
t0 = time.monotonic()
for h in range(1, a.hours + 1):
    for i in range(720):
        w, hh = sizes[i % len(sizes)]
        assert get(f"/frame.svg?w={w}&h={hh}")[0] == 200
    if h in (1, a.hours):
        m = rss(p.pid)
        print(f"after {h} hour-equivalent(s) ({h * 720} frames): VmRSS {m['VmRSS']:.1f} MiB, peak VmHWM {m['VmHWM']:.1f} MiB")
el = time.monotonic() - t0
print(f"frame render + serve: {el / (a.hours * 720) * 1000:.2f} ms per frame (SVG, {len(get('/frame.svg?w=1920&h=1080')[1])} bytes at 1920x1080)")

# 3. Bytes per heartbeat: everything this process sent and received over the proxy,
# divided by its heartbeats (the HTTP connection is kept alive between them, as in use).
def status():
    return json.loads(get("/status")[1])
time.sleep(31)
st = status()
p.terminate(); p.wait(); time.sleep(0.5)
c = conns()[before:]
up = sum(x["up"] for x in c); down = sum(x["down"] for x in c)
n = st["heartbeats_ok"]
print(f"{n} heartbeats over {len(c)} connection(s): {up} bytes up, {down} bytes down")
print(f"per heartbeat (config unchanged, keep-alive): {up / n:.0f} B up + {down / n:.0f} B down = {(up + down) / n:.0f} B")
