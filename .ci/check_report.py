#!/usr/bin/env python3
"""Check a run's report page and executed notebooks as a reader sees them.

    .venv/bin/python .ci/check_report.py outputs/smoke [--screenshots DIR] [--require-browser]

Fails (exit 1, one line per problem) when, in index.html or any executed
notebook's HTML of the run folder:
- an image or a relative link points at a file that does not exist;
- a Markdown table was left as text (a `|---|` row outside code);
- a notebook shows a stderr block;
- the report misses a figure of figures/<profile>/, or a notebook that saves
  figures shows none (each cell that saves a figure must show an image, or
  say "No figure: ..." and why).
Then each page is rendered in headless Chromium (`chromium`, `chromium-browser`
or `google-chrome`) and screenshotted into DIR (default <run folder>/screenshots);
where no browser is installed the screenshots are skipped with a message, or
fail with --require-browser.
"""

import argparse
import html.parser
import json
import re
import shutil
import subprocess
import sys
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rzs import report  # noqa: E402

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
MARKDOWN_RULE = re.compile(r"\|\s*:?-+:?\s*\|")
STDERR_MIME_TYPE = "application/vnd.jupyter.stderr"
VOID_TAGS = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Page(html.parser.HTMLParser):
    """Images, links, stderr blocks and the text outside code and styles of one HTML page."""

    def __init__(self):
        super().__init__()
        self.images, self.links, self.text = [], [], []
        self.stderr_blocks = 0
        self.hidden_depth = []  # the stack depths at which code, style or script elements opened
        self.depth = 0

    def handle_starttag(self, tag, attributes):
        attributes = dict(attributes)
        if tag == "img":
            self.images.append(attributes.get("src", ""))
        if tag == "a" and attributes.get("href"):
            self.links.append(attributes["href"])
        if attributes.get("data-mime-type") == STDERR_MIME_TYPE:
            self.stderr_blocks += 1
        if tag in VOID_TAGS:
            return
        self.depth += 1
        classes = attributes.get("class", "") or ""
        if tag in ("style", "script") or "jp-InputArea" in classes.split():
            self.hidden_depth.append(self.depth)

    def handle_endtag(self, tag):
        if tag in VOID_TAGS:
            return
        if self.hidden_depth and self.hidden_depth[-1] == self.depth:
            self.hidden_depth.pop()
        self.depth -= 1

    def handle_data(self, data):
        if not self.hidden_depth:
            self.text.append(data)


def local_target(reference, page_path):
    """The file a relative reference of `page_path` points at, or None for URLs, anchors and data."""
    parsed = urllib.parse.urlparse(reference)
    if parsed.scheme or not parsed.path:
        return None
    return (page_path.parent / urllib.parse.unquote(parsed.path)).resolve()


def page_problems(page_path):
    page = Page()
    page.feed(page_path.read_text())
    problems = []
    for reference in page.images + page.links:
        target = local_target(reference, page_path)
        if target is not None and not target.is_file():
            problems.append(f"{page_path.name}: {reference} does not exist ({target})")
    for match in MARKDOWN_RULE.finditer("".join(page.text)):
        problems.append(f"{page_path.name}: a Markdown table left as text: {match.group(0)!r}")
    if page.stderr_blocks:
        problems.append(f"{page_path.name}: {page.stderr_blocks} stderr blocks")
    return page, problems


def unshown_figures(notebook_path):
    """Executed code cells that save a figure but show no image (nor say why there is none)."""
    unshown = 0
    for cell in json.loads(notebook_path.read_text())["cells"]:
        if cell["cell_type"] != "code" or "save_figure" not in "".join(cell["source"]):
            continue
        data = [output.get("data", {}) for output in cell.get("outputs", [])]
        shown = any("image/png" in item for item in data)
        explained = any("".join(item.get("text/markdown", "")).startswith("No figure") for item in data)
        unshown += not (shown or explained)
    return unshown


def check(run_directory):
    """Every problem found in `run_directory`'s pages, and the pages checked."""
    run_directory = run_directory.resolve()
    index = run_directory / report.PAGE
    if not index.is_file():
        return [f"no {report.PAGE} in {run_directory}"], []
    pages = [index, *sorted(path for path in run_directory.glob("*.html") if path != index)]
    problems = []
    for page_path in pages:
        page, found = page_problems(page_path)
        problems += found
        notebook = page_path.with_suffix(".ipynb")
        if page_path != index and notebook.is_file() and unshown_figures(notebook):
            problems.append(f"{page_path.name}: {unshown_figures(notebook)} cell(s) save a figure but show none")
        if page_path == index:
            parameters = json.loads((run_directory / report.RUN_RECORD).read_text())["parameters"]
            shown = {local_target(source, index) for source in page.images}
            for figure in sorted(report.output_folder(parameters, "figures_dir").glob("*.png")):
                if figure.resolve() not in shown:
                    problems.append(f"{report.PAGE}: figure {figure} is not on the page")
    return problems, pages


def screenshot(pages, directory, require_browser):
    browser = next((shutil.which(name) for name in BROWSERS if shutil.which(name)), None)
    if browser is None:
        message = f"no headless browser ({', '.join(BROWSERS)}) installed: screenshots skipped"
        if require_browser:
            return [message]
        print(message)
        return []
    directory.mkdir(parents=True, exist_ok=True)
    problems = []
    for page_path in pages:
        image = directory / f"{page_path.stem}.png"
        image.unlink(missing_ok=True)
        subprocess.run(
            [
                browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                "--allow-file-access-from-files", "--window-size=1280,2400",
                f"--screenshot={image}", page_path.as_uri(),
            ],
            capture_output=True, timeout=120,
        )
        if not image.is_file() or image.stat().st_size == 0:
            problems.append(f"{page_path.name}: {Path(browser).name} wrote no screenshot")
        else:
            print(f"screenshot {image}")
    return problems


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_directory", type=Path, help="a run's output folder, e.g. outputs/smoke")
    parser.add_argument("--screenshots", type=Path, help="default <run folder>/screenshots")
    parser.add_argument("--require-browser", action="store_true", help="fail where no browser is installed")
    arguments = parser.parse_args(argv)
    problems, pages = check(arguments.run_directory)
    if pages:
        problems += screenshot(
            pages, arguments.screenshots or arguments.run_directory / "screenshots", arguments.require_browser
        )
    for problem in problems:
        print(f"FAIL {problem}")
    print(f"{len(pages)} pages checked, {len(problems)} problems.")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
