"""A CRI client for berthd's gRPC service (test_cri.py, tests/bench/cri-lifecycle.sh), written
against the protocol only: Debian's python3-grpcio and python3-protobuf, with the message classes
generated at run time by `protoc --python_out` from the project's cri/cri-api.proto (package
runtime.v1, upstream's names and numbers). Nothing of berthd's C code is used.

  mods = cri_modules()                 the generated module (cached per process)
  c = CriClient(socket_path)           one channel (its own HTTP/2 connection) to unix:PATH
  c.call("Version", version="v1")      a unary call; request fields as keyword arguments (nested
                                       dicts and lists, upstream's field names, as in
                                       json_format.ParseDict); returns the response message.
                                       deadline=SECONDS is the call's (grpc-timeout), default
                                       60; "timeout" is a request field (StopContainer...)
  c.fail("NotFound", "ContainerStatus", container_id="x")
                                       the call must fail with that status; returns its message
  c.stream("GetContainerEvents")       a server-streaming call: an iterator of messages (cancel()
                                       it when done)
Methods are looked up in both services (RuntimeService, ImageService) by name.

Also: pod_config()/container_config() building requests the way kubelet does (a PID namespace
per container unless linux= is given), and CriClient.wait_state().
"""

import importlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
from google.protobuf import json_format

REPO = Path(__file__).resolve().parents[2]
PROTO = Path(os.environ.get("BERTH_CRI_PROTO") or REPO / "cri" / "cri-api.proto")
PACKAGE = "runtime.v1"
SERVICES = ("RuntimeService", "ImageService")
CALL_TIMEOUT = 60  # seconds, the deadline of one call unless given

_modules = None


def cri_modules():
    """The Python module protoc generates from cri/cri-api.proto (built once per process, in
    a temporary directory removed right after the import)."""
    global _modules
    if _modules is not None:
        return _modules
    assert PROTO.is_file(), f"{PROTO}: the CRI .proto is missing"
    with tempfile.TemporaryDirectory(prefix="berth-cri-py-") as out:
        subprocess.run(["protoc", f"--python_out={out}", f"-I{PROTO.parent}", str(PROTO)],
                       check=True, capture_output=True, text=True, timeout=60)
        name = PROTO.stem.replace("-", "_") + "_pb2"
        sys.path.insert(0, out)
        try:
            _modules = importlib.import_module(name)
        finally:
            sys.path.remove(out)
    return _modules


def _identity(x):
    return x


class CallError(AssertionError):
    pass


class CriClient:
    """One gRPC channel to berthd's socket, with every CRI method as a stub."""

    def __init__(self, path, timeout=CALL_TIMEOUT, log_root=None):
        self.mods = cri_modules()
        self.path = str(path)
        self.log_root = log_root  # pods' log_directory: LOG_ROOT/<namespace>_<name>_<uid>
        self.timeout = timeout
        # one connection per client object: grpc would otherwise share a subchannel between
        # channels with the same target and arguments
        self.channel = grpc.insecure_channel(f"unix:{self.path}",
                                             options=[("grpc.use_local_subchannel_pool", 1)])
        self.methods = {}
        for service in SERVICES:
            desc = self.mods.DESCRIPTOR.services_by_name[service]
            for m in desc.methods:
                self.methods[m.name] = m

    # plumbing

    def message(self, type_name, **fields):
        """A message of the package by its short name, filled from fields."""
        cls = getattr(self.mods, type_name)
        return json_format.ParseDict(fields, cls())

    def request(self, method, fields):
        m = self.methods[method]
        return json_format.ParseDict(fields, getattr(self.mods, m.input_type.name)())

    def stub(self, method):
        m = self.methods[method]
        path = f"/{m.containing_service.full_name}/{m.name}"
        out = getattr(self.mods, m.output_type.name)
        make = self.channel.unary_stream if m.server_streaming else self.channel.unary_unary
        return make(path, request_serializer=lambda msg: msg.SerializeToString(),
                    response_deserializer=out.FromString)

    def raw(self, path, data, deadline=None):
        """Call path with an arbitrary request body (bytes); returns the response bytes."""
        stub = self.channel.unary_unary(path, request_serializer=_identity,
                                        response_deserializer=_identity)
        return stub(data, timeout=deadline or self.timeout)

    # calls

    def call(self, method, deadline=None, **fields):
        req = self.request(method, fields)
        return self.stub(method)(req, timeout=deadline or self.timeout)

    def fail(self, code, method, deadline=None, **fields):
        """The call must fail with status code (a grpc.StatusCode name); returns the message."""
        try:
            reply = self.call(method, deadline=deadline, **fields)
        except grpc.RpcError as e:
            got = e.code()
            assert got == grpc.StatusCode[code], \
                f"{method} {fields}: expected {code}, got {got.name}: {e.details()}"
            assert code in ("DEADLINE_EXCEEDED", "CANCELLED") or e.details(), \
                f"{method}: {code} without a message"
            return e.details() or ""
        raise CallError(f"{method} {fields}: expected {code}, got OK: {reply}")

    def stream(self, method, deadline=None, **fields):
        req = self.request(method, fields)
        return self.stub(method)(req, timeout=deadline)

    def close(self):
        self.channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # shorthands

    def run_pod(self, name, namespace="default", uid=None, attempt=0, **config):
        if self.log_root is not None and "log_directory" not in config:
            config["log_directory"] = f"{self.log_root}/{namespace}_{name}_{uid or 'uid-' + name}"
        cfg = pod_config(name, namespace, uid, attempt, **config)
        return self.call("RunPodSandbox", config=cfg).pod_sandbox_id, cfg

    def create(self, pod_id, pod_cfg, name, command, image, **config):
        cfg = container_config(name, command, image, **config)
        return self.call("CreateContainer", pod_sandbox_id=pod_id, config=cfg,
                         sandbox_config=pod_cfg).container_id

    def status(self, cid, verbose=False):
        return self.call("ContainerStatus", container_id=cid, verbose=verbose).status

    def pod_status(self, pod_id, verbose=False):
        return self.call("PodSandboxStatus", pod_sandbox_id=pod_id, verbose=verbose)

    def state_name(self, value):
        return self.mods.ContainerState.Name(value)

    def wait_state(self, cid, state, timeout=20):
        """Poll ContainerStatus until its state is state (e.g. "CONTAINER_EXITED")."""
        deadline = time.monotonic() + timeout
        while True:
            s = self.status(cid)
            if self.state_name(s.state) == state:
                return s
            assert time.monotonic() < deadline, \
                f"container {cid} not {state} after {timeout}s: {s}"
            time.sleep(0.05)


# What kubelet asks for unless a pod shares its process namespace: the pod's network and IPC,
# a PID namespace per container (the proto's zero value, POD, is not kubelet's default).
KUBELET_NAMESPACES = {"security_context": {"namespace_options": {"pid": "CONTAINER"}}}


def pod_config(name, namespace="default", uid=None, attempt=0, **config):
    config.setdefault("linux", KUBELET_NAMESPACES)
    return {"metadata": {"name": name, "namespace": namespace, "uid": uid or f"uid-{name}",
                         "attempt": attempt}, **config}


def container_config(name, command, image, attempt=0, **config):
    config.setdefault("linux", KUBELET_NAMESPACES)
    cfg = {"metadata": {"name": name, "attempt": attempt}, "image": {"image": image},
           "log_path": config.pop("log_path", f"{name}/{attempt}.log"), **config}
    if command is not None:
        cfg["command"] = command
    return cfg
