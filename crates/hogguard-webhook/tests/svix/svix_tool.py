"""Signs and verifies Standard Webhooks deliveries with the real `svix` package, for hogguard's
interoperability tests. Reads one JSON request on standard input (so the secret is never on a
command line) and writes one JSON answer:

    {"op": "sign", "secret": ..., "id": ..., "timestamp": <unix>, "body": ...}
        -> {"svix-id": ..., "svix-timestamp": ..., "svix-signature": ...}
    {"op": "verify", "secret": ..., "headers": {name: value}, "body": ...}
        -> {"ok": true} or {"ok": false, "error": <the exception's message>}
"""

import json
import sys
from datetime import datetime, timezone

from svix.webhooks import Webhook, WebhookVerificationError

request = json.load(sys.stdin)
webhook = Webhook(request["secret"])
if request["op"] == "sign":
    timestamp = datetime.fromtimestamp(request["timestamp"], tz=timezone.utc)
    signature = webhook.sign(request["id"], timestamp, request["body"])
    answer = {
        "svix-id": request["id"],
        "svix-timestamp": str(request["timestamp"]),
        "svix-signature": signature,
    }
else:
    try:
        webhook.verify(request["body"], request["headers"])
        answer = {"ok": True}
    except WebhookVerificationError as error:
        answer = {"ok": False, "error": str(error)}
json.dump(answer, sys.stdout)
