"""Fixtures for vqgen.data tests: a local HTTP server on 127.0.0.1, a closed port, IDX file builders."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import socket
import struct
import threading
from pathlib import Path

import numpy as np
import pytest


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    requests: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        type(self).requests.append(self.path)
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # keep test output quiet
        pass


class LocalServer:
    """Serves ``files[path] = bytes`` at ``url(path)``; records requested paths in ``requests``."""

    def __init__(self) -> None:
        handler = type("Handler", (_Handler,), {"files": {}, "requests": []})
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.files = handler.files
        self.requests = handler.requests
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}/{path.lstrip('/')}"

    def serve(self, path: str, body: bytes) -> str:
        self.files["/" + path.lstrip("/")] = body
        return self.url(path)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def http_server():
    server = LocalServer()
    yield server
    server.close()


@pytest.fixture
def closed_port_url() -> str:
    """A URL on 127.0.0.1 whose port was just released, so connecting is refused (never an external address)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def idx_bytes(array: np.ndarray) -> bytes:
    """Serialise a uint8 array in the IDX format (magic 0x0000080N, big-endian sizes), gzipped."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return gzip.compress(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes(), mtime=0)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def helpers():
    """``idx_bytes``, ``sha256`` and ``write`` (tests cannot import a conftest by name)."""
    import types

    return types.SimpleNamespace(idx_bytes=idx_bytes, sha256=sha256, write=write)


@pytest.fixture
def fake_mnist(http_server, monkeypatch, helpers):
    """Serve a tiny MNIST-layout dataset (6 train / 4 test images) and point the ``mnist`` spec at it.

    Returns ``(arrays, bodies)``: the arrays per file name, and the served bytes per file name.
    """
    import dataclasses

    from vqgen.data import specs

    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": np.array([0, 1, 2, 3, 4, 9], dtype=np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (4, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": np.array([5, 6, 7, 8], dtype=np.uint8),
    }
    bodies = {name: idx_bytes(a) for name, a in arrays.items()}
    spec = specs.DATASETS["mnist"]
    splits = {
        split: tuple(
            dataclasses.replace(
                f, sha256=sha256(bodies[f.name]), md5=None, size=len(bodies[f.name]), urls=(http_server.url(f.name),)
            )
            for f in files
        )
        for split, files in spec.splits.items()
    }
    monkeypatch.setitem(specs.DATASETS, "mnist", dataclasses.replace(spec, splits=splits))
    for name, body in bodies.items():
        http_server.serve(name, body)
    return arrays, bodies
