"""tpn: carry colour, HDR radiance or object masks from key-frames through a video."""
import os

# Large CPU tensors on transparent huge pages: the scan's outputs are big fresh
# tensors, and with 4 KiB pages a third of a 512² forward went to page faults.
# torch reads this when it first allocates, so it is set before torch is imported.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

__version__ = "0.1.0"
