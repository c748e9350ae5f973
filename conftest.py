"""pytest: the repository root goes on sys.path (this file's folder), so the tests import
this checkout's `tpn_eval` (the evaluation package, not installed with tpn) under plain
`pytest` as under `python -m pytest`."""
