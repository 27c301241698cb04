import sys

from stock_assets.cli import main

sys.exit(main())
