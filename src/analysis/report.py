"""Write the README's Studies and lab-claims tables from the tracking store.

``python -m src.analysis.report`` loads the latest sweep of every study's experiment
(see ``src.analysis.studies``) and computes its headline result, and judges every lab
claim (``src.analysis.claims``) on the latest sweep of its lab preset. It rewrites the
tables between the ``<!-- studies:begin -->``/``<!-- studies:end -->`` and
``<!-- claims:begin -->``/``<!-- claims:end -->`` markers of README.md (``--print``
prints them instead). The store is ``--tracking-uri``, else ``$MLFLOW_TRACKING_URI``,
else ``sqlite:///mlflow.db``.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from src.analysis.claims import claims_table
from src.analysis.loaders import load_runs
from src.analysis.studies import all_studies

BEGIN, END = "<!-- studies:begin -->", "<!-- studies:end -->"
CLAIMS_BEGIN, CLAIMS_END = "<!-- claims:begin -->", "<!-- claims:end -->"


def studies_table(tracking_uri: str | None = None) -> str:
    """Markdown table: study, command, notebook, runs, headline result."""
    lines = [
        "| study | command | notebook | runs | headline result |",
        "| --- | --- | --- | --- | --- |",
    ]
    for study in all_studies().values():
        try:
            runs = load_runs(study.experiment, tracking_uri=tracking_uri)
            count, headline = str(len(runs)), study.headline(runs)
        except ValueError:
            count, headline = "0", "not run yet"
        lines.append(
            f"| {study.name} | `{study.command}` | [{Path(study.notebook).name}]({study.notebook}) "
            f"| {count} | {headline} |"
        )
    return "\n".join(lines)


def update_readme(readme: Path, table: str, begin: str = BEGIN, end: str = END) -> None:
    """Replace what lies between the ``begin`` and ``end`` markers of ``readme`` with ``table``."""
    text = readme.read_text()
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.DOTALL)
    if not pattern.search(text):
        raise ValueError(f"{readme} has no {begin} ... {end} block")
    readme.write_text(pattern.sub(lambda _: f"{begin}\n{table}\n{end}", text))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", default=None)
    parser.add_argument("--readme", type=Path, default=Path("README.md"))
    parser.add_argument("--print", action="store_true", help="print the tables instead of updating the README")
    args = parser.parse_args(argv)
    table, claims = studies_table(args.tracking_uri), claims_table(args.tracking_uri)
    if args.print:
        print(f"{table}\n\n{claims}")
    else:
        update_readme(args.readme, table)
        update_readme(args.readme, claims, CLAIMS_BEGIN, CLAIMS_END)
        print(f"updated the Studies and lab-claims tables of {args.readme}")


if __name__ == "__main__":
    main()
