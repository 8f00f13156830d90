"""Counting the Redis commands and round trips a piece of work costs (INFO + MONITOR)."""

from __future__ import annotations

import contextlib
import threading

def redis_counts(client) -> tuple[dict[str, int], int]:
    """(calls by command, total_commands_processed) as Redis reports them now."""
    stats = client.info("commandstats")
    calls = {key.removeprefix("cmdstat_"): int(v["calls"]) for key, v in stats.items()}
    return calls, int(client.info("stats")["total_commands_processed"])


_SENTINEL = "mountdns-bench-monitor-stop"
_OWN_COMMANDS = {"info", "config", "echo", "monitor"}


def _watch(monitor, seen: list, ready: threading.Event) -> None:
    ready.set()
    for command in monitor.listen():
        if command is None:
            continue
        if command["command"].lower() == f"echo {_SENTINEL}":
            return
        seen.append(command)


@contextlib.contextmanager
def counting(client):
    """Count the Redis commands issued inside the block.

    Two views: commandstats/total_commands_processed count every command Redis executes,
    including the ones a script runs server-side (Redis 7 counts those too), so the round
    trips come from MONITOR, which tags script-issued commands as `lua`: a command from a
    TCP client is one round trip. The counter's own INFO/CONFIG/ECHO calls are excluded.
    """
    client.config_resetstat()
    before_calls, before_total = redis_counts(client)
    _, probe_total = redis_counts(client)
    own = probe_total - before_total  # the counter's own INFO calls, measured, not assumed
    monitor_client = client.__class__(connection_pool=client.connection_pool.__class__(
        **client.connection_pool.connection_kwargs))
    seen: list = []
    result: dict = {}
    with monitor_client.monitor() as monitor:
        ready = threading.Event()
        watcher = threading.Thread(target=_watch, args=(monitor, seen, ready), daemon=True)
        watcher.start()
        ready.wait(5)
        client.config_resetstat()
        before_calls, before_total = redis_counts(client)
        yield result
        after_calls, after_total = redis_counts(client)
        client.echo(_SENTINEL)
        watcher.join(30)
    monitor_client.close()
    ignore = {"info", "config|resetstat", "config", "echo", "monitor"}
    result["calls"] = {k: v - before_calls.get(k, 0) for k, v in after_calls.items()
                       if k not in ignore and v - before_calls.get(k, 0) > 0}
    result["commands"] = after_total - before_total - own
    top_level = {}
    for command in seen:
        name = command["command"].split(" ", 1)[0].lower()
        if command["client_type"] != "lua" and name not in _OWN_COMMANDS:
            top_level[name] = top_level.get(name, 0) + 1
    result["round_trips"] = top_level
