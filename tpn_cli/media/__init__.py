"""Pixels in and out: video (PyAV), frame folders, EXR/HDR radiance, masks.

See the submodules for details; the names most callers need are re-exported here.
"""
