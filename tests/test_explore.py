"""The explorer widget (mvlm.explore) without a browser: Run tracker fills the figure, the frame
slider redraws it; the figure functions never switch matplotlib's backend (a notebook keeps its
inline one). In JupyterLab, in a real browser: test_widget_lab.py."""

from __future__ import annotations

import pytest

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def sequences(tmp_path_factory):
    from mvlm.data.synthetic import generate_dataset
    from mvlm.explore import load_sequences

    root = tmp_path_factory.mktemp("synth")
    generate_dataset(root, sequences=1, seed=3, size=(128, 96), frames=16)
    return load_sequences("lasot", root)


def _parts(ui):
    import ipywidgets as w

    found, todo = {}, [ui]
    while todo:
        widget = todo.pop()
        todo.extend(getattr(widget, "children", ()))
        if isinstance(widget, w.Button):
            found["run"] = widget
        elif isinstance(widget, w.IntSlider) and widget.description == "frame":
            found["frame"] = widget
        elif isinstance(widget, w.Image):
            found["image"] = widget
    return found


def test_run_fills_the_figure_and_the_slider_redraws_it(sequences):
    from mvlm.explore import explorer

    parts = _parts(explorer(sequences))
    assert bytes(parts["image"].value) == b""
    parts["run"].click()
    first = bytes(parts["image"].value)
    assert first.startswith(PNG) and parts["frame"].max == 16
    parts["frame"].value = 3
    scrubbed = bytes(parts["image"].value)
    assert scrubbed.startswith(PNG) and scrubbed != first


def test_the_figure_functions_leave_the_matplotlib_backend_alone(sequences, tmp_path):
    """A notebook's backend (inline there; `svg` here, any non-Agg one) stays as it was."""
    import matplotlib

    from mvlm.explore import plot_run, run_sequence

    before = matplotlib.get_backend()
    matplotlib.use("svg")
    try:
        run = run_sequence(sequences[0], max_frames=3)
        plot_run(run, tmp_path / "run.png")
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(before)
    assert (tmp_path / "run.png").read_bytes().startswith(PNG)
