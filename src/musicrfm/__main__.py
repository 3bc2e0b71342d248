import sys

from musicrfm.cli import main

sys.exit(main())
