"""``python -m jaxtwin`` is the ``jaxtwin`` command."""
from jaxtwin.cli import console

console()
