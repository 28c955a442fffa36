#!/usr/bin/env python3
"""A minimal booking/checkout application integrated with Tapkit (Python, stdlib only).

It is the sample brand's own backend: nginx serves the booking page (public/index.html)
and sends POST /checkout here. What it shows is the whole integration a brand's
checkout needs:

1. the booking page copies the readable ``tapkit_ref_js`` cookie into the form
   (``attribution``), so the checkout knows which partner's tap or scan brought the
   customer;
2. when the payment succeeds, the app sends Tapkit a signed ``booking_paid`` webhook
   carrying that token; when the job is done, ``booking_serviced``; when money goes
   back, ``booking_refunded``. Tapkit pays a commission only for bookings both paid and
   serviced.

Signing: header ``Tapkit-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
"<t>.<raw body>" with the shared secret>``. Event ids are derived from the booking and
the kind, so a retried delivery is recognised by Tapkit as a duplicate, never counted
twice.

Settings (environment): BOOKING_APP_LISTEN (127.0.0.1:5000), TAPKIT_URL (where
tapkit-server listens, e.g. http://127.0.0.1:8080), TAPKIT_WEBHOOK_SECRET or
TAPKIT_WEBHOOK_SECRET_FILE (the same secret tapkit-server has), BOOKING_APP_STATE
(a JSON file keeping bookings across restarts).

Memberships start at ``POST /memberships/join`` (form: ``plan``, ``name``, ``email``,
``attribution``): the app sends Tapkit a signed ``membership_started`` event.

Staff endpoints (loopback only; nginx does not expose them) stand in for the brand's
back office: POST /staff/bookings/<id>/serviced, POST /staff/bookings/<id>/refunded,
GET /staff/bookings/<id>.

Memberships: the app is also the brand's payment system Tapkit asks to charge members
(tapkit-server's ``[program.payments] charge_url`` = ``http://<this app>/payments/charge``).
Tapkit signs each request like a webhook; the app refuses an unsigned or stale one,
charges the customer's saved card once per ``idempotency_key`` (a repeated key gets the
first answer again: that is what makes Tapkit's retries safe), and answers
``{"status": "succeeded", "reference": ...}`` or ``{"status": "failed", "reason":
"card_declined"}``. Back office: POST /staff/customers/<id>/declines (that customer's
card declines from now on), POST /staff/customers/<id>/card-ok (it works again), POST
/staff/payments/lose-next (the next charge is made but its answer is lost: a 503),
GET /staff/payments (every charge made).

Some payments settle later (bank debits, 3-D Secure): POST /staff/customers/<id>/async
makes that customer's charges answer ``202`` (a repeated request too, until the charge
settles); POST /staff/payments/settle-pending settles every pending charge (declined if
the customer's card declines) and sends Tapkit the signed ``payment_succeeded`` or
``payment_failed`` event for each, carrying the charge's invoice id and idempotency key.
"""

import datetime
import hashlib
import hmac
import html
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Prices live on the server: the form only names the service.
SERVICES = {
    "interior": ("Interior clean", 12000),
    "full": ("Full detail", 25000),
    "ceramic": ("Ceramic coating", 90000),
}
CURRENCY = "USD"
# The membership plans the brand sells (ids as in Tapkit's [program.membership]).
PLANS = {"basic": "Basic", "plus": "Plus", "premium": "Premium"}

LOCK = threading.Lock()


def secret() -> bytes:
    value = os.environ.get("TAPKIT_WEBHOOK_SECRET")
    if not value and os.environ.get("TAPKIT_WEBHOOK_SECRET_FILE"):
        with open(os.environ["TAPKIT_WEBHOOK_SECRET_FILE"], encoding="utf-8") as f:
            value = f.read().strip()
    if not value:
        sys.exit("booking_app: set TAPKIT_WEBHOOK_SECRET or TAPKIT_WEBHOOK_SECRET_FILE")
    return value.encode()


