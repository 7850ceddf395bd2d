"""`python -m benchmarks.tls_termination`: HTTPS termination (TLS 1.3, ECDSA P-256,
keep-alive, small GET) through meshcore, Envoy and nginx in the same run: requests/s and proxy
CPU per request. One worker each pinned to CPU 1; wrk (https) and the nginx backend on CPU 0;
interleaved rounds, medians reported."""

from __future__ import annotations

import argparse
import datetime
import tempfile
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from benchmarks import backend, wrk
from benchmarks.bootstrap import bootstrap
from benchmarks.cpu import cpu_seconds
from benchmarks.procs import Proc, free_port, raise_nofile, wait_port
from benchmarks.proxy_confs import nginx_conf
from benchmarks.targets import start_on_bootstrap

DOWNSTREAM_TLS = (
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
)


def make_cert(workdir: Path) -> tuple[Path, Path]:
    """A self-signed ECDSA P-256 certificate for `localhost` (cert, key) as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = workdir / "tls.crt", workdir / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def tls_bootstrap(port: int, backend_port: int, cert: Path, key: Path) -> dict[str, object]:
    """The suite's bootstrap with TLS terminated on its listener."""
    config = bootstrap(port, free_port(), backend_port)
    listener = config["static_resources"]["listeners"][0]  # type: ignore[index]
    listener["filter_chains"][0]["transport_socket"] = {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": DOWNSTREAM_TLS,
            "common_tls_context": {
                "tls_certificates": [
                    {
                        "certificate_chain": {"filename": str(cert)},
                        "private_key": {"filename": str(key)},
                    }
                ],
                "alpn_protocols": ["http/1.1"],
            },
        },
    }
    return config


def nginx_tls_conf(workdir: Path, port: int, backend_port: int, cert: Path, key: Path) -> str:
    """The suite's nginx proxy config with TLS on its listener."""
    return nginx_conf(workdir, port, backend_port, raise_nofile()).replace(
        f"listen 127.0.0.1:{port} backlog=4096;",
        f"listen 127.0.0.1:{port} ssl backlog=4096;\n"
        f"        ssl_certificate {cert};\n        ssl_certificate_key {key};\n"
        "        ssl_protocols TLSv1.2 TLSv1.3;",
    )


def start(kind: str, workdir: Path, backend_port: int, cert: Path, key: Path) -> tuple[Proc, int]:
    port = free_port()
    if kind == "nginx":
        conf = nginx_tls_conf(workdir, port, backend_port, cert, key)
        path = workdir / "nginx-tls.conf"
        path.write_text(conf)
        cmd = [backend.nginx_binary() or "nginx", "-c", str(path), "-e", str(workdir / "ng.err")]
    else:
        config = tls_bootstrap(port, backend_port, cert, key)
        return start_on_bootstrap(kind, config, port, workdir, cpu=1), port
    proc = Proc.start(kind, cmd, cpu=1, log=workdir / f"{kind}.log")
    wait_port(port)
    time.sleep(0.5)
    return proc, port


def timed_wrk(
    kind: str, proc: Proc | None, url: str, args: argparse.Namespace
) -> tuple[wrk.WrkResult, float]:
    """A 1 s warm-up, then one wrk run (CPU 0) of `args.duration` seconds with
    `args.connections`; returns its result and the CPU seconds `proc` used meanwhile (0
    without one), and stops `proc`. A run with errors or no request ends the benchmark."""
    try:
        wrk.run(url, connections=args.connections, duration_s=1, cpu=0)
        cpu0 = cpu_seconds(proc.pid) if proc else 0.0
        r = wrk.run(url, connections=args.connections, duration_s=args.duration, cpu=0)
        cpu1 = cpu_seconds(proc.pid) if proc else 0.0
    finally:
        if proc is not None:
            proc.stop()
    if r.errors or not r.requests:
        raise SystemExit(f"{kind}: wrk saw {r.errors} errors, {r.requests} requests")
    return r, cpu1 - cpu0


def measure(
    kind: str, workdir: Path, backend_port: int, cert: Path, key: Path, args: argparse.Namespace
) -> tuple[float, float]:
    """(requests/s, proxy CPU µs per request) of one wrk run."""
    proc, port = start(kind, workdir, backend_port, cert, key)
    r, cpu = timed_wrk(kind, proc, f"https://127.0.0.1:{port}/", args)
    return r.rps, cpu / r.requests * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.tls_termination", description=__doc__)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--targets", default="meshcore,envoy,nginx")
    args = ap.parse_args()
    kinds = [k.strip() for k in args.targets.split(",") if k.strip()]
    results: dict[str, list[tuple[float, float]]] = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory(prefix="tls-bench-") as tmp:
        work = Path(tmp)
        cert, key = make_cert(work)
        be = backend.start(work, free_port(), cpu=0)
        try:
            for _ in range(args.rounds):
                for kind in kinds:
                    results[kind].append(measure(kind, work, be.port, cert, key, args))
        finally:
            be.stop()
    print(f"HTTPS termination, c{args.connections}, {args.rounds} rounds of {args.duration:g} s")
    for kind, runs in results.items():
        rps = sorted(r[0] for r in runs)[len(runs) // 2]
        cpu = sorted(r[1] for r in runs)[len(runs) // 2]
        print(f"{kind:9} {rps:9.0f} requests/s  {cpu:6.1f} µs proxy CPU per request (medians)")


if __name__ == "__main__":
    main()
