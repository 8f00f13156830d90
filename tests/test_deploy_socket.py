"""The DNS pod's PowerDNS reaches its backend over the backend's unix socket: the path
PowerDNS connects to is the one the backend listens on, in a volume both containers mount."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from mountdns.testing.deploy import OVERLAYS, container, render
from pdns_backend.cli import build_parser as backend_parser
from tests.test_deploy_commands import FIELDS, SECRETS


def mounted_at(c, path: str) -> str | None:
    """The volume `c` mounts on the directory holding `path`."""
    directory = str(PurePosixPath(path).parent)
    return next((m["name"] for m in c.spec.get("volumeMounts", []) if m["mountPath"] == directory), None)


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_powerdns_connects_to_the_socket_the_backend_listens_on_in_a_shared_volume(overlay):
    docs = render(overlay)
    pdns = container(docs, "mountdns-dns", "pdns")
    backend = container(docs, "mountdns-dns", "backend")
    connection = next(a.split("=", 1)[1] for a in pdns.argv(pdns.env(docs, SECRETS, FIELDS))
                      if a.startswith("--remote-connection-string="))
    kind, _, options = connection.partition(":")
    path = dict(o.split("=", 1) for o in options.split(","))["path"]
    assert kind == "unix"
    args = backend_parser().parse_args(backend.argv(backend.env(docs, SECRETS, FIELDS))[1:])
    assert args.pdns_socket == path
    volume = mounted_at(pdns, path)
    assert volume is not None and mounted_at(backend, path) == volume
    (spec,) = [v for v in pdns.pod["spec"]["volumes"] if v["name"] == volume]
    assert "emptyDir" in spec, "a directory of the pod's own, nothing on the node"
