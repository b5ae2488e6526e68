import sys

from wmstats.cli import main

sys.exit(main())
