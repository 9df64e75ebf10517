"""`python -m bench` (or `make bench BENCH_ARGS='--size 256MiB'`)."""

import sys

from bench.cli import main

sys.exit(main())
