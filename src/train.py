"""``python -m src.train [overrides]``: train one configuration, or sweep a grid with ``-m``
(the command line lives in ``src.runs.cli``; Ctrl-C and SIGTERM end it as in
``src.runs.interrupts``)."""

from src.runs.cli import exit_now, main
from src.runs.interrupts import exit_on_interrupt

if __name__ == "__main__":
    with exit_on_interrupt():
        main()
    exit_now()
