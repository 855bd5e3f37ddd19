"""Entry point: ``python -m bench [--quick] [--out DIR] [--no-prism] [--only SECTIONS]``."""

from bench.cli import main

raise SystemExit(main())
