"""Message boxes and the CCD simulator's settings dialog.

Every message goes through the functions here (which call the static
``QMessageBox`` methods), so tests can record them instead of blocking.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap

from PyQt5.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)


def inform(parent, title: str, text: str) -> None:
    QMessageBox.information(parent, title, text)


def warn(parent, title: str, text: str) -> None:
    QMessageBox.warning(parent, title, text)


def error(parent, title: str, text: str) -> None:
    QMessageBox.critical(parent, title, text)


def ask(parent, title: str, text: str) -> bool:
    answer = QMessageBox.question(parent, title, text, QMessageBox.Yes | QMessageBox.No, QMessageBox.No)
    return answer == QMessageBox.Yes


def field_docs(cls) -> dict[str, str]:
    """The docstring written under each field of a dataclass (the
    convention of the settings classes), read from its source."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError):
        return {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    docs = {}
    for first, second in zip(body, body[1:]):
        if (isinstance(first, ast.AnnAssign) and isinstance(first.target, ast.Name)
                and isinstance(second, ast.Expr) and isinstance(second.value, ast.Constant)
                and isinstance(second.value.value, str)):
            docs[first.target.id] = " ".join(second.value.value.split())
    return docs


def format_value(value) -> str:
    if isinstance(value, (tuple, list)):
        return ", ".join(format_value(v) for v in value)
    return str(value)


def parse_value(text: str, default):
    """Parse ``text`` into the type of ``default`` (int, float, bool, str or a
    tuple of those); raises ValueError with a short reason."""
    text = text.strip()
    if isinstance(default, bool):
        if text.lower() in ("true", "yes", "1"):
            return True
        if text.lower() in ("false", "no", "0"):
            return False
        raise ValueError("expected true or false")
    if isinstance(default, (tuple, list)):
        parts = [p for p in text.replace(";", ",").split(",") if p.strip()]
        if len(parts) != len(default):
            raise ValueError(f"expected {len(default)} values separated by commas")
        return type(default)(parse_value(p, d) for p, d in zip(parts, default))
    if isinstance(default, int):
        try:
            return int(text)
        except ValueError:
            raise ValueError("expected a whole number") from None
    if isinstance(default, float):
        try:
            return float(text)
        except ValueError:
            raise ValueError("expected a number") from None
    return text.strip("'\"")


EXTRA_CHOSEN = 2  # dialog result of a DataclassDialog's extra button
MATCH_FRAMES = "match my frames"


def remember_values(settings, group: str, values: dict) -> None:
    """Store ``values`` under ``group/`` as a settings dialog does, so that
    the dialog opens with them next time."""
    for name, value in values.items():
        settings.setValue(f"{group}/{name}", format_value(value))


def choose_folder(parent, title: str) -> str:
    """A folder chosen by the user ('' if cancelled)."""
    return QFileDialog.getExistingDirectory(parent, title)


class DataclassDialog(QDialog):
    """Edit the fields of a settings dataclass: one line per field, its
    default as placeholder and its documentation as tooltip. The fields are
    read from the class, so the dialog follows the simulator's settings."""

    def __init__(self, cls, values: dict, *, title: str, intro: str = "", parent=None,
                 extra: tuple[str, str] | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.cls = cls
        self.defaults = dataclass_defaults(cls)
        docs = field_docs(cls)
        self.edits: dict[str, QLineEdit] = {}
        form = QFormLayout()
        for name, default in self.defaults.items():
            if default is dataclasses.MISSING:
                continue
            edit = QLineEdit(format_value(values.get(name, default)))
            edit.setPlaceholderText(format_value(default))
            tip = docs.get(name, "")
            edit.setToolTip(f"{tip}\nDefault: {format_value(default)}".strip())
            label = QLabel(name.replace("_", " "))
            label.setToolTip(edit.toolTip())
            form.addRow(label, edit)
            self.edits[name] = edit
        inner = QWidget()
        inner.setLayout(form)
        scroll = QScrollArea()
        scroll.setWidget(inner)
        scroll.setWidgetResizable(True)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel | QDialogButtonBox.RestoreDefaults)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        buttons.button(QDialogButtonBox.RestoreDefaults).clicked.connect(self.restore_defaults)
        self.extra_button = None
        if extra is not None:  # closes the dialog with EXTRA_CHOSEN
            text, tip = extra
            self.extra_button = buttons.addButton(text, QDialogButtonBox.ActionRole)
            self.extra_button.setToolTip(tip)
            self.extra_button.clicked.connect(lambda: self.done(EXTRA_CHOSEN))
        layout = QVBoxLayout(self)
        if intro:
            text = QLabel(intro)
            text.setWordWrap(True)
            layout.addWidget(text)
        layout.addWidget(scroll, 1)
        layout.addWidget(buttons)
        self.resize(520, 560)

    def restore_defaults(self) -> None:
        for name, edit in self.edits.items():
            edit.setText(format_value(self.defaults[name]))

    def values(self) -> dict:
        """The edited values, parsed; raises ValueError naming the field."""
        out = {}
        for name, edit in self.edits.items():
            try:
                out[name] = parse_value(edit.text() or edit.placeholderText(), self.defaults[name])
            except ValueError as exc:
                raise ValueError(f"{name.replace('_', ' ')}: {exc} (got '{edit.text()}').") from None
        return out

    def accept(self) -> None:
        try:
            self.values()
        except ValueError as exc:
            warn(self, "Check the settings", str(exc))
            return
        super().accept()


def dataclass_defaults(cls) -> dict:
    """Each field's default value (``dataclasses.MISSING`` where it has none)."""
    return {f.name: _default(f) for f in dataclasses.fields(cls)}


def ask_dataclass_settings(parent, cls, settings, group: str, values: dict, *, title: str,
                           intro: str = "", extra: tuple[str, str] | None = None) -> dict | str | None:
    """Show a :class:`DataclassDialog` for ``cls``: ``values`` first, then
    what the user last entered (remembered under ``group/`` in the QSettings
    ``settings``), then the defaults. Returns the parsed values, None if
    the user cancelled, or :data:`EXTRA_CHOSEN` if the ``extra`` button
    (text, tooltip) was pressed."""
    values = dict(values)
    for name, default in dataclass_defaults(cls).items():
        text = settings.value(f"{group}/{name}", None)
        if text is None or name in values or default is dataclasses.MISSING:
            continue
        try:
            values[name] = parse_value(str(text), default)
        except ValueError:
            pass  # a value from an older version of the settings: the default applies
    dialog = DataclassDialog(cls, values, title=title, parent=parent, intro=intro, extra=extra)
    answer = dialog.exec_()
    if answer == EXTRA_CHOSEN:
        return EXTRA_CHOSEN
    if answer != QDialog.Accepted:
        return None
    values = dialog.values()
    remember_values(settings, group, values)
    return values


def _default(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return dataclasses.MISSING


def ask_ccd_settings(window) -> dict | str | None:
    """The CCD simulator's settings, asked in a dialog that starts from the
    window's Synthetic images, Image size and Random seed (which then follow
    the answer); None if cancelled, :data:`MATCH_FRAMES` when the user asked
    to measure the settings from his own frames."""
    from synthetic.ccd import CCDSettings as cls
    c = window.controls
    values = ask_dataclass_settings(
        window, cls, window.settings, "ccd", {"count": c.count.value(), "size": c.size.value(),
                                              "seed": c.seed.value()},
        title="Simulated CCD frames",
        intro="Settings of the CCD detector simulator. Hover over a name for what it means; "
              "ranges are written 'low, high'. Match my frames… measures them from a folder of "
              "your own detector frames (FITS, TIFF, …) and brings you back here to check them.",
        extra=("Match my frames…", "Measure pedestal, noise, glow, hot pixels and clusters of your own "
               "frames, so the simulated frames look like them"))
    if values == EXTRA_CHOSEN:
        return MATCH_FRAMES
    if values is not None:
        c.count.setValue(int(values.get("count", c.count.value())))
        c.size.setValue(int(values.get("size", c.size.value())))
        c.seed.setValue(int(values.get("seed", c.seed.value())))
    return values
