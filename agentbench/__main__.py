"""``python -m agentbench`` runs the command line."""

import sys

from agentbench.cli.app import main

sys.exit(main())
