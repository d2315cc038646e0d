#!/usr/bin/env python3
"""Peer comparison for hamgate: how do off-the-shelf spam filters fare on
the same corpus and the same evaluation protocol?

Not part of CI. Needs scikit-learn and the Debian `bogofilter` binary
(`scripts/peers.sh` installs both and then runs this script).

Protocol (see docs/PEERS.md):
  * YouTube Spam Collection, deduplicated, leave-one-video-out (LOVO).
  * Per outer fold, accept/reject thresholds come from the fold's training
    videos only, via inner LOVO out-of-fold scores.
  * Cross-domain: fit on all of YouTube, score the SMS Spam Collection.

Usage:
  python3 scripts/peers.py [--jsonl PATH] [--json] [--peers nb,lr,bogofilter]
"""

from __future__ import annotations

import argparse
import csv
import html
import json
import math
import re
import shutil
import subprocess
import sys
import tempfile
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
YOUTUBE_DIR = REPO / "models" / "corpus" / "youtube"
SMS_PATH = REPO / "models" / "corpus" / "sms" / "SMSSpamCollection"

# Operating-point targets for the three-way verdict.
MAX_HAM_REJECTED = 0.005  # at most 0.5% of out-of-fold ham at/above t_reject
MAX_SPAM_ACCEPTED = 0.05  # at most 5% of out-of-fold spam below t_accept

# Figures the peers were published with on this protocol; shown next to ours
# so a drift is visible at a glance. None = not published.
PUBLISHED = {
    "multinomial_nb": {"auc": 0.956, "f1": 0.901, "held": 0.348, "sms_auc": 0.799},
    "tfidf_logreg": {"auc": 0.970, "f1": 0.908, "held": 0.229, "sms_auc": 0.736},
    "bogofilter": {"auc": 0.891, "f1": None, "held": 0.715, "sms_auc": None},
}

ACCEPT, HOLD, REJECT = 0, 1, 2

# ---------------------------------------------------------------------------
# Corpus reading and deduplication
# ---------------------------------------------------------------------------


@dataclass
class Corpus:
    texts: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)  # 1 = spam, 0 = ham
    groups: list[str] = field(default_factory=list)

    def add(self, text: str, label: int, group: str) -> None:
        self.texts.append(text)
        self.labels.append(label)
        self.groups.append(group)

    def __len__(self) -> int:
        return len(self.texts)

    def y(self) -> np.ndarray:
        return np.asarray(self.labels, dtype=np.int64)

    def g(self) -> np.ndarray:
        return np.asarray(self.groups, dtype=object)


_TAG = re.compile(r"<[^>]*>")
_WS = re.compile(r"\s+")


def dedup_key(text: str) -> str:
    """Normalisation used only to detect duplicates (never fed to a model)."""
    text = text.replace("\ufeff", "")
    text = html.unescape(text)
    text = _TAG.sub(" ", text)
    text = unicodedata.normalize("NFKC", text)
    text = text.lower()
    return _WS.sub(" ", text).strip()


def model_text(text: str) -> str:
    """What a peer actually sees: the raw comment minus U+FEFF.

    The BOM is a scraping artefact, not content, and its presence is strongly
    label-correlated in two videos (Eminem, Shakira: most spam lacks it), so
    leaving it in would give a byte-level tokenizer such as bogofilter's a
    free, non-transferable feature. scikit-learn's token pattern ignores it
    anyway. Everything else (entities, tags, case) is left for each peer's own
    tokenizer to deal with, as it would in deployment.
    """
    return text.replace("\ufeff", "")


# The SMS anonymisers replaced numbers, times, URLs and e-mails in *ham only*
# with these placeholders, so they are a pure label leak. A space (not "")
# keeps neighbouring words from fusing into a new token.
_SMS_PLACEHOLDER = re.compile(
    r"&lt;(?:#|DECIMAL|TIME|URL|EMAIL)&gt;|<(?:#|DECIMAL|TIME|URL|EMAIL)>"
)


def strip_sms_placeholders(text: str) -> str:
    return _SMS_PLACEHOLDER.sub(" ", text)


@dataclass
class DedupStats:
    raw: int = 0
    dropped: int = 0


