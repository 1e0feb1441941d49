"""A run's report: one self-contained HTML page with its plots, config and provenance, plus the PNGs.

>>> with Store.open("runs/neurosym.sqlite") as store:                        # doctest: +SKIP
...     report = write_report(resolve_run("runs/digits-addition-seed0", store), store)

Plots (each also a PNG beside ``report.html``; one is left out, with a note, where its data is missing):

- ``training_curves.png``: loss, accuracies, codebook usage/perplexity, learning rate and temperature per
  epoch (``metrics.csv``);
- ``codebook_usage.png``: inputs per code (top symbol, rank 0), from the run's assignments in the store;
- ``alignment_heatmap.png``: code x entity alignment confidence, best over methods (store; else the
  ``alignment`` of ``result.json``), the chosen entity of each code boxed;
- ``confusion_matrix.png``: true concept x predicted concept (the code's aligned entity) on the test
  split; the true digits of ``neurosym.data.digits`` (keys ``digit-{row}``) through ``task.label_entity``;
- ``rate_accuracy.png``: accuracy against rate per epoch, for runs that record a rate
  (a ``metrics.csv`` column with ``rate`` in its name).

With the run in a store, the page also has a section on explained failures: the test groups whose
predicted label is wrong, with the latent values and inputs that differ from the true ones
(``pipelines.explain.failures_html``).
"""

from __future__ import annotations

import base64
import csv
import html
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure  # a Figure renders with the Agg backend; no pyplot state, no display
from kg.sql import answers
from kg.store import Store

CURVE_PANELS = {
    "loss": lambda c: "loss" in c,
    "accuracy": lambda c: c.endswith("_acc") or "_acc_" in c,
    "codebook usage": lambda c: "codebook_usage" in c,
    "codebook perplexity": lambda c: "perplexity" in c,
    "learning rate": lambda c: c == "lr",
    "temperature": lambda c: c == "temperature",
}


@dataclass
class Report:
    """What ``write_report`` wrote: the page, the PNGs by name, and notes on what could not be drawn."""

    html: Path
    plots: dict[str, Path] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def resolve_run(run: str | Path, store: Store | None = None) -> Path:
    """A run folder from a path (holding ``result.json``) or a store run id (its checkpoint's folder)."""
    path = Path(run)
    if (path / "result.json").is_file():
        return path
    if path.exists():
        raise ValueError(f"{run}: not a run folder (no result.json in it)")
    if str(run).isdigit() and store is not None:
        runs = {r["id"]: r for r in store.runs()}
        if int(run) not in runs:
            raise ValueError(f"unknown run {run}; the store holds runs {sorted(runs) or 'none'}")
        checkpoint = runs[int(run)]["checkpoint_path"]
        folder = Path(checkpoint).parent if checkpoint else None
        if folder is None or not (folder / "result.json").is_file():
            raise ValueError(f"run {run}: its run folder ({folder or 'no checkpoint recorded'}) has no result.json")
        return folder
    raise ValueError(f"{run}: no such run folder" + ("" if store is None else ", nor a run id of the store"))


def read_metrics(path: Path) -> list[dict[str, float]]:
    """``metrics.csv`` as one dict per epoch (numbers as floats; empty cells left out)."""
    if not path.is_file():
        return []
    with path.open(newline="") as handle:
        rows = []
        for row in csv.DictReader(handle):
            parsed = {}
            for key, value in row.items():
                try:
                    parsed[key] = float(value)
                except (TypeError, ValueError):
                    pass
            rows.append(parsed)
    return rows


