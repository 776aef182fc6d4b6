import sys

from runtime.cli.app import main

sys.exit(main())
