"""`python -m facewatch` runs the command line, as the console script does."""

import sys

from facewatch.cli import main

sys.exit(main())
