#!/usr/bin/env python3
"""Calls hamgate's Check from Python with stubs generated from the proto at run time.

Usage: check_client.py HOST:PORT PROTO_DIR

Generates hamgate/v1/filter_pb2.py and filter_pb2_grpc.py into a temporary directory with
grpc_tools (in-process), imports them, checks one spam comment and prints the response as one
JSON object: verdict (enum name), spam_probability, reasons, check_id, model_version, discard.
Exits non-zero on any failure, including a missing grpcio or grpcio-tools.
"""
import json
import os
import sys
import tempfile

import grpc  # noqa: F401  (fails loudly when grpcio is missing)
from grpc_tools import protoc

SPAM = ("Check out my channel and subscribe! "
        "http://www.youtube.com/user/coolvids123 please subscribe")


def generate(proto_dir, out_dir):
    # grpc_tools ships the well-known types; include them as protoc's own binary would.
    well_known = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    args = [
        "grpc_tools.protoc",
        "-I" + proto_dir,
        "-I" + well_known,
        "--python_out=" + out_dir,
        "--grpc_python_out=" + out_dir,
        os.path.join(proto_dir, "hamgate", "v1", "filter.proto"),
    ]
    rc = protoc.main(args)
    if rc != 0:
        raise SystemExit("protoc failed with exit code %d" % rc)


def raw_checks(channel):
    """Sends bytes no conforming stub would: content that is not UTF-8, and a truncated
    message. Returns the status code and details of each answer."""
    call = channel.unary_unary(
        "/hamgate.v1.CommentFilter/Check",
        request_serializer=lambda b: b,
        response_deserializer=lambda b: b,
    )
    content = b"\xff\xfe not UTF-8"
    comment = b"\x0a" + bytes([len(content)]) + content  # Comment.content = 1
    not_utf8 = b"\x0a" + bytes([len(comment)]) + comment  # CheckRequest.comment = 1
    truncated = b"\x0a\x50abc"  # says 80 bytes follow, 3 do
    answers = []
    for body in (not_utf8, truncated):
        try:
            call(body, timeout=10)
            answers.append({"code": "OK", "details": ""})
        except grpc.RpcError as e:
            answers.append({"code": e.code().name, "details": e.details()})
    return answers


def main():
    if len(sys.argv) != 3:
        raise SystemExit("usage: check_client.py HOST:PORT PROTO_DIR")
    addr, proto_dir = sys.argv[1], os.path.abspath(sys.argv[2])
    with tempfile.TemporaryDirectory(prefix="hamgate-stubs-") as out_dir:
        generate(proto_dir, out_dir)
        sys.path.insert(0, out_dir)
        from hamgate.v1 import filter_pb2, filter_pb2_grpc

        with grpc.insecure_channel(addr) as channel:
            stub = filter_pb2_grpc.CommentFilterStub(channel)
            req = filter_pb2.CheckRequest(
                comment=filter_pb2.Comment(
                    content=SPAM,
                    author_name="Cool Vids 123",
                    comment_type=filter_pb2.COMMENT_TYPE_COMMENT,
                ),
                client=filter_pb2.Client(ip="203.0.113.9", user_agent="python-grpc"),
                external_id="py-1",
                is_test=True,
            )
            resp = stub.Check(req, timeout=10)
            undecodable = raw_checks(channel)

        print(json.dumps({
            "verdict": filter_pb2.Verdict.Name(resp.verdict),
            "spam_probability": resp.spam_probability,
            "reasons": [
                {
                    "kind": filter_pb2.ReasonKind.Name(r.kind),
                    "label": r.label,
                    "log_odds": r.log_odds,
                }
                for r in resp.reasons
            ],
            "check_id": resp.check_id,
            "model_version": resp.model_version,
            "discard": resp.discard,
            "external_id": resp.external_id,
            "undecodable": undecodable,
        }))


if __name__ == "__main__":
    main()
