#!/usr/bin/env python3
"""Finds hamgate's API through server reflection, as a tool with no proto file does.

Usage: reflection_client.py HOST:PORT

Speaks `grpc.reflection.v1alpha` only: grpcio-reflection ships only v1alpha stubs, and it is the
version many tools still speak. Lists the services, resolves `hamgate.v1.CommentFilter` with its
messages (and the well-known types they import) into a descriptor pool, then calls Check with a
request built from those descriptors alone. Prints one JSON object: services, methods, the
fields of GetStatsRequest with their types, and the Check call's verdict. Exits non-zero on any
failure, including a missing grpcio or grpcio-reflection.
"""
import json
import sys

import grpc
from google.protobuf import descriptor_pool
from google.protobuf import message_factory
from google.protobuf.json_format import MessageToDict
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

SPAM = ("Check out my channel and subscribe! "
        "http://www.youtube.com/user/coolvids123 please subscribe")


def main():
    if len(sys.argv) != 2:
        raise SystemExit("usage: reflection_client.py HOST:PORT")
    with grpc.insecure_channel(sys.argv[1]) as channel:
        # Every lookup below is a v1alpha ServerReflectionInfo call.
        db = ProtoReflectionDescriptorDatabase(channel)
        services = sorted(db.get_services())
        pool = descriptor_pool.DescriptorPool(db)
        service = pool.FindServiceByName("hamgate.v1.CommentFilter")
        methods = {
            m.name: [m.input_type.full_name, m.output_type.full_name]
            for m in service.methods
        }
        stats = pool.FindMessageTypeByName("hamgate.v1.GetStatsRequest")
        stats_fields = {
            f.name: f.message_type.full_name if f.message_type else f.type
            for f in stats.fields
        }

        check = service.methods_by_name["Check"]
        request_class = message_factory.GetMessageClass(check.input_type)
        response_class = message_factory.GetMessageClass(check.output_type)
        request = request_class()
        request.comment.content = SPAM
        request.is_test = True
        call = channel.unary_unary(
            "/%s/%s" % (service.full_name, check.name),
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=response_class.FromString,
        )
        response = MessageToDict(call(request, timeout=10))

    print(json.dumps({
        "services": services,
        "methods": methods,
        "stats_request_fields": stats_fields,
        "check_verdict": response.get("verdict", ""),
    }))


if __name__ == "__main__":
    main()
