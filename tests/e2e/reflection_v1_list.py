#!/usr/bin/env python3
"""Lists a server's services over grpc.reflection.v1, as grpcurl does.

Usage: PYTHONPATH=<stubs> reflection_v1_list.py ADDRESS
Prints each service name on its own line, then, for audiotag.v1.AudioTagger,
"methods: <names>" read from the file descriptor the server returns.
"""

import sys

import grpc
from google.protobuf import descriptor_pb2

from grpc_reflection.v1 import reflection_pb2, reflection_pb2_grpc


def main():
    with grpc.insecure_channel(sys.argv[1]) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        requests = [
            reflection_pb2.ServerReflectionRequest(list_services=""),
            reflection_pb2.ServerReflectionRequest(
                file_containing_symbol="audiotag.v1.AudioTagger"),
        ]
        replies = list(stub.ServerReflectionInfo(iter(requests), timeout=30))
    for service in replies[0].list_services_response.service:
        print(service.name)
    for blob in replies[1].file_descriptor_response.file_descriptor_proto:
        proto = descriptor_pb2.FileDescriptorProto.FromString(blob)
        for service in proto.service:
            if service.name == "AudioTagger":
                print("methods:", " ".join(m.name for m in service.method))
    return 0


if __name__ == "__main__":
    sys.exit(main())
