import sys

from paperzoo.core.cli import main

sys.exit(main())
