"""``python -m fly64_kedro.summary``: where the latest study summary is, and its headline table."""

from __future__ import annotations

import sys
from pathlib import Path

from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project


def main(project_path: Path | None = None) -> int:
    """Print the path and the test-split table of the newest ``study_summary_markdown`` (project: the cwd)."""
    project_path = project_path or Path.cwd()
    bootstrap_project(project_path)
    with KedroSession.create(project_path=project_path) as session:
        catalog = session.load_context().catalog
        dataset = catalog.get("study_summary_markdown")
        text = catalog.load("study_summary_markdown")
        location = Path(str(dataset._get_load_path()))  # the resolved (newest) version's file
    print(f"\nStudy summary: {location}\n")
    print(text.split("## train split")[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
