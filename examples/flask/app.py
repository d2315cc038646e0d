"""A blog's comment handler that asks hamgate (Akismet-compatible API) about every comment.

    HAMGATE_HTTP=http://127.0.0.1:8080 HAMGATE_API_KEY=... flask --app app run

POST /comments (form: author, email, url, content) answers JSON with what became of the
comment: published, moderation (held for a person) or rejected. A moderator's decision goes
back to hamgate with POST /comments/<id>/spam or /comments/<id>/ham.
"""
import os

from flask import Flask, jsonify, request

from hamgate_akismet import Hamgate, HamgateError

app = Flask(__name__)
# The blog's own storage; a list in memory for the example.
COMMENTS = []


def hamgate():
    return Hamgate(
        app.config.get("HAMGATE_HTTP") or os.environ.get("HAMGATE_HTTP", "http://127.0.0.1:8080"),
        app.config.get("HAMGATE_API_KEY") or os.environ.get("HAMGATE_API_KEY", ""),
        blog=app.config.get("BLOG_URL", "https://blog.example.org/"),
    )


def akismet_fields(c):
    """The comment in Akismet's parameter names (comment-check and submit-* take the same)."""
    return {
        "user_ip": c["ip"],
        "user_agent": c["user_agent"],
        "referrer": c["referrer"],
        "permalink": c["permalink"],
        "comment_type": "comment",
        "comment_author": c["author"],
        "comment_author_email": c["email"],
        "comment_author_url": c["url"],
        "comment_content": c["content"],
    }


@app.post("/comments")
def post_comment():
    c = {
        "id": len(COMMENTS) + 1,
        "author": request.form.get("author", ""),
        "email": request.form.get("email", ""),
        "url": request.form.get("url", ""),
        "content": request.form.get("content", ""),
        "ip": request.remote_addr or "",
        "user_agent": request.headers.get("User-Agent", ""),
        "referrer": request.headers.get("Referer", ""),
        "permalink": request.form.get("permalink", ""),
    }
    try:
        spam, verdict, headers = hamgate().comment_check(akismet_fields(c))
    except HamgateError as e:
        # Never lose a comment when the filter is down: a person looks at it.
        app.logger.error("hamgate: %s", e)
        c.update(status="moderation", verdict=None, error=e.kind, message=str(e))
        COMMENTS.append(c)
        return jsonify(c), 202
    # true/false/hold to publish/moderation/reject.
    status = {"accept": "published", "hold": "moderation", "reject": "rejected"}.get(
        verdict, "rejected" if spam else "published")
    c.update(status=status, verdict=verdict, spam=spam,
             check_id=headers.get("X-hamgate-check-id"),
             discard=headers.get("X-akismet-pro-tip") == "discard")
    COMMENTS.append(c)
    return jsonify(c), 201 if status == "published" else 202


@app.post("/comments/<int:cid>/<label>")
def moderate(cid, label):
    """A moderator's verdict, taught to hamgate (Akismet's submit-spam / submit-ham)."""
    if label not in ("spam", "ham") or not 1 <= cid <= len(COMMENTS):
        return jsonify(error="no such comment or label"), 404
    c = COMMENTS[cid - 1]
    try:
        answer = hamgate().submit(label, akismet_fields(c))
    except HamgateError as e:
        return jsonify(error=e.kind, message=str(e)), 502
    c["status"] = "rejected" if label == "spam" else "published"
    return jsonify(id=cid, label=label, status=c["status"], hamgate=answer)
