import sys

from scopecast.cli import main

sys.exit(main())
