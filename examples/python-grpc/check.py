#!/usr/bin/env python3
"""Checks one comment with hamgate over gRPC, acts on the verdict, and sends a moderator's
label back by check_id. Prints one JSON line at the end with what happened.

    python3 check.py [--addr HOST:PORT] [--key KEY] [--label spam|ham|none] [COMMENT TEXT]

The address and key default to $HAMGATE_ADDR and $HAMGATE_API_KEY. The stubs are generated
from ../../proto at run time into a temporary directory (grpcio-tools), so nothing generated is
checked in. Exit codes: 0 done, 2 bad key, 3 server unreachable, 1 any other error.
"""
import argparse
import json
import os
import sys
import tempfile

import grpc
from grpc_tools import protoc

PROTO_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "proto")
DEFAULT_COMMENT = "This song is amazing, I still listen to it every day"


def generate_stubs(proto_dir, out_dir):
    """Writes hamgate/v1/filter_pb2.py and filter_pb2_grpc.py into out_dir."""
    # grpc_tools ships the well-known types (google/protobuf/timestamp.proto, ...).
    well_known = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    rc = protoc.main([
        "grpc_tools.protoc",
        "-I" + proto_dir,
        "-I" + well_known,
        "--python_out=" + out_dir,
        "--grpc_python_out=" + out_dir,
        os.path.join(proto_dir, "hamgate", "v1", "filter.proto"),
    ])
    if rc != 0:
        raise SystemExit("protoc failed with exit code %d" % rc)


def fail(code, error, message):
    """Ends the program: a clear message on stderr, the JSON line on stdout, exit `code`."""
    print("error: " + message, file=sys.stderr)
    print(json.dumps({"ok": False, "error": error, "message": message}))
    sys.exit(code)


def fail_rpc(e):
    code = e.code()
    if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
        fail(2, "bad_key", "hamgate refused the API key: %s" % e.details())
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        fail(3, "unreachable", "cannot reach hamgate: %s" % e.details())
    fail(1, "rpc_error", "%s: %s" % (code.name, e.details()))


def main():
    parser = argparse.ArgumentParser(description="Check one comment with hamgate over gRPC.")
    parser.add_argument("--addr", default=os.environ.get("HAMGATE_ADDR", "127.0.0.1:50051"))
    parser.add_argument("--key", default=os.environ.get("HAMGATE_API_KEY", ""))
    parser.add_argument("--label", default="auto", choices=["auto", "spam", "ham", "none"],
                        help="the moderator's label to send (auto: the verdict's own)")
    parser.add_argument("comment", nargs="*", help="the comment text")
    args = parser.parse_args()
    comment = " ".join(args.comment) or DEFAULT_COMMENT
    if not args.key:
        fail(2, "bad_key", "no API key: pass --key KEY or set HAMGATE_API_KEY")

    with tempfile.TemporaryDirectory(prefix="hamgate-stubs-") as out_dir:
        generate_stubs(os.path.abspath(PROTO_DIR), out_dir)
        sys.path.insert(0, out_dir)
        from hamgate.v1 import filter_pb2 as pb, filter_pb2_grpc as pb_grpc

    # Every call names its site with the API key as a bearer token.
    auth = [("authorization", "Bearer " + args.key)]
    with grpc.insecure_channel(args.addr) as channel:
        stub = pb_grpc.CommentFilterStub(channel)
        request = pb.CheckRequest(
            comment=pb.Comment(
                content=comment,
                author_name="Python Example",
                comment_type=pb.COMMENT_TYPE_COMMENT,
            ),
            post=pb.Post(permalink="https://blog.example.org/posts/hello"),
            client=pb.Client(ip="198.51.100.8", user_agent="hamgate-example-python-grpc"),
            external_id="py-1",
        )
        try:
            resp = stub.Check(request, metadata=auth, timeout=5)
        except grpc.RpcError as e:
            fail_rpc(e)

        if resp.verdict == pb.VERDICT_ACCEPT:
            action = "publish"
            print("ACCEPT: publish the comment", file=sys.stderr)
        elif resp.verdict == pb.VERDICT_REJECT:
            action = "discard" if resp.discard else "spam_folder"
            print("REJECT: spam (%s)" % ("blatant, drop it" if resp.discard
                                         else "keep it in the spam folder"), file=sys.stderr)
        else:
            # HOLD (and UNSPECIFIED, which a client treats as HOLD): a person decides.
            action = "moderation_queue"
            print("HOLD: put the comment in the moderation queue", file=sys.stderr)
        print("spam probability %.3f, check_id %s" % (resp.spam_probability, resp.check_id),
              file=sys.stderr)
        if resp.degraded:
            print("warning: hamgate answered degraded (an optional part such as Redis is down)",
                  file=sys.stderr)

        # The moderator's label: given, or in this demo the verdict's own (HOLD approved as ham).
        label = args.label
        if label == "auto":
            label = "spam" if resp.verdict == pb.VERDICT_REJECT else "ham"
        feedback = None
        if label != "none":
            try:
                fb = stub.Feedback(pb.FeedbackRequest(
                    check_id=resp.check_id,
                    label=pb.LABEL_SPAM if label == "spam" else pb.LABEL_HAM,
                    moderator_id="python-example",
                    reason="example",
                ), metadata=auth, timeout=5)
            except grpc.RpcError as e:
                fail_rpc(e)
            feedback = {"label": label, "label_seq": fb.label_seq, "learned": fb.learned,
                        "note": fb.note}
            print("feedback %s accepted (label #%d)" % (label, fb.label_seq), file=sys.stderr)

    print(json.dumps({
        "ok": True,
        "verdict": pb.Verdict.Name(resp.verdict).replace("VERDICT_", ""),
        "action": action,
        "spam_probability": resp.spam_probability,
        "discard": resp.discard,
        "degraded": resp.degraded,
        "check_id": resp.check_id,
        "model_version": resp.model_version,
        "feedback": feedback,
    }))


if __name__ == "__main__":
    main()
