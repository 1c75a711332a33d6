"""``python -m src.train [overrides]``: train one configuration, or sweep a grid with ``-m``
(the command line lives in ``src.runs.cli``)."""

from src.runs.cli import main

if __name__ == "__main__":
    main()
