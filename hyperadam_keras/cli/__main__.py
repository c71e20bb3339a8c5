"""`python -m hyperadam_keras.cli …`: the same as the `hyperadam-keras …` command."""

import sys

from hyperadam_keras.cli import main

sys.exit(main())
