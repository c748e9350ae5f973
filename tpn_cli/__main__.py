"""`python -m tpn_cli ...` is `tpn ...` (for environments without the console script)."""
from .cli import main

main()
