"""sync.allocator: with the cap, threads that allocate at the same time share the capped
number of glibc malloc arenas (counted by glibc's own malloc_info); without it, they
get arenas of their own. With the threshold fixed, big blocks are still mapped on their
own after a bigger one was freed (counted by glibc's mallinfo2); without it, glibc
serves them from the heap."""

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")

# Six threads alive at once, each allocating blocks glibc serves from its arenas (not
# pymalloc's); then the heaps glibc reports.
SCRIPT = """
import ctypes, sys, tempfile, threading
from sync.allocator import limit_arenas
if sys.argv[1] != "none":
    print(limit_arenas(int(sys.argv[1])))
barrier = threading.Barrier(6)
def work():
    barrier.wait()
    kept = [bytearray(20000) for _ in range(50)]
    barrier.wait()
threads = [threading.Thread(target=work) for _ in range(6)]
for t in threads: t.start()
for t in threads: t.join()
libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
libc.fopen.argtypes = (ctypes.c_char_p, ctypes.c_char_p)
libc.malloc_info.argtypes = (ctypes.c_int, ctypes.c_void_p)
libc.fclose.argtypes = (ctypes.c_void_p,)
with tempfile.NamedTemporaryFile(suffix=".xml") as report:
    handle = libc.fopen(report.name.encode(), b"w")
    libc.malloc_info(0, handle)
    libc.fclose(handle)
    print(open(report.name).read().count("<heap nr="))
"""


def printed(script: str, *args: str, env: dict | None = None) -> list[str]:
    """What `script` printed, run in a fresh interpreter with glibc's tunables only as `env` sets them."""
    environment = {k: v for k, v in os.environ.items() if k not in ("MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_")}
    environment.update(env or {})
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=60,
                          env=environment)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def heaps(*args: str, env: dict | None = None) -> list[str]:
    return printed(SCRIPT, *args, env=env)


def test_threads_share_the_capped_arenas():
    assert heaps("1") == ["True", "1"]
    took, count = heaps("2")
    assert took == "True" and int(count) <= 2


def test_without_the_cap_threads_get_arenas_of_their_own():
    (count,) = heaps("none")
    assert int(count) > 2


def test_the_operators_malloc_arena_max_wins():
    took, count = heaps("1", env={"MALLOC_ARENA_MAX": "3"})
    assert took == "False"
    assert 1 < int(count) <= 3


# A 4 MiB block freed (glibc would raise its threshold to 4 MiB), then eight blocks of
# 512 KiB: how many of them glibc mapped on their own.
MAPPED_SCRIPT = """
import ctypes, sys
from sync.allocator import fix_mmap_threshold
class Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                     "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = Mallinfo2
if sys.argv[1] == "fixed":
    print(fix_mmap_threshold())
freed = bytearray(4 << 20)
del freed
before = libc.mallinfo2().hblks
blocks = [bytearray(512 << 10) for _ in range(8)]
print(libc.mallinfo2().hblks - before)
"""


def mapped(*args: str, env: dict | None = None) -> list[str]:
    return printed(MAPPED_SCRIPT, *args, env=env)


def test_big_blocks_stay_mapped_after_a_bigger_one_is_freed():
    assert mapped("fixed") == ["True", "8"]


def test_without_the_fixed_threshold_glibc_serves_them_from_the_heap():
    assert mapped("none") == ["0"]


def test_the_operators_malloc_mmap_threshold_wins():
    assert mapped("fixed", env={"MALLOC_MMAP_THRESHOLD_": str(8 << 20)}) == ["False", "0"]
