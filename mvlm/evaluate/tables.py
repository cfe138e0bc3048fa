"""Results tables: tracking by language (template-free) and bbox + language, with published rows.

An *entry* is one scored (tracker, setting, dataset) cell group::

    {"tracker": "ours-tiny", "setting": "tf" | "bbox", "dataset": "tnl2k", "profile": "vl_python",
     "auc": 61.2, "pre": 51.1, "npr": 81.9}

`build_tables(entries)` returns ``{"tracking_by_language": DataFrame, "bbox_language": DataFrame}``
with one row per tracker and, per dataset, AUC / PRE / NPR and the profile that produced them
(every number is labelled with its profile). Published rows come from ``published.yaml`` in this
package and are marked ``source = "published"``. `write_tables` saves CSV + Markdown per table and
one .xlsx workbook with one sheet per table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Optional

import yaml

from mvlm.atomic import write_text, write_with

TABLES = {"tf": "tracking_by_language", "bbox": "bbox_language"}
METRICS = ("auc", "pre", "npr")
_PUBLISHED_FILE = Path(__file__).with_name("published.yaml")


def load_published(path: Optional[str | Path] = None) -> list[dict]:
    """Published rows as entries (values may be None: not filled from the papers yet)."""
    path = Path(path) if path else _PUBLISHED_FILE
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: cannot read published rows ({exc})") from exc
    entries = []
    for row in data.get("rows", []):
        for dataset, scores in (row.get("scores") or {}).items():
            entries.append({"tracker": row["tracker"], "setting": row["setting"], "dataset": dataset,
                            "profile": row.get("profile"), "source": "published",
                            "reference": row.get("source"), **{m: (scores or {}).get(m) for m in METRICS}})
    return entries


def entries_from_scores(tracker: str, setting: str, dataset: str, profile: str, scores: Optional[dict]) -> dict:
    """One entry from `ScoreResult.scores()` (None scores -> empty cells)."""
    scores = scores or {}
    return {"tracker": tracker, "setting": setting, "dataset": dataset, "profile": profile, "source": "ours",
            **{m: scores.get(m) for m in METRICS}}


def build_tables(entries: Iterable[dict], include_published: bool = True, published_path=None) -> dict:
    """{table name: DataFrame}: rows = (tracker, source), columns = "<DATASET> AUC/PRE/NPR/profile"."""
    import pandas as pd

    entries = list(entries)
    if include_published:
        entries = load_published(published_path) + entries
    tables = {}
    for setting, table_name in TABLES.items():
        rows: dict[tuple[str, str], dict] = {}
        datasets: list[str] = []
        for e in entries:
            if e.get("setting") != setting:
                continue
            key = (e["tracker"], e.get("source", "ours"))
            row = rows.setdefault(key, {"tracker": e["tracker"], "source": key[1]})
            ds = e["dataset"].upper()
            if ds not in datasets:
                datasets.append(ds)
            for m in METRICS:
                row[f"{ds} {m.upper()}"] = e.get(m)
            row[f"{ds} profile"] = e.get("profile")
        columns = ["tracker", "source"] + [f"{ds} {c}" for ds in datasets for c in ("AUC", "PRE", "NPR", "profile")]
        frame = pd.DataFrame(list(rows.values()), columns=columns)
        tables[table_name] = frame
    return tables


def _markdown(frame) -> str:
    def cell(v):
        if v is None or (isinstance(v, float) and v != v):
            return "–"
        return f"{v:.2f}" if isinstance(v, float) else str(v)

    head = "| " + " | ".join(frame.columns) + " |"
    sep = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, sep, *body]) + "\n"


def write_tables(tables: dict, out_dir: str | Path, workbook: str = "results.xlsx") -> list[Path]:
    """CSV and Markdown per table plus one .xlsx workbook (one sheet per table); atomic writes."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frame in tables.items():
        for suffix, text in ((".csv", frame.to_csv(index=False)), (".md", _markdown(frame))):
            written.append(write_text(out_dir / f"{name}{suffix}", text))
    import pandas as pd

    def workbook_to(tmp: Path) -> None:
        with pd.ExcelWriter(tmp, engine="openpyxl") as writer:
            for name, frame in tables.items():
                frame.to_excel(writer, sheet_name=name[:31], index=False)
        _fix_save_time(tmp)

    written.append(write_with(out_dir / workbook, workbook_to))
    return written


def _fix_save_time(xlsx: Path) -> None:
    """openpyxl stamps the save time into docProps/core.xml and into every zip entry; both are
    set to fixed values so the same tables give the same workbook bytes."""
    import re
    import zipfile

    with zipfile.ZipFile(xlsx) as z:
        entries = [(info.filename, z.read(info)) for info in z.infolist()]
    with zipfile.ZipFile(xlsx, "w") as z:
        for name, data in entries:
            if name == "docProps/core.xml":
                data = re.sub(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*", rb"\g<1>2000-01-01T00:00:00Z", data)
            z.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data, zipfile.ZIP_DEFLATED)


def comparison_table(rows: dict[str, dict], profile: str):
    """`mvlm score` comparison: one row per tracker with AUC / PRE / NPR and the profile."""
    import pandas as pd

    data = [{"tracker": name, "AUC": (s or {}).get("auc"), "PRE": (s or {}).get("pre"),
             "NPR": (s or {}).get("npr"), "profile": profile} for name, s in rows.items()]
    return pd.DataFrame(data, columns=["tracker", "AUC", "PRE", "NPR", "profile"])
