"""PyPI's `akismet` client, unchanged, against a hamgate server.

The client builds its URLs on https://rest.akismet.com; it takes a custom httpx.Client, whose
transport sends each request to hamgate instead (what a deployment does with DNS or a proxy).
Prints one JSON object of what the client saw.

usage: akismet_client.py HTTP_ADDR KEY BLOG
"""

import json
import sys

import akismet
import httpx


class ToHamgate(httpx.BaseTransport):
    """Sends every request to hamgate's HTTP address, keeping path and body."""

    def __init__(self, addr):
        host, port = addr.rsplit(":", 1)
        self.host, self.port = host, int(port)
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request):
        request.url = request.url.copy_with(scheme="http", host=self.host, port=self.port)
        request.headers["host"] = f"{self.host}:{self.port}"
        return self.inner.handle_request(request)


def main():
    addr, key, blog = sys.argv[1:4]
    http = httpx.Client(transport=ToHamgate(addr), timeout=10.0,
                        headers={"User-Agent": akismet.USER_AGENT})
    out = {}
    bad = akismet.SyncClient(config=akismet.Config(key="not-a-key", url=blog), http_client=http)
    out["bad_key_valid"] = bad.verify_key()
    try:
        bad.comment_check(user_ip="203.0.113.7", comment_content="hello")
        out["bad_key_check"] = "answered"
    except akismet.APIKeyError:
        out["bad_key_check"] = "APIKeyError"

    client = akismet.SyncClient.validated_client(
        config=akismet.Config(key=key, url=blog), http_client=http)
    out["good_key_valid"] = client.verify_key()
    spam = ("Check out my channel and subscribe! http://www.youtube.com/user/coolvids123 "
            "please subscribe")
    out["spam"] = int(client.comment_check(user_ip="203.0.113.8", comment_content=spam,
                                           comment_type="comment", comment_author="Vid Guy"))
    out["ham"] = int(client.comment_check(
        user_ip="203.0.113.9", comment_type="comment", comment_author="Ann",
        comment_content="This song is amazing, I still listen to it every day"))
    out["guaranteed"] = int(client.comment_check(
        user_ip="203.0.113.10", comment_author="akismet-guaranteed-spam",
        comment_content="hello"))

    # Accepted at first (p 0.11 with the shipped model), near the accept threshold.
    probe = dict(user_ip="198.51.100.60", comment_type="comment", comment_author="Sam",
                 comment_content="Love it, thanks for sharing")
    out["probe_before"] = int(client.comment_check(is_test=1, **probe))
    out["submitted"] = [client.submit_spam(**dict(probe, user_ip=f"198.51.100.{61 + i}"))
                        for i in range(4)]
    out["probe_after"] = int(client.comment_check(is_test=1, **probe))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
