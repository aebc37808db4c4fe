import sys

from orca_math.cli import main

sys.exit(main())
