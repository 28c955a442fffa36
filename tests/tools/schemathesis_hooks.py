"""schemathesis hooks for scripts/schemathesis.sh.

1. Conversion webhooks are signed as a booking system signs them, so the webhook's body
   checks are reached (an unsigned body stops at the 401). The signature is computed by a
   `requests` auth object, which runs after the body has been serialised: it covers the
   exact bytes sent. Only a case that carries the Tapkit-Signature header is signed; a case
   testing the header's absence is sent without it.

2. The document states some rules in words because JSON Schema cannot say them (ids in
   URLs written as integers, not 1.0): values
   that belong to the deployment (the program's currency, tiers, plans and invoices), rules across fields
   (a colour pair's contrast, an analytics range), the server's clock (an event at most
   5 minutes in the future) and a real PNG. A *schema-valid* case that breaks one of them
   is made to keep it before it is sent, so that `positive_data_acceptance` checks every
   other part of it; schema-violating cases are sent as generated.

3. The kiosk whose credentials the run uses is not retired by the run.

Settings (environment): TAPKIT_ST_WEBHOOK_SECRET, the secret the server was started with;
TAPKIT_ST_KIOSK_ID, the run's kiosk; TAPKIT_ST_CURRENCY and TAPKIT_ST_TIER, the program's
currency and one of its tiers; TAPKIT_ST_PLANS, its membership plan ids (comma-separated);
TAPKIT_ST_INVOICE_ID, a member's invoice that payment events name.
"""

import base64
import datetime
import hashlib
import hmac
import itertools
import os
import re
import struct
import time
import zlib

import requests
import schemathesis

WEBHOOK_SECRET = os.environ["TAPKIT_ST_WEBHOOK_SECRET"].encode()
KIOSK_ID = int(os.environ["TAPKIT_ST_KIOSK_ID"])
CURRENCY = os.environ["TAPKIT_ST_CURRENCY"]
TIER = os.environ["TAPKIT_ST_TIER"]
PLANS = os.environ["TAPKIT_ST_PLANS"].split(",")
INVOICE_ID = int(os.environ["TAPKIT_ST_INVOICE_ID"])
_PLAN_PICKS = itertools.count()
DEFAULT_BACKGROUND = "#0b2545"  # [program.kiosk] background when a kiosk clears its own


class WebhookSignature(requests.auth.AuthBase):
    """`Tapkit-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`."""

    def __call__(self, r):
        body = r.body or b""
        if isinstance(body, str):
            body = body.encode()
        t = str(int(time.time()))
        mac = hmac.new(WEBHOOK_SECRET, t.encode() + b"." + body, hashlib.sha256).hexdigest()
        r.headers["Tapkit-Signature"] = f"t={t},v1={mac}"
        return r


