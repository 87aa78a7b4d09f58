#!/usr/bin/env python3
"""A minimal audiotag client in Python: health, ListModels and Analyze.

Generate the stubs first (Debian: python3-grpcio python3-grpc-tools), from the
repository root:

    python3 -m grpc_tools.protoc -I proto --python_out=gen --grpc_python_out=gen \
        proto/audiotag/v1/audiotag.proto proto/audiotag/v1/model_config.proto \
        proto/grpc_health/v1/health.proto

(or Debian's protoc with --grpc_out=gen
--plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin), then

    PYTHONPATH=gen python3 client/python/audiotag_example.py \
        --address 127.0.0.1:50051 song.mp3

Prints one JSON object: the health status, the models and their states, and
the top tags (or embedding sizes) of each model for the file. Exits 0 on
success, 1 when a call fails (the gRPC code and message go to stderr).
"""

import argparse
import json
import sys

import grpc

from audiotag.v1 import audiotag_pb2, audiotag_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def channel_for(args):
    if args.tls_ca:
        with open(args.tls_ca, "rb") as f:
            creds = grpc.ssl_channel_credentials(root_certificates=f.read())
        return grpc.secure_channel(args.address, creds)
    return grpc.insecure_channel(args.address)


def metadata_for(args):
    if args.token_file:
        with open(args.token_file) as f:
            return (("authorization", "Bearer " + f.read().strip()),)
    return ()


def summarize(result):
    outputs = {}
    for out in result.outputs:
        if out.tags:
            outputs[out.name] = [
                {"label": t.label, "score": round(t.score, 4)} for t in out.tags
            ]
        elif out.HasField("pooled"):
            outputs[out.name] = {"embedding_dim": len(out.pooled.values)}
    return {"model": result.model, "version": result.version,
            "segments": result.num_segments, "outputs": outputs}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", help="audio file to analyze")
    parser.add_argument("--address", default="127.0.0.1:50051")
    parser.add_argument("--model", action="append", default=[],
                        help="model to run (repeatable); default: the "
                             "server's default models")
    parser.add_argument("--top_k", type=int, default=5)
    parser.add_argument("--tls_ca", help="PEM CA bundle: use TLS")
    parser.add_argument("--token_file", help="file holding a bearer token")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds per call")
    args = parser.parse_args()

    with open(args.file, "rb") as f:
        audio = f.read()
    metadata = metadata_for(args)
    with channel_for(args) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        tagger = audiotag_pb2_grpc.AudioTaggerStub(channel)
        try:
            status = health.Check(health_pb2.HealthCheckRequest(service=""),
                                  timeout=args.timeout)
            models = tagger.ListModels(audiotag_pb2.ListModelsRequest(),
                                       timeout=args.timeout, metadata=metadata)
            options = audiotag_pb2.AnalyzeOptions(models=args.model,
                                                  top_k=args.top_k)
            reply = tagger.Analyze(
                audiotag_pb2.AnalyzeRequest(audio=audio, options=options),
                timeout=args.timeout, metadata=metadata)
        except grpc.RpcError as error:
            print(f"{error.code().name}: {error.details()}", file=sys.stderr)
            return 1
    print(json.dumps({
        "health": health_pb2.HealthCheckResponse.ServingStatus.Name(
            status.status),
        "models": {m.name: audiotag_pb2.ModelState.Name(m.state)
                   for m in models.models},
        "duration_seconds": round(reply.audio.duration_seconds, 3),
        "results": [summarize(r) for r in reply.results],
        "skipped": [{"model": s.model, "reason": s.reason}
                    for s in reply.skipped],
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
