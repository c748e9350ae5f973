"""Runs beyond one process: a video split into segments that workers propagate
(:mod:`.segments`), those segments and whole files spread over a Ray cluster
(:mod:`.ray_engine`), and job lists of many files (:mod:`.batch`, ``tpn batch``).

Colour and HDR frames depend only on their key-frames, so a run splits into segments
of consecutive frames that any worker can compute; the local engine (today's
:meth:`tpn_cli.runs.Run.execute`) needs nothing of this package. Ray is an optional
dependency (``pip install "tpn[ray]"``), imported only when ``--engine ray`` is asked for.
"""
