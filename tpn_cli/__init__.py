"""tpn: carry colour, HDR radiance or object masks from key-frames through a video."""
__version__ = "0.1.0"