def load_state(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return {"next": 1, "bookings": {}}


def payments(state):
    """The payment side of the state (older state files have none)."""
    state.setdefault("charges", {})
    state.setdefault("declines", [])
    state.setdefault("lose_next", 0)
    state.setdefault("async", [])
    return state


def save_state(path, state):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(state, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def now_rfc3339() -> str:
    # With milliseconds: Tapkit compares the time with the click's (whole seconds would
    # make a booking look up to a second quicker than it was).
    now = datetime.datetime.now(datetime.timezone.utc)
    return now.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def send_webhook(kind: str, booking: dict) -> dict:
    """Signs and sends one event to Tapkit; retries network errors and 5xx answers."""
    event = {
        "event_id": f"{booking['id']}:{kind}",
        "kind": kind,
        "booking_id": booking["id"],
        "occurred_at": now_rfc3339(),
        "customer_id": booking["customer_id"],
        "customer_email_sha256": booking["email_sha256"],
        "customer_email_domain": booking["email_domain"],
    }
    if kind == "booking_paid":
        event["amount_minor"] = booking["amount_minor"]
        event["currency"] = CURRENCY
        if booking["attribution"]:
            event["attribution"] = booking["attribution"]
    return deliver(event)


def deliver(event: dict) -> dict:
    """Signs and sends one event to Tapkit; retries network errors and 5xx answers."""
    body = json.dumps(event).encode()
    url = os.environ.get("TAPKIT_URL", "http://127.0.0.1:8080").rstrip("/") + "/api/conversions"
    last = None
    for attempt in range(4):
        t = str(int(time.time()))
        mac = hmac.new(SECRET, t.encode() + b"." + body, hashlib.sha256).hexdigest()
        req = urllib.request.Request(url, body, {
            "Content-Type": "application/json",
            "Tapkit-Signature": f"t={t},v1={mac}",
        })
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return {"http": r.status, **json.load(r)}
        except urllib.error.HTTPError as e:
            answer = {"http": e.code, "error": e.read().decode(errors="replace")}
            if e.code < 500:
                return answer  # a 4xx will not change on retry: fix the request
            last = answer
        except (urllib.error.URLError, OSError) as e:
            last = {"http": 0, "error": str(e)}
        time.sleep(0.5 * 2 ** attempt)
    print(f"booking_app: {event['kind']} {event['event_id']} not delivered: {last}", file=sys.stderr)
    return last


def settle_pending():
    """Settles every pending charge and tells Tapkit how each turned out."""
    with LOCK:
        state = payments(STATE)
        settled = []
        for key, charge in state["charges"].items():
            if charge["status"] != "pending":
                continue
            if charge["customer_id"] in state["declines"]:
                charge.update(status="failed", reason="card_declined")
            else:
                charge.update(status="succeeded", reference=f"pay_{len(state['charges']):05d}_{len(settled) + 1}")
            settled.append((key, dict(charge)))
        save_state(STATE_PATH, STATE)
    answers = {}
    for key, charge in settled:
        event = {
            "event_id": f"{key}:{charge['status']}",
            "kind": "payment_" + charge["status"],
            "occurred_at": now_rfc3339(),
            "invoice_id": charge["invoice_id"],
            "idempotency_key": key,
        }
        if charge["status"] == "succeeded":
            event["reference"] = charge["reference"]
        else:
            event["reason"] = charge["reason"]
        answers[key] = deliver(event)
    return answers


def page(title: str, body: str) -> bytes:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title></head><body>{body}</body></html>"
    ).encode()


class Handler(BaseHTTPRequestHandler):
    server_version = "booking-app"

    def reply(self, status, body: bytes, ctype="text/html; charset=utf-8"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def json_reply(self, status, value):
        self.reply(status, json.dumps(value).encode(), "application/json")

    def log_message(self, fmt, *args):  # no customer data in the log
        sys.stderr.write(f"booking_app: {self.command} {self.path.split('?')[0]}\n")

    def staff_allowed(self) -> bool:
        # The back office's endpoints earn partners money: only from this machine (nginx
        # does not route /staff, and this check holds even if someone adds a route).
        return self.client_address[0] in ("127.0.0.1", "::1") and "X-Forwarded-For" not in self.headers

    def do_POST(self):
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= 16384:
            return self.reply(413, page("Too large", "<p>That form is too large or has no valid length.</p>"))
        raw_bytes = self.rfile.read(length)
        if self.path == "/payments/charge":
            return self.charge(raw_bytes)
        raw = raw_bytes.decode("utf-8", errors="replace")
        if self.path == "/checkout":
            return self.checkout(urllib.parse.parse_qs(raw))
        if self.path == "/memberships/join":
            return self.join(urllib.parse.parse_qs(raw))
        parts = self.path.strip("/").split("/")
        if parts[0] == "staff" and not self.staff_allowed():
            return self.json_reply(403, {"error": "staff endpoints answer only on this machine"})
        if len(parts) == 4 and parts[:2] == ["staff", "bookings"] and parts[3] in ("serviced", "refunded"):
            with LOCK:
                booking = STATE["bookings"].get(parts[2])
            if booking is None:
                return self.json_reply(404, {"error": f"no booking {parts[2]}"})
            kind = "booking_" + parts[3]
            answer = send_webhook(kind, booking)
            with LOCK:
                booking["tapkit"][kind] = answer
                save_state(STATE_PATH, STATE)
            return self.json_reply(200, {"booking": booking["id"], "kind": kind, "tapkit": answer})
        if len(parts) == 4 and parts[:2] == ["staff", "customers"] and parts[3] in ("declines", "card-ok"):
            with LOCK:
                declines = payments(STATE)["declines"]
                if parts[3] == "declines" and parts[2] not in declines:
                    declines.append(parts[2])
                if parts[3] == "card-ok" and parts[2] in declines:
                    declines.remove(parts[2])
                save_state(STATE_PATH, STATE)
            return self.json_reply(200, {"customer_id": parts[2], "declines": parts[3] == "declines"})
        if len(parts) == 4 and parts[:2] == ["staff", "customers"] and parts[3] == "async":
            with LOCK:
                if parts[2] not in payments(STATE)["async"]:
                    STATE["async"].append(parts[2])
                save_state(STATE_PATH, STATE)
            return self.json_reply(200, {"customer_id": parts[2], "async": True})
        if parts == ["staff", "payments", "settle-pending"]:
            return self.json_reply(200, settle_pending())
        if parts == ["staff", "payments", "lose-next"]:
            with LOCK:
                payments(STATE)["lose_next"] += 1
                save_state(STATE_PATH, STATE)
            return self.json_reply(200, {"lose_next": STATE["lose_next"]})
        self.reply(404, page("Not found", "<p>Not found.</p>"))

    def charge(self, raw: bytes):
        """Tapkit asks for a charge of a member's saved payment method."""
        header = self.headers.get("Tapkit-Signature") or ""
        fields = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
        try:
            t = int(fields.get("t", ""))
        except ValueError:
            t = None
        expected = hmac.new(SECRET, str(t).encode() + b"." + raw, hashlib.sha256).hexdigest()
        if t is None or abs(time.time() - t) > 300 or not hmac.compare_digest(expected, fields.get("v1", "")):
            return self.json_reply(401, {"error": "the Tapkit-Signature header is missing, stale or does not match"})
        try:
            req = json.loads(raw)
            key, customer = str(req["idempotency_key"]), str(req["customer_id"])
            amount = int(req["amount_minor"])
        except (ValueError, KeyError, TypeError):
            return self.json_reply(422, {"error": "idempotency_key, customer_id and amount_minor are required"})
        with LOCK:
            state = payments(STATE)
            answer = state["charges"].get(key)
            if answer is None:
                if customer in state["async"]:
                    answer = {"status": "pending"}
                elif customer in state["declines"]:
                    answer = {"status": "failed", "reason": "card_declined"}
                else:
                    answer = {"status": "succeeded", "reference": f"pay_{len(state['charges']) + 1:05d}"}
                state["charges"][key] = {**answer, "customer_id": customer, "amount_minor": amount,
                                         "invoice_id": req.get("invoice_id")}
                lose = state["lose_next"] > 0
                if lose:
                    state["lose_next"] -= 1
                save_state(STATE_PATH, STATE)
                if lose:
                    return self.json_reply(503, {"error": "the answer was lost on the way (staff/payments/lose-next)"})
            answer = {k: v for k, v in answer.items() if k in ("status", "reference", "reason")}
        if answer["status"] == "pending":
            return self.json_reply(202, {"status": "pending"})
        return self.json_reply(200, answer)

    def do_GET(self):
        parts = self.path.strip("/").split("/")
        if parts[0] == "staff" and not self.staff_allowed():
            return self.json_reply(403, {"error": "staff endpoints answer only on this machine"})
        if parts == ["staff", "payments"]:
            with LOCK:
                return self.json_reply(200, payments(STATE)["charges"])
        if len(parts) == 3 and parts[:2] == ["staff", "bookings"]:
            with LOCK:
                booking = STATE["bookings"].get(parts[2])
            if booking is None:
                return self.json_reply(404, {"error": f"no booking {parts[2]}"})
            return self.json_reply(200, booking)
        self.reply(404, page("Not found", "<p>Not found.</p>"))

    def checkout(self, form):
        field = lambda k: (form.get(k) or [""])[0].strip()
        service, name, email = field("service"), field("name"), field("email").lower()
        if service not in SERVICES or not name or "@" not in email or len(email) > 200:
            return self.reply(422, page("Check the form", "<p>Choose a service and give your name and email.</p>"))
        title, amount = SERVICES[service]
        with LOCK:
            booking_id = f"B-{STATE['next']:04d}"
            STATE["next"] += 1
            booking = {
                "id": booking_id,
                "service": service,
                "amount_minor": amount,
                "customer_id": "cus_" + hashlib.sha256(email.encode()).hexdigest()[:16],
                "email_sha256": hashlib.sha256(email.encode()).hexdigest(),
                "email_domain": email.rsplit("@", 1)[1],
                # The readable cookie's value, as the page sent it (Tapkit re-checks it).
                "attribution": field("attribution")[:600] or None,
                "tapkit": {},
            }
            STATE["bookings"][booking_id] = booking
            save_state(STATE_PATH, STATE)
        # (A real checkout takes the payment here; the webhook follows its success.)
        answer = send_webhook("booking_paid", booking)
        with LOCK:
            booking["tapkit"]["booking_paid"] = answer
            save_state(STATE_PATH, STATE)
        self.reply(200, page(
            "Booked",
            f"<h1>Thank you, {html.escape(name)}</h1>"
            f"<p>{html.escape(title)}, ${amount / 100:.2f} paid.</p>"
            f"<p>Booking <strong id=booking>{booking_id}</strong></p>",
        ))

    def join(self, form):
        """The membership checkout: the customer saves a card here and joins a plan; the
        app tells Tapkit with a signed ``membership_started`` event (Tapkit then asks the
        app to charge the prorated first month)."""
        field = lambda k: (form.get(k) or [""])[0].strip()
        plan, name, email = field("plan"), field("name"), field("email").lower()
        if plan not in PLANS or not name or "@" not in email or len(email) > 200:
            return self.reply(422, page("Check the form", "<p>Choose a plan and give your name and email.</p>"))
        customer_id = "cus_" + hashlib.sha256(email.encode()).hexdigest()[:16]
        event = {
            "event_id": f"{customer_id}:membership_started:{now_rfc3339()}",
            "kind": "membership_started",
            "occurred_at": now_rfc3339(),
            "customer_id": customer_id,
            "email": email,
            "plan": plan,
            # The readable cookie's value, as the page sent it (Tapkit re-checks it).
            "attribution": field("attribution")[:600] or None,
        }
        answer = deliver(event)
        ok = answer.get("http") == 200
        self.reply(200 if ok else 502, page(
            "Welcome" if ok else "Not yet",
            f"<h1>Welcome, {html.escape(name)}</h1><p>You are a {html.escape(PLANS[plan])} member.</p>"
            f"<p>Member <strong id=member>{html.escape(str(answer.get('member_id', '')))}</strong>, "
            f"customer <strong id=customer>{customer_id}</strong></p>"
            if ok else "<p>We could not start your membership just now; please try again.</p>",
        ))


if __name__ == "__main__":
    SECRET = secret()
    STATE_PATH = os.environ.get("BOOKING_APP_STATE", "bookings.json")
    STATE = load_state(STATE_PATH)
    host, _, port = os.environ.get("BOOKING_APP_LISTEN", "127.0.0.1:5000").rpartition(":")
    server = ThreadingHTTPServer((host, int(port)), Handler)
    print(f"booking_app: listening on {host}:{port}", file=sys.stderr, flush=True)
    server.serve_forever()
