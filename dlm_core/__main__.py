import sys

from dlm_core.cli import main

sys.exit(main())
