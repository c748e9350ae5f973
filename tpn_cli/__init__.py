"""tpn: carry colour, HDR radiance or object masks from key-frames through a video."""
import os
import sys

# Large CPU tensors on transparent huge pages: the scan's outputs are big fresh
# tensors, and with 4 KiB pages a third of a 512² forward went to page faults.
# torch reads this when it first allocates, so it is set before torch is imported.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")


def _two_malloc_arenas() -> None:
    """glibc gives threads that allocate at once their own heap arenas (up to 8 a core)
    and keeps what is freed in each: with colorize's threads passing large arrays around,
    the peak memory at 1280×720 was 3.1 GB with the default and 2.2 GB with two arenas
    (480p: 2.6 against 2.4 GB), at no cost in time (docs/what-we-tried.md, "Colour: the
    flow part's work in the background"). A MALLOC_ARENA_MAX set by the user is kept."""
    if os.environ.get("MALLOC_ARENA_MAX") or not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt(-8, 2)  # M_ARENA_MAX
    except (OSError, AttributeError):  # not glibc
        pass


_two_malloc_arenas()

__version__ = "0.1.0"
