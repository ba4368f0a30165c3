"""
C{python -m bench}: see L{bench.cli} and C{docs/performance.md}.
"""

import sys

from bench.cli import main

sys.exit(main())
