#!/usr/bin/env python3
"""Posts one comment through app.py's handler with Flask's test client (no browser, no port),
then sends the moderator's label, and prints one JSON line with what happened.

    python3 demo.py [--http URL] [--key KEY] [--label spam|ham|none] [COMMENT TEXT]

The URL and key default to $HAMGATE_HTTP and $HAMGATE_API_KEY. Exit codes: 0 done, 2 bad key,
3 server unreachable, 1 any other error.
"""
import argparse
import json
import os
import sys

from app import app, hamgate
from hamgate_akismet import HamgateError

DEFAULT_COMMENT = "This song is amazing, I still listen to it every day"
EXIT = {"bad_key": 2, "unreachable": 3}


def fail(error, message):
    print("error: " + message, file=sys.stderr)
    print(json.dumps({"ok": False, "error": error, "message": message}))
    sys.exit(EXIT.get(error, 1))


def main():
    parser = argparse.ArgumentParser(description="Post one comment through the Flask handler.")
    parser.add_argument("--http", default=os.environ.get("HAMGATE_HTTP", "http://127.0.0.1:8080"))
    parser.add_argument("--key", default=os.environ.get("HAMGATE_API_KEY", ""))
    parser.add_argument("--label", default="auto", choices=["auto", "spam", "ham", "none"],
                        help="the moderator's label to send (auto: the verdict's own)")
    parser.add_argument("comment", nargs="*", help="the comment text")
    args = parser.parse_args()
    if not args.key:
        fail("bad_key", "no API key: pass --key KEY or set HAMGATE_API_KEY")
    app.config.update(HAMGATE_HTTP=args.http, HAMGATE_API_KEY=args.key)

    # At start-up, as a blog would: a bad key or an unreachable server is said at once.
    with app.app_context():
        try:
            hamgate().verify_key()
        except HamgateError as e:
            fail(e.kind, str(e))

    client = app.test_client()
    r = client.post("/comments", data={
        "author": "Flask Example",
        "email": "reader@example.com",
        "content": " ".join(args.comment) or DEFAULT_COMMENT,
        "permalink": "https://blog.example.org/posts/hello",
    }, headers={"User-Agent": "Mozilla/5.0 (hamgate Flask example)"},
        environ_base={"REMOTE_ADDR": "198.51.100.10"})
    c = r.get_json()
    if c.get("error"):
        fail(c["error"], c["message"])
    print({"published": "false (accept): published",
           "moderation": "%s (hold): put in the moderation queue" % str(c["spam"]).lower(),
           "rejected": "true (reject): rejected as spam"}[c["status"]], file=sys.stderr)

    label = args.label
    if label == "auto":
        label = "spam" if c["verdict"] == "reject" else "ham"
    feedback = None
    if label != "none":
        m = client.post("/comments/%d/%s" % (c["id"], label))
        fb = m.get_json()
        if m.status_code != 200:
            fail(fb.get("error", "http_error"), fb.get("message", str(fb)))
        feedback = {"label": label, "response": fb["hamgate"], "status": fb["status"]}
        print("submit-%s: %s" % (label, fb["hamgate"]), file=sys.stderr)

    print(json.dumps({
        "ok": True,
        "spam": c["spam"],
        "verdict": c["verdict"],
        "status": c["status"],
        "discard": c["discard"],
        "check_id": c["check_id"],
        "feedback": feedback,
    }))


if __name__ == "__main__":
    main()
