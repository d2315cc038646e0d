"""A tiny client for hamgate's Akismet-compatible API, with Python's standard library only."""
import urllib.error
import urllib.parse
import urllib.request


class HamgateError(Exception):
    """hamgate could not answer: `kind` is "bad_key", "unreachable" or "http_error"."""

    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind


class Hamgate:
    def __init__(self, base_url, api_key, blog, timeout=5.0):
        if "://" not in base_url:
            base_url = "http://" + base_url
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.blog = blog
        self.timeout = timeout

    def _post(self, method, fields):
        """POSTs the form to /1.1/<method>; returns (body, headers)."""
        data = dict(fields, api_key=self.api_key, blog=self.blog)
        req = urllib.request.Request(
            "%s/1.1/%s" % (self.base_url, method),
            data=urllib.parse.urlencode(data).encode(),
            headers={"User-Agent": "hamgate-example-flask/1.0 | Akismet/1.0"},
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                body = resp.read().decode().strip()
                headers = resp.headers
        except urllib.error.HTTPError as e:
            help_ = e.headers.get("X-akismet-debug-help") or e.read().decode(errors="replace")
            raise HamgateError("http_error", "hamgate answered %d to %s: %s"
                               % (e.code, method, help_)) from e
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise HamgateError("unreachable", "cannot reach hamgate at %s: %s"
                               % (self.base_url, reason)) from e
        if body == "invalid":
            raise HamgateError("bad_key", "hamgate refused the API key: %s"
                               % headers.get("X-akismet-debug-help", "invalid key"))
        return body, headers

    def verify_key(self):
        """Raises HamgateError unless the key is valid."""
        self._post("verify-key", {})

    def comment_check(self, fields):
        """Returns (spam: bool, verdict: "accept"/"hold"/"reject", headers)."""
        body, headers = self._post("comment-check", fields)
        if body not in ("true", "false"):
            raise HamgateError("http_error", "comment-check answered %r" % body)
        spam = body == "true"
        # Akismet has two answers, hamgate three: a held comment is `true` by default, and
        # X-hamgate-verdict says it was held (real Akismet sends no such header).
        verdict = headers.get("X-hamgate-verdict") or ("reject" if spam else "accept")
        return spam, verdict, headers

    def submit(self, label, fields):
        """A moderator's label: "spam" (submit-spam) or "ham" (submit-ham)."""
        body, _ = self._post("submit-" + label, fields)
        return body
