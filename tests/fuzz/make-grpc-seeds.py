#!/usr/bin/python3
"""Writes fuzz_grpc's seed corpus (tests/fuzz/corpus-grpc): what a gRPC client sends after the
HTTP/2 preface, for valid and subtly invalid calls. HPACK fields are literals without Huffman
coding, so the fuzzer (and its dictionary) sees the names and values as they are.
Usage: make-grpc-seeds.py DIR"""

import struct
import sys
from pathlib import Path


def frame(ftype, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", stream) + payload


def literal(name, value):
    name, value = name.encode(), value.encode()
    assert len(name) < 127 and len(value) < 127
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


def headers(stream, path, extra=(), end_stream=False):
    block = b"".join(literal(k, v) for k, v in [
        (":method", "POST"), (":scheme", "http"), (":authority", "localhost"), (":path", path),
        ("content-type", "application/grpc"), ("te", "trailers"), *extra])
    return frame(1, 0x4 | (0x1 if end_stream else 0), stream, block)  # END_HEADERS


def message(body, flag=0):
    return bytes([flag]) + struct.pack(">I", len(body)) + body


def data(stream, payload, end_stream=True):
    return frame(0, 0x1 if end_stream else 0, stream, payload)


SETTINGS = frame(4, 0, 0, b"")
SETTINGS_ACK = frame(4, 1, 0, b"")
V = "/runtime.v1.RuntimeService/Version"
RUN = "/runtime.v1.RuntimeService/RunPodSandbox"
EVENTS = "/runtime.v1.RuntimeService/GetContainerEvents"
version_req = b"\x0a\x06v1.0.0"  # version = "v1.0.0"
# RunPodSandboxRequest{config{metadata{name "p", uid "u", namespace "n"}, labels{"a": "b"}},
# runtime_handler "h"}
meta = b"\x0a\x01p\x12\x01u\x1a\x01n"
label = b"\x0a\x01a\x12\x01b"
config = b"\x0a" + bytes([len(meta)]) + meta + b"\x32" + bytes([len(label)]) + label
run_req = b"\x0a" + bytes([len(config)]) + config + b"\x12\x01h"

SEEDS = {
    "version": SETTINGS + SETTINGS_ACK + headers(1, V) + data(1, message(version_req)),
    "version-timeout": SETTINGS + headers(1, V, [("grpc-timeout", "100m")]) +
    data(1, message(version_req)),
    "run-pod": SETTINGS + headers(1, RUN) + data(1, message(run_req)),
    "events": SETTINGS + headers(1, EVENTS) + data(1, message(b"")),
    "events-reset": SETTINGS + headers(1, EVENTS) + data(1, message(b"")) +
    frame(3, 0, 1, struct.pack(">I", 8)),  # RST_STREAM CANCEL
    "two-streams": SETTINGS + headers(1, V) + headers(3, RUN) + data(3, message(run_req)) +
    data(1, message(version_req)),
    "split-data": SETTINGS + headers(1, V) + data(1, message(version_req)[:3], False) +
    data(1, message(version_req)[3:]),
    "compressed": SETTINGS + headers(1, V) + data(1, message(version_req, 1)),
    "encoding": SETTINGS + headers(1, V, [("grpc-encoding", "gzip")]) +
    data(1, message(version_req)),
    "unknown": SETTINGS + headers(1, "/runtime.v1.RuntimeService/Nope") + data(1, message(b"")),
    "no-body": SETTINGS + headers(1, V, end_stream=True),
    "goaway": SETTINGS + headers(1, V) + data(1, message(version_req)) +
    frame(7, 0, 0, struct.pack(">II", 1, 0)),
}

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
for name, seed in SEEDS.items():
    (out / name).write_bytes(seed)