# -- figures ----------------------------------------------------------------------------------------
def plot_curves(history: list[dict[str, float]]) -> Figure | None:
    columns = list(dict.fromkeys(k for row in history for k in row))
    panels = {name: [c for c in columns if test(c)] for name, test in CURVE_PANELS.items()}
    panels = {name: cols for name, cols in panels.items() if cols}
    if not panels:
        return None
    ncols = min(3, len(panels))
    nrows = -(-len(panels) // ncols)
    fig = Figure(figsize=(4.5 * ncols, 3.2 * nrows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()
    for ax in axes[len(panels):]:
        ax.set_axis_off()
    for ax, (name, cols) in zip(axes, panels.items()):
        for col in cols:
            points = [(row.get("epoch", i + 1), row[col]) for i, row in enumerate(history) if col in row]
            ax.plot(*zip(*points), marker="o", markersize=3, label=col)
        ax.set(title=name, xlabel="epoch")
        ax.legend(fontsize=7)
    return fig


def plot_usage(counts: np.ndarray, aligned: np.ndarray) -> Figure:
    """Shapes: counts ``[K]`` inputs per code, aligned ``[K]`` bool."""
    fig = Figure(figsize=(max(5, 0.25 * len(counts)), 3.6), layout="constrained")
    ax = fig.subplots()
    ax.bar(np.arange(len(counts)), counts, color=np.where(aligned, "tab:blue", "tab:gray"))
    used = int((counts > 0).sum())
    ax.set(title=f"codebook usage: {used}/{len(counts)} codes used (gray: unaligned)", xlabel="code", ylabel="inputs (top symbol)")
    return fig


def plot_matrix(matrix: np.ndarray, rows: list[str], cols: list[str], title: str, xlabel: str, ylabel: str,
                boxes: list[tuple[int, int]] = (), fmt: str = "{:.2f}") -> Figure:
    """A heatmap with its values written in the cells. Shapes: matrix ``[R, C]``."""
    fig = Figure(figsize=(max(5, 0.5 * len(cols) + 2), max(4, 0.4 * len(rows) + 1.5)), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(matrix, cmap="viridis", aspect="auto")
    fig.colorbar(image, ax=ax)
    ax.set_xticks(range(len(cols)), cols, rotation=90, fontsize=7)
    ax.set_yticks(range(len(rows)), rows, fontsize=7)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if matrix.size <= 400:
        top = matrix.max() if matrix.size else 0
        for (i, j), value in np.ndenumerate(matrix):
            ax.text(j, i, fmt.format(value), ha="center", va="center", fontsize=6,
                    color="black" if top and value > 0.6 * top else "white")
    for i, j in boxes:
        ax.add_patch(_box(i, j))
    return fig


def _box(i: int, j: int):
    from matplotlib.patches import Rectangle

    return Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=1.5)


def plot_rate(history: list[dict[str, float]], rate: str, accuracy: str) -> Figure:
    points = [(row[rate], row[accuracy], int(row.get("epoch", i + 1))) for i, row in enumerate(history)
              if rate in row and accuracy in row]
    fig = Figure(figsize=(5, 3.6), layout="constrained")
    ax = fig.subplots()
    ax.plot([p[0] for p in points], [p[1] for p in points], marker="o")
    for x, y, epoch in points:
        ax.annotate(str(epoch), (x, y), fontsize=6, textcoords="offset points", xytext=(3, 3))
    ax.set(title="rate / accuracy (labels: epoch)", xlabel=rate, ylabel=accuracy)
    return fig


# -- data from the store ------------------------------------------------------------------------------
def short(iri: str) -> str:
    return iri.rsplit("#", 1)[-1].rsplit("/", 1)[-1]


def code_usage(store: Store, run_id: int) -> tuple[np.ndarray, np.ndarray]:
    """(inputs per code ``[K]``, code is aligned ``[K]``) for a store run."""
    usage = answers.code_usage(store, run_id)
    return np.array([n for _, n, _ in usage], dtype=np.int64), np.array([aligned for *_, aligned in usage], dtype=bool)


def alignment_matrix(store: Store | None, run_id: int | None, result: dict) -> tuple[np.ndarray, list[int], list[str]]:
    """Code x entity confidence, best over methods. Shapes: ``[K, E]``."""
    rows: list[tuple[int, str, float]] = []
    if store is not None and run_id is not None:
        rows = answers.best_alignments(store, run_id)
    if not rows:
        rows = [(a["code"], a["entity"], a["confidence"]) for a in result.get("alignment", []) if a.get("entity")]
    codes = sorted({r[0] for r in rows})
    order = {e: i for i, e in enumerate(result.get("symbols", []))}
    entities = sorted({r[1] for r in rows}, key=lambda e: (order.get(e, len(order)), e))
    matrix = np.zeros((len(codes), len(entities)))
    for code, entity, conf in rows:
        matrix[codes.index(code), entities.index(entity)] = conf
    return matrix, codes, entities


def confusion(store: Store, run_id: int, result: dict) -> tuple[np.ndarray, list[str], list[str]] | None:
    """True x predicted concept on the digits test split; None for other datasets. Shapes: ``[T, P]``."""
    config = result.get("config", {})
    task = config.get("task", {})
    if task.get("dataset") != "digits":
        return None
    from neurosym.data.digits import load_digit_splits

    _, test = load_digit_splits()
    truth = {key: task["label_entity"].format(label=int(label)) for key, label in zip(test.keys(), test.labels.tolist())}
    chosen = {a["code"]: a["entity"] for a in result.get("alignment", []) if a.get("entity")}
    pairs = answers.top_codes(store, run_id, "digits", "test")
    if not pairs:
        return None
    labels = list(dict.fromkeys(result.get("symbols", []))) or sorted(set(truth.values()))
    true_labels = [e for e in labels if e in set(truth.values())]
    predicted = true_labels + sorted({chosen.get(c, "unaligned") for _, c in pairs} - set(true_labels))
    matrix = np.zeros((len(true_labels), len(predicted)), dtype=int)
    for key, code in pairs:
        if key in truth:
            matrix[true_labels.index(truth[key]), predicted.index(chosen.get(code, "unaligned"))] += 1
    return matrix, true_labels, predicted


# -- the page -----------------------------------------------------------------------------------------
def write_report(run_dir: str | Path, store: Store | None = None, out_dir: str | Path | None = None) -> Report:
    """Write ``report.html`` and the PNGs for a run folder into ``out_dir`` (default ``run_dir/report``)."""
    run_dir = Path(run_dir)
    try:
        result = json.loads((run_dir / "result.json").read_text())
    except FileNotFoundError:
        raise ValueError(f"{run_dir}: not a run folder (no result.json in it)") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{run_dir / 'result.json'}: not valid JSON ({exc})") from None
    out = Path(out_dir) if out_dir is not None else run_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    report = Report(html=out / "report.html")
    history = read_metrics(run_dir / "metrics.csv")
    run_id = result.get("store_run_id")
    if store is not None and run_id is not None and run_id not in {r["id"] for r in store.runs()}:
        report.notes.append(f"the store holds no run {run_id}: plots that need the symbols are left out")
        store = None

    def save(name: str, fig: Figure | None, missing: str) -> None:
        if fig is None:
            report.notes.append(f"{name}: {missing}")
            return
        path = out / f"{name}.png"
        fig.savefig(path, dpi=110)
        report.plots[name] = path

    save("training_curves", plot_curves(history) if history else None, "no metrics.csv rows")
    if store is not None and run_id is not None:
        counts, aligned = code_usage(store, run_id)
        save("codebook_usage", plot_usage(counts, aligned) if counts.size else None, "the run has no codes")
    else:
        save("codebook_usage", None, "needs the run's symbols in a store")
    matrix, codes, entities = alignment_matrix(store, run_id, result)
    chosen = {a["code"]: a["entity"] for a in result.get("alignment", []) if a.get("entity")}
    boxes = [(codes.index(c), entities.index(e)) for c, e in chosen.items() if c in codes and e in entities]
    save("alignment_heatmap", plot_matrix(matrix, [str(c) for c in codes], [short(e) for e in entities],
                                          "alignment confidence (boxed: chosen)", "entity", "code", boxes)
         if matrix.size else None, "the run has no alignment")
    found = confusion(store, run_id, result) if store is not None and run_id is not None else None
    if found is not None:
        cm, true_labels, predicted = found
        accuracy = np.trace(cm[:, : len(true_labels)]) / max(cm.sum(), 1)
        save("confusion_matrix", plot_matrix(cm, [short(e) for e in true_labels], [short(e) for e in predicted],
                                             f"concepts on the test split (accuracy {accuracy:.3f})",
                                             "predicted (aligned code)", "true", fmt="{:d}"), "")
    else:
        save("confusion_matrix", None, "needs a digits run's test symbols in the store (true labels)")
    columns = list(dict.fromkeys(k for row in history for k in row))
    rate = next((c for c in columns if "rate" in c), None)
    accuracy_col = next((c for c in ("concept_acc", "label_acc") if c in columns), None)
    save("rate_accuracy", plot_rate(history, rate, accuracy_col) if rate and accuracy_col else None,
         "no rate recorded for this run")
    report.html.write_text(render_html(run_dir, result, report, store, run_id), encoding="utf-8")
    return report


def render_html(run_dir: Path, result: dict, report: Report, store: Store | None, run_id: int | None) -> str:
    esc = html.escape
    provenance = {
        "run folder": str(run_dir.resolve()), "name": result.get("name"), "seed": result.get("seed"),
        "code version": result.get("code_version"), "created": result.get("created"),
        "checkpoint": result.get("checkpoint"), "checkpoint sha256": result.get("checkpoint_sha256"),
        "train seconds": result.get("train_seconds"),
        "store": store.url if store is not None else None, "store run id": run_id,
    }
    metrics = result.get("metrics", {})
    config_path = run_dir / "config.toml"
    config = config_path.read_text() if config_path.is_file() else json.dumps(result.get("config", {}), indent=2)
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>neurosym report: {esc(str(result.get('name')))} seed {esc(str(result.get('seed')))}</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:80em;margin:2em auto;padding:0 1em}"
        "td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left}table{border-collapse:collapse}"
        "img{max-width:100%;display:block;margin:1em 0}pre{background:#f6f6f6;padding:1em;overflow:auto}</style>",
        f"</head><body><h1>Run {esc(str(result.get('name')))} (seed {esc(str(result.get('seed')))})</h1>",
        "<h2>Provenance</h2><table>",
        *(f"<tr><th>{esc(k)}</th><td>{esc(str(v))}</td></tr>" for k, v in provenance.items() if v is not None),
        "</table><h2>Final metrics</h2><table>",
        *(f"<tr><th>{esc(k)}</th><td>{v:.4g}</td></tr>" if isinstance(v, float) else f"<tr><th>{esc(k)}</th><td>{esc(str(v))}</td></tr>"
          for k, v in metrics.items()),
    ]
    if "alignment_acc" in result:
        parts.append(f"<tr><th>alignment_acc</th><td>{result['alignment_acc']:.4g}</td></tr>")
    parts.append("</table><h2>Plots</h2>")
    for name, path in report.plots.items():
        data = base64.b64encode(path.read_bytes()).decode()
        parts.append(f"<h3>{esc(name.replace('_', ' '))}</h3><img alt='{esc(name)}' src='data:image/png;base64,{data}'>")
    if store is not None and run_id is not None:
        from pipelines.explain import failures_html

        parts.append(failures_html(store, run_id))
    if report.notes:
        parts.append("<h3>Not drawn</h3><ul>" + "".join(f"<li>{esc(n)}</li>" for n in report.notes) + "</ul>")
    parts.append(f"<h2>Config</h2><pre>{esc(config)}</pre></body></html>\n")
    return "\n".join(parts)
