"""``python -m jaxtwin`` is the ``jaxtwin`` command."""
import sys

from jaxtwin.cli import main

sys.exit(main())