def dedup(rows, stats: DedupStats) -> Corpus:
    """Keep the first row of each dedup key, regardless of label."""
    seen: set[str] = set()
    out = Corpus()
    for text, label, group in rows:
        stats.raw += 1
        key = dedup_key(text)
        if key in seen:
            stats.dropped += 1
            continue
        seen.add(key)
        out.add(text, label, group)
    return out


def youtube_rows(directory: Path):
    files = sorted(directory.glob("Youtube0*-*.csv"))
    if len(files) != 5:
        sys.exit(f"expected 5 YouTube CSVs in {directory}, found {len(files)}")
    for path in files:
        # newline="" so the csv module handles quoted fields with newlines.
        with path.open(newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                label = row["CLASS"].strip()
                if label not in ("0", "1"):
                    sys.exit(f"{path.name}: unexpected CLASS {label!r}")
                yield row["CONTENT"], int(label), path.stem


def sms_rows(path: Path):
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.rstrip("\n")
            if not line:
                continue
            label, sep, text = line.partition("\t")
            if not sep or label not in ("ham", "spam"):
                sys.exit(f"{path}:{lineno}: malformed line")
            yield strip_sms_placeholders(text), int(label == "spam"), "sms"


def read_jsonl(path: Path, cross_group: str) -> tuple[Corpus, Corpus]:
    """Split a neutral, already-deduplicated JSONL corpus into the LOVO corpus
    (rows with a group) and the cross-domain target (rows whose group is
    missing or equals `cross_group`)."""
    in_domain, cross = Corpus(), Corpus()
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            obj = json.loads(line)
            label = obj.get("label")
            if label not in ("spam", "ham"):
                sys.exit(f"{path}:{lineno}: label must be 'spam' or 'ham'")
            group = obj.get("group")
            y = int(label == "spam")
            if group is None or group == cross_group:
                # Idempotent, so harmless if the exporter already did it.
                cross.add(strip_sms_placeholders(obj["content"]), y, cross_group)
            else:
                in_domain.add(obj["content"], y, str(group))
    return in_domain, cross


def count_duplicate_keys(corpus: Corpus) -> int:
    keys = [dedup_key(t) for t in corpus.texts]
    return len(keys) - len(set(keys))


# ---------------------------------------------------------------------------
# Peers. Each is `fit_score(train_texts, train_y, test_texts) -> scores`, a
# fresh fit every call so no state can leak between folds.
# ---------------------------------------------------------------------------


def multinomial_nb(train_texts, train_y, test_texts) -> np.ndarray:
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.naive_bayes import MultinomialNB
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(CountVectorizer(), MultinomialNB(alpha=1.0))
    model.fit(train_texts, train_y)
    spam_col = list(model.classes_).index(1)
    return model.predict_proba(test_texts)[:, spam_col]


def tfidf_logreg(train_texts, train_y, test_texts) -> np.ndarray:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    # lbfgs is deterministic; random_state only pins it should that change.
    model = make_pipeline(
        TfidfVectorizer(), LogisticRegression(C=1.0, max_iter=1000, random_state=0)
    )
    model.fit(train_texts, train_y)
    spam_col = list(model.classes_).index(1)
    return model.predict_proba(test_texts)[:, spam_col]


_MBOX_FROM = re.compile(r"^(>*From )", re.MULTILINE)


def _write_mbox(path: Path, texts) -> None:
    """Each text becomes a header-less RFC 822 message in an mbox (mboxrd
    quoting), so bogofilter can register or score a whole set in one run."""
    with path.open("wb") as fh:
        for text in texts:
            body = text.replace("\r\n", "\n").replace("\r", "\n")
            body = _MBOX_FROM.sub(r">\1", body)
            # A constant envelope line: bogofilter tokenises it as head:*
            # tokens, but they occur in every message of both classes and so
            # carry no evidence.
            fh.write(b"From peers@localhost Thu Jan  1 00:00:00 1970\n\n")
            fh.write(body.encode("utf-8"))
            fh.write(b"\n\n")


def bogofilter(train_texts, train_y, test_texts) -> np.ndarray:
    exe = shutil.which("bogofilter")
    if exe is None:
        sys.exit("bogofilter not found: apt-get install -y bogofilter (or run scripts/peers.sh)")
    train_y = np.asarray(train_y)
    with tempfile.TemporaryDirectory(prefix="peers-bogofilter-") as tmp:
        tmp = Path(tmp)
        wordlist = tmp / "wordlist"
        wordlist.mkdir()
        spam, ham, test = tmp / "spam.mbox", tmp / "ham.mbox", tmp / "test.mbox"
        _write_mbox(spam, [t for t, y in zip(train_texts, train_y) if y == 1])
        _write_mbox(ham, [t for t, y in zip(train_texts, train_y) if y == 0])
        _write_mbox(test, test_texts)
        # -C: compiled-in defaults only, so a local /etc/bogofilter.cf or
        # ~/.bogofilter.cf cannot change the result. -y 0: no token
        # timestamps, so the wordlist is a pure function of the training set.
        base = [exe, "-C", "-d", str(wordlist)]
        for flag, mbox in (("-s", spam), ("-n", ham)):
            subprocess.run(base + ["-y", "0", flag, "-M", "-I", str(mbox)], check=True)
        # -TT prints one full-precision spamicity per message. Exit status
        # encodes the last verdict (0 spam / 1 ham / 2 unsure); 3 is an error.
        out = subprocess.run(
            base + ["-M", "-TT", "-I", str(test)], capture_output=True, text=True
        )
        if out.returncode not in (0, 1, 2):
            sys.exit(f"bogofilter failed ({out.returncode}): {out.stderr}")
    scores = np.array([float(line) for line in out.stdout.split()])
    if len(scores) != len(test_texts):
        sys.exit(f"bogofilter scored {len(scores)} of {len(test_texts)} messages")
    return scores


PEERS = {
    "multinomial_nb": multinomial_nb,
    "tfidf_logreg": tfidf_logreg,
    "bogofilter": bogofilter,
}
PEER_ALIASES = {"nb": "multinomial_nb", "lr": "tfidf_logreg", "bogo": "bogofilter"}

# ---------------------------------------------------------------------------
# Protocol
# ---------------------------------------------------------------------------


def lovo_scores(fit_score, texts, y, groups) -> np.ndarray:
    """Out-of-fold scores: each group scored by a model fit on the others."""
    scores = np.empty(len(texts))
    for g in sorted(set(groups)):
        test = groups == g
        scores[test] = fit_score(
            [t for t, m in zip(texts, test) if not m], y[~test],
            [t for t, m in zip(texts, test) if m],
        )
    return scores


def choose_thresholds(scores: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(t_accept, t_reject) from out-of-fold scores.

    Candidate thresholds are the distinct observed scores (as on an ROC
    curve), plus +inf for "reject nothing".
    """
    ham, spam = scores[y == 0], scores[y == 1]
    candidates = np.unique(scores)  # ascending
    # "At most x%" as a whole number of comments; the epsilon keeps e.g.
    # 0.05 * 200 from rounding down to 9.
    max_ham = math.floor(MAX_HAM_REJECTED * len(ham) + 1e-9)
    max_spam = math.floor(MAX_SPAM_ACCEPTED * len(spam) + 1e-9)

    # Lowest t with #(ham >= t) <= 0.5% of ham. #(ham >= t) falls as t rises.
    t_reject = math.inf
    for t in candidates:
        if np.count_nonzero(ham >= t) <= max_ham:
            t_reject = float(t)
            break

    # Highest t with #(spam < t) <= 5% of spam. The lowest candidate always
    # qualifies (nothing is strictly below the minimum score).
    t_accept = float(candidates[0])
    for t in candidates[::-1]:
        if np.count_nonzero(spam < t) <= max_spam:
            t_accept = float(t)
            break

    if t_accept > t_reject:
        # The two targets cannot both be met: collapse to a single cut.
        t_accept = t_reject = (t_accept + t_reject) / 2
    return t_accept, t_reject


def verdicts(scores: np.ndarray, t_accept: float, t_reject: float) -> np.ndarray:
    v = np.full(len(scores), HOLD)
    v[scores < t_accept] = ACCEPT
    v[scores >= t_reject] = REJECT  # reject wins if the thresholds coincide
    return v


def summarize(y: np.ndarray, scores: np.ndarray, v: np.ndarray) -> dict:
    from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

    pred = (scores >= 0.5).astype(int)
    ham, spam = y == 0, y == 1

    def frac(mask, verdict):
        return float(np.mean(v[mask] == verdict)) if mask.any() else float("nan")

    return {
        "n": int(len(y)),
        "n_spam": int(spam.sum()),
        "n_ham": int(ham.sum()),
        "auc": float(roc_auc_score(y, scores)),
        "precision": float(precision_score(y, pred, zero_division=0)),
        "recall": float(recall_score(y, pred, zero_division=0)),
        "f1": float(f1_score(y, pred, zero_division=0)),
        "ham_accepted": frac(ham, ACCEPT),
        "ham_held": frac(ham, HOLD),
        "ham_rejected": frac(ham, REJECT),
        "spam_accepted": frac(spam, ACCEPT),
        "spam_held": frac(spam, HOLD),
        "spam_rejected": frac(spam, REJECT),
        "held": float(np.mean(v == HOLD)),
    }


def _json_threshold(t: float):
    return None if math.isinf(t) else t  # null = that side never fires


def evaluate(fit_score, yt: Corpus, cross: Corpus) -> dict:
    texts = [model_text(t) for t in yt.texts]
    y, groups = yt.y(), yt.g()
    scores = np.empty(len(texts))
    v = np.empty(len(texts), dtype=int)
    folds = []
    for g in sorted(set(yt.groups)):
        test, train = groups == g, groups != g
        tr_texts = [t for t, m in zip(texts, train) if m]
        # Thresholds from the training videos only (inner LOVO).
        inner = lovo_scores(fit_score, tr_texts, y[train], groups[train])
        t_acc, t_rej = choose_thresholds(inner, y[train])
        scores[test] = fit_score(tr_texts, y[train], [t for t, m in zip(texts, test) if m])
        v[test] = verdicts(scores[test], t_acc, t_rej)
        folds.append({"video": g, "n": int(test.sum()),
                      "t_accept": _json_threshold(t_acc), "t_reject": _json_threshold(t_rej)})
    result = {"youtube_lovo": summarize(y, scores, v) | {"folds": folds}}

    if len(cross):
        # The outer LOVO scores above are exactly the inner-CV scores for a
        # model fit on all of YouTube, so reuse them for its thresholds.
        t_acc, t_rej = choose_thresholds(scores, y)
        xs = fit_score(texts, y, [model_text(t) for t in cross.texts])
        xv = verdicts(xs, t_acc, t_rej)
        result["sms_cross_domain"] = summarize(cross.y(), xs, xv) | {
            "t_accept": _json_threshold(t_acc), "t_reject": _json_threshold(t_rej)}
    return result


# ---------------------------------------------------------------------------
# Reporting
# ---------------------------------------------------------------------------


def describe(name: str, c: Corpus) -> list[str]:
    y = c.y()
    lines = [f"{name}: total {len(c)}, spam {int(y.sum())}, ham {int((y == 0).sum())}"]
    groups = c.g()
    if len(set(c.groups)) > 1:
        for g in sorted(set(c.groups)):
            m = groups == g
            lines.append(f"  {g}: {int(m.sum())} (spam {int(y[m].sum())}, ham {int((y[m] == 0).sum())})")
    return lines


def _pct(x):
    return "   n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:5.1f}%"


def _f3(x):
    return "  n/a" if x is None else f"{x:.3f}"


def table(results: dict) -> str:
    out = ["YouTube leave-one-video-out (pooled held-out predictions)",
           f"{'peer':<15} {'n':>5} {'AUC':>6} {'prec':>6} {'recall':>6} {'F1':>6} "
           f"{'ham_rej':>7} {'spam_acc':>8} {'held':>7}"]
    for name, r in results.items():
        m = r["youtube_lovo"]
        out.append(f"{name:<15} {m['n']:>5} {m['auc']:6.3f} {m['precision']:6.3f} "
                   f"{m['recall']:6.3f} {m['f1']:6.3f} {_pct(m['ham_rejected']):>7} "
                   f"{_pct(m['spam_accepted']):>8} {_pct(m['held']):>7}")
    if any("sms_cross_domain" in r for r in results.values()):
        out += ["", "Cross-domain: fit on all YouTube, score SMS",
                f"{'peer':<15} {'n':>5} {'AUC':>6} {'ham_rej':>7} {'spam_acc':>8} {'held':>7}"]
        for name, r in results.items():
            m = r.get("sms_cross_domain")
            if m:
                out.append(f"{name:<15} {m['n']:>5} {m['auc']:6.3f} {_pct(m['ham_rejected']):>7} "
                           f"{_pct(m['spam_accepted']):>8} {_pct(m['held']):>7}")
    out += ["", "Against published figures (ours / published)",
            f"{'peer':<15} {'AUC':>13} {'F1':>13} {'held':>15} {'SMS AUC':>13}"]
    for name, r in results.items():
        p, m = PUBLISHED.get(name, {}), r["youtube_lovo"]
        sms = r.get("sms_cross_domain", {}).get("auc")
        out.append(f"{name:<15} {_f3(m['auc'])} / {_f3(p.get('auc'))} "
                   f"{_f3(m['f1'])} / {_f3(p.get('f1'))} "
                   f"{_pct(m['held'])} / {_pct(p.get('held'))} "
                   f"{_f3(sms)} / {_f3(p.get('sms_auc'))}")
    out += ["", "Thresholds per outer fold (t_accept, t_reject; inf = never rejects)"]
    for name, r in results.items():
        cells = [f"{f['video']}: {f['t_accept']:.4g}, "
                 f"{'inf' if f['t_reject'] is None else format(f['t_reject'], '.4g')}"
                 for f in r["youtube_lovo"]["folds"]]
        out.append(f"  {name}: " + "; ".join(cells))
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jsonl", type=Path,
                    help="already-deduplicated corpus (content, label, optional group) "
                         "to use instead of the built-in readers; rows with no group "
                         "(or group == --cross-group) form the cross-domain set")
    ap.add_argument("--cross-group", default="sms",
                    help="group name marking cross-domain rows in --jsonl (default: sms)")
    ap.add_argument("--json", action="store_true",
                    help="print a JSON object keyed by peer on stdout (table goes to stderr)")
    ap.add_argument("--peers", default="multinomial_nb,tfidf_logreg,bogofilter",
                    help="comma-separated subset (aliases: nb, lr, bogo)")
    ap.add_argument("--spam-accept", type=float, default=0.05,
                    help="largest fraction of validation spam the accept threshold may accept "
                         "(default 0.05, the published protocol; hamgate's default is 0.04)")
    args = ap.parse_args()
    globals()["MAX_SPAM_ACCEPTED"] = args.spam_accept

    names = [PEER_ALIASES.get(p.strip(), p.strip()) for p in args.peers.split(",") if p.strip()]
    for n in names:
        if n not in PEERS:
            sys.exit(f"unknown peer {n!r}; choose from {', '.join(PEERS)}")

    # With --json, stdout carries only the JSON; everything human goes to stderr.
    human = sys.stderr if args.json else sys.stdout

    if args.jsonl:
        yt, sms = read_jsonl(args.jsonl, args.cross_group)
        print(f"corpus: {args.jsonl} (taken as already deduplicated)", file=human)
        for name, c in (("in-domain", yt), ("cross-domain", sms)):
            dups = count_duplicate_keys(c)
            if dups:
                print(f"warning: {name} rows contain {dups} duplicate dedup keys", file=human)
    else:
        yt_stats, sms_stats = DedupStats(), DedupStats()
        yt = dedup(youtube_rows(YOUTUBE_DIR), yt_stats)
        sms = dedup(sms_rows(SMS_PATH), sms_stats)
        print(f"dedup: YouTube {yt_stats.raw} rows -> {len(yt)} ({yt_stats.dropped} dropped); "
              f"SMS {sms_stats.raw} rows -> {len(sms)} ({sms_stats.dropped} dropped)", file=human)
    if len(set(yt.groups)) < 3:
        # Inner LOVO on the training groups needs at least two of them.
        sys.exit("need at least 3 groups for nested leave-one-group-out")
    for line in describe("YouTube" if not args.jsonl else "in-domain", yt) + \
            describe("SMS" if not args.jsonl else "cross-domain", sms):
        print(line, file=human)
    print(file=human)

    results = {}
    for name in names:
        print(f"running {name} ...", file=human, flush=True)
        results[name] = evaluate(PEERS[name], yt, sms)
    print(file=human)
    print(table(results), file=human)
    if args.json:
        json.dump(results, sys.stdout, indent=2)
        print()


if __name__ == "__main__":
    main()
