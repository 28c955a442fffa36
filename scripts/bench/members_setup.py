"""Creates N Premium members through the admin API, each with one member card bound
(UID 04 + the card number in 12 hex digits), over one keep-alive connection. Prints the
members' page codes, by card, comma-separated (scripts/bench/checkin.lua reads them)."""
import http.client
import json
import sys

host, port, token, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
conn = http.client.HTTPConnection(host, port)
headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def post(path, body):
    conn.request("POST", path, json.dumps(body), headers)
    r = conn.getresponse()
    data = r.read()
    if r.status not in (200, 201):
        sys.exit(f"{path}: {r.status} {data[:300]!r}")
    return json.loads(data)


codes = []
for i in range(n):
    m = post("/api/admin/members", {"customer_id": f"cus_bench_{i}", "email": f"m{i}@example.com",
                                    "plan": "premium", "first_name": f"Member {i}"})
    c = post(f"/api/admin/members/{m['id']}/cards", {"uid": f"04{i:012X}"})
    codes.append(c["url"].rsplit("/", 1)[1])
print(",".join(codes))