def _png(width, height):
    """A real PNG of one colour, base64."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\0" + b"\x0b\x25\x45" * width for _ in range(height))
    png = b"\x89PNG\r\n\x1a\n"
    png += chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    return base64.b64encode(png).decode()


LOGO = _png(4, 2)
_EVENTS = itertools.count(1)
_SUFFIX = re.compile(r"~[ebc][0-9]+$")


def _luminance(colour):
    def channel(v):
        v /= 255
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def _readable_on(background):
    """Black or white, whichever contrasts more with the background (always >= 4.5:1)."""
    lum = _luminance(background)
    return "#000000" if (lum + 0.05) / 0.05 >= 1.05 / (lum + 0.05) else "#ffffff"


def _parse_time(text):
    try:
        t = datetime.datetime.fromisoformat(text.upper())
    except ValueError:
        return None
    return t if t.tzinfo else None


def _keep_stated_rules(case):
    # Ids in a URL are written as integers ("1"), as the document says in words;
    # JSON Schema's integer also takes 1.0, which a URL would carry as "1.0" (a 422).
    for params in (case.path_parameters, case.query):
        if isinstance(params, dict):
            for k, v in params.items():
                if type(v) is float and v.is_integer():
                    params[k] = int(v)
    op = (case.method.upper(), case.operation.path)
    body = case.body if isinstance(case.body, dict) else None
    if op == ("POST", "/api/conversions") and body is not None:
        # A fresh event id, and a booking shared by a few events, so that most events are
        # processed rather than duplicates (generated ids repeat). Both stay 1 to 200
        # characters, not blank, without control characters; a case sent again keeps them.
        n = next(_EVENTS)
        for field, suffix in (("event_id", f"~e{n}"), ("booking_id", f"~b{n // 3}")):
            if isinstance(body.get(field), str):
                body[field] = _SUFFIX.sub("", body[field])[:180] + suffix
        if isinstance(body.get("currency"), str):
            body["currency"] = CURRENCY
        at = body.get("occurred_at")
        t = _parse_time(at) if isinstance(at, str) else None
        now = datetime.datetime.now(datetime.timezone.utc)
        if t is not None and t > now:
            body["occurred_at"] = (now - datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        if body.get("kind") == "membership_started" and isinstance(body.get("plan"), str):
            # A plan of the configured program, and a customer of its own (one live
            # membership per customer: a repeated generated id would be a 409).
            body["plan"] = PLANS[next(_PLAN_PICKS) % len(PLANS)]
            if isinstance(body.get("customer_id"), str):
                body["customer_id"] = _SUFFIX.sub("", body["customer_id"])[:180] + f"~c{n}"
        if body.get("kind") in ("payment_succeeded", "payment_failed") and type(body.get("invoice_id")) in (int, float):
            # An invoice Tapkit charged, and the idempotency key of its first attempt
            # (the document says the key names the invoice: a rule across two fields).
            body["invoice_id"] = INVOICE_ID
            body["idempotency_key"] = f"tapkit-invoice-{INVOICE_ID}-attempt-1"
    elif op in (("POST", "/api/admin/members"), ("POST", "/api/admin/members/{id}/plan")) and body is not None:
        if isinstance(body.get("plan"), str):
            body["plan"] = PLANS[next(_PLAN_PICKS) % len(PLANS)]
    elif op == ("PATCH", "/api/admin/affiliates/{id}") and body is not None:
        if isinstance(body.get("tier"), str) and body["tier"].strip():
            body["tier"] = TIER
    elif op == ("PATCH", "/api/admin/kiosks/{id}") and body is not None:
        if body.get("foreground") is not None or body.get("background") is not None:
            background = body.get("background") or DEFAULT_BACKGROUND
            body["background"] = background
            body["foreground"] = _readable_on(background)
        if body.get("logo_png"):
            body["logo_png"] = LOGO
    elif op == ("GET", "/api/admin/memberships/mrr") and isinstance(case.query, dict):
        # At most 120 months, from not after to (stated in words in the document).
        q = case.query
        if isinstance(q.get("from"), str) and isinstance(q.get("to"), str):
            (fy, fm), (ty, tm) = (map(int, q[k].split("-")) for k in ("from", "to"))
            span = (ty - fy) * 12 + tm - fm + 1
            if not 1 <= span <= 120:
                q["to"] = q["from"]
        elif isinstance(q.get("from"), str):
            q["to"] = q["from"]
        elif isinstance(q.get("to"), str) and int(q["to"][:4]) < 1971:
            q["from"] = q["to"]
    elif op == ("GET", "/api/admin/analytics") and isinstance(case.query, dict):
        q = case.query
        try:
            start = datetime.date.fromisoformat(q["from"]) if "from" in q else None
            end = datetime.date.fromisoformat(q["to"]) if "to" in q else None
        except (TypeError, ValueError):
            return
        if start is None:
            return  # from defaults to 29 days before to: always a valid range
        end_or_today = end or datetime.datetime.now(datetime.timezone.utc).date()
        if not datetime.timedelta(0) <= end_or_today - start <= datetime.timedelta(days=366):
            q["to"] = min(start + datetime.timedelta(days=30), datetime.date(9999, 12, 31)).isoformat()


@schemathesis.hook
def before_call(context, case, kwargs):
    signed = case.operation.path in ("/api/conversions", "/api/rewards/lookup", "/api/rewards/redeem")
    if signed and case.headers and "Tapkit-Signature" in case.headers:
        kwargs["auth"] = WebhookSignature()
    meta = case.meta
    if meta is not None and meta.generation.mode.is_positive:
        _keep_stated_rules(case)


@schemathesis.hook
def filter_path_parameters(context, path_parameters):
    # A stateful link taken from a null field (a member's affiliate_id when no partner
    # brought it) names no resource: schemathesis would send "/…/None".
    if path_parameters and any(v is None or v == "None" for v in path_parameters.values()):
        return False
    if context.operation is None or context.operation.path != "/api/admin/kiosks/{id}/retire":
        return True
    return not path_parameters or str(path_parameters.get("id")) != str(KIOSK_ID)
