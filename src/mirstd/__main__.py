import sys

from mirstd.cli import main

sys.exit(main())
