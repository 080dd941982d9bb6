"""Training curves: loss and accuracy per epoch, from the history ``fit`` returns.

Needs matplotlib, an optional extra (``pip install fastbp[plot]``); it is imported
when :func:`plot_history` is called, so fastbp itself never requires it.
"""

import numbers
import os
from collections.abc import Mapping

import numpy as np

__all__ = ["plot_history"]

# (history key, label) for each subplot, training first.
_PANELS = (
    ("loss", (("loss", "training"), ("val_loss", "validation"))),
    ("accuracy", (("accuracy", "training"), ("val_accuracy", "validation"))),
)
# Up to this many epochs each value gets a marker (a one-epoch line is otherwise invisible).
_MARKER_EPOCHS = 40


def _series(history, key):
    """history[key] as a float array, or None when absent or empty."""
    if key not in history or history[key] is None:
        return None
    values = history[key]
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise TypeError(f"history[{key!r}] must be a list of numbers (one per epoch), got "
                        f"{type(values).__name__}")
    if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values):
        raise TypeError(f"history[{key!r}] must be a list of numbers (one per epoch)")
    if len(values) == 0:
        return None
    return np.asarray(values, dtype=float)


def plot_history(history, path=None):
    """Plot the per-epoch loss and accuracy of a training history.

    Parameters
    ----------
    history : dict of lists
        What :meth:`fastbp.Network.fit` returns (also ``net.history``): per-epoch
        ``loss`` and, when present, ``val_loss``, ``accuracy`` and ``val_accuracy``.
        Other keys (``seconds``) are ignored.
    path : str or os.PathLike, optional
        Save the figure there; the format follows the extension (``.png``, ``.pdf``,
        ``.svg``, ...). Saving renders with matplotlib's non-interactive Agg canvas, so
        it works without a display and leaves pyplot's state alone. Without ``path``
        the figure is made with pyplot, for ``plt.show()`` or a notebook.

    Returns
    -------
    matplotlib.figure.Figure
        One subplot for the loss, and a second for the accuracy when the history has
        one; training and validation curves labelled ``training`` and ``validation``
        against the epoch (1, 2, ...).

    Raises
    ------
    TypeError
        ``history`` is not a dict (a Mapping) or holds non-numbers.
    ValueError
        ``history`` has no ``loss`` or ``val_loss`` values (nothing to plot).
    ImportError
        matplotlib is not installed: ``pip install fastbp[plot]``.
    """
    if not isinstance(history, Mapping):
        hint = " (pass net.history)" if hasattr(history, "history") else ""
        raise TypeError(f"history must be a dict of per-epoch lists, as fit returns{hint}; "
                        f"got {type(history).__name__}")
    panels = []
    for title, curves in _PANELS:
        lines = [(label, _series(history, key)) for key, label in curves]
        lines = [(label, values) for label, values in lines if values is not None]
        if lines:
            panels.append((title, lines))
    if not panels or panels[0][0] != "loss":
        raise ValueError("history has no loss values to plot: expected a dict such as "
                         "{'loss': [...], 'accuracy': [...]} with at least one epoch, got "
                         f"keys {sorted(map(str, history))}")
    if path is not None:
        path = os.fspath(path)

    try:
        import matplotlib  # noqa: F401  (optional: fastbp[plot])
    except ImportError as exc:
        raise ImportError("plot_history needs matplotlib, an optional dependency of fastbp: "
                          "pip install fastbp[plot] (or pip install matplotlib)") from exc
    from matplotlib.ticker import MaxNLocator

    figsize = (5.0 * len(panels), 3.8)
    if path is None:
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, len(panels), figsize=figsize, squeeze=False)
    else:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=figsize)
        FigureCanvasAgg(fig)  # the non-interactive Agg canvas, whatever pyplot uses
        axes = fig.subplots(1, len(panels), squeeze=False)

    for ax, (title, lines) in zip(axes[0], panels):
        for label, values in lines:
            epochs = np.arange(1, len(values) + 1)
            ax.plot(epochs, values, label=label,
                    marker="o" if len(values) <= _MARKER_EPOCHS else None, markersize=3)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.set_ylabel(title)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100)
    return fig
