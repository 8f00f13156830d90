"""sync.lazy_kubernetes: the sync's process imports the client's pieces it uses, and the
rest of the package only when asked for. Each case runs in a fresh interpreter: this
test process may have imported the kubernetes package already."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

# Modules that the package's eager __init__ imports and the sync never uses.
UNUSED = ("kubernetes.dynamic", "kubernetes.stream", "kubernetes.informer", "kubernetes.leaderelection",
          "websocket")


def _run(code: str) -> dict:
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_sync_imports_the_pieces_it_uses_and_not_the_rest():
    found = _run(f"""
        import json, sys
        import sync.cli
        from sync.sources.kube import KubernetesSource, load_client
        from sync.status_writer import StatusWriter
        from sync.leader import LeaderElector
        print(json.dumps({{"loaded": [m for m in {UNUSED!r} if m in sys.modules],
                          "client": "kubernetes.client.rest" in sys.modules}}))
    """)
    assert found == {"loaded": [], "client": True}


def test_what_was_not_imported_is_imported_when_read():
    found = _run("""
        import json, sys
        from sync import lazy_kubernetes
        assert lazy_kubernetes.install()
        import kubernetes
        from kubernetes.client.rest import ApiException
        before = "kubernetes.dynamic" in sys.modules
        dynamic = kubernetes.dynamic.DynamicClient
        from kubernetes import stream
        print(json.dumps({"before": before, "after": "kubernetes.dynamic" in sys.modules,
                          "stream": stream.__name__, "version": kubernetes.__version__,
                          "missing": hasattr(kubernetes, "no_such_thing")}))
    """)
    from importlib.metadata import version
    assert found == {"before": False, "after": True, "stream": "kubernetes.stream",
                     "version": version("kubernetes"), "missing": False}


def test_a_package_imported_already_is_left_alone():
    found = _run("""
        import json, sys
        import kubernetes
        eager = kubernetes
        from sync import lazy_kubernetes
        print(json.dumps({"installed": lazy_kubernetes.install(), "same": sys.modules["kubernetes"] is eager,
                          "dynamic": "kubernetes.dynamic" in sys.modules}))
    """)
    assert found == {"installed": False, "same": True, "dynamic": True}
